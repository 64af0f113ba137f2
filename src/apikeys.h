/* apikeys.h: the API keys of [server] api_keys, checked from a request's
 * head by every route that needs them (POST /collect, the read-back API). */
#ifndef COLLECTORD_APIKEYS_H
#define COLLECTORD_APIKEYS_H

#include <stdbool.h>

struct apikeys;
struct httpd_req;

/* The keys of LIST (comma or space separated; empty: no authentication),
 * copied.  NULL when out of memory. */
struct apikeys *apikeys_new(const char *list) __attribute__((warn_unused_result));
/* NULL-safe. */
void apikeys_free(struct apikeys *k);

/* Whether a request with these header fields (each NULL when absent) may
 * pass: always when K holds no key; else X_API_KEY, or the token of
 * "Authorization: Bearer TOKEN" when X-API-Key is absent, must be one of
 * the keys.  Compared in time independent of where the keys differ. */
bool apikeys_allow(const struct apikeys *k, const char *x_api_key, const char *authorization);

/* The same for request R; when refused, R is answered 401 (with
 * WWW-Authenticate: Bearer) and is gone. */
bool apikeys_check(const struct apikeys *k, struct httpd_req *r);

#endif
