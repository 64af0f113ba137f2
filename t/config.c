/* t/config.c: INI parsing: good files, every kind of bad file and its
 * message, environment overrides, and that the sample and the manual page
 * collectord.conf(5) document each key. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "family.h"
#include "tap.h"

static struct config *
parse(const char *text, char *err, size_t errlen)
{
	return config_parse(text, "test.conf", false, err, errlen);
}

static void
bad(const char *text, const char *want, const char *name)
{
	char err[512] = "";
	struct config *cfg = parse(text, err, sizeof(err));

	ok(cfg == NULL, "%s: rejected", name);
	is_str(err, want, name);
	config_free(cfg);
}

static void
test_defaults(void)
{
	char err[512];
	struct config *cfg = parse("", err, sizeof(err));

	if (!ok(cfg != NULL, "empty file parses"))
		return;
	is_str(cfg->listen_addr, "127.0.0.1", "default listen");
	is_int(cfg->listen_port, 8000, "default port");
	ok(cfg->role_collect && cfg->role_enrich && cfg->role_archive,
	    "collect, enrich and archive by default");
	is_str(cfg->archive_group_id, "collectord-enrich-archive",
	    "the archive's group: the enricher's with -archive");
	is_str(cfg->topic_raw, "", "[topics] raw: empty by default");
	ok(family_config_defaults(cfg, err, sizeof(err)) == 0,
	    "the default family fills what is empty");
	is_str(cfg->default_family, "holded", "the default family is the table's first");
	is_str(cfg->topic_raw, "events.raw", "default raw topic: the default family's");
	is_str(cfg->topic_dead_letter, "events.dead.letter", "default dead-letter topic");
	is_str(cfg->registry_subject, "events.raw-value", "default subject");
	is_str(config_kafka_get(cfg, "bootstrap.servers"), "127.0.0.1:9092",
	    "default bootstrap.servers");
	is_int(cfg->max_body_bytes, 1048576, "default max_body_bytes");
	ok(cfg->pg_copy, "rows go in by COPY by default");
	config_free(cfg);
}

static void
test_good(void)
{
	char err[512];
	struct config *cfg = parse("# comment\n"
				   "; another\n"
				   "\n"
				   "[server]\n"
				   "  port = 9100  \n"
				   "roles = enrich\n"
				   "api_keys = a,b\n"
				   "[kafka]\n"
				   "bootstrap.servers = k1:9092,k2:9092\n"
				   "linger.ms=20\n"
				   "[s3]\n"
				   "endpoint = http://s3.example:9000\n"
				   "[pg]\n"
				   "conninfo = host=db port=5432 dbname=x\n"
				   "insert = unnest\n",
	    err, sizeof(err));

	if (!ok(cfg != NULL, "good file parses"))
		return;
	is_int(cfg->listen_port, 9100, "port trimmed and read");
	ok(!cfg->role_collect && cfg->role_enrich, "roles = enrich");
	is_str(cfg->api_keys, "a,b", "api_keys");
	is_str(config_kafka_get(cfg, "bootstrap.servers"), "k1:9092,k2:9092",
	    "kafka key overrides our default");
	is_str(config_kafka_get(cfg, "linger.ms"), "20", "kafka key passed through");
	is_str(cfg->s3_endpoint, "http://s3.example:9000", "s3 endpoint");
	ok(!cfg->pg_copy, "[pg] insert = unnest");
	is_str(cfg->pg_conninfo, "host=db port=5432 dbname=x", "value keeps its '='");
	config_free(cfg);
}

static void
test_bad(void)
{
	bad("[server]\nport = 8000\nport = 8001\n", "test.conf:3: [server] port given twice",
	    "duplicate key");
	bad("[nope]\n", "test.conf:1: unknown section [nope]", "unknown section");
	bad("[server\n", "test.conf:1: malformed section header", "unclosed header");
	bad("[server] x\n", "test.conf:1: malformed section header", "junk after header");
	bad("port = 1\n", "test.conf:1: key \"port\" outside any section", "key outside section");
	bad("[server]\nport\n", "test.conf:2: expected \"key = value\"", "no equals sign");
	bad("[server]\n= 5\n", "test.conf:2: empty key", "empty key");
	bad("[server]\nprot = 5\n", "test.conf:2: unknown key \"prot\" in [server]", "unknown key");
	bad("[server]\nport = eighty\n", "test.conf:2: [server] port: \"eighty\" is not an integer",
	    "not an integer");
	bad("[server]\nport = 70000\n",
	    "test.conf:2: [server] port: 70000 is out of range 0..65535", "out of range");
	bad("[server]\nport = 80x\n", "test.conf:2: [server] port: \"80x\" is not an integer",
	    "trailing junk in number");
	bad("[server]\nroles = collect,store\n",
	    "test.conf: [server] roles: unknown role \"store\" (expected collect, enrich, archive)",
	    "unknown role");
	bad("[server]\nroles = ,\n", "test.conf: [server] roles: no role given", "no role");
	bad("[server]\nlog_level = loud\n",
	    "test.conf: [server] log_level: \"loud\" is not one of debug, info, warn, error",
	    "bad log level");
	bad("[pg]\ninsert = bulk\n", "test.conf: [pg] insert: \"bulk\" is not copy or unnest",
	    "bad insert mode");
	bad("[server]\nmax_body_bytes = 100\nmax_decompressed_bytes = 10\n",
	    "test.conf: [server] max_decompressed_bytes (10) is smaller than max_body_bytes (100)",
	    "decompressed limit below body limit");
}

/* [family.NAME] sections: keys over the family's own defaults. */
static void
test_families(void)
{
	char err[512] = "";
	struct config *cfg = parse("[family.holded]\n"
				   "raw_topic = t.raw\n"
				   "port = 9001\n"
				   "[family.other_1]\n"
				   "subject = s-value\n",
	    err, sizeof(err));
	const struct config_family *f;

	if (!ok(cfg != NULL, "family sections parse: %s", err))
		return;
	is_int((long long)cfg->nfamilies, 2, "two family sections");
	f = config_family(cfg, "holded");
	ok(f != NULL && strcmp(f->raw_topic, "t.raw") == 0 && f->port == 9001,
	    "[family.holded] raw_topic and port");
	ok(f != NULL && strcmp(f->invalid_topic, "") == 0 && strcmp(f->subject, "") == 0,
	    "keys not given keep their defaults (empty: the family's own)");
	f = config_family(cfg, "other_1");
	ok(f != NULL && strcmp(f->subject, "s-value") == 0 && f->port == 0,
	    "a second family section");
	ok(config_family(cfg, "nope") == NULL, "no section, no family entry");
	config_free(cfg);

	bad("[family.Holded]\n", "test.conf:1: unknown section [family.Holded]",
	    "family names are lower case");
	bad("[family.]\n", "test.conf:1: unknown section [family.]", "a family name is needed");
	bad("[family.holded]\ntopic = x\n", "test.conf:2: unknown key \"topic\" in [family.holded]",
	    "unknown family key");
	bad("[family.holded]\nport = 1\nport = 2\n",
	    "test.conf:3: [family.holded] port given twice", "family key given twice");
	bad("[family.holded]\nport = 70000\n",
	    "test.conf:2: [family.holded] port: 70000 is out of range 0..65535",
	    "family port out of range");

	/* The default family's names: its section, then [topics], then its own. */
	cfg = parse("[topics]\nraw = a\ndead_letter = d\n[family.holded]\nraw_topic = b\n", err,
	    sizeof(err));
	ok(cfg != NULL && family_config_defaults(cfg, err, sizeof(err)) == 0, "settle families");
	is_str(
	    cfg ? cfg->topic_raw : NULL, "b", "[family.holded] raw_topic wins over [topics] raw");
	is_str(cfg ? cfg->topic_dead_letter : NULL, "d", "[topics] wins over the descriptor");
	is_str(cfg ? cfg->registry_subject : NULL, "events.raw-value", "else the descriptor's own");
	config_free(cfg);
	cfg = parse("[family.nope]\nport = 1\n", err, sizeof(err));
	ok(cfg != NULL && family_config_defaults(cfg, err, sizeof(err)) == -1,
	    "an unknown family is refused once the families are settled");
	is_str(err, "[family.nope]: no such event family", "and says which");
	config_free(cfg);
	cfg = parse("[server]\ndefault_family = nope\n", err, sizeof(err));
	ok(cfg != NULL && family_config_defaults(cfg, err, sizeof(err)) == -1,
	    "an unknown default family is refused");
	is_str(err, "[server] default_family: no such event family \"nope\"", "and says which");
	config_free(cfg);

	/* Which families are served, and what each one's section ends up with. */
	cfg = parse("[pg]\nsql_dir = /usr/share/collectord/sql/\n", err, sizeof(err));
	ok(cfg != NULL && family_config_defaults(cfg, err, sizeof(err)) == 0,
	    "no [server] families: every family is served");
	f = cfg ? family_served(cfg, 0) : NULL;
	ok(f != NULL && f->served && f->family == family_find("holded"),
	    "the table's first is served first");
	is_str(f ? f->sql_dir : NULL, "/usr/share/collectord/schemas/holded/sql",
	    "a family's SQL sits beside [pg] sql_dir, in schemas/NAME/sql");
	is_str(f ? f->raw_topic : NULL, "events.raw", "its section holds the settled topic");
	is_str(f ? f->subject : NULL, "events.raw-value", "and subject");
	is_str(f ? f->table : NULL, "events", "and table, the descriptor's");
	config_free(cfg);
	cfg = parse(
	    "[server]\nfamilies = holded\n[family.holded]\nsql_dir = /x\ntable = holded_events\n",
	    err, sizeof(err));
	ok(cfg != NULL && family_config_defaults(cfg, err, sizeof(err)) == 0,
	    "[server] families = holded");
	ok(cfg && family_served(cfg, 0) != NULL && family_served(cfg, 1) == NULL,
	    "serves that one only");
	is_str(cfg ? family_served(cfg, 0)->sql_dir : NULL, "/x", "[family.NAME] sql_dir wins");
	is_str(
	    cfg ? family_served(cfg, 0)->table : NULL, "holded_events", "[family.NAME] table wins");
	config_free(cfg);
	cfg = parse("", err, sizeof(err));
	ok(cfg != NULL && family_config_defaults(cfg, err, sizeof(err)) == 0, "streams: defaults");
	for (size_t i = 0; cfg != NULL && family_served(cfg, i) != NULL; i++) {
		const struct config_family *fc = family_served(cfg, i);

		if (strcmp(fc->name, "clickstream") == 0) {
			is_str(fc->enriched_topic, "acme.clickstream.latest.events",
			    "clickstream's enriched topic by default");
			is_str(fc->enriched_subject, "acme.clickstream.latest.events-value",
			    "its subject: <topic>-value");
			is_str(fc->daily_topic, "acme.clickstream.unique.users",
			    "clickstream's daily topic by default");
		} else {
			is_str(
			    fc->enriched_topic, "", "holded, retail: no enriched topic by default");
			is_str(fc->daily_topic, "", "holded, retail: no daily topic");
		}
	}
	config_free(cfg);
	cfg = parse("[family.holded]\nenriched_topic = events.enriched\n"
		    "[family.clickstream]\nenriched_topic = none\ndaily_topic = none\n"
		    "[family.retail]\nenriched_topic = r.e\nenriched_subject = s\n",
	    err, sizeof(err));
	ok(cfg != NULL && family_config_defaults(cfg, err, sizeof(err)) == 0, "streams: set");
	for (size_t i = 0; cfg != NULL && family_served(cfg, i) != NULL; i++) {
		const struct config_family *fc = family_served(cfg, i);

		if (strcmp(fc->name, "holded") == 0) {
			is_str(fc->enriched_topic, "events.enriched", "holded turns one on");
			is_str(fc->enriched_subject, "events.enriched-value", "with its subject");
		} else if (strcmp(fc->name, "clickstream") == 0) {
			is_str(fc->enriched_topic, "", "none turns clickstream's off");
			is_str(fc->enriched_subject, "", "and its subject");
			is_str(fc->daily_topic, "", "none turns the daily topic off");
		} else {
			is_str(fc->enriched_subject, "s", "enriched_subject wins");
		}
	}
	config_free(cfg);
	cfg = parse("[family.holded]\ndaily_topic = x\n", err, sizeof(err));
	ok(cfg != NULL && family_config_defaults(cfg, err, sizeof(err)) == -1,
	    "a daily topic for a family without a daily count is refused");
	is_str(err, "[family.holded] daily_topic: the family keeps no daily count", "and says why");
	config_free(cfg);
	cfg = parse("[server]\nfamilies = holded, nope\n", err, sizeof(err));
	ok(cfg != NULL && family_config_defaults(cfg, err, sizeof(err)) == -1,
	    "an unknown name in [server] families is refused");
	is_str(err, "[server] families: no such event family \"nope\"", "and says which");
	config_free(cfg);
	cfg = parse("[server]\nport = 8000\n[family.holded]\nport = 8000\n", err, sizeof(err));
	ok(cfg != NULL && family_config_defaults(cfg, err, sizeof(err)) == -1,
	    "a family port equal to [server] port is refused");
	is_str(err, "[family.holded] port: 8000 is [server] port too", "and says which");
	config_free(cfg);

	setenv("COLLECTORD_FAMILY_HOLDED_PORT", "9002", 1);
	setenv("COLLECTORD_FAMILY_OTHER_1_INVALID_TOPIC", "o.invalid", 1);
	setenv("COLLECTORD_FAMILY_HOLDED_ENRICHED_SUBJECT", "e-value", 1);
	cfg = config_parse("[family.holded]\nport = 9001\n", "env.conf", true, err, sizeof(err));
	if (ok(cfg != NULL, "family env overrides parse: %s", err)) {
		ok(config_family(cfg, "holded")->port == 9002,
		    "COLLECTORD_FAMILY_HOLDED_PORT beats the file");
		f = config_family(cfg, "other_1");
		ok(f != NULL && strcmp(f->invalid_topic, "o.invalid") == 0,
		    "COLLECTORD_FAMILY_OTHER_1_INVALID_TOPIC: a name with '_', a key with '_'");
		ok(strcmp(config_family(cfg, "holded")->enriched_subject, "e-value") == 0 &&
			config_family(cfg, "holded_enriched") == NULL,
		    "COLLECTORD_FAMILY_HOLDED_ENRICHED_SUBJECT: the longest key that ends it");
	}
	config_free(cfg);
	setenv("COLLECTORD_FAMILY_HOLDED_PORT", "many", 1);
	cfg = config_parse(NULL, "env.conf", true, err, sizeof(err));
	ok(cfg == NULL && strstr(err, "COLLECTORD_FAMILY_HOLDED_PORT") != NULL,
	    "a bad family env value names the variable: %s", err);
	config_free(cfg);
	unsetenv("COLLECTORD_FAMILY_HOLDED_PORT");
	unsetenv("COLLECTORD_FAMILY_OTHER_1_INVALID_TOPIC");
	unsetenv("COLLECTORD_FAMILY_HOLDED_ENRICHED_SUBJECT");
}

