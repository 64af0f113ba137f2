/* t/json_tree.c: the one-allocation tree against cJSON's own parser, item
 * by item: types, keys, strings, the exact bits of every number, valueint,
 * and the links cJSON's readers and printer rely on (the head's prev is
 * the tail).  Texts: hand-made edge cases and every line of every
 * family's golden files. */
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_tree.h"
#include "tap.h"

static const char *why_differs;

static bool
same(const cJSON *a, const cJSON *b)
{
	const cJSON *ca, *cb, *last = NULL;

	if ((a->type & 0xff) != (b->type & 0xff))
		return why_differs = "type", false;
	if ((a->string == NULL) != (b->string == NULL) ||
	    (a->string != NULL && strcmp(a->string, b->string) != 0))
		return why_differs = "key", false;
	if ((a->valuestring == NULL) != (b->valuestring == NULL) ||
	    (a->valuestring != NULL && strcmp(a->valuestring, b->valuestring) != 0))
		return why_differs = "string", false;
	if (memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0)
		return why_differs = "valuedouble", false;
	if (a->valueint != b->valueint)
		return why_differs = "valueint", false;
	for (ca = a->child, cb = b->child; ca != NULL && cb != NULL; ca = ca->next, cb = cb->next) {
		if (ca != a->child && ca->prev != last)
			return why_differs = "prev link", false;
		if (!same(ca, cb))
			return false;
		last = ca;
	}
	if (ca != NULL || cb != NULL)
		return why_differs = "number of children", false;
	if (a->child != NULL && a->child->prev != last)
		return why_differs = "head's prev is not the tail", false;
	return true;
}

/* TEXT through both parsers; ok() when the trees are the same. */
static void
compare(const char *text, size_t n, const char *name)
{
	struct json_strict_check jc;
	cJSON *mine, *theirs;
	const char *end = NULL;

	if (json_strict_check(text, n, 0, 0, &jc) != JSON_STRICT_OK) {
		ok(false, "%s: the strict check passes", name);
		return;
	}
	theirs = cJSON_ParseWithLengthOpts(text + jc.start, n - jc.start, &end, 0);
	/* checked and built in one pass, from a first guess of the size */
	mine = NULL;
	why_differs = "a parser failed";
	ok(json_tree_check(text, n, 0, 0, false, &jc, &mine) == JSON_STRICT_OK && mine != NULL &&
		theirs != NULL && same(mine, theirs),
	    "%s: same tree in one pass (%s)", name,
	    mine != NULL && theirs != NULL && same(mine, theirs) ? "yes" : why_differs);
	json_tree_free(mine);
	cJSON_Delete(theirs);
}

static void
test_cases(void)
{
	static const char *const cases[] = {
	    "{}",
	    "[]",
	    "[[],{},[[]],{\"a\":{}}]",
	    "  {\"a\" : 1 , \"b\" :[ true ,false, null ] }  ",
	    "[0, -0, 1, -1, 42, 123456789012345, 1234567890123456, 12345678901234567890]",
	    "[2147483647, 2147483648, -2147483648, -2147483649, 1e308, -1e308, 1e-320]",
	    "[0.1, -0.5e-3, 1E+2, 1e2, 1.5e-7, 3.14159265358979323846, 9007199254740993]",
	    "[\"\", \"plain\", \"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\u0041\\u00e9\\u20ac\"]",
	    "[\"\\ud83d\\ude00 and \\uD834\\uDD1E\", \"caf\xc3\xa9 \xe2\x82\xac "
	    "\xf0\x9f\x98\x80\"]",
	    "{\"k\\u00e9y\":\"v\",\"\":\"empty key\",\"dup\":1,\"dup\":2}",
	    "\xef\xbb\xbf[1]",
	    "\"top-level string\"",
	    "12.5",
	    "true",
	    "null",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[64];

		snprintf(name, sizeof(name), "case %zu", i);
		compare(cases[i], strlen(cases[i]), name);
	}
}

