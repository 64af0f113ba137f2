/* clock.h: the one monotonic clock of collectord's timers, backoffs and
 * caches.  Wall-clock time (record timestamps, S3 dates) is never taken
 * from here. */
#ifndef COLLECTORD_CLOCK_H
#define COLLECTORD_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds of CLOCK_MONOTONIC: only differences mean anything. */
static inline int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