static void
test_env(void)
{
	char err[512];
	struct config *cfg;

	setenv("COLLECTORD_S3_SECRET_KEY", "from-env", 1);
	setenv("COLLECTORD_SERVER_PORT", "8123", 1);
	setenv("COLLECTORD_KAFKA_BROKERS", "b:1", 1);
	setenv("COLLECTORD_KAFKA_QUEUE_BUFFERING_MAX_MESSAGES", "7", 1);
	setenv("COLLECTORD_KAFKA_SASL_PASSWORD", "from-env", 1);
	cfg = config_parse("[s3]\nsecret_key = from-file\n[kafka]\nsasl.password = file\n",
	    "env.conf", true, err, sizeof(err));
	if (ok(cfg != NULL, "env overrides parse")) {
		is_str(cfg->s3_secret_key, "from-env", "env beats the file");
		is_int(cfg->listen_port, 8123, "env sets a number");
		is_str(
		    config_kafka_get(cfg, "bootstrap.servers"), "b:1", "COLLECTORD_KAFKA_BROKERS");
		is_str(config_kafka_get(cfg, "queue.buffering.max.messages"), "7",
		    "COLLECTORD_KAFKA_<KEY>: '_' is '.'");
		is_str(config_kafka_get(cfg, "sasl.password"), "from-env",
		    "... and beats the file's [kafka] key");
		ok(config_kafka_get(cfg, "brokers") == NULL, "BROKERS is bootstrap.servers only");
	}
	unsetenv("COLLECTORD_KAFKA_QUEUE_BUFFERING_MAX_MESSAGES");
	unsetenv("COLLECTORD_KAFKA_SASL_PASSWORD");
	config_free(cfg);
	setenv("COLLECTORD_SERVER_PORT", "x", 1);
	cfg = config_parse("", "env.conf", true, err, sizeof(err));
	ok(cfg == NULL, "bad env value rejected");
	is_str(err, "[server] port: \"x\" is not an integer (from COLLECTORD_SERVER_PORT)",
	    "bad env value names the variable");
	config_free(cfg);
	unsetenv("COLLECTORD_S3_SECRET_KEY");
	unsetenv("COLLECTORD_SERVER_PORT");
	unsetenv("COLLECTORD_KAFKA_BROKERS");
}

