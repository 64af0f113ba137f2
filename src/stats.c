/* stats.c: per-second counters in fixed rings for the status page, and the
 * /stats document that gathers them with what metrics.c and health.c keep. */
#include "stats.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "metrics.h"
#include "timefmt.h"

struct slot {
	int64_t sec; /* the second these counts are of */
	uint32_t accepted, rejected;
};

struct rule {
	const char *word; /* borrowed from a static list; NULL: "other" */
	uint64_t count;
};

struct fam {
	char name[48];
	uint64_t accepted, rejected;
	struct slot ring[STATS_WINDOW];
	struct rule rules[STATS_MAX_RULES + 1]; /* + "other" */
	size_t nrules;
};

static struct fam fams[STATS_MAX_FAMILIES];
static size_t nfams;

int
stats_family(const char *name)
{
	for (size_t i = 0; i < nfams; i++)
		if (strcmp(fams[i].name, name) == 0)
			return (int)i;
	if (nfams == STATS_MAX_FAMILIES)
		return -1;
	memset(&fams[nfams], 0, sizeof(fams[nfams]));
	snprintf(fams[nfams].name, sizeof(fams[nfams].name), "%s", name);
	for (size_t j = 0; j < STATS_WINDOW; j++)
		fams[nfams].ring[j].sec = -1;
	return (int)nfams++;
}

static struct slot *
slot_at(struct fam *f, int64_t sec)
{
	struct slot *s = &f->ring[(size_t)(sec % STATS_WINDOW + STATS_WINDOW) % STATS_WINDOW];

	if (s->sec != sec)
		*s = (struct slot){.sec = sec};
	return s;
}

void
stats_count(int fam, int64_t now_s, uint32_t accepted, uint32_t rejected)
{
	struct fam *f;
	struct slot *s;

	if (fam < 0 || (size_t)fam >= nfams)
		return;
	f = &fams[fam];
	s = slot_at(f, now_s);
	s->accepted += accepted;
	s->rejected += rejected;
	f->accepted += accepted;
	f->rejected += rejected;
}

void
stats_rule(int fam, const char *rule)
{
	struct fam *f;
	size_t i;

	if (fam < 0 || (size_t)fam >= nfams)
		return;
	f = &fams[fam];
	for (i = 0; i < f->nrules; i++)
		if (f->rules[i].word == rule || (rule != NULL && f->rules[i].word != NULL &&
						    strcmp(f->rules[i].word, rule) == 0))
			break;
	if (i == f->nrules) {
		/* Full: the rest are "other", which then has the last place. */
		if (f->nrules >= STATS_MAX_RULES) {
			rule = NULL;
			for (i = 0; i < f->nrules && f->rules[i].word != NULL; i++)
				;
		}
		if (i == f->nrules)
			f->rules[f->nrules++] = (struct rule){.word = rule};
	}
	f->rules[i].count++;
}

static int
rule_cmp(const void *a, const void *b)
{
	const struct rule *x = *(const struct rule *const *)a, *y = *(const struct rule *const *)b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->word ? x->word : "other", y->word ? y->word : "other");
}

static bool
add_series(
    cJSON *o, const char *name, uint64_t total, const struct fam *f, int64_t now_s, bool accepted)
{
	cJSON *c = cJSON_AddObjectToObject(o, name), *per;
	uint64_t window = 0;

	if (c == NULL || cJSON_AddNumberToObject(c, "total", (double)total) == NULL ||
	    (per = cJSON_CreateArray()) == NULL)
		return false;
	for (int64_t sec = now_s - STATS_WINDOW + 1; sec <= now_s; sec++) {
		const struct slot *s =
		    &f->ring[(size_t)(sec % STATS_WINDOW + STATS_WINDOW) % STATS_WINDOW];
		uint32_t n = s->sec != sec ? 0 : accepted ? s->accepted : s->rejected;

		window += n;
		cJSON_AddItemToArray(per, cJSON_CreateNumber(n));
	}
	return cJSON_AddNumberToObject(c, "window", (double)window) != NULL &&
	       cJSON_AddItemToObject(c, "perSecond", per);
}

