/* json_strict.h: strict JSON below the codec files.  An RFC 8259 checker
 * that runs, in one pass and without allocating, before cJSON builds a
 * tree (or, for json_tree.c, builds the tree in that same pass); UTF-8
 * validation; and number text that reads back exactly.  It
 * knows nothing of events or families: the codec files all sit on it. */
#ifndef COLLECTORD_JSON_STRICT_H
#define COLLECTORD_JSON_STRICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Containers the checker lets open at once: the text's own array or
 * object is level 1, so "[[1]]" has 2 levels.  Deeper is an error; it
 * also bounds cJSON's recursion. */
#define JSON_STRICT_MAX_DEPTH 128
/* Longest number, in characters: cJSON before 1.7.18 cannot parse a
 * longer one (and a double holds 17 digits). */
#define JSON_STRICT_MAX_NUMBER 63

enum json_strict_status {
	JSON_STRICT_OK = 0,
	JSON_STRICT_INVALID,   /* not one strict JSON value */
	JSON_STRICT_TOO_LARGE, /* a bound on events or values passed */
};

/* What json_strict_check() found. */
struct json_strict_check {
	size_t start;	 /* offset of the value: after a BOM and whitespace */
	size_t events;	 /* top-level array: its elements; object: 1; else 0 */
	size_t values;	 /* JSON_STRICT_OK: every value, containers included */
	size_t where;	 /* JSON_STRICT_INVALID: byte offset of the problem */
	const char *why; /* JSON_STRICT_INVALID: what was wrong ("empty" if nothing
			  * but whitespace); JSON_STRICT_TOO_LARGE: what was counted
			  * ("events" or "JSON values") */
	size_t limit;	 /* JSON_STRICT_TOO_LARGE: the bound passed */
};

/*
 * Check that TEXT (N bytes, no NUL needed) is one RFC 8259 JSON value with
 * only whitespace (space, tab, LF, CR) around it, and count events and
 * values on the way, in one pass, with no allocation and no recursion.
 * MAX_EVENTS / MAX_VALUES of 0 mean no bound; the pass stops at the first
 * value past either (events: elements of a top-level array, a top-level
 * object is 1; values: every value, containers included, keys not).
 * Beyond RFC 8259: valid UTF-8 only, no \u0000 and no unpaired surrogate
 * escape (neither fits a C string of UTF-8), at most JSON_STRICT_MAX_DEPTH
 * levels and JSON_STRICT_MAX_NUMBER characters a number, and no letter,
 * digit, '.', '+' or '-' right after a number or literal; a leading UTF-8
 * BOM is skipped, as RFC 8259 section 8.1 allows.  The WHY texts are those
 * listed at codec_body_parse().
 *
 * Why cJSON may then parse TEXT + START with no further checks: it sees
 * one valid value followed by nothing but whitespace, so none of its
 * leniencies (every byte <= 0x20 taken as whitespace, numbers as loose as
 * strtod() reads them: "01", "1.", "-.5"; \u escapes with non-hex digits)
 * and none of its error paths are reached, among them the read one byte
 * past the length in cJSON < 1.7.18 (#800), which needs a text ending just
 * after a ',' in an object; all its reads on a valid text are bounded by
 * the length, so no NUL is needed.  Its recursion is bounded by our depth
 * (its own limit is 1000), the nodes it allocates by the values counted
 * (one per value), and its numbers by JSON_STRICT_MAX_NUMBER (cJSON <
 * 1.7.18 splits longer ones at 63 bytes).
 */
enum json_strict_status json_strict_check(const char *text, size_t n, size_t max_events,
    size_t max_values, struct json_strict_check *jc) __attribute__((warn_unused_result));

/*
 * Where json_strict_check_build() puts the tree it builds while it
 * checks: nodes from NODE up to NODE_END, then from the blocks MORE gives
 * (it sets NODE and NODE_END; false when out of memory), and the decoded
 * strings and keys, NUL-terminated, from POOL on, which must have room for
 * the text's N bytes (no string decodes longer than its text) and
 * JSON_STRICT_POOL_SLACK more (plain bytes are copied in whole blocks).
 */
#define JSON_STRICT_POOL_SLACK 16
struct json_strict_tree {
	cJSON *node, *node_end;
	char *pool;
	bool (*more)(struct json_strict_tree *t);
	void *arg;   /* MORE's */
	cJSON *root; /* out: the text's value, linked as cJSON links it */
	bool oom;    /* out: MORE failed; the check stopped there */
};

/*
 * json_strict_check() that builds the tree of the text as it goes, as
 * cJSON would build it (the nodes are plain cJSON items, numbers read as
 * cJSON reads them), in the same single pass: same answers, same JC.
 * With T->oom set the answer is JSON_STRICT_INVALID with WHY "out of
 * memory": the text was not checked to its end.  On anything but
 * JSON_STRICT_OK, the nodes built so far are garbage for the caller to
 * free.
 */
enum json_strict_status json_strict_check_build(const char *text, size_t n, size_t max_events,
    size_t max_values, struct json_strict_check *jc, struct json_strict_tree *t)
    __attribute__((warn_unused_result));

/* cJSON's tree of TEXT (N bytes), which json_strict_check() passed (from
 * its START on); NULL only when cJSON runs out of memory.  Caller owns it. */
cJSON *json_strict_build(const char *text, size_t n);

/* Parse all of TEXT (N bytes, no NUL needed) as one strict JSON value, any
 * value allowed, no bound on events or values; NULL with *WHERE (byte
 * offset) and *WHY ("empty" for nothing but whitespace, "out of memory",
 * or a WHY of json_strict_check()) on failure.  Caller owns the tree. */
cJSON *json_strict_parse(const char *text, size_t n, size_t *where, const char **why);

/* True when S (N bytes) is valid UTF-8: no overlong forms, no encoded
 * surrogates, nothing past U+10FFFF. */
bool json_strict_utf8_valid(const char *s, size_t n);
/* JSON whitespace: space, tab, LF, CR. */
bool json_strict_space(int c);

/* X as a raw JSON number item: the shortest text that reads back as
 * exactly X (cJSON's printer compares with a tolerance and may print a
 * neighbour: 9007199254740991 as 9.00719925474099e+15).  X must be
 * finite.  NULL when out of memory. */
cJSON *json_strict_number(double x);
/* V exactly, as digits; NULL when out of memory. */
cJSON *json_strict_int(int64_t v);

#endif
