/* t/pg_hosts.c: the host-list rewrite behind pg_conn's connecting without
 * libpq lookups: which entries are names, and the keywords libpq gets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pg_hosts.h"
#include "tap.h"

static const char *
value_of(const struct pg_hosts_params *p, const char *keyword)
{
	for (size_t i = 0; p->keywords != NULL && p->keywords[i] != NULL; i++)
		if (strcmp(p->keywords[i], keyword) == 0)
			return p->values[i];
	return NULL;
}

static size_t
count_of(const struct pg_hosts_params *p, const char *keyword)
{
	size_t n = 0;

	for (size_t i = 0; p->keywords != NULL && p->keywords[i] != NULL; i++)
		n += strcmp(p->keywords[i], keyword) == 0;
	return n;
}

static void
test_split(void)
{
	struct pg_hosts h;

	is_int(pg_hosts_split("localhost", NULL, NULL, &h), 1, "a name needs a lookup");
	ok(h.n == 1 && h.v[0].lookup && strcmp(h.v[0].name, "localhost") == 0 &&
		h.v[0].port == NULL,
	    "one entry, the name, no port of its own");
	pg_hosts_free(&h);
	ok(h.v == NULL && h.n == 0, "freed hosts are empty");

	is_int(pg_hosts_split("127.0.0.1", NULL, NULL, &h), 0, "IPv4 literal: nothing to do");
	ok(h.n == 0, "and nothing kept");
	is_int(pg_hosts_split("::1", NULL, NULL, &h), 0, "IPv6 literal");
	is_int(pg_hosts_split("fe80::1%eth0", NULL, NULL, &h), 0, "IPv6 literal with a zone");
	is_int(pg_hosts_split("/var/run/postgresql", NULL, NULL, &h), 0, "socket directory");
	is_int(pg_hosts_split("@abstract", NULL, NULL, &h), 0, "abstract socket");
	is_int(pg_hosts_split("", NULL, NULL, &h), 0, "empty host: libpq's default");
	is_int(pg_hosts_split(NULL, NULL, "5432", &h), 0, "no host at all");
	is_int(pg_hosts_split("db.example", "192.0.2.1", NULL, &h), 0,
	    "hostaddr given: libpq does no lookup anyway");
	is_int(pg_hosts_split("db.example", "", NULL, &h), 1, "an empty hostaddr is none");
	pg_hosts_free(&h);
	is_int(pg_hosts_split("a.example,b.example,c.example", NULL, "1,2", &h), 0,
	    "two ports for three hosts: left to libpq to refuse");

	is_int(pg_hosts_split("/tmp,db.example,10.0.0.1,", NULL, "1,2,3,4", &h), 1,
	    "a mixed list needs a lookup");
	ok(h.n == 4 && !h.v[0].lookup && h.v[1].lookup && !h.v[2].lookup && !h.v[3].lookup,
	    "only the name is looked up");
	ok(h.n == 4 && strcmp(h.v[1].port, "2") == 0 && strcmp(h.v[3].port, "4") == 0 &&
		strcmp(h.v[3].name, "") == 0,
	    "each entry keeps its port; the empty last entry stays");
	is_int(pg_hosts_add(&h, 1, "192.0.2.7"), 0, "add an address");
	is_int(pg_hosts_add(&h, 1, "192.0.2.7"), 0, "add it again");
	is_int((long long)h.v[1].naddrs, 1, "a duplicate address is kept once");
	is_int(pg_hosts_add(&h, 4, "192.0.2.8"), -1, "an entry out of range is refused");
	pg_hosts_free(&h);
	pg_hosts_free(NULL);
}

static void
test_build(void)
{
	char *msg = NULL;
	PQconninfoOption *o =
	    PQconninfoParse("host=db.example,/tmp,10.0.0.1 port=5433 user=app password='pass word' "
			    "dbname=events sslmode=verify-full",
		&msg);
	struct pg_hosts h;
	struct pg_hosts_params p;

	if (!ok(o != NULL, "conninfo parses"))
		return;
	if (!ok(pg_hosts_split("db.example,/tmp,10.0.0.1", NULL, "5433", &h) == 1 &&
		    pg_hosts_add(&h, 0, "192.0.2.1") == 0 &&
		    pg_hosts_add(&h, 0, "2001:db8::1") == 0,
		"two addresses for the name")) {
		PQconninfoFree(o);
		return;
	}
	is_int(pg_hosts_params(o, &h, &p), 0, "build");
	is_str(value_of(&p, "host"), "db.example,db.example,/tmp,10.0.0.1",
	    "host: the name once per address, the others as they were");
	is_str(value_of(&p, "hostaddr"), "192.0.2.1,2001:db8::1,,10.0.0.1",
	    "hostaddr: the addresses, none for the socket, a literal itself");
	is_str(value_of(&p, "port"), "5433", "a single port kept as given");
	is_str(value_of(&p, "password"), "pass word", "other options passed as they are");
	is_str(value_of(&p, "sslmode"), "verify-full", "sslmode kept (host still verifies)");
	is_str(value_of(&p, "user"), "app", "user kept");
	ok(count_of(&p, "host") == 1 && count_of(&p, "hostaddr") == 1 && count_of(&p, "port") == 1,
	    "host, hostaddr and port given once each");
	ok(value_of(&p, "service") == NULL, "options the conninfo does not set are not passed");
	pg_hosts_params_free(&p);
	pg_hosts_free(&h);
	PQconninfoFree(o);

	/* a port per host is repeated with its host's addresses */
	o = PQconninfoParse(
	    "postgresql://app@a.example:5001,b.example:5002,[::1]:5003/events", &msg);
	if (!ok(o != NULL, "multi-host URI parses"))
		return;
	ok(pg_hosts_split("a.example,b.example,::1", NULL, "5001,5002,5003", &h) == 1 &&
		pg_hosts_add(&h, 0, "192.0.2.1") == 0 && pg_hosts_add(&h, 0, "192.0.2.2") == 0 &&
		pg_hosts_add(&h, 1, "192.0.2.3") == 0,
	    "split with a port per host");
	is_int(pg_hosts_params(o, &h, &p), 0, "build");
	is_str(value_of(&p, "host"), "a.example,a.example,b.example,::1", "host list in order");
	is_str(value_of(&p, "hostaddr"), "192.0.2.1,192.0.2.2,192.0.2.3,::1", "hostaddr list");
	is_str(value_of(&p, "port"), "5001,5001,5002,5003", "port list follows the hosts");
	is_str(value_of(&p, "dbname"), "events", "dbname from the URI path");
	ok(count_of(&p, "port") == 1, "port given once");
	pg_hosts_params_free(&p);

	/* a name that found nothing is left out; nothing left is an error */
	pg_hosts_free(&h);
	ok(pg_hosts_split("a.example,b.example", NULL, NULL, &h) == 1 &&
		pg_hosts_add(&h, 1, "192.0.2.3") == 0,
	    "only the second name has an address");
	is_int(pg_hosts_params(o, &h, &p), 0, "build");
	is_str(value_of(&p, "host"), "b.example", "the first is left out");
	pg_hosts_params_free(&p);
	pg_hosts_free(&h);
	ok(pg_hosts_split("a.example", NULL, NULL, &h) == 1, "one name");
	is_int(pg_hosts_params(o, &h, &p), -1, "without an address nothing is left: -1");
	pg_hosts_params_free(&p);
	pg_hosts_params_free(NULL);
	pg_hosts_free(&h);
	PQconninfoFree(o);
	PQfreemem(msg);
}

int
main(void)
{
	test_split();
	test_build();
	return tap_done();
}
