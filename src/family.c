/* family.c: the table of event families. */
#include "family.h"

#include <string.h>

#include "config.h"
#include "families/families.h"

/* The first is POST /collect's. */
static const struct family *const families[] = {
    &family_holded,
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

int
family_config_defaults(struct config *cfg)
{
	const struct family *f = family_at(0);

	if (config_default_str(&cfg->topic_raw, f->raw_topic) == -1 ||
	    config_default_str(&cfg->topic_dead_letter, f->invalid_topic) == -1 ||
	    config_default_str(&cfg->registry_subject, f->subject) == -1)
		return -1;
	return 0;
}
