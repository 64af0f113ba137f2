/* metrics.c: a small in-process metrics registry rendered as Prometheus text. */
#include "metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double buckets[] = {
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct series {
	char *labels;
	double value;	/* counter/gauge value; histogram sum */
	uint64_t count; /* histogram only */
	uint64_t bucket[NBUCKETS];
	struct series *next;
};

struct family {
	char *name;
	char *help;
	enum metric_type type;
	struct series *series, **tail;
	struct family *next;
};

static struct family *families, **families_tail = &families;

static struct family *
family_find(const char *name)
{
	for (struct family *f = families; f != NULL; f = f->next)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

void
metrics_declare(const char *name, enum metric_type type, const char *help)
{
	struct family *f;

	if (family_find(name) != NULL)
		return;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return;
	f->name = strdup(name);
	f->help = strdup(help);
	if (f->name == NULL || f->help == NULL) {
		free(f->name);
		free(f->help);
		free(f);
		return;
	}
	f->type = type;
	f->tail = &f->series;
	*families_tail = f;
	families_tail = &f->next;
}

static struct series *
series_get(const char *name, const char *labels, enum metric_type type)
{
	struct family *f = family_find(name);
	struct series *s;

	if (f == NULL || f->type != type)
		return NULL;
	if (labels == NULL)
		labels = "";
	for (s = f->series; s != NULL; s = s->next)
		if (strcmp(s->labels, labels) == 0)
			return s;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((s->labels = strdup(labels)) == NULL) {
		free(s);
		return NULL;
	}
	*f->tail = s;
	f->tail = &s->next;
	return s;
}

void
metrics_add(const char *name, const char *labels, double by)
{
	struct series *s = series_get(name, labels, METRIC_COUNTER);

	if (s == NULL)
		s = series_get(name, labels, METRIC_GAUGE);
	if (s != NULL)
		s->value += by;
}

void
metrics_set(const char *name, const char *labels, double value)
{
	struct series *s = series_get(name, labels, METRIC_GAUGE);

	if (s != NULL)
		s->value = value;
}

void
metrics_observe(const char *name, const char *labels, double seconds)
{
	struct series *s = series_get(name, labels, METRIC_HISTOGRAM);

	if (s == NULL)
		return;
	s->count++;
	s->value += seconds;
	for (size_t i = 0; i < NBUCKETS; i++)
		if (seconds <= buckets[i])
			s->bucket[i]++;
}

bool
metrics_get(const char *name, const char *labels, double *value)
{
	const char *l;

	for (size_t i = 0; metrics_series_at(name, i, &l, value); i++)
		if (strcmp(l, labels != NULL ? labels : "") == 0)
			return true;
	return false;
}

bool
metrics_series_at(const char *name, size_t i, const char **labels, double *value)
{
	struct family *f = family_find(name);

	if (f == NULL || f->type == METRIC_HISTOGRAM)
		return false;
	for (struct series *s = f->series; s != NULL; s = s->next) {
		if (i-- == 0) {
			*labels = s->labels;
			*value = s->value;
			return true;
		}
	}
	return false;
}

struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void __attribute__((format(printf, 2, 3))) bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		char *p = realloc(b->p, b->cap * 2 + (size_t)n);

		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = b->cap * 2 + (size_t)n;
	}
}

/* `name{labels,extra}` or `name{extra}` or `name`. */
static void
series_name(
    struct buf *b, const char *name, const char *suffix, const char *labels, const char *extra)
{
	bool l = labels[0] != '\0', e = extra != NULL && extra[0] != '\0';

	bprintf(b, "%s%s", name, suffix);
	if (l || e)
		bprintf(b, "{%s%s%s}", l ? labels : "", l && e ? "," : "", e ? extra : "");
}

char *
metrics_render(size_t *len)
{
	static const char *const type_names[] = {"counter", "gauge", "histogram"};
	struct buf b = {malloc(4096), 0, 4096, false};

	if (b.p == NULL)
		return NULL;
	b.p[0] = '\0';
	for (struct family *f = families; f != NULL; f = f->next) {
		bprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
		    type_names[f->type]);
		for (struct series *s = f->series; s != NULL; s = s->next) {
			if (f->type != METRIC_HISTOGRAM) {
				series_name(&b, f->name, "", s->labels, NULL);
				bprintf(&b, " %.17g\n", s->value);
				continue;
			}
			for (size_t i = 0; i < NBUCKETS; i++) {
				char le[32];

				snprintf(le, sizeof(le), "le=\"%g\"", buckets[i]);
				series_name(&b, f->name, "_bucket", s->labels, le);
				bprintf(&b, " %llu\n", (unsigned long long)s->bucket[i]);
			}
			series_name(&b, f->name, "_bucket", s->labels, "le=\"+Inf\"");
			bprintf(&b, " %llu\n", (unsigned long long)s->count);
			series_name(&b, f->name, "_sum", s->labels, NULL);
			bprintf(&b, " %.17g\n", s->value);
			series_name(&b, f->name, "_count", s->labels, NULL);
			bprintf(&b, " %llu\n", (unsigned long long)s->count);
		}
	}
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}

void
metrics_reset(void)
{
	struct family *f, *fn;
	struct series *s, *sn;

	for (f = families; f != NULL; f = fn) {
		fn = f->next;
		for (s = f->series; s != NULL; s = sn) {
			sn = s->next;
			free(s->labels);
			free(s);
		}
		free(f->name);
		free(f->help);
		free(f);
	}
	families = NULL;
	families_tail = &families;
}
