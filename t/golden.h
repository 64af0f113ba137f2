/* t/golden.h: what the golden-case tests of the codec share (t/codec.c,
 * Holded's cases and the codec's own; t/families.c, every family's). */
#ifndef COLLECTORD_T_GOLDEN_H
#define COLLECTORD_T_GOLDEN_H

#include <stddef.h>

#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>

/* The file NAME below $top_srcdir (else "."), NUL-terminated, *LEN bytes
 * (caller frees); NULL, said on stdout as a TAP comment, when unreadable. */
char *golden_slurp(const char *name, size_t *len);

/* OBJ's string KEY, or "?". */
const char *golden_str(const cJSON *obj, const char *key);

/* Print every number of V as the shortest text that reads back as exactly
 * its value, as the codec prints them: cJSON's printer may print a
 * neighbour (9007199254740991 as 9.00719925474099e+15), which would hide
 * the same loss in the codec. */
void golden_exact_numbers(cJSON *v);

/* The descriptor of the field at dotted PATH below D, or NULL. */
const ProtobufCFieldDescriptor *golden_field_by_path(
    const ProtobufCMessageDescriptor *d, const char *path);

#endif
