/* t/families.c: every family of the table against its own golden cases,
 * schemas/<name>/data/valid.jsonl and invalid.jsonl: the exact enriched
 * event and the table row of each valid case, the exact message, path and
 * rule of each invalid one.  Also what those files cannot hold: duplicate
 * keys (raw text), the rule list, the split of a message back into its
 * parts, and the retail currencies compiled in from currencies.txt. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "families/families.h"
#include "clickstream.pb-c.h"
#include "dedup.h"
#include "family.h"
#include "retail.pb-c.h"
#include "golden.h"
#include "tap.h"

/* The value at dotted PATH of object ROOT ("" is ROOT). */
static const cJSON *
at(const cJSON *root, const char *path)
{
	char key[256];

	while (root != NULL && *path != '\0') {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		root = cJSON_GetObjectItemCaseSensitive(root, key);
		path += n + (path[n] == '.');
	}
	return root;
}

/* What a column of the row must hold for the golden enriched event WANT:
 * NULL for an absent value, else its text by the column's kind. */
static char *
column_want(const struct codec_column *col, const cJSON *want, const char *json)
{
	const cJSON *v = at(want, col->source);
	char buf[CODEC_TIME_SIZE];
	int64_t us;

	if (v == NULL || cJSON_IsNull(v))
		return NULL;
	switch (col->kind) {
	case CODEC_COL_JSONB:
		return strdup(*col->source == '\0' ? json : "?");
	case CODEC_COL_BIGINT:
		snprintf(buf, sizeof(buf), "%.0f", v->valuedouble);
		return cJSON_IsNumber(v) ? strdup(buf) : NULL;
	case CODEC_COL_TIMESTAMPTZ:
		if (!cJSON_IsString(v) || !codec_parse_timestamp(v->valuestring, &us))
			return NULL;
		codec_format_us(us, buf);
		return strdup(buf);
	default:
		return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
	}
}

/* PAYLOAD is what protobuf-c itself writes for the message it holds, and
 * codec_event_record() gives the same bytes behind the frame header. */
static bool
packs_as_protobuf_c(const struct codec_schema *s, const cJSON *event, int32_t sid,
    const uint8_t *payload, size_t len)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(s->message, NULL, len, payload);
	uint8_t hdr[CODEC_FRAME_MAX], *again = NULL, *rec = NULL;
	size_t n = 0, rlen = 0, h = codec_frame_header(hdr, sid);
	struct codec_error ce;
	bool same = false;

	if (m != NULL && (again = malloc(protobuf_c_message_get_packed_size(m) + 1)) != NULL) {
		n = protobuf_c_message_pack(m, again);
		same = n == len && memcmp(again, payload, len) == 0;
	}
	if (same && codec_event_record(s, event, sid, &rec, &rlen, &ce))
		same = rlen == h + len && memcmp(rec, hdr, h) == 0 &&
		       memcmp(rec + h, payload, len) == 0;
	else
		same = false;
	free(rec);
	free(again);
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
	return same;
}