static bool
add_family(cJSON *all, const struct fam *f, int64_t now_s)
{
	const struct rule *sorted[STATS_MAX_RULES + 1];
	cJSON *o = cJSON_CreateObject(), *rules;

	if (o == NULL || !cJSON_AddItemToArray(all, o) ||
	    cJSON_AddStringToObject(o, "family", f->name) == NULL ||
	    !add_series(o, "accepted", f->accepted, f, now_s, true) ||
	    !add_series(o, "rejected", f->rejected, f, now_s, false) ||
	    (rules = cJSON_AddArrayToObject(o, "rules")) == NULL)
		return false;
	for (size_t i = 0; i < f->nrules; i++)
		sorted[i] = &f->rules[i];
	qsort(sorted, f->nrules, sizeof(sorted[0]), rule_cmp);
	for (size_t i = 0; i < f->nrules && i < STATS_TOP_RULES; i++) {
		cJSON *r = cJSON_CreateObject();

		if (r == NULL || !cJSON_AddItemToArray(rules, r) ||
		    cJSON_AddStringToObject(
			r, "rule", sorted[i]->word ? sorted[i]->word : "other") == NULL ||
		    cJSON_AddNumberToObject(r, "count", (double)sorted[i]->count) == NULL)
			return false;
	}
	return true;
}

/* The series of collectord_consumer_lag, labelled topic="T",partition="P"
 * by the consumer. */
static bool
add_lag(cJSON *root)
{
	cJSON *all = cJSON_AddArrayToObject(root, "consumerLag");
	const char *labels;
	double v;

	if (all == NULL)
		return false;
	for (size_t i = 0; metrics_series_at("collectord_consumer_lag", i, &labels, &v); i++) {
		char topic[256];
		int partition, n = 0;
		cJSON *o;

		if (sscanf(labels, "topic=\"%255[^\"]\",partition=\"%d\"%n", topic, &partition,
			&n) != 2 ||
		    labels[n] != '\0')
			continue;
		if ((o = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(all, o) ||
		    cJSON_AddStringToObject(o, "topic", topic) == NULL ||
		    cJSON_AddNumberToObject(o, "partition", partition) == NULL ||
		    cJSON_AddNumberToObject(o, "lag", v) == NULL)
			return false;
	}
	return true;
}

char *
stats_json(int64_t now_s, int64_t now_ms)
{
	cJSON *root = cJSON_CreateObject(), *all, *producer, *health;
	char when[TIMEFMT_SIZE], *text = NULL, *h;
	double depth;
	bool ok;

	if (root == NULL)
		return NULL;
	timefmt_ms(now_ms, when);
	ok = cJSON_AddStringToObject(root, "time", when) != NULL &&
	     cJSON_AddNumberToObject(root, "windowSeconds", STATS_WINDOW) != NULL &&
	     (all = cJSON_AddArrayToObject(root, "families")) != NULL;
	for (size_t i = 0; ok && i < nfams; i++)
		ok = add_family(all, &fams[i], now_s);
	ok = ok && (producer = cJSON_AddObjectToObject(root, "producer")) != NULL;
	if (ok && metrics_get("collectord_kafka_outstanding_records", "", &depth))
		ok = cJSON_AddNumberToObject(producer, "queueDepth", depth) != NULL;
	else if (ok)
		ok = cJSON_AddNullToObject(producer, "queueDepth") != NULL;
	ok = ok && add_lag(root);
	/* health.c's own rendering, so /readyz and /stats never disagree. */
	if (ok && (h = health_json()) != NULL) {
		cJSON *doc = cJSON_Parse(h);

		free(h);
		health = cJSON_DetachItemFromObjectCaseSensitive(doc, "dependencies");
		cJSON_Delete(doc);
		ok = health != NULL && cJSON_AddItemToObject(root, "dependencies", health);
	} else {
		ok = false;
	}
	if (ok)
		text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return text;
}

void
stats_reset(void)
{
	nfams = 0;
}
