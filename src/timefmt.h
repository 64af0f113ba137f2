/* timefmt.h: RFC 3339 / ISO 8601 timestamps in and out.  Below the codec
 * files (codec.h gives them their codec_ names too); no I/O. */
#ifndef COLLECTORD_TIMEFMT_H
#define COLLECTORD_TIMEFMT_H

#include <stdbool.h>
#include <stdint.h>

/* Room for timefmt_ms() / timefmt_us() text. */
#define TIMEFMT_SIZE 40

/*
 * Parse an RFC 3339 / ISO 8601 extended timestamp: YYYY-MM-DD, 'T' 't' or
 * ' ', hh:mm:ss (60 allowed, it rolls over like PostgreSQL), optional
 * fraction after '.' or ',' (beyond microseconds truncated), optional 'Z',
 * 'z', +hh:mm, +hhmm or +hh (no offset = UTC).  The instant must fall in
 * years 0001-9999 UTC.  *US = microseconds since the epoch.
 */
bool timefmt_parse(const char *s, int64_t *us) __attribute__((warn_unused_result));
/* timefmt_parse(), also telling whether the text carries a 'Z' or an
 * offset (*HAS_OFFSET, set on success). */
bool timefmt_parse_offset(const char *s, int64_t *us, bool *has_offset)
    __attribute__((warn_unused_result));

/* UNIX_MS as YYYY-MM-DDTHH:MM:SS.mmmZ. */
void timefmt_ms(int64_t unix_ms, char out[TIMEFMT_SIZE]);
/* US as YYYY-MM-DDTHH:MM:SS.ffffffZ. */
void timefmt_us(int64_t us, char out[TIMEFMT_SIZE]);

#endif
