/* t/metrics.c: Prometheus text rendering of counters, gauges, histograms. */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "tap.h"

static int
has(const char *text, const char *line)
{
	int found = strstr(text, line) != NULL;
	char name[256];
	size_t n = 0;

	/* The test name stays on one TAP line: newlines shown as \n. */
	for (const char *p = line; *p != '\0' && n + 3 < sizeof(name); p++) {
		if (*p == '\n') {
			name[n++] = '\\';
			name[n++] = 'n';
		} else
			name[n++] = *p;
	}
	name[n] = '\0';
	ok(found, "has: %s", name);
	return found;
}

int
main(void)
{
	size_t len;
	char *text;

	metrics_declare("t_requests_total", METRIC_COUNTER, "Requests.");
	metrics_declare("t_inflight", METRIC_GAUGE, "In flight.");
	metrics_declare("t_latency_seconds", METRIC_HISTOGRAM, "Latency.");
	metrics_declare("t_requests_total", METRIC_GAUGE, "Ignored redeclaration.");
	metrics_add("t_requests_total", "status=\"200\"", 1);
	metrics_add("t_requests_total", "status=\"200\"", 2);
	metrics_add("t_requests_total", "status=\"503\"", 1);
	metrics_set("t_inflight", "", 7);
	metrics_add("t_inflight", "", -2);
	metrics_observe("t_latency_seconds", "", 0.003);
	metrics_observe("t_latency_seconds", "", 0.2);
	metrics_observe("t_latency_seconds", "", 100);
	metrics_add("t_undeclared", "", 1);
	metrics_set("t_requests_total", "status=\"200\"", 99); /* wrong type: ignored */

	text = metrics_render(&len);
	if (!ok(text != NULL, "renders"))
		return tap_done();
	is_int((long long)strlen(text), (long long)len, "length matches");
	has(text, "# HELP t_requests_total Requests.\n# TYPE t_requests_total counter\n");
	has(text, "\nt_requests_total{status=\"200\"} 3\n");
	has(text, "\nt_requests_total{status=\"503\"} 1\n");
	has(text, "# TYPE t_inflight gauge\nt_inflight 5\n");
	has(text, "\nt_latency_seconds_bucket{le=\"0.001\"} 0\n");
	has(text, "\nt_latency_seconds_bucket{le=\"0.005\"} 1\n");
	has(text, "\nt_latency_seconds_bucket{le=\"0.25\"} 2\n");
	has(text, "\nt_latency_seconds_bucket{le=\"30\"} 2\n");
	has(text, "\nt_latency_seconds_bucket{le=\"+Inf\"} 3\n");
	has(text, "\nt_latency_seconds_count 3\n");
	has(text, "\nt_latency_seconds_sum 100.203");
	ok(strstr(text, "t_undeclared") == NULL, "undeclared family not rendered");
	ok(strstr(text, "Ignored redeclaration") == NULL, "first declaration wins");
	free(text);
	metrics_reset();
	text = metrics_render(&len);
	is_int((long long)len, 0, "reset empties the registry");
	free(text);
	return tap_done();
}
