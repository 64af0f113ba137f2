/* codec_int.h: what the codec's files share and nothing else may use:
 * codec.c (rule words, errors, paths, the protobuf-c helpers, framing)
 * under codec_encode.c (JSON to Protobuf) and codec_enrich.c (Protobuf to
 * the enriched JSON and the row), which never call each other. */
#ifndef COLLECTORD_CODEC_INT_H
#define COLLECTORD_CODEC_INT_H

#include <string.h>

#include "codec.h"

/* Long enough for every path a schema names. */
#define PATH_MAX_LEN 256
/* User keys are cut to this many bytes in error messages. */
#define KEY_SHOW_MAX 100
/* Integers beyond this cannot be told apart as IEEE doubles. */
#define MAX_SAFE_INT 9007199254740991.0

/* "nested deeper than N levels", a word of codec_rules[]. */
extern const char codec_rule_too_deep[];

/* What a map<string,string> field is to its family. */
enum map_role { MAP_NONE, MAP_EXTRA, MAP_ORIGINALS };

/* Format into ERR (when not NULL and ERRLEN > 0); returns false. */
bool codec_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* ERR = PATH ": " RULE TAIL, cut to fit; RULE kept as given (the encoder
 * maps it to its list entry before it returns). */
bool codec_err_put(struct codec_error *err, const char *path, const char *rule, const char *tail);
/* OUT = PARENT "." NAME (NAME alone at the top), cut to PATH_MAX_LEN.
 * On every field of every event: no snprintf. */
void codec_path_join(char *out, const char *parent, const char *name);
/* OUT = PARENT "[" I "]", cut to PATH_MAX_LEN. */
void codec_path_index(char *out, const char *parent, size_t i);
/* KEY for an error message: cut at a character boundary so that the
 * message stays valid UTF-8 wherever it is echoed. */
const char *codec_key_show(const char *key, char buf[KEY_SHOW_MAX + 4]);
/* The smallest key of KEYS (sorted in place) that occurs twice, or NULL. */
const char *codec_dup_key(const char **keys, size_t n);
/*
 * Find a key OBJ holds twice: cJSON keeps both and lookups would see only
 * the first, so the other would be lost silently.  False when there is one
 * (*DUP set, borrowed from OBJ) or memory ran out (*DUP NULL).
 */
bool codec_find_duplicate(const cJSON *obj, const char **dup);
/* S's rule for the field at rule path PATH, or NULL (no rule). */
const struct codec_field *codec_rule_find(const struct codec_schema *s, const char *path);
/* Where field F of M is stored, and whether it is set (proto2 presence:
 * a flag, a non-NULL pointer, a non-empty list). */
static inline void *
codec_field_at(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	return (char *)m + f->offset;
}
bool codec_field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);
void codec_set_present(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);
/* A map<,> field: a repeated message of key and value, as protoc makes it. */
bool codec_is_map(const ProtobufCFieldDescriptor *f);
/* A repeated message field that is not a map: a JSON array of objects. */
bool codec_is_list(const ProtobufCFieldDescriptor *f);
/* RPATH: the field's rule path. */
enum map_role codec_map_role(
    const struct codec_schema *s, const ProtobufCFieldDescriptor *f, const char *rpath);
/* The key and value strings of a map entry, found by name. */
char **codec_entry_str(const ProtobufCMessage *entry, const char *name);
/* What inet_pton() takes for AF_INET or AF_INET6. */
bool codec_ip_valid(const char *text);

/* ------------------------------------------------------------ plans
 * A schema compiled once (codec_plan.c): for each message at a rule path,
 * its fields in descriptor order with their rules and sub-plans, the keys
 * that name them, and what its map fields are for. */

/* Most fields a message may have: the encoder keeps two slots a field on
 * its stack.  A message with more is refused at its first field. */
#define CODEC_PLAN_MAX_FIELDS 64

enum plan_kind {
	PLAN_VALUE, /* a value, a message included */
	PLAN_LIST,  /* a repeated message that is not a map: a JSON array */
	PLAN_ROLE,  /* a map or another repeated field: see ROLE */
	PLAN_ONEOF, /* not supported by the codec */
};

struct plan_msg;

struct plan_field {
	const ProtobufCFieldDescriptor *f;
	const struct codec_field *rule; /* the schema's rule for RPATH, or NULL */
	char *rpath;			/* the rule path: no indexes */
	enum plan_kind kind;
	enum map_role role;	    /* PLAN_ROLE */
	const struct plan_msg *sub; /* message fields: their plan */
};

/* A key of the message's JSON object: a field's short name, or the long
 * key of a field's rule.  A key may name two fields: every entry counts. */
struct plan_key {
	const char *key;
	size_t len;
	unsigned field; /* index in FIELDS */
	bool is_long;
	int next; /* the next entry with the same key, or -1 */
};

struct plan_msg {
	const ProtobufCMessageDescriptor *d;
	struct plan_field *fields;
	unsigned nfields;
	struct plan_key *keys;
	unsigned nkeys;
	int role_error;				  /* first PLAN_ROLE field of MAP_NONE, or -1 */
	const ProtobufCFieldDescriptor *extra;	  /* MAP_EXTRA, or NULL */
	const ProtobufCFieldDescriptor *reserved; /* MAP_ORIGINALS, or NULL */
	bool too_many;				  /* more than CODEC_PLAN_MAX_FIELDS fields */
};

/* S's plan, built on first use; NULL only when out of memory.  S must be
 * static: its address keys the plan.  Give it back with
 * codec_plan_release() (a no-op for the plans that are kept). */
const struct plan_msg *codec_plan(const struct codec_schema *s);
void codec_plan_release(const struct codec_schema *s, const struct plan_msg *pm);
/* The first of PM's keys that is KEY (LEN bytes), or -1; the others that
 * are follow by NEXT.  Inline: it runs on every key of every event, where
 * a call cost more than the search of a few entries. */
static inline int
codec_plan_key(const struct plan_msg *pm, const char *key, size_t len)
{
	for (unsigned i = 0; i < pm->nkeys; i++)
		if (pm->keys[i].len == len && memcmp(pm->keys[i].key, key, len) == 0)
			return (int)i;
	return -1;
}

#endif
