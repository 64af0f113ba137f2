/* families/families.h: every family's descriptor, for the table in
 * family.c.  Adding a family: its file here, one line below, one line in
 * family.c's table and one in Makefile.am. */
#ifndef COLLECTORD_FAMILIES_H
#define COLLECTORD_FAMILIES_H

#include "family.h"

extern const struct family family_holded;
extern const struct family family_clickstream;
extern const struct family family_retail;

/* The text of each family's schemas/<name>/<name>.proto, compiled in
 * (src/<name>_proto.c is generated from it by make). */
extern const char family_holded_proto[];
extern const char family_clickstream_proto[];
extern const char family_retail_proto[];

/* An ISO 4217 currency the retail family accepts and its minor-unit
 * digits: schemas/retail/currencies.txt, compiled in sorted by code
 * (src/retail_currencies.c is generated from it by make). */
struct retail_currency {
	const char *code;
	int digits;
};
extern const struct retail_currency retail_currencies[];
extern const size_t retail_ncurrencies;

#endif
