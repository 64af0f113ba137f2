/* t/testfam/testfam.h: the test-only family. */
#ifndef COLLECTORD_TESTFAM_H
#define COLLECTORD_TESTFAM_H

#include "family.h"

extern const struct family family_testfam;

#endif