static void
valid_case(const struct family *f, const cJSON *c)
{
	const struct codec_schema *s = &f->codec;
	const cJSON *golden = cJSON_GetObjectItemCaseSensitive(c, "enriched");
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(golden, "metadata");
	const char *name = golden_str(c, "name"), *corr = golden_str(meta, "correlationId");
	struct codec_row row = {0};
	struct codec_error ce = {.rule = NULL};
	uint8_t *payload = NULL, *frame = NULL;
	char err[CODEC_ERROR_SIZE] = "", *got = NULL, *want;
	const uint8_t *p;
	size_t len = 0, h, plen;
	int32_t sid = 0;
	int64_t publish_us = 0;
	cJSON *w;
	bool row_ok = true;

	if (!codec_parse_timestamp(golden_str(meta, "publishTime"), &publish_us))
		printf("# %s: bad publishTime in the case\n", name);
	if (!codec_event_encode(
		s, cJSON_GetObjectItemCaseSensitive(c, "event"), &payload, &len, &ce)) {
		snprintf(err, sizeof(err), "%s", ce.message);
	} else if ((frame = malloc(len + CODEC_FRAME_MAX)) != NULL) {
		h = codec_frame_header(
		    frame, (int32_t)cJSON_GetObjectItemCaseSensitive(meta, "schemaId")->valueint);
		memcpy(frame + h, payload, len);
		if (codec_frame_parse(frame, h + len, &sid, &p, &plen, err, sizeof(err)))
			got = codec_enrich(
			    s, p, plen, corr, publish_us / 1000, sid, &row, err, sizeof(err));
	}
	if (payload != NULL)
		ok(packs_as_protobuf_c(s, cJSON_GetObjectItemCaseSensitive(c, "event"),
		       (int32_t)cJSON_GetObjectItemCaseSensitive(meta, "schemaId")->valueint,
		       payload, len),
		    "%s: protobuf-c's own bytes, framed too", name);
	w = cJSON_Duplicate(golden, 1);
	golden_exact_numbers(w);
	want = cJSON_PrintUnformatted(w);
	cJSON_Delete(w);
	if (got == NULL)
		printf("# error: %s\n", err);
	is_str(got, want, name);
	for (size_t i = 0; got != NULL && i < s->ncolumns; i++) {
		char *cw = column_want(&s->columns[i], golden, got);
		const char *cg = codec_row_value(s, &row, s->columns[i].name);

		if ((cw == NULL) != (cg == NULL) || (cw != NULL && strcmp(cw, cg) != 0)) {
			printf("# column %s: got %s, want %s\n", s->columns[i].name,
			    cg ? cg : "NULL", cw ? cw : "NULL");
			row_ok = false;
		}
		free(cw);
	}
	ok(got != NULL && row_ok, "%s: row", name);
	if (f->dedup_path != NULL) {
		char *key = got != NULL ? codec_line_text(got, strlen(got), f->dedup_path) : NULL;
		const cJSON *kv = at(golden, f->dedup_path);
		const char *kwant = cJSON_IsString(kv) ? kv->valuestring : NULL;
		char kbuf[32], kname[300];

		if (cJSON_IsNumber(kv)) {
			snprintf(kbuf, sizeof(kbuf), "%.0f", kv->valuedouble);
			kwant = kbuf;
		}
		ok(key != NULL && *key != '\0' && strlen(key) <= DEDUP_KEY_MAX,
		    "%s: dedup key at %s: %s", name, f->dedup_path, key ? key : "none");
		snprintf(kname, sizeof(kname), "%s: the dedup key is the enriched event's", name);
		is_str(key, kwant, kname);
		free(key);
	}
	codec_row_free(&row);
	free(got);
	free(want);
	free(frame);
	free(payload);
}

static void
invalid_case(const struct family *f, const cJSON *c)
{
	const char *name = golden_str(c, "name"), *want = golden_str(c, "error"),
		   *sep = strstr(want, ": ");
	struct codec_error ce = {.rule = NULL};
	uint8_t *payload = (uint8_t *)"x";
	size_t len = 1, rl;

	if (codec_event_encode(
		&f->codec, cJSON_GetObjectItemCaseSensitive(c, "event"), &payload, &len, &ce) ||
	    payload != NULL || len != 0) {
		ok(0, "%s: accepted", name);
		free(payload);
		return;
	}
	is_str(ce.message, want, name);
	/* The golden text's own parts: the path before the first ": " (no
	 * golden path holds one), the rule up to a " (" detail. */
	if (sep == NULL) {
		ok(0, "%s: the case's error has no path", name);
		return;
	}
	rl = strcspn(sep + 2, "(");
	rl -= rl > 0 && sep[2 + rl - 1] == ' ' && sep[2 + rl] == '(';
	/* Holded's one rule that names its key without parentheses. */
	if (strncmp(sep + 2, "object without \"", 16) == 0)
		rl = 14;
	ok(ce.path_len == (size_t)(sep - want) && strncmp(ce.message, want, ce.path_len) == 0,
	    "%s: path", name);
	ok(ce.rule != NULL && strlen(ce.rule) == rl && strncmp(ce.rule, sep + 2, rl) == 0 &&
		codec_rule(&f->codec, ce.rule) == ce.rule,
	    "%s: rule is \"%s\"", name, ce.rule != NULL ? ce.rule : "(null)");
}

