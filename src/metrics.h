/* metrics.h: process-wide counters, gauges and histograms in Prometheus text. */
#ifndef COLLECTORD_METRICS_H
#define COLLECTORD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

/*
 * Families are declared once (name, type, help); series are created on
 * first use and identified by their label text, e.g. `status="200"`
 * (already formatted, without braces; "" for none).  The daemon is single
 * threaded, so there is no locking.  Unknown family names are ignored.
 */
void metrics_declare(const char *name, enum metric_type type, const char *help);
void metrics_add(const char *name, const char *labels, double by);
void metrics_set(const char *name, const char *labels, double value);
/* Histogram observation in seconds (fixed latency buckets 1 ms .. 30 s). */
void metrics_observe(const char *name, const char *labels, double seconds);

/* The value of counter or gauge NAME{LABELS} into *VALUE; false when the
 * series does not exist (yet). */
bool metrics_get(const char *name, const char *labels, double *value);
/* The I-th series of counter or gauge NAME, in creation order: its label
 * text (borrowed until metrics_reset) and value; false past the last. */
bool metrics_series_at(const char *name, size_t i, const char **labels, double *value);

/* The exposition text; malloc'd, caller frees.  *LEN gets its length. */
char *metrics_render(size_t *len);
/* Drop every family and series (tests, shutdown). */
void metrics_reset(void);

#endif
