/* t/consumer.c: the enricher's pure parts: offset blocks (which S3 object a
 * record belongs to), the pause hysteresis, and what becomes of a dead
 * letter Kafka refuses (the verdict, the S3 document). */
#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "consumer.h"
#include "tap.h"

static void
test_verdict(void)
{
	ok(consumer_dl_refused_for_good(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, true, 1),
	    "too large on the spot: for good at once");
	ok(!consumer_dl_refused_for_good(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, false, 5),
	    "too large from the broker in company: its batch may be to blame, again");
	ok(consumer_dl_refused_for_good(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, true, 2),
	    "too large from the broker when sent alone: for good");
	ok(!consumer_dl_refused_for_good(RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE, false, 1) &&
		consumer_dl_refused_for_good(RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE, true, 2),
	    "record list too large: likewise");
	ok(consumer_dl_refused_for_good(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, false, 1),
	    "not authorized for the topic: for good");
	ok(consumer_dl_refused_for_good(RD_KAFKA_RESP_ERR_INVALID_RECORD, false, 1),
	    "invalid record: for good");
	ok(consumer_dl_refused_for_good(RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION, true, 1),
	    "bad topic name: for good");
	ok(!consumer_dl_refused_for_good(
	       RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, true, CONSUMER_DL_MISSING_TOPIC_TRIES - 1),
	    "a missing topic is retried a while");
	ok(consumer_dl_refused_for_good(
	       RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, false, CONSUMER_DL_MISSING_TOPIC_TRIES),
	    "a topic still missing after the retries: for good");
	ok(!consumer_dl_refused_for_good(RD_KAFKA_RESP_ERR__QUEUE_FULL, true, 1000),
	    "queue full is never for good");
	ok(!consumer_dl_refused_for_good(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, false, 1000),
	    "a timeout is never for good");
	ok(!consumer_dl_refused_for_good(RD_KAFKA_RESP_ERR__PURGE_INFLIGHT, false, 1000),
	    "a purge by a rebuilt producer is never for good");
	ok(!consumer_dl_refused_for_good(RD_KAFKA_RESP_ERR__FATAL, true, 1000),
	    "a producer in a fatal state is never for good (it is rebuilt)");
	ok(!consumer_dl_refused_for_good(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, false, 1000),
	    "not enough replicas is never for good");
}