/* Calls FN for every line of schemas/<F's name>/data/FILE; the number of
 * lines. */
static size_t
each_case(
    const struct family *f, const char *file, void (*fn)(const struct family *, const cJSON *))
{
	char name[256], *text, *line, *next;
	size_t len = 0, n = 0;

	snprintf(name, sizeof(name), "schemas/%s/data/%s", f->name, file);
	text = golden_slurp(name, &len);
	if (!ok(text != NULL, "read %s", name))
		return 0;
	for (line = text; line < text + len && *line != '\0'; line = next) {
		cJSON *v;

		next = strchr(line, '\n');
		next = next != NULL ? next + 1 : text + len;
		v = cJSON_ParseWithLength(line, (size_t)(next - line));
		if (!ok(v != NULL, "%s: line %zu is JSON", name, n + 1))
			continue;
		fn(f, v);
		cJSON_Delete(v);
		n++;
	}
	free(text);
	return n;
}

/* TEXT (a raw body of one event) through F's encoder: its message. */
static void
rejects_text(const struct family *f, const char *text, const char *want, const char *rule)
{
	struct codec_error ce = {.rule = NULL};
	cJSON *events = NULL;
	uint8_t *payload = NULL;
	size_t len = 0;
	char err[256];

	if (codec_body_parse(text, strlen(text), NULL, &events, err, sizeof(err)) != CODEC_OK) {
		ok(0, "%s: %s parses: %s", f->name, want, err);
		return;
	}
	ok(!codec_event_encode(&f->codec, events->child, &payload, &len, &ce), "%s: %s rejected",
	    f->name, want);
	is_str(ce.message, want, "... with its message");
	is_str(ce.rule, rule, "... and its rule");
	free(payload);
	json_tree_free(events);
}

static void
test_duplicates(void)
{
	const struct family *cs = family_find("clickstream"), *rt = family_find("retail");

	if (!ok(cs != NULL && rt != NULL, "the table has clickstream and retail"))
		return;
	rejects_text(cs,
	    "{\"id\":1,\"id\":2,\"type\":\"t\",\"package_id\":\"p\",\"event\":{\"user_agent\":"
	    "\"\",\"ip\":\"203.0.113.7\",\"timestamp\":\"2026-11-20T10:12:35Z\"}}",
	    "id: duplicate key", "duplicate key");
	rejects_text(cs,
	    "{\"id\":1,\"type\":\"t\",\"package_id\":\"p\",\"event\":{\"user_agent\":\"\","
	    "\"ip\":\"203.0.113.7\",\"ip\":\"203.0.113.8\",\"timestamp\":\"2026-11-20T10:12:35Z\"}"
	    "}",
	    "event.ip: duplicate key", "duplicate key");
	rejects_text(rt,
	    "{\"transactionId\":\"019aa0f3-6b10-7c3e-8a41-3f2e1d0c9b8a\",\"transactionId\":"
	    "\"019aa0f3-6b10-7c3e-8a41-3f2e1d0c9b8b\"}",
	    "transactionId: duplicate key", "duplicate key");
	rejects_text(rt,
	    "{\"transactionId\":\"019aa0f3-6b10-7c3e-8a41-3f2e1d0c9b8a\",\"occurredAt\":"
	    "\"2026-11-20T10:15:32-03:00\",\"store\":{\"id\":\"a\",\"id\":\"b\"}}",
	    "store.id: duplicate key", "duplicate key");
	rejects_text(rt,
	    "{\"transactionId\":\"019aa0f3-6b10-7c3e-8a41-3f2e1d0c9b8a\",\"occurredAt\":"
	    "\"2026-11-20T10:15:32-03:00\",\"store\":{\"id\":\"sp-01\",\"franchiseId\":\"fr\","
	    "\"country\":\"BR\"},\"employeeId\":\"e\",\"currency\":\"BRL\",\"paymentMethod\":"
	    "\"pix\",\"total\":\"1.00\",\"lines\":[{\"lineNumber\":1,\"kind\":\"sale\",\"item\":"
	    "{\"id\":\"i\",\"kind\":\"book\"},\"quantity\":1,\"quantity\":2,\"unitPrice\":"
	    "\"1.00\"}]}",
	    "lines[0].quantity: duplicate key", "duplicate key");
}

