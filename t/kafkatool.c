/* t/kafkatool.c: the integration tests' window on Kafka.
 *
 *   kafkatool consume TOPIC [MAX]  every record from the beginning to the
 *                                  current end (or the first MAX), one JSON
 *                                  object per line (exact bytes: keyHex,
 *                                  headerList of nameHex/valueHex, valueHex,
 *                                  valueNull)
 *   kafkatool produce TOPIC KEY HEX [NAME=VALUE ...]
 *                                  one record with raw bytes and headers
 *   kafkatool produce-lines TOPIC  a record per line of standard input:
 *                                  {"keyHex", "valueHex" (null: none),
 *                                   "headers": [[NAMEHEX, VALUEHEX|null]],
 *                                   "partition" (optional)}
 *   kafkatool committed GROUP TOPIC
 *                                  the sum of GROUP's committed offsets
 *   kafkatool offsets GROUP TOPIC...
 *                                  a line per partition: topic, partition,
 *                                  low and high watermarks, GROUP's
 *                                  committed offset (-1: none)
 *   kafkatool delete TOPIC...      delete the topics (a benchmark's own,
 *                                  at its end); one missing is no error
 *
 * Brokers come from COLLECTORD_KAFKA_BROKERS.  A plain librdkafka client:
 * what the tests read is what any Kafka consumer would read.
 */
#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
brokers(void)
{
	const char *b = getenv("COLLECTORD_KAFKA_BROKERS");

	return b != NULL ? b : "127.0.0.1:9092";
}

static rd_kafka_t *
client(rd_kafka_type_t type)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[512];
	rd_kafka_t *rk;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers(), err, sizeof(err)) ||
	    (type == RD_KAFKA_CONSUMER &&
		(rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err)) ||
		    rd_kafka_conf_set(conf, "group.id", "kafkatool", err, sizeof(err)) ||
		    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)))) ||
	    (type == RD_KAFKA_PRODUCER &&
		rd_kafka_conf_set(conf, "acks", "all", err, sizeof(err)))) {
		fprintf(stderr, "kafkatool: %s\n", err);
		exit(2);
	}
	if ((rk = rd_kafka_new(type, conf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "kafkatool: %s\n", err);
		exit(2);
	}
	return rk;
}

static char *
hex(const void *p, size_t n)
{
	const unsigned char *b = p;
	char *out = malloc(n * 2 + 1);

	for (size_t i = 0; i < n; i++)
		sprintf(out + i * 2, "%02x", b[i]);
	out[n * 2] = '\0';
	return out;
}

