/* stats.h: what the status page (GET /) shows, as GET /stats: per family
 * the events accepted and rejected in each of the last STATS_WINDOW
 * seconds and the rules broken since start, with the producer queue depth,
 * the consumer lag per partition (both from metrics.c) and each
 * dependency's state (health.c).  Process-wide and single threaded, like
 * metrics.c; its memory is fixed: STATS_MAX_FAMILIES rings of
 * STATS_WINDOW slots and STATS_MAX_RULES rules each. */
#ifndef COLLECTORD_STATS_H
#define COLLECTORD_STATS_H

#include <stddef.h>
#include <stdint.h>

#define STATS_WINDOW 300
#define STATS_MAX_FAMILIES 16
/* Distinct rules counted per family; the rest count as "other". */
#define STATS_MAX_RULES 64
/* Rules /stats lists per family, most broken first. */
#define STATS_TOP_RULES 10

/* The slot of family NAME (copied), made on first use: the same index
 * every time.  -1 when STATS_MAX_FAMILIES are taken. */
int stats_family(const char *name);

/*
 * Count ACCEPTED and REJECTED events of family FAM (stats_family(); -1
 * is ignored) in second NOW_S (any monotonic count of seconds: slots are
 * told apart by it, so a clock that jumps only empties the window).
 */
void stats_count(int fam, int64_t now_s, uint32_t accepted, uint32_t rejected);
/* One more event of FAM refused for RULE (a rule word of a static list:
 * the pointer is kept; NULL is "other"). */
void stats_rule(int fam, const char *rule);

/*
 * The /stats document at NOW_S (the clock of stats_count) and wall time
 * NOW_MS (Unix ms, for "time"), malloc'd, caller frees; NULL when out of
 * memory:
 *   {"time", "windowSeconds",
 *    "families": [{"family", "accepted": {"total", "window", "perSecond": [..]},
 *                  "rejected": {...}, "rules": [{"rule", "count"}]}],
 *    "producer": {"queueDepth": n or null},
 *    "consumerLag": [{"topic", "partition", "lag"}],
 *    "dependencies": {NAME: {"state", "since", "lastError"}}}
 * perSecond holds STATS_WINDOW counts, oldest first, the last one NOW_S's;
 * window is their sum, total the count since start.
 */
char *stats_json(int64_t now_s, int64_t now_ms) __attribute__((warn_unused_result));

/* Forget everything (tests, shutdown). */
void stats_reset(void);

#endif