/* The lists are what metric labels and rejections.rule may hold: the
 * codec's words and each family's, each word once in the two together, and
 * each found by codec_rule() as itself. */
static void
test_rules(void)
{
	bool unique = true, found = true;
	const struct family *f;

	for (size_t i = 0; i < codec_nrules; i++) {
		found = found && codec_rule(NULL, codec_rules[i]) == codec_rules[i];
		for (size_t j = 0; j < i; j++)
			unique = unique && strcmp(codec_rules[i], codec_rules[j]) != 0;
	}
	ok(codec_nrules > 0 && unique, "codec_rules: every rule once");
	ok(found, "codec_rule() finds each as itself");
	ok(codec_rule(NULL, "not a rule") == NULL, "and nothing else");
	for (size_t k = 0; (f = family_at(k)) != NULL; k++) {
		const struct codec_schema *s = &f->codec;

		unique = found = true;
		for (size_t i = 0; i < s->nrules; i++) {
			found = found && codec_rule(s, s->rules[i]) == s->rules[i];
			unique = unique && codec_rule(NULL, s->rules[i]) == NULL;
			for (size_t j = 0; j < i; j++)
				unique = unique && strcmp(s->rules[i], s->rules[j]) != 0;
		}
		ok(unique && found, "%s: its own rule words, each once and none the codec's",
		    f->name);
	}
}

static void
parses(const char *message, size_t path_len, const char *rule)
{
	struct codec_error ce;
	bool r = codec_error_parse(&family_find("retail")->codec, message, &ce);

	ok(r && ce.path_len == path_len && ce.rule != NULL && strcmp(ce.rule, rule) == 0 &&
		strcmp(ce.message, message) == 0,
	    "codec_error_parse: %s", message);
}

static void
test_error_parse(void)
{
	struct codec_error ce;

	parses("id: missing", 2, "missing");
	parses("lines[2].item.format: not a format of its kind (a book is hardcover or "
	       "paperback)",
	    20, "not a format of its kind");
	parses("customerId: required for a rental (lines[1] is a rental)", 10,
	    "required for a rental");
	/* A client's key may hold ": " and even a rule word. */
	parses("event.a: missing: unknown key", 16, "unknown key");
	parses("attributes.timestampStamp: object without \"dispatchedAt\"", 25, "object without");
	parses("attributes.timestampStamp: given twice (long and short key)", 25, "given twice");
	parses("event.deep: nested deeper than 64 levels", 10, "nested deeper than 64 levels");
	parses("event.score: number out of range", 11, "number out of range");
	ok(!codec_error_parse(NULL, "body: something else", &ce) && ce.rule == NULL,
	    "codec_error_parse: no rule, no parts");
	ok(!codec_error_parse(NULL, "missing", &ce), "codec_error_parse: no path");
	ok(!codec_error_parse(
	       &family_find("holded")->codec, "total: not the sum of the lines", &ce),
	    "codec_error_parse: another family's rule is not this family's");
}