static void
print_message(const rd_kafka_message_t *m)
{
	cJSON *o = cJSON_CreateObject(), *h = cJSON_AddObjectToObject(o, "headers");
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_timestamp_type_t tstype;
	int64_t ts = rd_kafka_message_timestamp(m, &tstype);
	const char *name;
	const void *val;
	size_t vlen;
	char *text, *x;

	cJSON_AddNumberToObject(o, "partition", m->partition);
	cJSON_AddNumberToObject(o, "offset", (double)m->offset);
	cJSON_AddNumberToObject(o, "timestamp", (double)ts);
	cJSON_AddStringToObject(o, "timestampType",
	    tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? "LogAppendTime"
	    : tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME	 ? "CreateTime"
							 : "none");
	if (m->key != NULL) {
		char *k = strndup(m->key, m->key_len);

		cJSON_AddStringToObject(o, "key", k);
		free(k);
	}
	if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		hdrs = NULL;
	if (hdrs != NULL) {
		for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &vlen) ==
				   RD_KAFKA_RESP_ERR_NO_ERROR;
		     i++) {
			char *v = strndup(val ? val : "", vlen);

			cJSON_AddStringToObject(h, name, v);
			free(v);
		}
	}
	if (m->key != NULL) {
		x = hex(m->key, m->key_len);
		cJSON_AddStringToObject(o, "keyHex", x);
		free(x);
	} else {
		cJSON_AddNullToObject(o, "keyHex");
	}
	{
		cJSON *list = cJSON_AddArrayToObject(o, "headerList");

		for (size_t i = 0; hdrs != NULL && rd_kafka_header_get_all(hdrs, i, &name, &val,
						       &vlen) == RD_KAFKA_RESP_ERR_NO_ERROR;
		     i++) {
			cJSON *e = cJSON_CreateObject();

			x = hex(name, strlen(name));
			cJSON_AddStringToObject(e, "nameHex", x);
			free(x);
			if (val != NULL) {
				x = hex(val, vlen);
				cJSON_AddStringToObject(e, "valueHex", x);
				free(x);
			} else {
				cJSON_AddNullToObject(e, "valueHex");
			}
			cJSON_AddItemToArray(list, e);
		}
	}
	x = hex(m->payload, m->len);
	cJSON_AddStringToObject(o, "valueHex", x);
	free(x);
	cJSON_AddBoolToObject(o, "valueNull", m->payload == NULL);
	if (m->len > 0 && ((const char *)m->payload)[0] != 0) {
		char *v = strndup(m->payload, m->len);

		cJSON_AddStringToObject(o, "value", v);
		free(v);
	}
	text = cJSON_PrintUnformatted(o);
	puts(text);
	free(text);
	cJSON_Delete(o);
}

static int
consume(const char *topic, long max)
{
	rd_kafka_t *rk = client(RD_KAFKA_CONSUMER);
	const struct rd_kafka_metadata *md;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_topic_partition_list_t *parts;
	int eofs = 0, nparts, idle = 0;
	long printed = 0;

	if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    md->topic_cnt != 1 || md->topics[0].err) {
		fprintf(stderr, "kafkatool: no metadata for %s\n", topic);
		return 1;
	}
	nparts = md->topics[0].partition_cnt;
	parts = rd_kafka_topic_partition_list_new(nparts);
	for (int i = 0; i < nparts; i++)
		rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)
		    ->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	/* Until every partition reported its end, MAX records (when given)
	 * or 30 s of silence. */
	while (eofs < nparts && idle < 30 && (max <= 0 || printed < max)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);

		if (m == NULL) {
			idle++;
			continue;
		}
		idle = 0;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
			eofs++;
		else if (m->err)
			fprintf(stderr, "kafkatool: %s\n", rd_kafka_message_errstr(m));
		else {
			print_message(m);
			printed++;
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return eofs < nparts && (max <= 0 || printed < max);
}

static int
produce(const char *topic, const char *key, const char *hexval, int nh, char **hv)
{
	rd_kafka_t *rk = client(RD_KAFKA_PRODUCER);
	rd_kafka_headers_t *h = rd_kafka_headers_new((size_t)nh);
	size_t n = strlen(hexval) / 2;
	unsigned char *val = malloc(n + 1);
	rd_kafka_resp_err_t e;

	for (size_t i = 0; i < n; i++) {
		unsigned int b;

		sscanf(hexval + 2 * i, "%2x", &b);
		val[i] = (unsigned char)b;
	}
	for (int i = 0; i < nh; i++) {
		char *eq = strchr(hv[i], '=');

		if (eq != NULL)
			rd_kafka_header_add(h, hv[i], eq - hv[i], eq + 1, -1);
	}
	e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
	    RD_KAFKA_V_VALUE(val, n), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
	    RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
	free(val);
	if (e) {
		fprintf(stderr, "kafkatool: %s\n", rd_kafka_err2str(e));
		return 1;
	}
	if (rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "kafkatool: not acknowledged\n");
		return 1;
	}
	rd_kafka_destroy(rk);
	return 0;
}