/* Every line of every golden file under schemas/NAME/data/. */
static void
test_golden(void)
{
	const char *top = getenv("top_srcdir");
	char dir[PATH_MAX];
	struct dirent *de;
	size_t lines = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/schemas", top != NULL ? top : ".");
	if (!ok((d = opendir(dir)) != NULL, "open %s", dir))
		return;
	while ((de = readdir(d)) != NULL) {
		static const char *const files[] = {"valid.jsonl", "invalid.jsonl"};

		if (de->d_name[0] == '.')
			continue;
		for (size_t i = 0; i < 2; i++) {
			char path[PATH_MAX * 2], *line = NULL, name[PATH_MAX * 2 + 32];
			size_t cap = 0, no = 0;
			ssize_t len;
			FILE *f;

			snprintf(path, sizeof(path), "%s/%s/data/%s", dir, de->d_name, files[i]);
			if ((f = fopen(path, "r")) == NULL)
				continue;
			while ((len = getline(&line, &cap, f)) > 0) {
				struct json_strict_check jc;

				no++;
				/* Lines that are not strict JSON are the body parser's
				 * cases, not the tree's. */
				if (json_strict_check(line, (size_t)len, 0, 0, &jc) !=
				    JSON_STRICT_OK)
					continue;
				snprintf(name, sizeof(name), "%s line %zu", path, no);
				compare(line, (size_t)len, name);
				lines++;
			}
			free(line);
			fclose(f);
		}
	}
	closedir(d);
	ok(lines >= 100, "golden lines compared: %zu", lines);
}

/* Numbers of every form the tree reads without strtod() and around its
 * edges (15 and 16 digits, 10^22 and 10^23), each as strtod() reads it:
 * one text of many numbers, from a fixed seed. */
static void
test_numbers(void)
{
	static const char *const exps[] = {
	    "", "e0", "e5", "e-5", "E+22", "e22", "e23", "e-22", "e-23", "e300", "e-300", "e-330"};
	size_t cap = 1 << 20, len = 0;
	char *text = malloc(cap);
	uint64_t r = 0x9e3779b97f4a7c15u;

	if (!ok(text != NULL, "numbers: memory"))
		return;
	text[len++] = '[';
	for (int i = 0; i < 20000; i++) {
		unsigned digits, point;
		char num[64];
		size_t k = 0;

		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		digits = 1 + (unsigned)(r % 18);
		point = (unsigned)((r >> 8) % (digits + 1));
		if ((r >> 16) & 1)
			num[k++] = '-';
		for (unsigned d = 0; d < digits; d++) {
			if (d == point && d > 0)
				num[k++] = '.';
			/* no leading zero but a lone one before the point */
			num[k++] = (char)('0' + ((d == 0 && (digits > 1 && point != 1))
							? 1 + (r >> (20 + d)) % 9
							: (r >> (20 + 2 * d)) % 10));
		}
		k += (size_t)snprintf(num + k, sizeof(num) - k, "%s", exps[(r >> 40) % 12]);
		if (i > 0)
			text[len++] = ',';
		memcpy(text + len, num, k);
		len += k;
	}
	text[len++] = ']';
	compare(text, len, "20000 numbers");
	free(text);
}

/* Strings of every length up to 40 with an escape, a \\u escape or a
 * UTF-8 character at every place: the scan's blocks of 16 and 8 bytes and
 * its stops at each offset, the text ending right after the string. */
static void
test_string_runs(void)
{
	static const char *const specials[] = {
	    "\\n", "\\\\", "\\u00e9", "\\ud83d\\ude00", "\xc3\xa9", "\xf0\x9f\x98\x80", "\\\""};
	size_t cases = 0, passed = 0;

	for (size_t len = 0; len <= 40; len++) {
		for (size_t at = 0; at <= len; at++) {
			for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {
				char text[128], name[64];
				size_t n = 0;
				struct json_strict_check jc;
				cJSON *mine = NULL, *theirs;

				text[n++] = '"';
				for (size_t i = 0; i < len; i++) {
					if (i == at) {
						memcpy(text + n, specials[k], strlen(specials[k]));
						n += strlen(specials[k]);
					}
					text[n++] = (char)('a' + i % 26);
				}
				text[n++] = '"';
				snprintf(name, sizeof(name), "string %zu/%zu/%zu", len, at, k);
				theirs = cJSON_ParseWithLength(text, n);
				cases++;
				if (json_tree_check(text, n, 0, 0, false, &jc, &mine) ==
					JSON_STRICT_OK &&
				    mine != NULL && theirs != NULL && same(mine, theirs))
					passed++;
				else
					ok(false, "%s: same string", name);
				json_tree_free(mine);
				cJSON_Delete(theirs);
			}
		}
	}
	is_int((long long)passed, (long long)cases, "strings with a stop at every offset");
}

