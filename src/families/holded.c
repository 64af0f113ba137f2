/* families/holded.c: the Holded messenger events (seed 001): their Protobuf
 * message (schemas/holded/holded.proto, collectord.v1.Event), the producers' long
 * stamp keys, the rules beyond the proto, the topics, the subject and the
 * table.  Nothing outside this file names them. */
#include "families/families.h"

#include "holded.pb-c.h"

#define STAMP_CORE "X-Message-Stamp-Holded\\Core\\Messaging\\Messenger\\Stamp\\"
#define STAMP_SHARED "X-Message-Stamp-Holded\\Shared\\Infrastructure\\Messenger\\Stamp\\"

static const struct codec_field holded_fields[] = {
    {"data", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL, NULL},
    {"data.id", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL, NULL},
    {"data.amount", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL, NULL},
    {"attributes", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL, NULL},
    {"attributes.type", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL, NULL},
    {"attributes.targetSubscription", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL, NULL},
    {"attributes.timestampStamp", STAMP_CORE "TimestampStamp", CODEC_KIND_TIMESTAMP,
	CODEC_F_REQUIRED | CODEC_F_STAMP, "dispatchedAt", NULL},
    {"attributes.messageIdStamp", STAMP_CORE "MessageIdStamp", CODEC_KIND_UUID,
	CODEC_F_REQUIRED | CODEC_F_STAMP, "id", NULL},
    {"attributes.newContextStamp", STAMP_SHARED "NewContextStamp", CODEC_KIND_PLAIN,
	CODEC_F_REQUIRED | CODEC_F_STAMP, NULL, NULL},
    {"attributes.newContextStamp.accountId", NULL, CODEC_KIND_UUID, CODEC_F_REQUIRED, NULL, NULL},
    {"attributes.newContextStamp.userId", NULL, CODEC_KIND_UUID, CODEC_F_REQUIRED, NULL, NULL},
    {"attributes.amplitudeTrackStamp", STAMP_SHARED "AmplitudeTrackStamp", CODEC_KIND_PLAIN,
	CODEC_F_STAMP, NULL, NULL},
    {"attributes.amplitudeTrackStamp.id", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL, NULL},
};

/* The seed's table, in its column order; "data" is the enriched event. */
static const struct codec_column holded_columns[] = {
    {"timestamp_stamp", CODEC_COL_TIMESTAMPTZ, "attributes.timestampStamp"},
    {"message_id_stamp", CODEC_COL_UUID, "attributes.messageIdStamp"},
    {"correlation_id", CODEC_COL_UUID, "metadata.correlationId"},
    {"type", CODEC_COL_TEXT, "attributes.type"},
    {"target_subscription", CODEC_COL_TEXT, "attributes.targetSubscription"},
    {"new_context_account_id", CODEC_COL_UUID, "attributes.newContextStamp.accountId"},
    {"new_context_user_id", CODEC_COL_UUID, "attributes.newContextStamp.userId"},
    {"data", CODEC_COL_JSONB, ""},
};

const struct family family_holded = {
    .name = "holded",
    .proto = family_holded_proto,
    .subject = "events.raw-value",
    .raw_topic = "events.raw",
    .type_column = "type",
    .invalid_topic = "events.dead.letter",
    /* its keys predate the other families: no prefix */
    .s3_prefix = "",
    .codec =
	{
	    .name = "holded",
	    .message = &collectord__v1__event__descriptor,
	    .fields = holded_fields,
	    .nfields = sizeof(holded_fields) / sizeof(holded_fields[0]),
	    .extra_field = "extra",
	    .original_ids_path = "attributes.originalIds",
	    .table = "events",
	    .columns = holded_columns,
	    .ncolumns = sizeof(holded_columns) / sizeof(holded_columns[0]),
	    .partition_column = "timestamp_stamp",
	},
    /* Enriched, the sixth message of holded.proto; no topic unless
     * [family.holded] enriched_topic names one (events.enriched, say). */
    .enriched_index = 5,
    .enriched_topic = NULL,
    .dedup_path = "attributes.messageIdStamp",
    .daily = NULL,
};
