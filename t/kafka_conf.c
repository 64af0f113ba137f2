/* t/kafka_conf.c: one librdkafka configuration builder for every client. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "kafka_conf.h"
#include "tap.h"

/* The value of KEY in CONF ("" when unset or unknown). */
static const char *
get(rd_kafka_conf_t *conf, const char *key)
{
	static char v[512];
	size_t n = sizeof(v);

	if (rd_kafka_conf_get(conf, key, v, &n) != RD_KAFKA_CONF_OK)
		return "";
	return v;
}

/* The sample's commented [kafka] lines ("#key = value") are the
 * producer's defaults: what it shows is what one gets by leaving it out. */
static void
test_sample(void)
{
	const char *top = getenv("top_srcdir");
	char path[1024], line[512], err[512];
	rd_kafka_conf_t *conf = kafka_conf_new(NULL, KAFKA_PRODUCER, err, sizeof(err));
	bool in = false;
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/etc/collectord.conf.sample", top ? top : ".");
	if (!ok(conf != NULL && (f = fopen(path, "r")) != NULL, "sample config and producer"))
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char key[128], value[256];

		if (line[0] == '[')
			in = strcmp(line, "[kafka]\n") == 0;
		else if (in && sscanf(line, "#%127[a-z.] = %255s", key, value) == 2) {
			char name[512];

			snprintf(name, sizeof(name), "sample [kafka] #%s = %s is the default", key,
			    value);
			is_str(get(conf, key), value, name);
			n++;
		}
	}
	fclose(f);
	ok(n >= 4, "the sample shows the producer's defaults (%d)", n);
	rd_kafka_conf_destroy(conf);
}

int
main(void)
{
	static const char ini[] = "[kafka]\n"
				  "bootstrap.servers = b1:9092\n"
				  "linger.ms = 50\n"
				  "acks = 1\n"
				  "enable.auto.offset.store = true\n"
				  "security.protocol = SASL_SSL\n"
				  "sasl.mechanisms = PLAIN\n"
				  "sasl.username = u\n"
				  "client.id = mine\n"
				  "[enrich]\n"
				  "group_id = g1\n";
	char err[512] = "";
	struct config *cfg = config_parse(ini, "t", false, err, sizeof(err));
	rd_kafka_conf_t *conf;

	if (!ok(cfg != NULL, "the configuration parses"))
		return tap_done();

	conf = kafka_conf_new(cfg, KAFKA_PRODUCER, err, sizeof(err));
	ok(conf != NULL, "producer configuration");
	is_str(get(conf, "linger.ms"), "50", "producer: [kafka] overrides a soft default");
	is_str(get(conf, "message.timeout.ms"), "10000", "producer: soft default kept");
	is_str(get(conf, "acks"), "-1", "producer: acks=all whatever [kafka] says");
	is_str(get(conf, "enable.idempotence"), "true", "producer: idempotence forced");
	is_str(get(conf, "security.protocol"), "sasl_ssl", "producer: SASL settings reach it");
	rd_kafka_conf_destroy(conf);

	conf = kafka_conf_new(cfg, KAFKA_CONSUMER, err, sizeof(err));
	ok(conf != NULL, "consumer configuration");
	is_str(get(conf, "group.id"), "g1", "consumer: group.id from [enrich]");
	is_str(get(conf, "enable.auto.offset.store"), "false",
	    "consumer: offsets stored by hand whatever [kafka] says");
	is_str(get(conf, "auto.offset.reset"), "smallest",
	    "consumer: from the earliest (librdkafka says smallest)");
	is_str(get(conf, "sasl.username"), "u", "consumer: SASL settings reach it");
	is_str(get(conf, "bootstrap.servers"), "b1:9092", "consumer: the brokers");
	rd_kafka_conf_destroy(conf);

	conf = kafka_conf_new(cfg, KAFKA_ADMIN, err, sizeof(err));
	ok(conf != NULL, "admin configuration");
	is_str(get(conf, "client.id"), "mine", "admin: [kafka] client.id wins over its default");
	is_str(get(conf, "security.protocol"), "sasl_ssl", "admin: SASL settings reach it");
	rd_kafka_conf_destroy(conf);

	conf = kafka_conf_new(NULL, KAFKA_ADMIN, err, sizeof(err));
	is_str(get(conf, "client.id"), "collectord-admin", "admin without [kafka]: its own name");
	rd_kafka_conf_destroy(conf);
	config_free(cfg);

	cfg = config_parse("[kafka]\nnot.a.property = 1\n", "t", false, err, sizeof(err));
	conf = kafka_conf_new(cfg, KAFKA_PRODUCER, err, sizeof(err));
	ok(conf == NULL, "an unknown [kafka] key fails");
	ok(strncmp(err, "[kafka] ", 8) == 0 && strstr(err, "not.a.property") != NULL,
	    "and says which: %s", err);
	config_free(cfg);
	ok(kafka_conf_producer_only("linger.ms") && !kafka_conf_producer_only("sasl.username"),
	    "producer-only keys");
	test_sample();
	return tap_done();
}