/* HEX (NULL: none) as bytes into *OUT (malloc'd) and *N. */
static void
unhex(const char *h, unsigned char **out, size_t *n)
{
	*n = h != NULL ? strlen(h) / 2 : 0;
	*out = NULL;
	if (h == NULL)
		return;
	*out = malloc(*n + 1);
	for (size_t i = 0; i < *n; i++) {
		unsigned int b;

		sscanf(h + 2 * i, "%2x", &b);
		(*out)[i] = (unsigned char)b;
	}
}

static const char *
hex_or_null(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItem(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int
produce_lines(const char *topic)
{
	rd_kafka_t *rk = client(RD_KAFKA_PRODUCER);
	char line[1 << 16];
	int n = 0;

	while (fgets(line, sizeof(line), stdin) != NULL) {
		cJSON *o = cJSON_Parse(line), *hs, *hv, *pv;
		rd_kafka_headers_t *h = rd_kafka_headers_new(4);
		unsigned char *key, *val;
		size_t klen, vlen;
		rd_kafka_resp_err_t e;

		if (o == NULL) {
			fprintf(stderr, "kafkatool: not JSON: %s", line);
			return 1;
		}
		unhex(hex_or_null(o, "keyHex"), &key, &klen);
		unhex(hex_or_null(o, "valueHex"), &val, &vlen);
		hs = cJSON_GetObjectItem(o, "headers");
		cJSON_ArrayForEach(hv, hs)
		{
			const cJSON *nh = cJSON_GetArrayItem(hv, 0),
				    *vh = cJSON_GetArrayItem(hv, 1);
			unsigned char *nb, *vb;
			size_t nn, vn;

			unhex(cJSON_IsString(nh) ? nh->valuestring : "", &nb, &nn);
			unhex(cJSON_IsString(vh) ? vh->valuestring : NULL, &vb, &vn);
			rd_kafka_header_add(h, (const char *)nb, (ssize_t)nn, vb, (ssize_t)vn);
			free(nb);
			free(vb);
		}
		pv = cJSON_GetObjectItem(o, "partition");
		e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, klen),
		    RD_KAFKA_V_VALUE(val, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_PARTITION(
			cJSON_IsNumber(pv) ? (int32_t)pv->valueint : RD_KAFKA_PARTITION_UA),
		    RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
		free(key);
		free(val);
		cJSON_Delete(o);
		if (e) {
			fprintf(stderr, "kafkatool: %s\n", rd_kafka_err2str(e));
			return 1;
		}
		n++;
	}
	if (rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "kafkatool: not acknowledged\n");
		return 1;
	}
	rd_kafka_destroy(rk);
	printf("%d\n", n);
	return 0;
}

static int
committed(const char *group, const char *topic)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const struct rd_kafka_metadata *md;
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_topic_t *rkt;
	long long sum = 0;
	char err[512];
	rd_kafka_t *rk;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers(), err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) ||
	    (rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "kafkatool: %s\n", err);
		return 2;
	}
	rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    md->topic_cnt != 1 || md->topics[0].err) {
		fprintf(stderr, "kafkatool: no metadata for %s\n", topic);
		return 1;
	}
	parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id);
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	if (rd_kafka_committed(rk, parts, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "kafkatool: cannot read committed offsets\n");
		return 1;
	}
	for (int i = 0; i < parts->cnt; i++)
		if (parts->elems[i].offset > 0)
			sum += parts->elems[i].offset;
	printf("%lld\n", sum);
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_destroy(rk);
	return 0;
}

/* What a group has left to read, partition by partition: a drained group
 * has committed the high watermark of each (or the partition is empty). */
