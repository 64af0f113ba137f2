/* t/stats.c: the status page's per-second rings and the /stats document. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "metrics.h"
#include "stats.h"
#include "tap.h"

static cJSON *
doc_at(int64_t now)
{
	char *text = stats_json(now, 1795597302481LL);
	cJSON *d = text ? cJSON_Parse(text) : NULL;

	free(text);
	return d;
}

static double
num(const cJSON *o, const char *path)
{
	char buf[128], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = strtok_r(buf, ".", &save); p && o; p = strtok_r(NULL, ".", &save))
		o = cJSON_IsArray(o) ? cJSON_GetArrayItem(o, atoi(p))
				     : cJSON_GetObjectItemCaseSensitive(o, p);
	return cJSON_IsNumber(o) ? o->valuedouble : -1;
}

int
main(void)
{
	static const char *const rules[] = {"not a number", "missing", "not a UUID"};
	int a = stats_family("alpha"), b = stats_family("beta");
	cJSON *d, *per;

	ok(a == 0 && b == 1 && stats_family("alpha") == 0, "families get one slot each");
	stats_count(a, 1000, 5, 1);
	stats_count(a, 1000, 2, 0);
	stats_count(a, 1299, 1, 1);
	stats_count(b, 1200, 7, 3);
	stats_count(-1, 1200, 7, 3);
	for (int i = 0; i < 3; i++)
		stats_rule(a, rules[1]);
	stats_rule(a, rules[0]);
	stats_rule(a, NULL);
	stats_rule(a, NULL);
	health_require(HEALTH_KAFKA, true);
	health_set(HEALTH_KAFKA, false, "no broker");
	metrics_declare("collectord_consumer_lag", METRIC_GAUGE, "lag");
	metrics_declare("collectord_kafka_outstanding_records", METRIC_GAUGE, "queue");
	metrics_set("collectord_consumer_lag", "topic=\"t.raw\",partition=\"2\"", 17);
	metrics_set("collectord_kafka_outstanding_records", "", 4);

	d = doc_at(1299);
	if (!ok(d != NULL, "renders JSON"))
		return tap_done();
	is_int((long long)num(d, "windowSeconds"), STATS_WINDOW, "window");
	is_str(cJSON_GetObjectItem(d, "time")->valuestring, "2026-11-25T09:01:42.481Z", "time");
	is_int((long long)num(d, "families.0.accepted.total"), 8, "alpha: 8 accepted since start");
	is_int((long long)num(d, "families.0.accepted.window"), 8, "  all 8 in the window");
	is_int((long long)num(d, "families.0.rejected.total"), 2, "  2 rejected");
	per = cJSON_GetObjectItem(
	    cJSON_GetObjectItem(
		cJSON_GetArrayItem(cJSON_GetObjectItem(d, "families"), 0), "accepted"),
	    "perSecond");
	is_int(cJSON_GetArraySize(per), STATS_WINDOW, "  a count per second");
	is_int((long long)num(per, "0"), 7, "  the oldest second (1000) holds 7");
	is_int((long long)num(per, "299"), 1, "  the last (1299) holds 1");
	is_str(cJSON_GetObjectItem(
		   cJSON_GetArrayItem(
		       cJSON_GetObjectItem(
			   cJSON_GetArrayItem(cJSON_GetObjectItem(d, "families"), 0), "rules"),
		       0),
		   "rule")
		   ->valuestring,
	    "missing", "  the rule broken most first");
	is_int((long long)num(d, "families.0.rules.1.count"), 2, "  then other (NULL), twice");
	is_int((long long)num(d, "families.1.accepted.window"), 7, "beta: 7");
	is_int((long long)num(d, "producer.queueDepth"), 4, "queue depth from the metric");
	is_int((long long)num(d, "consumerLag.0.lag"), 17, "lag per partition from the metric");
	is_int((long long)num(d, "consumerLag.0.partition"), 2, "  its partition");
	is_str(
	    cJSON_GetObjectItem(
		cJSON_GetObjectItem(cJSON_GetObjectItem(d, "dependencies"), "kafka"), "lastError")
		->valuestring,
	    "no broker", "dependencies as /readyz says");
	cJSON_Delete(d);

	/* A second later the oldest count leaves the window; totals stay. */
	d = doc_at(1300);
	is_int((long long)num(d, "families.0.accepted.window"), 1,
	    "1300: second 1000 left the window");
	is_int((long long)num(d, "families.0.accepted.total"), 8, "  the total stays");
	cJSON_Delete(d);
	/* The slot of second 1000 is reused by 1300. */
	stats_count(a, 1300, 4, 0);
	d = doc_at(1300);
	is_int((long long)num(d, "families.0.accepted.window"), 5, "a reused slot starts from 0");
	cJSON_Delete(d);
	/* Rules past the cap count as other. */
	for (int i = 0; i < STATS_MAX_RULES + 10; i++) {
		static char words[STATS_MAX_RULES + 10][16];

		snprintf(words[i], sizeof(words[i]), "rule %d", i);
		stats_rule(b, words[i]);
	}
	d = doc_at(1300);
	is_int(cJSON_GetArraySize(cJSON_GetObjectItem(
		   cJSON_GetArrayItem(cJSON_GetObjectItem(d, "families"), 1), "rules")),
	    STATS_TOP_RULES, "at most the top rules listed");
	is_int(
	    (long long)num(d, "families.1.rules.0.count"), 10, "the rules past the cap are other");
	cJSON_Delete(d);
	stats_reset();
	metrics_reset();
	return tap_done();
}
