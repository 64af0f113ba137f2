/* json_tree.h: a read-only cJSON tree of a strict JSON text, built in
 * the same pass that checks it (json_strict_check_build()), into one
 * allocation (more only for a text of many more values than its size
 * suggests).  cJSON's own parser allocates every node, key and string on
 * its own and reads each byte again with checks the strict pass already
 * made; on the collect path that was the largest cost per event after the
 * strictness pass itself, and a second pass over the text for the tree
 * cost nearly as much as the check.  The nodes are plain
 * cJSON items, so every reader of cJSON (the encoder, the family hooks,
 * cJSON_PrintUnformatted, cJSON_Duplicate) takes them as they are. */
#ifndef COLLECTORD_JSON_TREE_H
#define COLLECTORD_JSON_TREE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "json_strict.h"

/*
 * json_strict_check() of TEXT (N bytes) with MAX_EVENTS and MAX_VALUES,
 * and its tree in the same pass: the check's answer and JC; with
 * JSON_STRICT_OK, *ROOT is the tree (a top-level object wrapped as the one
 * element of an array with WRAP), or NULL when out of memory (the text
 * may then be unchecked from there on).  On anything else *ROOT is NULL
 * and nothing is held.  The memory is bounded by the text and the values
 * the bound lets through.
 *
 * Free the tree with json_tree_free() and nothing else: not
 * cJSON_Delete(), and no cJSON call that adds, detaches or replaces an
 * item of it.
 */
enum json_strict_status json_tree_check(const char *text, size_t n, size_t max_events,
    size_t max_values, bool wrap, struct json_strict_check *jc, cJSON **root)
    __attribute__((warn_unused_result));

/* json_strict_parse() as a json_tree: the same answers, the same WHERE
 * and WHY, a tree to free with json_tree_free(). */
cJSON *json_tree_parse(const char *text, size_t n, size_t *where, const char **why);

/* Free a tree of json_tree_check() or json_tree_parse(); NULL is nothing. */
void json_tree_free(cJSON *root);

/* Bytes the trees not yet freed hold, all threads together. */
size_t json_tree_live_bytes(void);

#endif