static int
offsets(const char *group, int ntopics, char **topics)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
	char err[512];
	rd_kafka_t *rk;
	int rc = 0;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers(), err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) ||
	    (rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "kafkatool: %s\n", err);
		return 2;
	}
	for (int t = 0; t < ntopics; t++) {
		rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topics[t], NULL);
		const struct rd_kafka_metadata *md;

		if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
		    md->topic_cnt != 1 || md->topics[0].err) {
			fprintf(stderr, "kafkatool: no metadata for %s\n", topics[t]);
			return 1;
		}
		for (int i = 0; i < md->topics[0].partition_cnt; i++)
			rd_kafka_topic_partition_list_add(
			    parts, topics[t], md->topics[0].partitions[i].id);
		rd_kafka_metadata_destroy(md);
		rd_kafka_topic_destroy(rkt);
	}
	if (rd_kafka_committed(rk, parts, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "kafkatool: cannot read committed offsets\n");
		return 1;
	}
	for (int i = 0; i < parts->cnt && rc == 0; i++) {
		rd_kafka_topic_partition_t *p = &parts->elems[i];
		int64_t lo, hi;

		if (rd_kafka_query_watermark_offsets(rk, p->topic, p->partition, &lo, &hi, 10000) !=
		    RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(stderr, "kafkatool: no watermarks for %s [%d]\n", p->topic,
			    (int)p->partition);
			rc = 1;
			break;
		}
		printf("%s\t%d\t%lld\t%lld\t%lld\n", p->topic, (int)p->partition, (long long)lo,
		    (long long)hi, p->offset >= 0 ? (long long)p->offset : -1LL);
	}
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_destroy(rk);
	return rc;
}

static int
delete_topics(int ntopics, char **topics)
{
	rd_kafka_t *rk = client(RD_KAFKA_PRODUCER);
	rd_kafka_DeleteTopic_t **dts = calloc((size_t)ntopics, sizeof(*dts));
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	const rd_kafka_topic_result_t **res;
	rd_kafka_event_t *ev;
	size_t nres = 0;
	int rc = 0;

	for (int i = 0; i < ntopics; i++)
		dts[i] = rd_kafka_DeleteTopic_new(topics[i]);
	rd_kafka_DeleteTopics(rk, dts, (size_t)ntopics, NULL, q);
	ev = rd_kafka_queue_poll(q, 30000);
	if (ev == NULL || rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "kafkatool: DeleteTopics: %s\n",
		    ev != NULL ? rd_kafka_event_error_string(ev) : "no answer");
		rc = 1;
	} else {
		res = rd_kafka_DeleteTopics_result_topics(
		    rd_kafka_event_DeleteTopics_result(ev), &nres);
		for (size_t i = 0; i < nres; i++) {
			rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);

			if (e != RD_KAFKA_RESP_ERR_NO_ERROR &&
			    e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
				fprintf(stderr, "kafkatool: %s: %s\n",
				    rd_kafka_topic_result_name(res[i]), rd_kafka_err2str(e));
				rc = 1;
			}
		}
	}
	if (ev != NULL)
		rd_kafka_event_destroy(ev);
	rd_kafka_DeleteTopic_destroy_array(dts, (size_t)ntopics);
	free(dts);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "committed") == 0)
		return committed(argv[2], argv[3]);
	if ((argc == 3 || argc == 4) && strcmp(argv[1], "consume") == 0)
		return consume(argv[2], argc == 4 ? atol(argv[3]) : 0);
	if (argc >= 3 && strcmp(argv[1], "delete") == 0)
		return delete_topics(argc - 2, argv + 2);
	if (argc >= 4 && strcmp(argv[1], "offsets") == 0)
		return offsets(argv[2], argc - 3, argv + 3);
	if (argc >= 5 && strcmp(argv[1], "produce") == 0)
		return produce(argv[2], argv[3], argv[4], argc - 5, argv + 5);
	if (argc == 3 && strcmp(argv[1], "produce-lines") == 0)
		return produce_lines(argv[2]);
	fprintf(stderr, "usage: kafkatool consume TOPIC [MAX] | produce TOPIC KEY HEX [H=V ...] | "
			"produce-lines TOPIC | committed GROUP TOPIC | offsets GROUP TOPIC... | "
			"delete TOPIC...\n");
	return 2;
}