/* The archive role alone, its group from [enrich]'s or its own. */
static void
test_archive(void)
{
	char err[512];
	struct config *cfg = parse("[server]\nroles = archive\n[enrich]\ngroup_id = g\n"
				   "[archive]\ntopics_file =\nflush_events = 7\n",
	    err, sizeof(err));

	if (!ok(cfg != NULL, "roles = archive parses"))
		return;
	ok(!cfg->role_collect && !cfg->role_enrich && cfg->role_archive, "roles = archive");
	is_str(cfg->archive_group_id, "g-archive", "archive group follows [enrich] group_id");
	is_str(cfg->archive_topics_file, "", "topics_file may be empty");
	is_int(cfg->archive_flush_events, 7, "[archive] flush_events");
	config_free(cfg);
	cfg = parse("[archive]\ngroup_id = mine\n", err, sizeof(err));
	if (ok(cfg != NULL, "[archive] group_id parses"))
		is_str(cfg->archive_group_id, "mine", "an [archive] group_id of its own is kept");
	config_free(cfg);
}

/* The whole of the file NAME of the source tree, or NULL. */
static char *
slurp(const char *name)
{
	const char *top = getenv("top_srcdir");
	char path[1024], *text;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", top ? top : ".", name);
	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)n + 1);
	if (text != NULL && fread(text, 1, (size_t)n, f) != (size_t)n)
		text[0] = '\0';
	fclose(f);
	return text;
}

