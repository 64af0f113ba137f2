/* fuzz/fuzz_record.c: libFuzzer target for the consumer side: one record
 * of the raw topic -> the consumer's key and timestamp checks -> frame
 * parse -> enrichment into the JSON line and the PostgreSQL row.
 *
 * An input is a whole record, laid out so that the mutator reaches the key
 * and the timestamp as well as the value (fuzz/corpus/record/ holds seeds
 * in this layout, framed by the collector's own encoder):
 *   byte 0        key length K; 255 is a record without a key
 *   next K bytes  the key (the correlationId)
 *   next 8 bytes  the record timestamp in ms, big-endian two's complement
 *   the rest      the record value: a Confluent-framed Protobuf payload
 * Shorter inputs are dropped.
 *
 * What must hold beyond a clean run under ASan and UBSan: every rejection
 * says why; an enriched line is one JSON object whose metadata are the
 * record's; and the row holds only what PostgreSQL's COPY takes (canonical
 * UUIDs, timestamps that parse back to the partition key, JSON for JSONB),
 * since a row it refuses would stop the sink rather than one event.  The
 * value is decoded as every family of the table would: each decoder must
 * hold against any bytes. */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "families/families.h"
#include "ids.h"

#define NO_KEY 255
/* First instant past year 9999, in ms: later ones print as wider years
 * that codec_parse_timestamp() rightly refuses. */
#define YEAR_10000_MS INT64_C(253402300800000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The failure must have left a message: it becomes the dead letter's
 * error header and the log line. */
static void
check_err(const char *err, size_t errlen)
{
	if (err[0] == '\0' || memchr(err, '\0', errlen) == NULL)
		abort();
}

static const cJSON *
member(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (v == NULL)
		abort();
	return v;
}

/* LINE is what the S3 objects and the row's JSONB column get. */
static void
check_line(const char *line, const char *corr, int64_t ts_ms, int32_t sid)
{
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithOpts(line, &end, 1);
	const cJSON *meta, *v;
	int64_t us;

	if (root == NULL || !cJSON_IsObject(root) || strchr(line, '\n') != NULL)
		abort();
	meta = member(root, "metadata");
	v = member(meta, "correlationId");
	if (!cJSON_IsString(v) || strcmp(v->valuestring, corr) != 0)
		abort();
	v = member(meta, "schemaId");
	if (!cJSON_IsNumber(v) || v->valuedouble != (double)sid)
		abort();
	v = member(meta, "publishTime");
	if (!cJSON_IsString(v))
		abort();
	if (ts_ms < YEAR_10000_MS &&
	    (!codec_parse_timestamp(v->valuestring, &us) || us != ts_ms * 1000))
		abort();
	cJSON_Delete(root);
}

/* V is what PostgreSQL's bigint takes and the codec's range keeps. */
static bool
bigint_ok(const char *v)
{
	const char *p = v + (*v == '-');
	char *end;
	long long n;

	if (*p == '\0' || strspn(p, "0123456789") != strlen(p) || (p[0] == '0' && p[1] != '\0'))
		return false;
	n = strtoll(v, &end, 10);
	return *end == '\0' && n <= INT64_C(9007199254740991) && n >= -INT64_C(9007199254740991);
}

static void
check_row(const struct codec_schema *s, const struct codec_row *row, const char *corr)
{
	if (row->ncolumns != s->ncolumns)
		abort();
	for (size_t i = 0; i < s->ncolumns; i++) {
		const struct codec_column *col = &s->columns[i];
		const char *v = row->values[i];
		char canon[IDS_TEXT_SIZE], again[CODEC_TIME_SIZE];
		unsigned char addr[sizeof(struct in6_addr)];
		uint8_t id[16];
		int64_t us;
		cJSON *doc;

		if (v == NULL)
			continue;
		switch (col->kind) {
		case CODEC_COL_UUID:
			if (!ids_parse(v, id, NULL))
				abort();
			ids_format(id, canon);
			if (strcmp(v, canon) != 0)
				abort();
			break;
		case CODEC_COL_TIMESTAMPTZ:
			if (!codec_parse_timestamp(v, &us))
				abort();
			codec_format_us(us, again);
			if (strcmp(v, again) != 0)
				abort();
			if (s->partition_column != NULL &&
			    strcmp(col->name, s->partition_column) == 0 && us != row->partition_us)
				abort();
			break;
		case CODEC_COL_JSONB:
			doc = cJSON_ParseWithOpts(v, NULL, 1);
			if (doc == NULL)
				abort();
			cJSON_Delete(doc);
			break;
		case CODEC_COL_BIGINT:
			if (!bigint_ok(v))
				abort();
			break;
		case CODEC_COL_INET:
			if (inet_pton(AF_INET, v, addr) != 1 && inet_pton(AF_INET6, v, addr) != 1)
				abort();
			break;
		case CODEC_COL_TEXT:
			break;
		}
	}
	{
		const char *c = codec_row_value(s, row, "correlation_id");

		if (c != NULL && strcmp(c, corr) != 0)
			abort();
	}
}

