/*
 * pg_hosts.c: split a conninfo's host and port lists, and give libpq every
 * resolved address as a host entry of its own.
 *
 * libpq pairs host, hostaddr and port entry by entry (port may also be a
 * single value for all); an entry with a hostaddr is connected to without
 * a lookup, while host still names it for TLS verification and the
 * password file.  So a name with two addresses becomes two entries: the
 * name twice, each address once, and libpq tries them in turn as it would
 * have tried the addresses it found itself.
 */
#include "pg_hosts.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void
free_list(char **v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
}

/* Split libpq's comma-separated list S (NULL: none) into *V, *N. */
static int
split_list(const char *s, char ***v, size_t *n)
{
	size_t count = 1;

	*v = NULL;
	*n = 0;
	if (s == NULL)
		return 0;
	for (const char *p = s; *p != '\0'; p++)
		count += *p == ',';
	if ((*v = calloc(count, sizeof(**v))) == NULL)
		return -1;
	for (const char *p = s;; p++) {
		size_t len = strcspn(p, ",");

		if (((*v)[*n] = strndup(p, len)) == NULL)
			return -1;
		(*n)++;
		p += len;
		if (*p == '\0')
			return 0;
	}
}

/* An IPv4 or IPv6 literal, the latter maybe with a %zone. */
static bool
is_literal(const char *h)
{
	unsigned char addr[sizeof(struct in6_addr)];
	char v6[INET6_ADDRSTRLEN];
	size_t n = strcspn(h, "%");

	if (inet_pton(AF_INET, h, addr) == 1)
		return true;
	if (n >= sizeof(v6))
		return false;
	memcpy(v6, h, n);
	v6[n] = '\0';
	return inet_pton(AF_INET6, v6, addr) == 1;
}

static bool
needs_lookup(const char *h)
{
	return *h != '\0' && *h != '/' && *h != '@' && !is_literal(h);
}

int
pg_hosts_split(const char *host, const char *hostaddr, const char *port, struct pg_hosts *out)
{
	char **hv = NULL, **pv = NULL;
	size_t hn = 0, pn = 0;
	bool any = false;
	int r = -1;

	out->v = NULL;
	out->n = 0;
	if (host == NULL || (hostaddr != NULL && *hostaddr != '\0'))
		return 0;
	if (split_list(host, &hv, &hn) == -1 || split_list(port, &pv, &pn) == -1)
		goto done;
	for (size_t i = 0; i < hn; i++)
		any = any || needs_lookup(hv[i]);
	if (!any || (pn > 1 && pn != hn)) {
		r = 0;
		goto done;
	}
	if ((out->v = calloc(hn, sizeof(*out->v))) == NULL)
		goto done;
	out->n = hn;
	for (size_t i = 0; i < hn; i++) {
		/* the strings move from the lists into OUT */
		out->v[i].name = hv[i];
		out->v[i].lookup = needs_lookup(hv[i]);
		hv[i] = NULL;
		if (pn > 1) {
			out->v[i].port = pv[i];
			pv[i] = NULL;
		}
	}
	r = 1;
done:
	free_list(hv, hn);
	free_list(pv, pn);
	if (r == -1)
		pg_hosts_free(out);
	return r;
}

int
pg_hosts_add(struct pg_hosts *hosts, size_t i, const char *addr)
{
	struct pg_host *h;
	char **grown;

	if (i >= hosts->n)
		return -1;
	h = &hosts->v[i];
	for (size_t k = 0; k < h->naddrs; k++)
		if (strcmp(h->addrs[k], addr) == 0)
			return 0;
	if ((grown = realloc(h->addrs, (h->naddrs + 1) * sizeof(*grown))) == NULL)
		return -1;
	h->addrs = grown;
	if ((h->addrs[h->naddrs] = strdup(addr)) == NULL)
		return -1;
	h->naddrs++;
	return 0;
}

void
pg_hosts_free(struct pg_hosts *hosts)
{
	if (hosts == NULL)
		return;
	for (size_t i = 0; hosts->v != NULL && i < hosts->n; i++) {
		free(hosts->v[i].name);
		free(hosts->v[i].port);
		free_list(hosts->v[i].addrs, hosts->v[i].naddrs);
	}
	free(hosts->v);
	hosts->v = NULL;
	hosts->n = 0;
}

/* Append ITEM to the comma-separated list *S (NULL: out of memory so far,
 * and it stays so). */
static void
list_add(char **s, size_t *len, bool first, const char *item)
{
	size_t n = strlen(item);
	char *grown;

	if (*s == NULL)
		return;
	if ((grown = realloc(*s, *len + n + 2)) == NULL) {
		free(*s);
		*s = NULL;
		return;
	}
	*s = grown;
	if (!first)
		(*s)[(*len)++] = ',';
	memcpy(*s + *len, item, n + 1);
	*len += n;
}

/* The hostaddr of an entry that needed no lookup: a literal is its own,
 * a socket directory (or libpq's default, "") has none. */
static const char *
fixed_addr(const char *name)
{
	return needs_lookup(name) || *name == '\0' || *name == '/' || *name == '@' ? "" : name;
}

int
pg_hosts_params(
    const PQconninfoOption *opts, const struct pg_hosts *hosts, struct pg_hosts_params *out)
{
	bool per_host_port = hosts->n > 0 && hosts->v[0].port != NULL;
	size_t nopts = 0, k = 0, hlen = 0, alen = 0, plen = 0;
	bool first = true;

	memset(out, 0, sizeof(*out));
	for (const PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
		nopts++;
	out->keywords = calloc(nopts + 4, sizeof(*out->keywords));
	out->values = calloc(nopts + 4, sizeof(*out->values));
	out->host = calloc(1, 1);
	out->hostaddr = calloc(1, 1);
	out->port = per_host_port ? calloc(1, 1) : NULL;
	for (size_t i = 0; i < hosts->n; i++) {
		const struct pg_host *h = &hosts->v[i];
		size_t naddrs = h->lookup ? h->naddrs : 1;

		for (size_t a = 0; a < naddrs; a++) {
			const char *addr = h->lookup ? h->addrs[a] : fixed_addr(h->name);

			list_add(&out->host, &hlen, first, h->name);
			list_add(&out->hostaddr, &alen, first, addr);
			if (per_host_port)
				list_add(&out->port, &plen, first, h->port != NULL ? h->port : "");
			first = false;
		}
	}
	if (out->keywords == NULL || out->values == NULL || out->host == NULL ||
	    out->hostaddr == NULL || (per_host_port && out->port == NULL) || first)
		return -1;
	for (const PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
		if (o->val == NULL || strcmp(o->keyword, "host") == 0 ||
		    strcmp(o->keyword, "hostaddr") == 0 ||
		    (per_host_port && strcmp(o->keyword, "port") == 0))
			continue;
		out->keywords[k] = o->keyword;
		out->values[k++] = o->val;
	}
	out->keywords[k] = "host";
	out->values[k++] = out->host;
	out->keywords[k] = "hostaddr";
	out->values[k++] = out->hostaddr;
	if (per_host_port) {
		out->keywords[k] = "port";
		out->values[k++] = out->port;
	}
	return 0;
}

void
pg_hosts_params_free(struct pg_hosts_params *p)
{
	if (p == NULL)
		return;
	free(p->keywords);
	free(p->values);
	free(p->host);
	free(p->hostaddr);
	free(p->port);
	memset(p, 0, sizeof(*p));
}
