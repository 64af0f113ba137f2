/* family.c: the table of event families. */
#include "family.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "families/families.h"
#include "pgsql.h"

/* The first is POST /collect's. */
static const struct family *const families[] = {
    &family_holded,
    &family_clickstream,
    &family_retail,
};

const struct family *
family_at(size_t i)
{
	return i < sizeof(families) / sizeof(families[0]) ? families[i] : NULL;
}

const struct family *
family_find(const char *name)
{
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		if (strcmp(families[i]->name, name) == 0)
			return families[i];
	return NULL;
}

const struct family *
family_default(const struct config *cfg)
{
	return *cfg->default_family == '\0' ? family_at(0) : family_find(cfg->default_family);
}

/* *FIELD becomes SECTION's value when the [family.NAME] section gives one,
 * else stays as set ([topics], [registry]), else the descriptor's DEF. */
static int
settle(char **field, const char *section, const char *def)
{
	if (section != NULL && *section != '\0') {
		char *v = strdup(section);

		if (v == NULL)
			return -1;
		free(*field);
		*field = v;
		return 0;
	}
	return config_default_str(field, def);
}

/* An optional topic: "none" turns it off (""), "" takes DEF (NULL: off). */
static int
settle_optional(char **field, const char *def)
{
	if (strcmp(*field, "none") == 0) {
		**field = '\0';
		return 0;
	}
	return def == NULL ? 0 : config_default_str(field, def);
}

/* SEC's enriched and daily topics, and the enriched subject: 0, -1 with
 * ERR (a topic the family cannot have), or -2 out of memory. */
static int
settle_streams(struct config_family *sec, const struct family *f, char *err, size_t errlen)
{
	if (settle_optional(&sec->enriched_topic, f->enriched_topic) == -1 ||
	    settle_optional(&sec->daily_topic, f->daily ? f->daily->topic : NULL) == -1)
		return -2;
	if (*sec->enriched_topic != '\0' && f->enriched_index < 0) {
		snprintf(err, errlen,
		    "[family.%s] enriched_topic: the family's schema has no Enriched message",
		    sec->name);
		return -1;
	}
	if (*sec->daily_topic != '\0' && f->daily == NULL) {
		snprintf(err, errlen, "[family.%s] daily_topic: the family keeps no daily count",
		    sec->name);
		return -1;
	}
	if (*sec->enriched_topic == '\0') {
		*sec->enriched_subject = '\0';
	} else if (*sec->enriched_subject == '\0') {
		size_t size = strlen(sec->enriched_topic) + sizeof("-value");
		char *v = malloc(size);

		if (v == NULL)
			return -2;
		snprintf(v, size, "%s-value", sec->enriched_topic);
		free(sec->enriched_subject);
		sec->enriched_subject = v;
	}
	return 0;
}

/* Whether NAME is in LIST (comma or space separated). */
static bool
listed(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; *p != '\0';) {
		size_t len = strcspn(p, ", ");

		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p += len;
		p += strspn(p, ", ");
	}
	return false;
}

/* Every name of [server] families must be a family: 0, or -1 with ERR. */
static int
check_list(const char *list, char *err, size_t errlen)
{
	for (const char *p = list + strspn(list, ", "); *p != '\0';) {
		size_t len = strcspn(p, ", ");
		char name[64];

		snprintf(name, sizeof(name), "%.*s", (int)(len < 63 ? len : 63), p);
		if (len >= 63 || family_find(name) == NULL) {
			snprintf(
			    err, errlen, "[server] families: no such event family \"%s\"", name);
			return -1;
		}
		p += len;
		p += strspn(p, ", ");
	}
	return 0;
}

/* schemas/NAME/sql beside the directory [pg] sql_dir names: the layout of
 * both the source tree and $(datadir)/collectord. */
static int
default_sql_dir(const struct config *cfg, struct config_family *sec)
{
	const char *dir = cfg->pg_sql_dir;
	size_t len = strlen(dir);
	size_t size;
	char *v;

	while (len > 1 && dir[len - 1] == '/')
		len--;
	while (len > 0 && dir[len - 1] != '/')
		len--;
	size = len + strlen(sec->name) + sizeof("schemas//sql");
	if ((v = malloc(size)) == NULL)
		return -1;
	snprintf(v, size, "%.*sschemas/%s/sql", (int)len, dir, sec->name);
	free(sec->sql_dir);
	sec->sql_dir = v;
	return 0;
}