/* The compiled-in currencies are currencies.txt's lines, sorted. */
static void
test_currencies(void)
{
	size_t len = 0, n = 0;
	char *text = golden_slurp("schemas/retail/currencies.txt", &len), *line, *next;
	bool all = true, sorted = true;

	if (!ok(text != NULL, "read currencies.txt"))
		return;
	for (line = text; *line != '\0'; line = next) {
		char code[8];
		int digits;

		next = strchr(line, '\n');
		next = next != NULL ? next + 1 : line + strlen(line);
		if (*line == '#' || *line == '\n')
			continue;
		if (sscanf(line, "%7s %d", code, &digits) != 2) {
			all = false;
			continue;
		}
		n++;
		all = all && n <= retail_ncurrencies;
		for (size_t i = 0; all && i < retail_ncurrencies; i++) {
			if (strcmp(retail_currencies[i].code, code) == 0) {
				all = retail_currencies[i].digits == digits;
				break;
			}
			if (i + 1 == retail_ncurrencies)
				all = false;
		}
	}
	for (size_t i = 1; i < retail_ncurrencies; i++)
		sorted =
		    sorted && strcmp(retail_currencies[i - 1].code, retail_currencies[i].code) < 0;
	ok(all && n == retail_ncurrencies, "the %zu currencies of currencies.txt, digits too", n);
	ok(sorted, "sorted by code, for bsearch()");
	free(text);
}

/* Row values the golden files give only indirectly. */
static void
test_clickstream_row(void)
{
	const struct family *f = family_find("clickstream");
	struct codec_error ce;
	struct codec_row row = {0};
	uint8_t *payload = NULL;
	size_t len = 0;
	char err[256] = "", *json = NULL;
	cJSON *ev = cJSON_Parse(
	    "{\"id\":1e3,\"type\":\"search\",\"package_id\":\"p\",\"event\":{\"user_agent\":\"\","
	    "\"ip\":\"2001:0DB8::1\",\"timestamp\":\"2026-11-20 10:12:35.123456789+01:00\","
	    "\"query\":\"\",\"product\":0}}");

	if (f != NULL && codec_event_encode(&f->codec, ev, &payload, &len, &ce))
		json = codec_enrich(&f->codec, payload, len, "019aa0f3-7c21-7d3e-9a41-5b2e00000000",
		    0, 1, &row, err, sizeof(err));
	ok(json != NULL, "clickstream: an anonymous search enriches");
	if (json != NULL) {
		is_str(codec_row_value(&f->codec, &row, "id"), "1000", "row: id 1e3 as 1000");
		ok(codec_row_value(&f->codec, &row, "customer_id") == NULL,
		    "row: no customer_id is NULL");
		is_str(codec_row_value(&f->codec, &row, "product"), "0", "row: product 0 is 0");
		is_str(codec_row_value(&f->codec, &row, "query"), "", "row: query \"\" is kept");
		ok(codec_row_value(&f->codec, &row, "page") == NULL, "row: no page is NULL");
		is_str(codec_row_value(&f->codec, &row, "user_agent"), "", "row: user_agent \"\"");
		is_str(codec_row_value(&f->codec, &row, "ip"), "2001:0DB8::1", "row: ip as sent");
		is_str(codec_row_value(&f->codec, &row, "event_timestamp"),
		    "2026-11-20T09:12:35.123456Z", "row: event_timestamp in UTC, truncated to us");
		ok(row.partition_us == INT64_C(1795165955123456), "row: partitioned by it");
	}
	free(json);
	free(payload);
	codec_row_free(&row);
	cJSON_Delete(ev);
}

