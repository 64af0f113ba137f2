/*
 * pg_hosts.h: the host list of a libpq connection, rewritten so that libpq
 * has no name to look up.  pg_conn resolves names off the loop; these are
 * its pure steps (no I/O): pg_hosts_split() says which entries of the host
 * list are names to resolve; once the caller has added each one's
 * addresses with pg_hosts_add(), pg_hosts_params() gives the keyword and
 * value arrays for PQconnectStartParams() with a hostaddr for every entry.
 */
#ifndef COLLECTORD_PG_HOSTS_H
#define COLLECTORD_PG_HOSTS_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

struct pg_host {
	char *name;   /* the entry as written; "" = libpq's default socket */
	char *port;   /* its own port when PORT lists one per host, else NULL */
	bool lookup;  /* a host name: resolve it before connecting */
	char **addrs; /* numeric addresses found for it, in order */
	size_t naddrs;
};

struct pg_hosts {
	struct pg_host *v;
	size_t n;
};

/*
 * Split HOST and PORT, the comma-separated lists a connection will use
 * (NULL: not set), into OUT.  An entry is a name to look up unless it is
 * empty, an IPv4 or IPv6 literal, or a Unix-socket directory ('/' or '@'
 * first).  1: OUT holds every entry and at least one needs a lookup.
 * 0: nothing to do, OUT is empty; so is it when HOSTADDR is set (non-empty)
 * or PORT lists neither one port nor one per host (libpq itself then
 * refuses the conninfo, with its own message).  -1: out of memory.
 * OUT is always safe to pass to pg_hosts_free().
 */
int pg_hosts_split(const char *host, const char *hostaddr, const char *port, struct pg_hosts *out)
    __attribute__((warn_unused_result));

/* Append numeric address ADDR (copied) to entry I; one already there is
 * skipped.  0 or -1 (out of memory, or I out of range). */
int pg_hosts_add(struct pg_hosts *hosts, size_t i, const char *addr)
    __attribute__((warn_unused_result));

/* Free what HOSTS holds (not HOSTS itself) and empty it.  NULL-safe. */
void pg_hosts_free(struct pg_hosts *hosts);

struct pg_hosts_params {
	const char **keywords;	      /* NULL-terminated, for PQconnectStartParams */
	const char **values;	      /* same length; see pg_hosts_params */
	char *host, *hostaddr, *port; /* owned: the rewritten lists */
};

/*
 * Every option OPTS (PQconninfoParse's result) sets, in its order, except
 * host, hostaddr and port, then host, hostaddr and port rebuilt from HOSTS
 * so that each address of a looked-up entry is an entry of its own: its
 * name repeated as host (libpq tries them in turn, as it would have tried
 * the addresses it resolved itself), the address as hostaddr.  A literal
 * entry is its own hostaddr; a socket entry gets an empty one.  Port is
 * only rebuilt when HOSTS has one per entry; otherwise OPTS's is kept.  A
 * lookup entry without addresses is left out.  Values other than the three
 * lists point into OPTS, which must outlive OUT (libpq copies everything,
 * so OPTS and OUT can both go once PQconnectStartParams returns; pass it
 * expand_dbname = 0).  0, or -1 when out of memory or no entry is left;
 * OUT is always safe to pass to pg_hosts_params_free().
 */
int pg_hosts_params(const PQconninfoOption *opts, const struct pg_hosts *hosts,
    struct pg_hosts_params *out) __attribute__((warn_unused_result));

/* Free what P holds (not P itself).  NULL-safe. */
void pg_hosts_params_free(struct pg_hosts_params *p);

#endif
