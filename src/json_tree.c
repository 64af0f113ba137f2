/* json_tree.c: see json_tree.h.  The nodes and strings are built by
 * json_strict_check_build() while it checks the text, into memory this
 * file owns: one allocation sized from the text (its first block of nodes
 * and the string pool), and more node blocks, each twice the last, when
 * the text holds more values than that first guess. */
#include "json_tree.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JSON_TREE_MAGIC 0x6a747265656a7472ULL

static size_t live_bytes;

struct json_tree_block {
	struct json_tree_block *next;
	size_t size;
	cJSON nodes[];
};

struct json_tree {
	uint64_t magic;
	size_t size;			/* of this allocation: nodes and pool */
	struct json_tree_block *blocks; /* nodes past the first allocation's */
	cJSON nodes[];			/* then the string pool */
};

/* What json_strict_tree.more needs to know. */
struct grow {
	struct json_tree *t;
	size_t next; /* nodes of the next block */
	size_t left; /* nodes the bound on values still allows */
};

static bool
more_nodes(struct json_strict_tree *st)
{
	struct grow *g = st->arg;
	struct json_tree_block *b;
	size_t k = g->next < g->left ? g->next : g->left, size;

	if (k == 0)
		k = 1;
	if (k > (SIZE_MAX - sizeof(*b)) / sizeof(cJSON))
		return false;
	size = sizeof(*b) + k * sizeof(cJSON);
	if ((b = malloc(size)) == NULL)
		return false;
	b->size = size;
	b->next = g->t->blocks;
	g->t->blocks = b;
	__atomic_add_fetch(&live_bytes, size, __ATOMIC_RELAXED);
	st->node = b->nodes;
	st->node_end = b->nodes + k;
	g->left -= k < g->left ? k : g->left;
	if (g->next <= SIZE_MAX / 2)
		g->next *= 2;
	return true;
}

/* The check and the tree, FIRST nodes in the first allocation. */
static enum json_strict_status
check_build(const char *text, size_t n, size_t max_events, size_t max_values, size_t first,
    bool wrap, struct json_strict_check *jc, cJSON **root)
{
	struct json_strict_tree st = {0};
	enum json_strict_status status;
	struct json_tree *t;
	struct grow g;
	size_t size, limit;
	cJSON *top;

	*root = NULL;
	/* One node a value, one more for the wrapping array. */
	limit = max_values > 0 && max_values < SIZE_MAX - 1 ? max_values + 1 : SIZE_MAX;
	if (first > limit)
		first = limit;
	if (first > (SIZE_MAX / 2 - sizeof(*t)) / sizeof(cJSON) || n > SIZE_MAX / 4)
		return JSON_STRICT_OK; /* out of memory */
	/* Each string or key decodes to no more than its own bytes between
	 * the quotes, plus a NUL: never more than the text (and the slack the
	 * copying in blocks needs). */
	size = sizeof(*t) + first * sizeof(cJSON) + n + 1 + JSON_STRICT_POOL_SLACK;
	if ((t = malloc(size)) == NULL)
		return JSON_STRICT_OK;
	t->magic = JSON_TREE_MAGIC;
	t->size = size;
	t->blocks = NULL;
	__atomic_add_fetch(&live_bytes, size, __ATOMIC_RELAXED);
	g.t = t;
	g.next = first > 16 ? first : 16;
	g.left = limit - first;
	st.node = t->nodes;
	st.node_end = t->nodes + first;
	st.pool = (char *)(t->nodes + first);
	st.more = more_nodes;
	st.arg = &g;
	/* The root must be the first node: with WRAP it is kept for the
	 * wrapping array, or the top value moves there. */
	if (wrap)
		st.node++;
	status = json_strict_check_build(text, n, max_events, max_values, jc, &st);
	if (status != JSON_STRICT_OK) {
		json_tree_free(t->nodes);
		if (st.oom)
			status = JSON_STRICT_OK; /* *ROOT NULL: out of memory */
		return status;
	}
	top = st.root;
	if (wrap && cJSON_IsObject(top)) {
		memset(&t->nodes[0], 0, sizeof(cJSON));
		t->nodes[0].type = cJSON_Array;
		t->nodes[0].child = top;
		top->prev = top;
	} else if (wrap) {
		/* Nothing points at a root: it may move. */
		t->nodes[0] = *top;
	}
	*root = t->nodes;
	return JSON_STRICT_OK;
}

enum json_strict_status
json_tree_check(const char *text, size_t n, size_t max_events, size_t max_values, bool wrap,
    struct json_strict_check *jc, cJSON **root)
{
	/* A first guess of the values a text holds: our families' events
	 * take 20 to 45 bytes a value, compact, so most texts need one more
	 * block at most, and no body holds much more than twice its
	 * values' nodes. */
	return check_build(text, n, max_events, max_values, n / 40 + 8, wrap, jc, root);
}

cJSON *
json_tree_parse(const char *text, size_t n, size_t *where, const char **why)
{
	struct json_strict_check jc = {0};
	cJSON *v;

	if (json_tree_check(text, n, 0, 0, false, &jc, &v) != JSON_STRICT_OK) {
		*where = jc.where;
		*why = jc.why;
		return NULL;
	}
	if (v == NULL) {
		*where = jc.start;
		*why = "out of memory";
	}
	return v;
}

void
json_tree_free(cJSON *root)
{
	struct json_tree *t;

	if (root == NULL)
		return;
	t = (struct json_tree *)((char *)root - offsetof(struct json_tree, nodes));
	/* The root is always the first node: anything else is a misuse. */
	if (t->magic != JSON_TREE_MAGIC)
		abort();
	t->magic = 0;
	while (t->blocks != NULL) {
		struct json_tree_block *b = t->blocks;

		t->blocks = b->next;
		__atomic_sub_fetch(&live_bytes, b->size, __ATOMIC_RELAXED);
		free(b);
	}
	__atomic_sub_fetch(&live_bytes, t->size, __ATOMIC_RELAXED);
	free(t);
}

size_t
json_tree_live_bytes(void)
{
	return __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);
}
