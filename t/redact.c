/* t/redact.c: what --check-config and error messages may show: librdkafka's
 * sensitive properties, libpq's password options in both conninfo forms,
 * userinfo in URLs, collectord's own secret keys, libpq's parse errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "redact.h"
#include "tap.h"

/* Compare and free. */
static void
is_own(char *got, const char *want, const char *name)
{
	is_str(got, want, name);
	free(got);
}

/* GOT must not contain SECRET anywhere; frees GOT. */
static void
hides(char *got, const char *secret, const char *name)
{
	ok(got != NULL && strstr(got, secret) == NULL, "%s: %s", name, got ? got : "(null)");
	free(got);
}

static void
test_kafka(void)
{
	/* librdkafka 2.0.2's _RK_SENSITIVE list and the ones added since */
	static const char *const sensitive[] = {
	    "ssl.key.location",
	    "ssl.key.password",
	    "ssl.key.pem",
	    "ssl_key",
	    "ssl.ca.pem",
	    "ssl.keystore.password",
	    "sasl.username",
	    "sasl.password",
	    "sasl.oauthbearer.config",
	    "sasl.oauthbearer.client.secret",
	    "sasl.oauthbearer.assertion.private.key.file",
	    "sasl.oauthbearer.assertion.private.key.passphrase",
	    "sasl.oauthbearer.assertion.private.key.pem",
	};
	static const char *const plain[] = {
	    "bootstrap.servers", "security.protocol", "sasl.mechanisms", "ssl.certificate.location",
	    "ssl.ca.location", "sasl.oauthbearer.client.id", "linger.ms",
	    "password.policy", /* contains, does not end in, "password" */
	};

	for (size_t i = 0; i < sizeof(sensitive) / sizeof(sensitive[0]); i++)
		ok(redact_kafka_key(sensitive[i]), "kafka %s is sensitive", sensitive[i]);
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		ok(!redact_kafka_key(plain[i]), "kafka %s is not", plain[i]);
	ok(redact_kafka_key("SASL.Password"), "case does not matter");
	ok(redact_kafka_key("sasl.oauthbearer.client.credentials.client.secret"),
	    "a name ending in .secret is sensitive (a newer alias)");
	ok(redact_kafka_key("some.future.password"), "a name ending in .password is sensitive");
	ok(!redact_kafka_key(NULL), "NULL key is not");

	is_own(redact_kafka_value("sasl.password", "hunter2"), REDACT_SET, "sasl.password masked");
	is_own(redact_kafka_value("sasl.username", "alice"), REDACT_SET, "sasl.username masked");
	is_own(redact_kafka_value("sasl.password", ""), "", "an empty secret shows empty");
	is_own(redact_kafka_value("linger.ms", "20"), "20", "a plain value shows");
	is_own(redact_kafka_value(
		   "sasl.oauthbearer.token.endpoint.url", "https://id:s3cr3t@idp.example/token"),
	    "https://id:(set)@idp.example/token", "a .url value loses its password");
}

static void
test_conninfo(void)
{
	char *s;

	is_own(redact_conninfo("host=db port=5432 user=app password=hunter2 dbname=events"),
	    "user=app password=(set) dbname=events host=db port=5432",
	    "key=value: password masked, the rest kept");
	hides(redact_conninfo("host=db password='hunter2 with spaces' user=app"), "hunter2",
	    "quoted password with spaces");
	hides(redact_conninfo("host=db password='hun\\'ter2' user=app"), "ter2",
	    "password with an escaped quote");
	is_own(redact_conninfo("host=db sslpassword=keypass sslkey=/k.pem"),
	    "host=db sslkey=/k.pem sslpassword=(set)", "sslpassword is libpq's too");
	is_own(redact_conninfo("postgresql://app:hunter2@db.example:5433/events?sslmode=require"),
	    "user=app password=(set) dbname=events host=db.example port=5433 sslmode=require",
	    "URI: userinfo password masked");
	hides(redact_conninfo("postgres://app:hunter2@db/events"), "hunter2", "postgres:// URI");
	hides(redact_conninfo("postgresql://db/events?user=app&password=hunter2"), "hunter2",
	    "URI query password");
	is_own(redact_conninfo("host=db application_name='my app' password="),
	    "password='' host=db application_name='my app'",
	    "values re-quoted, an empty password shown empty");
	is_own(redact_conninfo("host=db password=se cret"), REDACT_UNPARSABLE,
	    "unparsable key=value: nothing of it shown");
	is_own(redact_conninfo("postgresql://app:hun%zzter2@db/x"), REDACT_UNPARSABLE,
	    "unparsable URI: nothing of it shown");
	is_own(redact_conninfo(""), "", "empty conninfo");
	is_own(redact_conninfo(NULL), "", "NULL conninfo");

	/* the masked form is a conninfo libpq reads back to the same options */
	s = redact_conninfo("host=a,b port=1,2 user='x y' options='-c a=\\'b\\''");
	{
		char *err = NULL;
		PQconninfoOption *o = PQconninfoParse(s != NULL ? s : "", &err);
		const char *opt = NULL, *user = NULL;

		for (PQconninfoOption *p = o; p != NULL && p->keyword != NULL; p++) {
			if (strcmp(p->keyword, "options") == 0)
				opt = p->val;
			if (strcmp(p->keyword, "user") == 0)
				user = p->val;
		}
		ok(o != NULL && opt != NULL && strcmp(opt, "-c a='b'") == 0 && user != NULL &&
			strcmp(user, "x y") == 0,
		    "masked conninfo parses back: %s", s ? s : "(null)");
		PQconninfoFree(o);
		PQfreemem(err);
	}
	free(s);
}