/* The name of top-level message I of PROTO's text, into NAME. */
static bool
top_message(const char *proto, int i, char *name, size_t size)
{
	for (const char *p = proto; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p)
		if (strncmp(p, "message ", 8) == 0 && i-- == 0) {
			size_t n = strcspn(p + 8, " {\n");

			snprintf(name, size, "%.*s", (int)n, p + 8);
			return true;
		}
	return false;
}

/* The enriched topic's record: the frame with the Enriched message's
 * index, the raw payload's fields and the metadata, read back by the
 * generated Enriched. */
static void
test_enriched_record(void)
{
	const struct family *f = family_find("clickstream");
	struct codec_error ce;
	uint8_t *payload = NULL, *rec = NULL;
	size_t len = 0, rlen = 0;
	char err[256] = "", name[64];
	Collectord__Clickstream__V1__Enriched *e = NULL;
	cJSON *ev = cJSON_Parse("{\"id\":77,\"type\":\"page_view\",\"package_id\":\"p\","
				"\"event\":{\"user_agent\":\"ua\",\"ip\":\"10.0.0.1\","
				"\"customer_id\":5,\"timestamp\":\"2026-11-20T10:00:00Z\"}}");

	for (size_t i = 0; family_at(i) != NULL; i++) {
		const struct family *g = family_at(i);

		ok(g->enriched_index >= 0 &&
			top_message(g->proto, g->enriched_index, name, sizeof(name)) &&
			strcmp(name, "Enriched") == 0,
		    "%s: its enriched index names the proto's Enriched message", g->name);
	}
	ok(!codec_enriched_record(
	       9, 1, (const uint8_t *)"", 0, "not-a-uuid", 0, 3, &rec, &rlen, err, sizeof(err)),
	    "enriched record: a key that is no UUID is refused");
	is_str(err, "metadata.correlationId: not a UUID", "and says so");
	if (!ok(f != NULL && codec_event_encode(&f->codec, ev, &payload, &len, &ce) &&
		    codec_enriched_record(300, f->enriched_index, payload, len,
			"019AA0F3-7C21-7D3E-9A41-5B2E00000001", 1795165955123, 7, &rec, &rlen, err,
			sizeof(err)),
		"clickstream: an enriched record is built"))
		goto out;
	ok(rlen > 7 && rec[0] == 0 && rec[1] == 0 && rec[2] == 0 && rec[3] == 1 && rec[4] == 44,
	    "framed with magic 0 and the enriched schema id, big-endian");
	ok(rec[5] == 2 && rec[6] == 2, "message index array [1]: count 1, index 1, zig-zag");
	e = collectord__clickstream__v1__enriched__unpack(NULL, rlen - 7, rec + 7);
	if (!ok(e != NULL, "the rest reads as an Enriched"))
		goto out;
	ok(e->has_id && e->id == 77 && strcmp(e->type, "page_view") == 0 && e->event != NULL &&
		e->event->has_customer_id && e->event->customer_id == 5,
	    "with the raw event's fields");
	ok(e->metadata != NULL, "and its metadata");
	if (e->metadata != NULL) {
		is_str(e->metadata->correlationid, "019aa0f3-7c21-7d3e-9a41-5b2e00000001",
		    "metadata.correlationId: canonical");
		is_str(e->metadata->publishtime, "2026-11-20T09:12:35.123Z",
		    "metadata.publishTime: the record's time");
		ok(e->metadata->has_schemaid && e->metadata->schemaid == 7,
		    "metadata.schemaId: the raw record's schema id");
	}
out:
	if (e != NULL)
		collectord__clickstream__v1__enriched__free_unpacked(e, NULL);
	free(rec);
	free(payload);
	cJSON_Delete(ev);
}

static bool
integer_type(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return true;
	default:
		return false;
	}
}

/* A rule that names no field would be skipped without a word: every rule
 * and column must fit the descriptors, and the proto text compiled in
 * must be the file's. */
