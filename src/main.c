/* main.c: command line of the collectord daemon. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autoconfig.h"
#include "config.h"
#include "family.h"
#include "daemon.h"
#include "log.h"
#include "redact.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: collectord [--config FILE] [--check-config] [--families] [--version]\n"
	    "\n"
	    "  -c, --config FILE   INI configuration (default %s if it exists)\n"
	    "  -t, --check-config  parse the configuration, print it, exit 0 or 1\n"
	    "  -F, --families      print the event families served, one a line, and exit\n"
	    "  -V, --version       print the version and exit\n"
	    "  -h, --help          this text\n"
	    "\n"
	    "Environment COLLECTORD_<SECTION>_<KEY> overrides a key of the file\n"
	    "(COLLECTORD_S3_SECRET_KEY, COLLECTORD_PG_CONNINFO, ...);\n"
	    "COLLECTORD_KAFKA_BROKERS sets [kafka] bootstrap.servers.\n",
	    CONFIG_DEFAULT_PATH);
}

/* Print the effective settings.  What is secret is decided in redact.c,
 * from libpq's and librdkafka's own lists where they have one. */
static void
print_config(const struct config *cfg)
{
	const char *section, *key, *def;
	char *shown;

	(void)def;
	printf("configuration ok\n");
	for (size_t i = 0; config_key_at(i, &section, &key, &def); i++) {
		shown = redact_config_value(section, key, config_value(cfg, i));
		printf("[%s] %s = %s\n", section, key, shown != NULL ? shown : "(not shown)");
		free(shown);
	}
	for (size_t i = 0; i < cfg->nkafka; i++) {
		shown = redact_kafka_value(cfg->kafka[i].key, cfg->kafka[i].value);
		printf(
		    "[kafka] %s = %s\n", cfg->kafka[i].key, shown != NULL ? shown : "(not shown)");
		free(shown);
	}
	for (size_t i = 0; i < cfg->nfamilies; i++) {
		const struct config_family *f = &cfg->families[i];

		if (!f->served)
			continue;
		printf("[family.%s] raw_topic = %s\n[family.%s] invalid_topic = %s\n"
		       "[family.%s] subject = %s\n[family.%s] sql_dir = %s\n"
		       "[family.%s] table = %s\n[family.%s] port = %lld\n",
		    f->name, f->raw_topic, f->name, f->invalid_topic, f->name, f->subject, f->name,
		    f->sql_dir, f->name, f->table, f->name, (long long)f->port);
	}
}

/* The served families as a table for scripts (tab-separated, a header
 * line first): what each one writes where, after the configuration. */
static void
print_families(const struct config *cfg)
{
	const struct config_family *f;
	char buf[80];

	printf("family\traw_topic\tinvalid_topic\tsubject\ttable\ts3_prefix\tport\t"
	       "enriched_topic\tdaily_topic\tdedup_key\n");
	for (size_t i = 0; (f = family_served(cfg, i)) != NULL; i++)
		printf("%s\t%s\t%s\t%s\t%s\t%s\t%lld\t%s\t%s\t%s\n", f->name, f->raw_topic,
		    f->invalid_topic, f->subject, f->table,
		    family_s3_prefix(f->family, buf, sizeof(buf)), (long long)f->port,
		    f->enriched_topic, f->daily_topic,
		    f->family->dedup_path != NULL ? f->family->dedup_path : "-");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, 't'},
	    {"families", no_argument, NULL, 'F'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	struct config *cfg;
	enum log_level level = LOG_INFO;
	bool check = false, families = false;
	char err[1024];
	int c;

	while ((c = getopt_long(argc, argv, "c:tFVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'F':
			families = true;
			break;
		case 'V':
			printf("collectord %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (path == NULL) {
		FILE *f = fopen(CONFIG_DEFAULT_PATH, "r");

		if (f != NULL) {
			fclose(f);
			path = CONFIG_DEFAULT_PATH;
		}
	}
	if ((cfg = config_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "collectord: %s\n", err);
		return 1;
	}
	(void)log_parse_level(cfg->log_level, &level); /* checked by config */
	if (family_config_defaults(cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "collectord: %s\n", err);
		config_free(cfg);
		return 1;
	}
	if (families) {
		print_families(cfg);
		config_free(cfg);
		return 0;
	}
	if (check) {
		print_config(cfg);
		config_free(cfg);
		return 0;
	}
	log_set_level(level);
	if (log_open(cfg->log_file) == -1) {
		fprintf(stderr, "collectord: cannot open log file %s\n", cfg->log_file);
		config_free(cfg);
		return 1;
	}
	return daemon_run(path, cfg);
}