/* A text of many more values than its size suggests takes more blocks;
 * the bound on values stops the building where it stops the check; a
 * text that fails leaves nothing held and the check's own answer. */
static void
test_blocks_and_bounds(void)
{
	size_t n = 40001, base = json_tree_live_bytes();
	struct json_strict_check a, b;
	char *text = malloc(n + 1);
	enum json_strict_status st;
	cJSON *t = NULL;

	if (!ok(text != NULL, "blocks: memory"))
		return;
	/* [0,0,...,0]: 20000 values in 40001 bytes */
	for (size_t i = 0; i < n; i++)
		text[i] = i % 2 ? '0' : ',';
	text[0] = '[';
	text[n - 1] = ']';
	text[n] = '\0';
	compare(text, n, "20000 zeros");
	ok(json_tree_check(text, n, 0, 0, true, &a, &t) == JSON_STRICT_OK && t != NULL &&
		cJSON_GetArraySize(t) == 20000 && a.values == 20001,
	    "20000 zeros in blocks: every value there");
	json_tree_free(t);
	is_int((long long)json_tree_live_bytes(), (long long)base, "every block freed");
	st = json_tree_check(text, n, 0, 5000, true, &a, &t);
	ok(st == JSON_STRICT_TOO_LARGE && t == NULL &&
		json_strict_check(text, n, 0, 5000, &b) == JSON_STRICT_TOO_LARGE &&
		a.limit == b.limit && strcmp(a.why, b.why) == 0,
	    "past the bound on values: the check's answer, no tree");
	is_int((long long)json_tree_live_bytes(), (long long)base, "nothing held after the bound");
	text[30001] = 'x';
	st = json_tree_check(text, n, 0, 0, true, &a, &t);
	ok(st == JSON_STRICT_INVALID && t == NULL &&
		json_strict_check(text, n, 0, 0, &b) == JSON_STRICT_INVALID && a.where == b.where &&
		strcmp(a.why, b.why) == 0,
	    "an error late in the text: the check's answer (%s at %zu), no tree", a.why, a.where);
	is_int((long long)json_tree_live_bytes(), (long long)base, "nothing held after an error");
	free(text);
	/* a top-level array moves to the first node when wrapping is asked */
	const char *arr = "[{\"a\":1},2]";

	ok(json_tree_check(arr, strlen(arr), 0, 0, true, &a, &t) == JSON_STRICT_OK &&
		cJSON_IsArray(t) && cJSON_GetArraySize(t) == 2 && t->child->prev == t->child->next,
	    "a top-level array is not wrapped");
	json_tree_free(t);
}

/* The object wrapped as a batch of one; the live-bytes count. */
static void
test_wrap_and_count(void)
{
	const char *text = "{\"a\":[1,2]}";
	struct json_strict_check jc;
	size_t base = json_tree_live_bytes();
	cJSON *t;

	if (!ok(json_tree_check(text, strlen(text), 0, 0, true, &jc, &t) == JSON_STRICT_OK,
		"wrap: checked"))
		return;
	ok(t != NULL && cJSON_IsArray(t) && cJSON_GetArraySize(t) == 1 &&
		cJSON_IsObject(t->child) && t->child->prev == t->child,
	    "a top-level object comes back as the one element of an array");
	ok(json_tree_live_bytes() > base, "a held tree is counted");
	json_tree_free(t);
	is_int((long long)json_tree_live_bytes(), (long long)base, "a freed one is not");
	json_tree_free(NULL);
	ok(true, "freeing NULL is nothing");
}

int
main(void)
{
	test_cases();
	test_golden();
	test_numbers();
	test_string_runs();
	test_blocks_and_bounds();
	test_wrap_and_count();
	return tap_done();
}