static void
test_url(void)
{
	is_own(redact_url("http://user:pass@host:8085/apis"), "http://user:(set)@host:8085/apis",
	    "userinfo password masked");
	is_own(redact_url("https://user:p%40ss:word@host/"), "https://user:(set)@host/",
	    "password with an encoded @ and a colon");
	is_own(redact_url("http://u:p@x@host/"), "http://u:(set)@host/",
	    "the userinfo ends at the last @ of the authority");
	is_own(redact_url("http://host:9000/bucket@x"), "http://host:9000/bucket@x",
	    "an @ in the path is not userinfo");
	is_own(redact_url("http://user@host/"), "http://user@host/", "user alone kept");
	is_own(redact_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000", "no userinfo");
	is_own(redact_url("user:pass@host:9092"), "user:(set)@host:9092", "no scheme");
	is_own(redact_url(""), "", "empty URL");
	is_own(redact_url(NULL), "", "NULL URL");
}

static void
test_config_keys(void)
{
	is_own(redact_config_value("registry", "password", "hunter2"), REDACT_SET,
	    "[registry] password");
	is_own(
	    redact_config_value("s3", "secret_key", "minioadmin"), REDACT_SET, "[s3] secret_key");
	is_own(redact_config_value("server", "api_keys", "k1,k2"), REDACT_SET, "[server] api_keys");
	is_own(redact_config_value("server", "api_keys", ""), "", "[server] api_keys unset");
	is_own(redact_config_value("s3", "access_key", "minioadmin"), "minioadmin",
	    "[s3] access_key is an identifier, shown");
	is_own(redact_config_value("registry", "url", "http://reg:hunter2@registry:8085/"),
	    "http://reg:(set)@registry:8085/", "[registry] url");
	is_own(redact_config_value("s3", "endpoint", "http://ak:sk@minio:9000"),
	    "http://ak:(set)@minio:9000", "[s3] endpoint");
	is_own(redact_config_value("pg", "conninfo", "host=db password=hunter2"),
	    "password=(set) host=db", "[pg] conninfo");
	is_own(redact_config_value("server", "listen", "127.0.0.1"), "127.0.0.1", "a plain key");
	is_own(redact_config_value("server", "log_file", NULL), "", "NULL value");
}

static void
test_pq_message(void)
{
	char *err = NULL;
	PQconninfoOption *o = PQconninfoParse("host=db password=se cret", &err);

	ok(o == NULL && err != NULL && strstr(err, "cret") != NULL,
	    "libpq quotes the fragment it stumbled on");
	hides(redact_pq_message(err), "cret", "that fragment is hidden");
	PQfreemem(err);
	err = NULL;
	o = PQconninfoParse("postgresql://app:hun%zzter2@db/x", &err);
	hides(redact_pq_message(err), "hun", "a quoted URI is hidden");
	PQfreemem(err);
	is_own(redact_pq_message("missing \"=\" after \"cret\" in connection info string"),
	    "missing \"=\" after \"...\" in connection info string",
	    "punctuation kept, the fragment replaced");
	is_own(redact_pq_message("invalid sslmode value: \"sslmode\""),
	    "invalid sslmode value: \"sslmode\"", "an option name kept");
	is_own(redact_pq_message("missing \"=\" after \"#$%\" in connection info string"),
	    "missing \"=\" after \"...\" in connection info string",
	    "a fragment of punctuation is hidden too");
	is_own(redact_pq_message("broken \"tail"), "broken \"...", "an unpaired quote");
	is_own(redact_pq_message(NULL), "", "NULL message");
}

int
main(void)
{
	test_kafka();
	test_conninfo();
	test_url();
	test_config_keys();
	test_pq_message();
	return tap_done();
}