static void
test_descriptor(const struct family *f)
{
	const struct codec_schema *s = &f->codec;
	bool rules = true, columns = true, partition = false;
	char name[256], *text;
	size_t len = 0;

	for (size_t i = 0; i < s->nfields; i++) {
		const struct codec_field *r = &s->fields[i];
		const ProtobufCFieldDescriptor *fd = golden_field_by_path(s->message, r->path);
		bool string = fd != NULL && fd->type == PROTOBUF_C_TYPE_STRING;

		if (fd == NULL || (r->kind != CODEC_KIND_PLAIN && !string) ||
		    (r->flags & (CODEC_F_MAY_BE_EMPTY | CODEC_F_NOT_EMPTY) && !string) ||
		    ((r->flags & CODEC_F_INTEGER_WORDS) && !integer_type(fd)) ||
		    (r->value != NULL && fd->type == PROTOBUF_C_TYPE_MESSAGE)) {
			printf("# %s: rule %s does not fit its field\n", f->name, r->path);
			rules = false;
		}
	}
	ok(rules, "%s: every rule names a field it fits", f->name);
	for (size_t i = 0; i < s->ncolumns; i++) {
		const struct codec_column *col = &s->columns[i];
		const ProtobufCFieldDescriptor *fd;

		if (*col->source == '\0' || strncmp(col->source, "metadata.", 9) == 0)
			continue;
		fd = golden_field_by_path(s->message, col->source);
		if (fd == NULL || fd->label == PROTOBUF_C_LABEL_REPEATED ||
		    (col->kind == CODEC_COL_BIGINT) != integer_type(fd)) {
			printf("# %s: column %s does not fit its source\n", f->name, col->name);
			columns = false;
		}
		if (s->partition_column != NULL && strcmp(col->name, s->partition_column) == 0)
			partition = col->kind == CODEC_COL_TIMESTAMPTZ;
	}
	ok(columns, "%s: every column's source is a field of its kind", f->name);
	ok(partition, "%s: the partition column is a timestamptz column", f->name);
	ok(s->original_ids_path == NULL ||
		(golden_field_by_path(s->message, s->original_ids_path) != NULL &&
		    golden_field_by_path(s->message, s->original_ids_path)->label ==
			PROTOBUF_C_LABEL_REPEATED),
	    "%s: the original-ids map exists", f->name);
	snprintf(name, sizeof(name), "schemas/%s/%s.proto", f->name, f->name);
	text = golden_slurp(name, &len);
	ok(text != NULL && strcmp(text, f->proto) == 0, "%s: the compiled-in proto is %s", f->name,
	    name);
	free(text);
}

/* Payloads another producer of a schema could write: the enricher checks
 * them again, lists and IP addresses included. */
