/* families/families.h: every family's descriptor, for the table in
 * family.c.  Adding a family: its file here, one line below, one line in
 * family.c's table and one in Makefile.am. */
#ifndef COLLECTORD_FAMILIES_H
#define COLLECTORD_FAMILIES_H

#include "family.h"

extern const struct family family_holded;
/* The text of schemas/holded/holded.proto, compiled in (src/holded_proto.c is
 * generated from it by make). */
extern const char family_holded_proto[];

#endif
