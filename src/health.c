/* health.c: dependency states for /readyz, updated by the modules' checks. */
#include "health.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"

struct dep {
	bool required, up, known;
	time_t since;
	char last_error[512];
};

static struct dep deps[HEALTH_NDEPS];
static const char *const names[HEALTH_NDEPS] = {
    "kafka",
    "registry",
    "schema",
    "s3",
    "postgres",
};

static void
dep_metric(enum health_dep dep)
{
	char label[64];

	/* What /readyz says, for alerts: one series a required dependency. */
	snprintf(label, sizeof(label), "dependency=\"%s\"", names[dep]);
	metrics_set("collectord_dependency_up", label, health_up(dep) ? 1 : 0);
}

void
health_require(enum health_dep dep, bool required)
{
	deps[dep].required = required;
	if (required) {
		metrics_declare("collectord_dependency_up", METRIC_GAUGE,
		    "1 while a dependency of the process's roles is up, as /readyz says.");
		dep_metric(dep);
	}
}

void
health_set(enum health_dep dep, bool up, const char *err)
{
	struct dep *d = &deps[dep];
	char q[600];

	if (err != NULL && *err != '\0')
		snprintf(d->last_error, sizeof(d->last_error), "%s", err);
	if (d->known && d->up == up)
		return;
	if (d->required || d->known) {
		if (up)
			log_info("dependency up", "dependency=%s", names[dep]);
		else
			log_warn("dependency down", "dependency=%s error=%s", names[dep],
			    log_quote(d->last_error, q, sizeof(q)));
	}
	d->known = true;
	d->up = up;
	d->since = time(NULL);
	if (d->required)
		dep_metric(dep);
}

bool
health_up(enum health_dep dep)
{
	return deps[dep].known && deps[dep].up;
}

bool
health_ready(void)
{
	for (int i = 0; i < HEALTH_NDEPS; i++)
		if (deps[i].required && !health_up((enum health_dep)i))
			return false;
	return true;
}

char *
health_json(void)
{
	cJSON *root = cJSON_CreateObject(), *all;
	char *text;

	if (root == NULL)
		return NULL;
	cJSON_AddBoolToObject(root, "ready", health_ready());
	all = cJSON_AddObjectToObject(root, "dependencies");
	for (int i = 0; i < HEALTH_NDEPS; i++) {
		struct dep *d = &deps[i];
		cJSON *o;
		char since[32];

		if (!d->required)
			continue;
		o = cJSON_AddObjectToObject(all, names[i]);
		cJSON_AddStringToObject(o, "state", !d->known ? "unknown" : d->up ? "up" : "down");
		if (d->known) {
			struct tm tm;

			gmtime_r(&d->since, &tm);
			strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
			cJSON_AddStringToObject(o, "since", since);
		}
		if (d->last_error[0] != '\0')
			cJSON_AddStringToObject(o, "lastError", d->last_error);
	}
	text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return text;
}
