/* codec_plan.c: a family's schema compiled once for the encoder.  What the
 * encoder asked for every field of every event (which rule has this rule
 * path, which field this key names, what a map field is for) depends only
 * on the schema, so it is answered here, once, and kept for the life of
 * the process. */
#include "codec_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static char *
path_dup(const char *parent, const char *name)
{
	char buf[PATH_MAX_LEN];

	codec_path_join(buf, parent, name);
	return strdup(buf);
}

static void
plan_msg_free(struct plan_msg *pm)
{
	if (pm == NULL)
		return;
	for (unsigned i = 0; i < pm->nfields; i++) {
		free(pm->fields[i].rpath);
		plan_msg_free((struct plan_msg *)pm->fields[i].sub);
	}
	free(pm->fields);
	free(pm->keys);
	free(pm);
}

static void
add_key(struct plan_msg *pm, const char *key, unsigned field, bool is_long)
{
	struct plan_key *k = &pm->keys[pm->nkeys++];

	k->key = key;
	k->len = strlen(key);
	k->field = field;
	k->is_long = is_long;
	k->next = -1;
}

/* Chain each key to the next entry that has the same text, so that a
 * search ends at its first match. */
static void
link_keys(struct plan_msg *pm)
{
	for (unsigned i = 0; i < pm->nkeys; i++) {
		struct plan_key *k = &pm->keys[i];

		for (unsigned j = i + 1; j < pm->nkeys && k->next < 0; j++)
			if (pm->keys[j].len == k->len &&
			    memcmp(pm->keys[j].key, k->key, k->len) == 0)
				k->next = (int)j;
	}
}

/* The plan of message D at rule path RPATH; DEPTH bounds recursive
 * messages, which the encoder cannot reach deeper than the JSON's own
 * nesting anyway. */
static struct plan_msg *
plan_msg_new(
    const struct codec_schema *s, const ProtobufCMessageDescriptor *d, const char *rpath, int depth)
{
	size_t pl = strlen(rpath);
	struct plan_msg *pm;

	if (depth > CODEC_JSON_MAX_DEPTH || (pm = calloc(1, sizeof(*pm))) == NULL)
		return NULL;
	pm->d = d;
	pm->role_error = -1;
	pm->nfields = d->n_fields;
	if (d->n_fields > CODEC_PLAN_MAX_FIELDS) {
		/* Refused as a whole, at its first field, like an unsupported type. */
		pm->too_many = true;
		return pm;
	}
	pm->fields = calloc(d->n_fields ? d->n_fields : 1, sizeof(*pm->fields));
	/* A short name for every field and at most one long key a rule. */
	pm->keys = calloc(d->n_fields + s->nfields + 1, sizeof(*pm->keys));
	if (pm->fields == NULL || pm->keys == NULL)
		goto fail;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		struct plan_field *pf = &pm->fields[i];

		pf->f = f;
		if ((pf->rpath = path_dup(rpath, f->name)) == NULL)
			goto fail;
		pf->rule = codec_rule_find(s, pf->rpath);
		if (f->label == PROTOBUF_C_LABEL_REPEATED && !codec_is_list(f)) {
			pf->kind = PLAN_ROLE;
			pf->role = codec_map_role(s, f, pf->rpath);
			if (pf->role == MAP_NONE && pm->role_error < 0)
				pm->role_error = (int)i;
			else if (pf->role == MAP_EXTRA)
				pm->extra = f;
			else if (pf->role == MAP_ORIGINALS)
				pm->reserved = f;
		} else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			pf->kind = PLAN_ONEOF;
		} else {
			pf->kind = codec_is_list(f) ? PLAN_LIST : PLAN_VALUE;
			if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
			    (pf->sub = plan_msg_new(s, f->descriptor, pf->rpath, depth + 1)) ==
				NULL)
				goto fail;
		}
		if (!codec_is_map(f))
			add_key(pm, f->name, i, false);
	}
	/* A long key names the field of the rule that gives it, when that
	 * rule's path is RPATH and one more name. */
	for (size_t r = 0; r < s->nfields; r++) {
		const struct codec_field *rule = &s->fields[r];
		const char *name = rule->path + (pl > 0 ? pl + 1 : 0);
		const ProtobufCFieldDescriptor *f;

		if (rule->long_key == NULL)
			continue;
		if (pl > 0 && (strncmp(rule->path, rpath, pl) != 0 || rule->path[pl] != '.'))
			continue;
		if (strchr(name, '.') != NULL)
			continue;
		f = protobuf_c_message_descriptor_get_field_by_name(d, name);
		if (f != NULL && !codec_is_map(f))
			add_key(pm, rule->long_key, (unsigned)(f - d->fields), true);
	}
	link_keys(pm);
	return pm;
fail:
	plan_msg_free(pm);
	return NULL;
}

/* Schemas are few and live as long as the process: a short list, looked
 * up without the lock once published. */
#define PLANS_MAX 32
static struct {
	const struct codec_schema *s;
	struct plan_msg *plan;
} plans[PLANS_MAX];
static size_t nplans;
static pthread_mutex_t plans_lock = PTHREAD_MUTEX_INITIALIZER;

const struct plan_msg *
codec_plan(const struct codec_schema *s)
{
	size_t n = __atomic_load_n(&nplans, __ATOMIC_ACQUIRE);
	struct plan_msg *pm = NULL;

	for (size_t i = 0; i < n; i++)
		if (plans[i].s == s)
			return plans[i].plan;
	pthread_mutex_lock(&plans_lock);
	for (size_t i = 0; i < nplans; i++)
		if (plans[i].s == s)
			pm = plans[i].plan;
	if (pm == NULL && (pm = plan_msg_new(s, s->message, "", 0)) != NULL) {
		if (nplans < PLANS_MAX) {
			plans[nplans].s = s;
			plans[nplans].plan = pm;
			__atomic_store_n(&nplans, nplans + 1, __ATOMIC_RELEASE);
		}
		/* else: rebuilt on every call, slower but still right */
	}
	pthread_mutex_unlock(&plans_lock);
	return pm;
}

void
codec_plan_release(const struct codec_schema *s, const struct plan_msg *pm)
{
	for (size_t i = 0; i < __atomic_load_n(&nplans, __ATOMIC_ACQUIRE); i++)
		if (plans[i].s == s && plans[i].plan == pm)
			return;
	plan_msg_free((struct plan_msg *)pm);
}
