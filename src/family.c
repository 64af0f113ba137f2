/* family.c: the table of event families. */
#include "family.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "families/families.h"

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

int
family_config_defaults(struct config *cfg, char *err, size_t errlen)
{
	const struct config_family *sec;
	const struct family *f;

	for (size_t i = 0; i < cfg->nfamilies; i++) {
		if (family_find(cfg->families[i].name) == NULL) {
			snprintf(err, errlen, "[family.%s]: no such event family",
			    cfg->families[i].name);
			return -1;
		}
	}
	if ((f = family_default(cfg)) == NULL) {
		snprintf(err, errlen, "[server] default_family: no such event family \"%s\"",
		    cfg->default_family);
		return -1;
	}
	for (size_t i = 0; i < cfg->nfamilies; i++) {
		if (cfg->families[i].port != 0 && strcmp(cfg->families[i].name, f->name) != 0) {
			snprintf(err, errlen,
			    "[family.%s] port: this process serves only its default family (%s)",
			    cfg->families[i].name, f->name);
			return -1;
		}
	}
	sec = config_family(cfg, f->name);
	if (config_default_str(&cfg->default_family, f->name) == -1 ||
	    settle(&cfg->topic_raw, sec ? sec->raw_topic : NULL, f->raw_topic) == -1 ||
	    settle(&cfg->topic_dead_letter, sec ? sec->invalid_topic : NULL, f->invalid_topic) ==
		-1 ||
	    settle(&cfg->registry_subject, sec ? sec->subject : NULL, f->subject) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}