/* The dedup key the enricher reads from LINE by scanning is the one the
 * whole line, parsed, holds at PATH. */
static void
check_key(const char *line, const char *path)
{
	char *got = codec_line_text(line, strlen(line), path), want[32];
	cJSON *doc = cJSON_Parse(line);
	const cJSON *v = doc;
	const char *w = NULL;

	while (v != NULL && *path != '\0') {
		size_t n = strcspn(path, ".");
		char k[64];

		if (n >= sizeof(k))
			abort();
		memcpy(k, path, n);
		k[n] = '\0';
		v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, k) : NULL;
		path += n + (path[n] == '.');
	}
	if (cJSON_IsString(v)) {
		w = v->valuestring;
	} else if (cJSON_IsNumber(v)) {
		if (v->valuedouble == floor(v->valuedouble) &&
		    fabs(v->valuedouble) <= 9007199254740992.0)
			snprintf(want, sizeof(want), "%.0f", v->valuedouble);
		else
			snprintf(want, sizeof(want), "%.17g", v->valuedouble);
		w = want;
	}
	if ((got == NULL) != (w == NULL) || (got != NULL && strcmp(got, w) != 0))
		abort();
	free(got);
	cJSON_Delete(doc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char key[NO_KEY], corr[IDS_TEXT_SIZE], err[512], *line;
	const uint8_t *value, *payload;
	size_t klen, vlen, plen, at;
	uint64_t ts = 0;
	int64_t ts_ms;
	int32_t sid;
	enum ids_form form;
	uint8_t id[16];
	struct codec_row row;
	const struct family *fam;

	if (size < 1)
		return 0;
	klen = data[0] == NO_KEY ? 0 : data[0];
	if (size < 1 + klen + 8)
		return 0;
	memcpy(key, data + 1, klen);
	key[klen] = '\0';
	at = 1 + klen;
	for (int i = 0; i < 8; i++)
		ts = ts << 8 | data[at + i];
	ts_ms = (int64_t)ts;
	value = data + at + 8;
	vlen = size - at - 8;

	/* The consumer's checks before the value, in its order
	 * (src/consumer.c, rec_process): those records go to the dead
	 * letters without reaching the codec. */
	if (data[0] == NO_KEY || strlen(key) != klen || !ids_parse(key, id, &form) ||
	    form != IDS_FORM_UUID || ts_ms < 0)
		return 0;
	ids_format(id, corr);

	err[0] = '\0';
	if (!codec_frame_parse(value, vlen, &sid, &payload, &plen, err, sizeof(err))) {
		check_err(err, sizeof(err));
		return 0;
	}
	if (sid < 0 || payload < value || payload + plen != value + vlen)
		abort();
	for (size_t f = 0; (fam = family_at(f)) != NULL; f++) {
		err[0] = '\0';
		line = codec_enrich(
		    &fam->codec, payload, plen, key, ts_ms, sid, &row, err, sizeof(err));
		if (line == NULL) {
			check_err(err, sizeof(err));
			/* A failed enrichment leaves the row empty: the consumer
			 * frees it anyway, and must not find a value in it. */
			for (size_t i = 0; i < CODEC_ROW_MAX; i++)
				if (row.values[i] != NULL)
					abort();
			continue;
		}
		check_line(line, corr, ts_ms, sid);
		check_row(&fam->codec, &row, corr);
		if (fam->dedup_path != NULL)
			check_key(line, fam->dedup_path);
		codec_row_free(&row);
		free(line);
	}
	return 0;
}