/* The shipped sample documents every key with its default, and parses. */
static void
test_sample(void)
{
	const char *section, *key, *def;
	char err[512], *text;
	struct config *cfg;

	if (!ok((text = slurp("etc/collectord.conf.sample")) != NULL, "sample config exists"))
		return;
	for (size_t i = 0; config_key_at(i, &section, &key, &def); i++) {
		char line[512], hdr[64];
		const char *in = NULL;

		snprintf(hdr, sizeof(hdr), "[%s]\n", section);
		snprintf(line, sizeof(line), *def ? "\n%s = %s\n" : "\n%s =%s\n", key, def);
		/* Installed paths are shown as $(datadir)/... */
		if (strncmp(def, DATADIR "/", strlen(DATADIR) + 1) == 0)
			snprintf(line, sizeof(line), "\n%s = $(datadir)%s\n", key,
			    def + strlen(DATADIR));
		if ((in = strstr(text, hdr)) != NULL)
			in = strstr(in, line);
		ok(in != NULL, "sample documents [%s] %s = %s", section, key, def);
	}
	/* The $(datadir) placeholders are the only lines that are not
	 * literal defaults; the rest must parse as is. */
	for (char *p = strstr(text, " = $(datadir)"); p != NULL;
	     p = strstr(p + 1, " = $(datadir)")) {
		char *bol = p;

		while (bol > text && bol[-1] != '\n')
			bol--;
		bol[0] = '#';
	}
	cfg = config_parse(text, "sample", false, err, sizeof(err));
	ok(cfg != NULL, "sample parses");
	if (cfg == NULL)
		printf("# %s\n", err);
	config_free(cfg);
	free(text);
}

