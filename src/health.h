/* health.h: what /readyz reports: each dependency's state and last error. */
#ifndef COLLECTORD_HEALTH_H
#define COLLECTORD_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

enum health_dep {
	HEALTH_KAFKA,
	HEALTH_REGISTRY,
	HEALTH_SCHEMA, /* our schema registered and its id known */
	HEALTH_S3,
	HEALTH_POSTGRES,
	HEALTH_NDEPS
};

/* Only required dependencies decide readiness (roles pick them). */
void health_require(enum health_dep dep, bool required);
/* Record a check's outcome.  ERR (copied) is kept as the last error even
 * after the dependency comes back, so /readyz can show what happened. */
void health_set(enum health_dep dep, bool up, const char *err);
bool health_up(enum health_dep dep);
bool health_ready(void);
/* {"ready":bool,"dependencies":{"kafka":{"state":"up","since":..,"lastError":..},..}}
 * malloc'd, caller frees. */
char *health_json(void);

#endif
