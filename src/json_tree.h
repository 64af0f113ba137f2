/* json_tree.h: a read-only cJSON tree of a text json_strict_check()
 * passed, built in one allocation.  cJSON's own parser allocates every
 * node, key and string on its own and reads each byte again with checks
 * the strict pass already made; on the collect path that was the largest
 * cost per event after the strictness pass itself.  The nodes are plain
 * cJSON items, so every reader of cJSON (the encoder, the family hooks,
 * cJSON_PrintUnformatted, cJSON_Duplicate) takes them as they are. */
#ifndef COLLECTORD_JSON_TREE_H
#define COLLECTORD_JSON_TREE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "json_strict.h"

/*
 * The tree of TEXT (N bytes), which json_strict_check() passed with JC
 * (its start and values count).  With WRAP, a top-level object comes back
 * as the one element of an array.  NULL only when out of memory.
 *
 * Free it with json_tree_free() and nothing else: not cJSON_Delete(), and
 * no cJSON call that adds, detaches or replaces an item of it.
 */
cJSON *json_tree_build(const char *text, size_t n, const struct json_strict_check *jc, bool wrap);

/* json_strict_parse() as a json_tree: the same answers, the same WHERE
 * and WHY, a tree to free with json_tree_free(). */
cJSON *json_tree_parse(const char *text, size_t n, size_t *where, const char **why);

/* Free a tree of json_tree_build() or json_tree_parse(); NULL is nothing. */
void json_tree_free(cJSON *root);

/* Bytes the trees not yet freed hold, all threads together. */
size_t json_tree_live_bytes(void);

#endif
