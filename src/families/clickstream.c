/* families/clickstream.c: the web clickstream of the acme shop (seed 002):
 * its Protobuf message (schemas/clickstream/clickstream.proto,
 * collectord.clickstream.v1.Event), the rules beyond the proto, the
 * topics, the subject and the table.  schemas/clickstream/README.md is the
 * contract these rules implement. */
#include "families/families.h"

#include "clickstream.pb-c.h"

/* The integers are unsigned in the proto and say "not an integer" for a
 * string such as "1001", as the contract words it.  The optional fields
 * (customer_id, page, query, product, referrer, position) need a rule
 * only for that wording: null and absent leave them unset, "" is kept. */
static const struct codec_field clickstream_fields[] = {
    {"id", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED | CODEC_F_INTEGER_WORDS, NULL, NULL},
    {"type", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL, NULL},
    {"package_id", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL, NULL},
    {"event", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL, NULL},
    /* A browser or bot may send no User-Agent at all. */
    {"event.user_agent", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED | CODEC_F_MAY_BE_EMPTY, NULL,
	NULL},
    {"event.ip", NULL, CODEC_KIND_IP, CODEC_F_REQUIRED, NULL, NULL},
    {"event.customer_id", NULL, CODEC_KIND_PLAIN, CODEC_F_INTEGER_WORDS, NULL, NULL},
    {"event.timestamp", NULL, CODEC_KIND_TIMESTAMP, CODEC_F_REQUIRED, NULL, NULL},
    {"event.product", NULL, CODEC_KIND_PLAIN, CODEC_F_INTEGER_WORDS, NULL, NULL},
    {"event.position", NULL, CODEC_KIND_PLAIN, CODEC_F_INTEGER_WORDS, NULL, NULL},
};

/* schemas/clickstream/sql/001_clickstream_events.sql, in its column
 * order; "data" is the enriched event. */
static const struct codec_column clickstream_columns[] = {
    {"correlation_id", CODEC_COL_UUID, "metadata.correlationId"},
    {"id", CODEC_COL_BIGINT, "id"},
    {"type", CODEC_COL_TEXT, "type"},
    {"package_id", CODEC_COL_TEXT, "package_id"},
    {"user_agent", CODEC_COL_TEXT, "event.user_agent"},
    {"ip", CODEC_COL_INET, "event.ip"},
    {"customer_id", CODEC_COL_BIGINT, "event.customer_id"},
    {"event_timestamp", CODEC_COL_TIMESTAMPTZ, "event.timestamp"},
    {"page", CODEC_COL_TEXT, "event.page"},
    {"query", CODEC_COL_TEXT, "event.query"},
    {"referrer", CODEC_COL_TEXT, "event.referrer"},
    {"product", CODEC_COL_BIGINT, "event.product"},
    {"position", CODEC_COL_BIGINT, "event.position"},
    {"data", CODEC_COL_JSONB, ""},
};

/* Seed 002's unique users per day: schemas/clickstream/sql/002_unique_users.sql
 * keeps the count, the enricher publishes it. */
static const struct family_daily clickstream_unique_users = {
    .name = "uniqueUsers",
    .field = "event.customer_id",
    .window = "event.timestamp",
    .topic = "acme.clickstream.unique.users",
    .table = "clickstream_unique_users_daily",
    .count_column = "unique_users",
};

const struct family family_clickstream = {
    .name = "clickstream",
    .proto = family_clickstream_proto,
    .subject = "acme.clickstream.raw.events-value",
    .raw_topic = "acme.clickstream.raw.events",
    .type_column = "type",
    .invalid_topic = "acme.clickstream.invalid.events",
    .codec =
	{
	    .name = "clickstream",
	    .message = &collectord__clickstream__v1__event__descriptor,
	    .fields = clickstream_fields,
	    .nfields = sizeof(clickstream_fields) / sizeof(clickstream_fields[0]),
	    /* Only event (Event.Detail) has the map: unknown keys there are
	     * kept, anywhere else refused. */
	    .extra_field = "extra",
	    .original_ids_path = NULL,
	    .table = "clickstream_events",
	    .columns = clickstream_columns,
	    .ncolumns = sizeof(clickstream_columns) / sizeof(clickstream_columns[0]),
	    .partition_column = "event_timestamp",
	    .check = NULL,
	},
    .enriched_index = 1,
    .enriched_topic = "acme.clickstream.latest.events",
    .dedup_path = "id",
    .daily = &clickstream_unique_users,
};