/* Where the page's section [NAME] starts (past its ".Ss [NAME]\&" line)
 * and ends (the next .Ss or .Sh), or false. */
static bool
page_section(const char *page, const char *name, const char **start, const char **end)
{
	char hdr[80];
	const char *s, *e, *sh;

	snprintf(hdr, sizeof(hdr), "\n.Ss [%s]\\&\n", name);
	if ((s = strstr(page, hdr)) == NULL)
		return false;
	s += strlen(hdr);
	e = strstr(s, "\n.Ss ");
	sh = strstr(s, "\n.Sh ");
	if (e == NULL || (sh != NULL && sh < e))
		e = sh;
	*start = s;
	*end = e != NULL ? e : s + strlen(s);
	return true;
}

/* The entry of KEY with default DEF in [SECTION] of the page, as
 * ".It Cm KEY Pq default Ql DEF" (".Pq default empty" for an empty
 * default); the build's data directory is the page's @datadir@. */
static bool
page_documents(const char *page, const char *section, const char *key, const char *def)
{
	const char *s, *e, *at;
	char line[512];

	if (!page_section(page, section, &s, &e))
		return false;
	if (*def == '\0')
		snprintf(line, sizeof(line), "\n.It Cm %s Pq default empty\n", key);
	else if (strncmp(def, DATADIR "/", strlen(DATADIR) + 1) == 0)
		snprintf(line, sizeof(line), "\n.It Cm %s Pq default Ql @datadir@%s\n", key,
		    def + strlen(DATADIR));
	else
		snprintf(line, sizeof(line), "\n.It Cm %s Pq default Ql %s\n", key, def);
	/* the section's text starts past its header's newline */
	at = strstr(s - 1, line);
	return at != NULL && at < e;
}

