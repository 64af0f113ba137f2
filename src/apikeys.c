/* apikeys.c: [server] api_keys, one check for every route that needs it. */
#include "apikeys.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpd.h"

struct apikeys {
	char **keys;
	size_t n;
};

struct apikeys *
apikeys_new(const char *list)
{
	struct apikeys *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return NULL;
	for (const char *p = list + strspn(list, ", "); *p != '\0'; p += strspn(p, ", ")) {
		size_t len = strcspn(p, ", ");
		char **keys = realloc(k->keys, (k->n + 1) * sizeof(*keys));

		if (keys == NULL || (keys[k->n] = strndup(p, len)) == NULL) {
			if (keys != NULL)
				k->keys = keys;
			apikeys_free(k);
			return NULL;
		}
		k->keys = keys;
		k->n++;
		p += len;
	}
	return k;
}

void
apikeys_free(struct apikeys *k)
{
	if (k == NULL)
		return;
	for (size_t i = 0; i < k->n; i++)
		free(k->keys[i]);
	free(k->keys);
	free(k);
}

bool
apikeys_allow(const struct apikeys *k, const char *x_api_key, const char *authorization)
{
	const char *key = x_api_key;

	if (k->n == 0)
		return true;
	if (key == NULL && authorization != NULL && strncasecmp(authorization, "Bearer ", 7) == 0)
		key = authorization + 7;
	if (key == NULL)
		return false;
	for (size_t i = 0; i < k->n; i++) {
		const char *want = k->keys[i];
		size_t kl = strlen(want), gl = strlen(key);
		unsigned char diff = kl != gl;

		/* Compare in time independent of where the keys differ. */
		for (size_t j = 0; j < kl; j++)
			diff |= (unsigned char)(want[j] ^ (j < gl ? key[j] : 0));
		if (diff == 0)
			return true;
	}
	return false;
}

bool
apikeys_check(const struct apikeys *k, struct httpd_req *r)
{
	if (apikeys_allow(
		k, httpd_req_header(r, "X-API-Key"), httpd_req_header(r, "Authorization")))
		return true;
	httpd_req_add_header(r, "WWW-Authenticate", "Bearer");
	httpd_reply_error(r, 401, "unauthorized",
	    "missing or wrong API key (X-API-Key or Authorization: Bearer)", NULL, 0);
	return false;
}