static void
test_corrupt_payloads(void)
{
	Collectord__Retail__V1__Transaction t = COLLECTORD__RETAIL__V1__TRANSACTION__INIT;
	Collectord__Retail__V1__Store st = COLLECTORD__RETAIL__V1__STORE__INIT;
	Collectord__Retail__V1__Line line = COLLECTORD__RETAIL__V1__LINE__INIT, *lines[1] = {&line};
	Collectord__Retail__V1__Item item = COLLECTORD__RETAIL__V1__ITEM__INIT;
	Collectord__Clickstream__V1__Event ev = COLLECTORD__CLICKSTREAM__V1__EVENT__INIT;
	Collectord__Clickstream__V1__Event__Detail d =
	    COLLECTORD__CLICKSTREAM__V1__EVENT__DETAIL__INIT;
	const struct family *rt = family_find("retail"), *cs = family_find("clickstream");
	uint8_t buf[1024];
	char err[256], *json;
	size_t n;

	if (rt == NULL || cs == NULL)
		return;
	t.transactionid = (char *)"019aa0f3-6b10-7c3e-8a41-3f2e1d0c9b8a";
	t.occurredat = (char *)"2026-11-20T10:15:32-03:00";
	st.id = (char *)"s";
	st.franchiseid = (char *)"f";
	st.country = (char *)"BR";
	t.store = &st;
	t.employeeid = (char *)"e";
	t.currency = (char *)"BRL";
	t.total = (char *)"0.00";
	n = collectord__retail__v1__transaction__pack(&t, buf);
	json = codec_enrich(&rt->codec, buf, n, "019aa0f3-7c21-7d3e-9a41-5b2e00000000", 0, 1, NULL,
	    err, sizeof(err));
	ok(json == NULL, "retail: a payload without lines is refused");
	is_str(err, "payload: lines: missing", "... as lines: missing");
	free(json);

	line.has_linenumber = 1;
	line.linenumber = 1;
	line.kind = (char *)"sale";
	item.id = (char *)"i";
	item.kind = (char *)"book";
	line.item = &item;
	line.unitprice = (char *)"0.00";
	t.n_lines = 1;
	t.lines = lines;
	n = collectord__retail__v1__transaction__pack(&t, buf);
	json = codec_enrich(&rt->codec, buf, n, "019aa0f3-7c21-7d3e-9a41-5b2e00000000", 0, 1, NULL,
	    err, sizeof(err));
	ok(json == NULL, "retail: a line without its quantity is refused");
	is_str(err, "payload: lines[0].quantity: missing", "... with the line's index");
	free(json);
	line.has_quantity = 1;
	line.quantity = 1;
	n = collectord__retail__v1__transaction__pack(&t, buf);
	json = codec_enrich(&rt->codec, buf, n, "019aa0f3-7c21-7d3e-9a41-5b2e00000000", 0, 1, NULL,
	    err, sizeof(err));
	ok(json != NULL && strstr(json, "\"lines\":[{\"lineNumber\":1,\"kind\":\"sale\"") != NULL,
	    "retail: with it, the lines come back as an array");
	free(json);

	ev.has_id = 1;
	ev.type = (char *)"page_view";
	ev.package_id = (char *)"p";
	d.user_agent = (char *)"";
	d.ip = (char *)"203.0.113.7:8080";
	d.timestamp = (char *)"2026-11-20T10:12:35Z";
	ev.event = &d;
	n = collectord__clickstream__v1__event__pack(&ev, buf);
	json = codec_enrich(&cs->codec, buf, n, "019aa0f3-7c21-7d3e-9a41-5b2e00000000", 0, 1, NULL,
	    err, sizeof(err));
	ok(json == NULL, "clickstream: a payload with a bad IP address is refused");
	is_str(err, "payload: event.ip: not an IP address", "... as not an IP address");
	free(json);
	d.ip = (char *)"::ffff:198.51.100.23";
	n = collectord__clickstream__v1__event__pack(&ev, buf);
	json = codec_enrich(&cs->codec, buf, n, "019aa0f3-7c21-7d3e-9a41-5b2e00000000", 0, 1, NULL,
	    err, sizeof(err));
	ok(json != NULL && strstr(json, "\"user_agent\":\"\"") != NULL,
	    "clickstream: an empty user_agent is a value, there too");
	free(json);
}

int
main(void)
{
	const struct family *f;

	for (size_t i = 0; (f = family_at(i)) != NULL; i++) {
		size_t nv = each_case(f, "valid.jsonl", valid_case);
		size_t ni = each_case(f, "invalid.jsonl", invalid_case);

		ok(nv > 0 && ni > 0, "%s: %zu valid and %zu invalid cases", f->name, nv, ni);
		ok(f->codec.ncolumns <= CODEC_ROW_MAX && f->raw_topic && f->invalid_topic &&
			f->subject && f->proto && *f->proto != '\0',
		    "%s: topics, subject, proto text and columns", f->name);
		test_descriptor(f);
	}
	test_rules();
	test_error_parse();
	test_duplicates();
	test_currencies();
	test_clickstream_row();
	test_enriched_record();
	test_corrupt_payloads();
	return tap_done();
}