/* One test per key the page documents with a default in [SECTION]: it
 * must be a key of the table, not one removed or renamed in src/config.c. */
static void
page_no_stray_keys(const char *page, const char *section)
{
	const char *s, *e, *p, *key, *def, *sec;
	char name[128];

	if (!page_section(page, section, &s, &e))
		return;
	for (p = s - 1; (p = strstr(p, "\n.It Cm ")) != NULL && p < e; p++) {
		bool known = false;
		size_t n = strcspn(p + 8, " \n");

		if (strncmp(p + 8 + n, " Pq default ", 12) != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)n, p + 8);
		if (strcmp(section, "family.NAME") == 0) {
			for (size_t i = 0; config_family_key_at(i, &key, &def); i++)
				known = known || strcmp(key, name) == 0;
		} else {
			for (size_t i = 0; config_key_at(i, &sec, &key, &def); i++)
				known =
				    known || (strcmp(sec, section) == 0 && strcmp(key, name) == 0);
		}
		ok(known, "collectord.conf(5) [%s] %s is a key of src/config.c", section, name);
	}
}

/* collectord.conf(5) documents every key of the table, and of a family
 * section, with its default, under its section, and no other key. */
static void
test_manual(void)
{
	const char *section, *key, *def, *prev = "";
	char *page;

	if (!ok((page = slurp("man/collectord.conf.5.in")) != NULL,
		"man/collectord.conf.5.in exists"))
		return;
	for (size_t i = 0; config_key_at(i, &section, &key, &def); i++)
		ok(page_documents(page, section, key, def),
		    "collectord.conf(5) documents [%s] %s, default \"%s\"", section, key, def);
	for (size_t i = 0; config_family_key_at(i, &key, &def); i++)
		ok(page_documents(page, "family.NAME", key, def),
		    "collectord.conf(5) documents [family.NAME] %s, default \"%s\"", key, def);
	for (size_t i = 0; config_key_at(i, &section, &key, &def); i++) {
		if (strcmp(section, prev) != 0)
			page_no_stray_keys(page, section);
		prev = section;
	}
	page_no_stray_keys(page, "family.NAME");
	free(page);
}

int
main(void)
{
	test_defaults();
	test_good();
	test_bad();
	test_env();
	test_sample();
	test_manual();
	test_archive();
	test_families();
	return tap_done();
}
