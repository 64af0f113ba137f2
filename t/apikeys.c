/* t/apikeys.c: [server] api_keys as every route checks them. */
#include "apikeys.h"
#include "tap.h"

int
main(void)
{
	struct apikeys *none = apikeys_new(""), *k = apikeys_new(" k1, k2 k3,");

	ok(none != NULL && k != NULL, "made");
	ok(apikeys_allow(none, NULL, NULL), "no keys: anyone");
	ok(!apikeys_allow(k, NULL, NULL), "keys: none given is refused");
	ok(apikeys_allow(k, "k1", NULL), "X-API-Key k1");
	ok(apikeys_allow(k, "k3", NULL), "X-API-Key k3 (space separated)");
	ok(!apikeys_allow(k, "k", NULL), "a prefix is not a key");
	ok(!apikeys_allow(k, "k11", NULL), "a longer one neither");
	ok(!apikeys_allow(k, "", NULL), "empty neither");
	ok(apikeys_allow(k, NULL, "Bearer k2"), "Authorization: Bearer k2");
	ok(apikeys_allow(k, NULL, "bearer k2"), "the scheme is case-insensitive");
	ok(!apikeys_allow(k, NULL, "Basic k2"), "another scheme is not");
	ok(!apikeys_allow(k, "wrong", "Bearer k2"), "X-API-Key wins over Authorization");
	apikeys_free(none);
	apikeys_free(k);
	apikeys_free(NULL);
	return tap_done();
}
