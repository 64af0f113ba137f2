/* t/testfam/testfam.c: the test-only family's descriptor, the whole of
 * what a family needs besides its .proto. */
#include "testfam.h"

#include "testfam.pb-c.h"

static const struct codec_field testfam_fields[] = {
    {"deviceId", NULL, CODEC_KIND_UUID, CODEC_F_REQUIRED, NULL, NULL},
    {"takenAt", NULL, CODEC_KIND_TIMESTAMP, CODEC_F_REQUIRED, NULL, NULL},
    {"value", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL, NULL},
    {"meta.unit", NULL, CODEC_KIND_PLAIN, CODEC_F_REQUIRED, NULL, NULL},
};

static const struct codec_column testfam_columns[] = {
    {"taken_at", CODEC_COL_TIMESTAMPTZ, "takenAt"},
    {"device_id", CODEC_COL_UUID, "deviceId"},
    {"correlation_id", CODEC_COL_UUID, "metadata.correlationId"},
    {"unit", CODEC_COL_TEXT, "meta.unit"},
    {"data", CODEC_COL_JSONB, ""},
};

const struct family family_testfam = {
    .name = "testfam",
    .proto = "(see t/testfam/testfam.proto)",
    .subject = "test.readings-value",
    .raw_topic = "test.readings",
    .invalid_topic = "test.readings.invalid",
    .codec =
	{
	    .name = "testfam",
	    .message = &collectord__testfam__v1__reading__descriptor,
	    .fields = testfam_fields,
	    .nfields = sizeof(testfam_fields) / sizeof(testfam_fields[0]),
	    .extra_field = "extra",
	    .original_ids_path = NULL,
	    .table = "readings",
	    .columns = testfam_columns,
	    .ncolumns = sizeof(testfam_columns) / sizeof(testfam_columns[0]),
	    .partition_column = "taken_at",
	},
};