static void
test_document(void)
{
	static const unsigned char framed[] = {0x00, 0x00, 0x0f, 0x42, 0x3f, 0x00, 0xff, 0xfe};
	rd_kafka_headers_t *h = rd_kafka_headers_new(3);
	struct consumer_refused r = {
	    .error = "schema id 999999: unknown schema id",
	    .kafka_err = RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
	    .dead_letter_topic = "events.dead.letter",
	    .topic = "events.raw",
	    .partition = 2,
	    .offset = 12345,
	    .publish_ms = INT64_C(1700000000123),
	    .key = "11111111-1111-4111-8111-111111111111",
	    .keylen = 36,
	    .headers = h,
	    .value = framed,
	    .len = sizeof(framed),
	};
	char *doc, *again;
	size_t len = 0, len2 = 0;
	cJSON *j, *hs;

	rd_kafka_header_add(h, "trace", -1, "abc", -1);
	rd_kafka_header_add(h, "bin", -1, "\x01\xff", 2);
	rd_kafka_header_add(h, "none", -1, NULL, 0);
	doc = consumer_refused_json(&r, &len);
	ok(doc != NULL && len == strlen(doc), "document built");
	is_str(doc,
	    "{\"error\":\"schema id 999999: unknown schema id\","
	    "\"kafkaError\":\"Broker: Message size too large\","
	    "\"kafkaErrorCode\":\"MSG_SIZE_TOO_LARGE\","
	    "\"deadLetterTopic\":\"events.dead.letter\","
	    "\"sourceTopic\":\"events.raw\",\"sourcePartition\":2,\"sourceOffset\":12345,"
	    "\"publishTime\":\"2023-11-14T22:13:20.123Z\","
	    "\"key\":\"11111111-1111-4111-8111-111111111111\","
	    "\"headers\":[{\"name\":\"trace\",\"value\":\"abc\"},"
	    "{\"name\":\"bin\",\"valueBase64\":\"Af8=\"},"
	    "{\"name\":\"none\",\"value\":null}],"
	    "\"valueBase64\":\"AAAPQj8A//4=\"}",
	    "document text: binary value and header value as base64");
	again = consumer_refused_json(&r, &len2);
	ok(again != NULL && len2 == len && memcmp(doc, again, len) == 0,
	    "the same record gives the same bytes (a replay rewrites the object unchanged)");
	free(doc);
	free(again);

	/* Text values stay text; no key, no headers, no timestamp. */
	r.key = NULL;
	r.headers = NULL;
	r.publish_ms = -1;
	r.value = "{\"data\": \"caf\xc3\xa9\"}";
	r.len = strlen(r.value);
	r.kafka_err = RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
	doc = consumer_refused_json(&r, &len);
	j = doc != NULL ? cJSON_Parse(doc) : NULL;
	ok(j != NULL, "second document is JSON");
	ok(cJSON_IsNull(cJSON_GetObjectItem(j, "key")), "no key: null");
	ok(cJSON_IsNull(cJSON_GetObjectItem(j, "publishTime")), "no timestamp: null");
	hs = cJSON_GetObjectItem(j, "headers");
	ok(cJSON_IsArray(hs) && cJSON_GetArraySize(hs) == 0, "no headers: empty list");
	ok(cJSON_IsString(cJSON_GetObjectItem(j, "value")) &&
		strcmp(cJSON_GetObjectItem(j, "value")->valuestring, r.value) == 0 &&
		cJSON_GetObjectItem(j, "valueBase64") == NULL,
	    "UTF-8 value kept as text, byte for byte");
	is_str(cJSON_GetStringValue(cJSON_GetObjectItem(j, "kafkaErrorCode")),
	    "TOPIC_AUTHORIZATION_FAILED", "Kafka's refusal named");
	cJSON_Delete(j);
	free(doc);

	/* A NUL inside is not text a JSON string can hold. */
	r.value = "a\0b";
	r.len = 3;
	doc = consumer_refused_json(&r, &len);
	ok(doc != NULL && strstr(doc, "\"valueBase64\":\"YQBi\"") != NULL,
	    "a value with a NUL goes as base64");
	free(doc);
	rd_kafka_headers_destroy(h);
}

int
main(void)
{
	/* Blocks are aligned on N, so a replay from any offset rebuilds the
	 * same objects. */
	is_int(consumer_block_first(0, 500), 0, "offset 0 starts block 0");
	is_int(consumer_block_last(0, 500), 499, "block 0 ends at 499");
	is_int(consumer_block_first(499, 500), 0, "offset 499 is in block 0");
	is_int(consumer_block_first(500, 500), 500, "offset 500 starts block 1");
	is_int(consumer_block_last(777, 500), 999, "offset 777 is in block [500, 999]");
	is_int(consumer_block_first(123456789012LL, 1000), 123456789000LL, "large offsets");
	is_int(consumer_block_first(7, 1), 7, "N = 1: one offset a block");
	is_int(consumer_block_last(7, 1), 7, "N = 1: block ends where it starts");
	for (int64_t o = 0; o < 2000; o += 37) {
		int64_t f = consumer_block_first(o, 40), l = consumer_block_last(o, 40);

		if (!(f <= o && o <= l && l - f == 39 && f % 40 == 0)) {
			ok(0, "block arithmetic holds for offset %lld", (long long)o);
			return tap_done();
		}
	}
	ok(1, "every offset lies in its own aligned block of N");

	ok(!consumer_should_pause(false, 100, 100), "at the limit: keep going");
	ok(consumer_should_pause(false, 101, 100), "over the limit: pause");
	ok(consumer_should_pause(true, 60, 100), "paused, above half: stay paused");
	ok(consumer_should_pause(true, 50, 100), "paused, at half: stay paused");
	ok(!consumer_should_pause(true, 49, 100), "paused, below half: resume");
	ok(!consumer_should_pause(false, 0, 1), "empty never pauses");

	test_verdict();
	test_document();
	return tap_done();
}