int
family_config_defaults(struct config *cfg, char *err, size_t errlen)
{
	bool all = cfg->serve_families[strspn(cfg->serve_families, ", ")] == '\0';
	const struct family *f, *def;
	size_t i;

	for (i = 0; i < cfg->nfamilies; i++) {
		if (family_find(cfg->families[i].name) == NULL) {
			snprintf(err, errlen, "[family.%s]: no such event family",
			    cfg->families[i].name);
			return -1;
		}
	}
	if (check_list(cfg->serve_families, err, errlen) == -1)
		return -1;
	if ((def = family_default(cfg)) == NULL) {
		snprintf(err, errlen, "[server] default_family: no such event family \"%s\"",
		    cfg->default_family);
		return -1;
	}
	if (*cfg->default_family == '\0' && !all) {
		/* no default named: the first served one, in table order */
		for (i = 0; (f = family_at(i)) != NULL && !listed(cfg->serve_families, f->name);
		     i++)
			;
		def = f;
	}
	if (!all && !listed(cfg->serve_families, def->name)) {
		snprintf(err, errlen,
		    "[server] default_family: %s is not one of [server] families (%s)", def->name,
		    cfg->serve_families);
		return -1;
	}
	/* Every served family gets a section, before any pointer into them is
	 * kept: adding one may move them all. */
	for (i = 0; (f = family_at(i)) != NULL; i++)
		if ((all || listed(cfg->serve_families, f->name)) &&
		    config_family_add(cfg, f->name) == NULL)
			goto oom;
	if (config_default_str(&cfg->default_family, def->name) == -1)
		goto oom;
	for (i = 0; i < cfg->nfamilies; i++) {
		struct config_family *sec = &cfg->families[i];

		sec->family = f = family_find(sec->name);
		sec->served = all || listed(cfg->serve_families, f->name);
		if (!sec->served) {
			if (sec->port != 0) {
				snprintf(err, errlen,
				    "[family.%s] port: %s is not one of [server] families (%s)",
				    sec->name, sec->name, cfg->serve_families);
				return -1;
			}
			continue;
		}
		if (f == def) {
			/* [topics] and [registry] name the default family's, as they
			 * did before there were several; they end up as settled */
			if (settle(&cfg->topic_raw, sec->raw_topic, f->raw_topic) == -1 ||
			    settle(&cfg->topic_dead_letter, sec->invalid_topic, f->invalid_topic) ==
				-1 ||
			    settle(&cfg->registry_subject, sec->subject, f->subject) == -1 ||
			    settle(&sec->raw_topic, cfg->topic_raw, NULL) == -1 ||
			    settle(&sec->invalid_topic, cfg->topic_dead_letter, NULL) == -1 ||
			    settle(&sec->subject, cfg->registry_subject, NULL) == -1)
				goto oom;
		} else if (config_default_str(&sec->raw_topic, f->raw_topic) == -1 ||
			   config_default_str(&sec->invalid_topic, f->invalid_topic) == -1 ||
			   config_default_str(&sec->subject, f->subject) == -1) {
			goto oom;
		}
		if ((*sec->sql_dir == '\0' && default_sql_dir(cfg, sec) == -1) ||
		    config_default_str(&sec->table, f->codec.table) == -1)
			goto oom;
		switch (settle_streams(sec, f, err, errlen)) {
		case -1:
			return -1;
		case -2:
			goto oom;
		default:
			break;
		}
		for (size_t j = 0; j < i; j++) {
			const struct config_family *o = &cfg->families[j];

			if (sec->port != 0 && o->served && o->port == sec->port) {
				snprintf(err, errlen, "[family.%s] port: %lld is [family.%s]'s too",
				    sec->name, (long long)sec->port, o->name);
				return -1;
			}
		}
		if (sec->port != 0 && sec->port == cfg->listen_port) {
			snprintf(err, errlen, "[family.%s] port: %lld is [server] port too",
			    sec->name, (long long)sec->port);
			return -1;
		}
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

const struct config_family *
family_served(const struct config *cfg, size_t i)
{
	for (size_t j = 0; j < cfg->nfamilies; j++)
		if (cfg->families[j].served && i-- == 0)
			return &cfg->families[j];
	return NULL;
}

const char *
family_s3_prefix(const struct family *f, char *buf, size_t size)
{
	if (f->s3_prefix != NULL)
		return f->s3_prefix;
	snprintf(buf, size, "%s/", f->name);
	return buf;
}

void
family_pg_table(const struct config_family *fc, struct pgsql_table *t, struct pgsql_column *cols)
{
	const struct codec_schema *s = &fc->family->codec;

	*t = (struct pgsql_table){.name = fc->table, .columns = cols, .ncolumns = s->ncolumns};
	for (size_t i = 0; i < s->ncolumns; i++) {
		const char *type = "text";

		switch (s->columns[i].kind) {
		case CODEC_COL_TEXT:
			type = "text";
			break;
		case CODEC_COL_UUID:
			type = "uuid";
			break;
		case CODEC_COL_TIMESTAMPTZ:
			type = "timestamptz";
			break;
		case CODEC_COL_JSONB:
			type = "jsonb";
			break;
		case CODEC_COL_BIGINT:
			type = "int8";
			break;
		case CODEC_COL_INET:
			type = "inet";
			break;
		}
		cols[i] = (struct pgsql_column){.name = s->columns[i].name, .type = type};
		if (s->partition_column != NULL &&
		    strcmp(s->columns[i].name, s->partition_column) == 0)
			t->partition_column = i;
	}
}
