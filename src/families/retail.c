/* families/retail.c: TradeMaster's store transactions (seed 004): their
 * Protobuf message (schemas/retail/retail.proto,
 * collectord.retail.v1.Transaction), the rules of each field beyond the
 * proto (pass 1, as value hooks the codec runs), the rules across fields
 * (pass 2, the check hook), the topics, the subject and the table.
 * schemas/retail/README.md, "Rules", is the contract implemented here,
 * word for word and in its order. */
#include "families/families.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retail.pb-c.h"

/* Ids other than the transaction ids: indexed, and a btree entry has a
 * size limit. */
#define RETAIL_ID_MAX 64
/* Digits before the point of an amount: below 10^12 units, so below 10^15
 * minor units with at most 3 decimals, and a line (x 9999) below 10^19,
 * within a uint64_t. */
#define RETAIL_AMOUNT_DIGITS 12
/* Largest quantity and line number: a scanned barcode is not a quantity. */
#define RETAIL_COUNT_MAX 9999

/* ------------------------------------------------------------ pass 1 */

static bool
in_set(const char *text, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(text, *set) == 0)
			return true;
	return false;
}

static const char *
retail_offset(const cJSON *v, char *detail, size_t detaillen)
{
	bool has_offset = false;
	int64_t us;

	(void)detail;
	(void)detaillen;
	/* The codec has parsed it already; only the offset is new. */
	if (timefmt_parse_offset(v->valuestring, &us, &has_offset) && !has_offset)
		return "no UTC offset";
	return NULL;
}

static const char *
retail_id(const cJSON *v, char *detail, size_t detaillen)
{
	(void)detail;
	(void)detaillen;
	return strlen(v->valuestring) > RETAIL_ID_MAX ? "longer than 64 bytes" : NULL;
}

static const char *
retail_country(const cJSON *v, char *detail, size_t detaillen)
{
	const char *s = v->valuestring;

	(void)detail;
	(void)detaillen;
	/* A shape only: the country is master data of the store. */
	if (s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && s[2] == '\0')
		return NULL;
	return "not an ISO 3166-1 alpha-2 code";
}

static int
currency_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct retail_currency *)elem)->code);
}

/* The currency CODE of currencies.txt (case-sensitive), or NULL. */
static const struct retail_currency *
currency_find(const char *code)
{
	return bsearch(code, retail_currencies, retail_ncurrencies, sizeof(retail_currencies[0]),
	    currency_cmp);
}

static const char *
retail_currency(const cJSON *v, char *detail, size_t detaillen)
{
	(void)detail;
	(void)detaillen;
	return currency_find(v->valuestring) != NULL ? NULL : "not an active ISO 4217 code";
}

static const char *
retail_payment(const cJSON *v, char *detail, size_t detaillen)
{
	static const char *const set[] = {
	    "cash", "debit_card", "credit_card", "pix", "voucher", "store_credit", NULL};

	(void)detail;
	(void)detaillen;
	return in_set(v->valuestring, set)
		   ? NULL
		   : "not one of cash, debit_card, credit_card, pix, voucher, store_credit";
}

static const char *
retail_line_kind(const cJSON *v, char *detail, size_t detaillen)
{
	static const char *const set[] = {"sale", "rental", "return", NULL};

	(void)detail;
	(void)detaillen;
	return in_set(v->valuestring, set) ? NULL : "not one of sale, rental, return";
}

static const char *
retail_item_kind(const cJSON *v, char *detail, size_t detaillen)
{
	static const char *const set[] = {"book", "film", "series", NULL};

	(void)detail;
	(void)detaillen;
	return in_set(v->valuestring, set) ? NULL : "not one of book, film, series";
}

static const char *
retail_format(const cJSON *v, char *detail, size_t detaillen)
{
	static const char *const set[] = {"hardcover", "paperback", "dvd", "blu_ray", NULL};

	(void)detail;
	(void)detaillen;
	return in_set(v->valuestring, set) ? NULL : "not one of hardcover, paperback, dvd, blu_ray";
}

/* The digits of the decimal amount S before (*INT_DIGITS) and after
 * (*FRAC_DIGITS, 0 without a point) its point, and its sign: false when S
 * is not one ("0" or [1-9][0-9]*, then optionally '.' and digits). */
static bool
amount_shape(const char *s, bool *negative, size_t *int_digits, size_t *frac_digits)
{
	*negative = *s == '-';
	s += *negative;
	*int_digits = strspn(s, "0123456789");
	if (*int_digits == 0 || (s[0] == '0' && *int_digits > 1))
		return false;
	s += *int_digits;
	*frac_digits = 0;
	if (*s == '.') {
		*frac_digits = strspn(s + 1, "0123456789");
		if (*frac_digits == 0)
			return false;
		s += 1 + *frac_digits;
	}
	return *s == '\0';
}

static const char *
retail_amount(const cJSON *v, char *detail, size_t detaillen)
{
	size_t int_digits, frac_digits;
	bool negative;

	(void)detail;
	(void)detaillen;
	if (!amount_shape(v->valuestring, &negative, &int_digits, &frac_digits))
		return "not a decimal amount";
	if (negative)
		return "negative";
	if (int_digits > RETAIL_AMOUNT_DIGITS)
		return "out of range";
	return NULL;
}

/* Line numbers and quantities: a whole number from 1 to 9999, in this
 * family's words rather than the codec's generic integer ones. */
static const char *
retail_count(const cJSON *v, char *detail, size_t detaillen)
{
	double x = v->valuedouble;

	(void)detail;
	(void)detaillen;
	if (x < 1 || floor(x) != x)
		return "not a positive integer";
	if (x > RETAIL_COUNT_MAX)
		return "out of range";
	return NULL;
}

#define REQ CODEC_F_REQUIRED
#define NOT_EMPTY CODEC_F_NOT_EMPTY

static const struct codec_field retail_fields[] = {
    {"transactionId", NULL, CODEC_KIND_UUID, REQ, NULL, NULL},
    {"occurredAt", NULL, CODEC_KIND_TIMESTAMP, REQ, NULL, retail_offset},
    {"store", NULL, CODEC_KIND_PLAIN, REQ, NULL, NULL},
    {"store.id", NULL, CODEC_KIND_PLAIN, REQ, NULL, retail_id},
    {"store.franchiseId", NULL, CODEC_KIND_PLAIN, REQ, NULL, retail_id},
    {"store.country", NULL, CODEC_KIND_PLAIN, REQ, NULL, retail_country},
    {"employeeId", NULL, CODEC_KIND_PLAIN, REQ, NULL, retail_id},
    {"customerId", NULL, CODEC_KIND_PLAIN, NOT_EMPTY, NULL, retail_id},
    {"currency", NULL, CODEC_KIND_PLAIN, REQ, NULL, retail_currency},
    {"paymentMethod", NULL, CODEC_KIND_PLAIN, NOT_EMPTY, NULL, retail_payment},
    {"total", NULL, CODEC_KIND_PLAIN, REQ, NULL, retail_amount},
    {"lines", NULL, CODEC_KIND_PLAIN, REQ, NULL, NULL},
    {"lines.lineNumber", NULL, CODEC_KIND_PLAIN, REQ, NULL, retail_count},
    {"lines.kind", NULL, CODEC_KIND_PLAIN, REQ, NULL, retail_line_kind},
    {"lines.item", NULL, CODEC_KIND_PLAIN, REQ, NULL, NULL},
    {"lines.item.id", NULL, CODEC_KIND_PLAIN, REQ, NULL, retail_id},
    {"lines.item.kind", NULL, CODEC_KIND_PLAIN, REQ, NULL, retail_item_kind},
    {"lines.item.format", NULL, CODEC_KIND_PLAIN, NOT_EMPTY, NULL, retail_format},
    {"lines.item.title", NULL, CODEC_KIND_PLAIN, NOT_EMPTY, NULL, NULL},
    {"lines.quantity", NULL, CODEC_KIND_PLAIN, REQ, NULL, retail_count},
    {"lines.unitPrice", NULL, CODEC_KIND_PLAIN, REQ, NULL, retail_amount},
    {"lines.dueAt", NULL, CODEC_KIND_TIMESTAMP, NOT_EMPTY, NULL, retail_offset},
    {"lines.returnOf.transactionId", NULL, CODEC_KIND_UUID, REQ, NULL, NULL},
    {"lines.returnOf.lineNumber", NULL, CODEC_KIND_PLAIN, REQ, NULL, retail_count},
};

/* ------------------------------------------------------------ pass 2 */

/* True when the amount S (pass 1 took it) has the currency's digits. */
static bool
scale_ok(const char *s, const struct retail_currency *cur)
{
	size_t int_digits, frac_digits;
	bool negative;

	return amount_shape(s, &negative, &int_digits, &frac_digits) &&
	       frac_digits == (size_t)cur->digits;
}

/* The amount S, of the right scale, in minor units: its digits without
 * the point, below 10^15 by pass 1's bound. */
static uint64_t
minor_units(const char *s)
{
	uint64_t v = 0;

	for (; *s != '\0'; s++)
		if (*s != '.')
			v = v * 10 + (uint64_t)(*s - '0');
	return v;
}

static bool
scale_fail(struct codec_error *err, const char *path, const struct retail_currency *cur)
{
	return codec_error_set(err, path, "not the currency's number of decimal places",
	    "%s has %d", cur->code, cur->digits);
}

/* The formats a kind of item comes in, as the message words it. */
static bool
format_fits(const Collectord__Retail__V1__Item *item, const char **words)
{
	bool book = strcmp(item->kind, "book") == 0;

	*words = book				   ? "a book is hardcover or paperback"
		 : strcmp(item->kind, "film") == 0 ? "a film is dvd or blu_ray"
						   : "a series is dvd or blu_ray";
	if (book)
		return strcmp(item->format, "hardcover") == 0 ||
		       strcmp(item->format, "paperback") == 0;
	return strcmp(item->format, "dvd") == 0 || strcmp(item->format, "blu_ray") == 0;
}

/* Line I's own rules of pass 2 (4.1 to 4.5 of the contract). */
static bool
check_line(const Collectord__Retail__V1__Transaction *t, size_t i, int64_t occurred_us,
    const struct retail_currency *cur, struct codec_error *err)
{
	const Collectord__Retail__V1__Line *l = t->lines[i];
	bool rental = strcmp(l->kind, "rental") == 0, ret = strcmp(l->kind, "return") == 0;
	char path[64];
	const char *words;
	int64_t due_us;

	for (size_t j = 0; j < i; j++) {
		if (t->lines[j]->linenumber == l->linenumber) {
			snprintf(path, sizeof(path), "lines[%zu].lineNumber", i);
			return codec_error_set(
			    err, path, "duplicate line number", "lines[%zu] has it", j);
		}
	}
	if (l->item->format != NULL && !format_fits(l->item, &words)) {
		snprintf(path, sizeof(path), "lines[%zu].item.format", i);
		return codec_error_set(err, path, "not a format of its kind", "%s", words);
	}
	if (!scale_ok(l->unitprice, cur)) {
		snprintf(path, sizeof(path), "lines[%zu].unitPrice", i);
		return scale_fail(err, path, cur);
	}
	snprintf(path, sizeof(path), "lines[%zu].dueAt", i);
	if (rental && l->dueat == NULL)
		return codec_error_set(err, path, "required for a rental", NULL);
	if (!rental && l->dueat != NULL)
		return codec_error_set(err, path, "only for a rental", NULL);
	/* Instants, offsets applied, to the microsecond: "later" as text is
	 * not later in time across offsets. */
	if (rental && (!timefmt_parse(l->dueat, &due_us) || due_us <= occurred_us))
		return codec_error_set(err, path, "not after occurredAt", NULL);
	snprintf(path, sizeof(path), "lines[%zu].returnOf", i);
	if (ret && l->returnof == NULL)
		return codec_error_set(err, path, "required for a return", NULL);
	if (!ret && l->returnof != NULL)
		return codec_error_set(err, path, "only for a return", NULL);
	return true;
}

/* Pass 2, in the contract's order; pass 1 has checked every field, so
 * every required one is here and every amount, time and code is valid. */
static bool
retail_check(const ProtobufCMessage *m, const cJSON *event, struct codec_error *err)
{
	const Collectord__Retail__V1__Transaction *t =
	    (const Collectord__Retail__V1__Transaction *)m;
	const struct retail_currency *cur = currency_find(t->currency);
	uint64_t total, sum = 0;
	int64_t occurred_us;

	(void)event;
	/* Pass 1 made sure of both; said again rather than trusted blindly. */
	if (cur == NULL)
		return codec_error_set(err, "currency", "not an active ISO 4217 code", NULL);
	if (!timefmt_parse(t->occurredat, &occurred_us))
		return codec_error_set(err, "occurredAt", "not an RFC 3339 timestamp", NULL);
	if (t->customerid == NULL) {
		for (size_t i = 0; i < t->n_lines; i++)
			if (strcmp(t->lines[i]->kind, "rental") == 0)
				return codec_error_set(err, "customerId", "required for a rental",
				    "lines[%zu] is a rental", i);
	}
	if (t->paymentmethod == NULL && strspn(t->total, "0.") != strlen(t->total))
		return codec_error_set(
		    err, "paymentMethod", "required when the total is not zero", NULL);
	if (!scale_ok(t->total, cur))
		return scale_fail(err, "total", cur);
	for (size_t i = 0; i < t->n_lines; i++)
		if (!check_line(t, i, occurred_us, cur, err))
			return false;
	/* Once a partial sum passes the total (below 10^15) it cannot come
	 * back, so the sum never needs more than a uint64_t. */
	total = minor_units(t->total);
	for (size_t i = 0; i < t->n_lines && sum <= total; i++)
		sum += (uint64_t)t->lines[i]->quantity * minor_units(t->lines[i]->unitprice);
	if (sum != total)
		return codec_error_set(err, "total", "not the sum of the lines", NULL);
	return true;
}

/* ------------------------------------------------------------ the family */

/* The sink writes these three; retail_transactions derives every other
 * column, and retail_transaction_lines, from data (sql/001_retail.sql). */
static const struct codec_column retail_columns[] = {
    {"occurred_at", CODEC_COL_TIMESTAMPTZ, "occurredAt"},
    {"correlation_id", CODEC_COL_UUID, "metadata.correlationId"},
    {"data", CODEC_COL_JSONB, ""},
};

/* Every rule word the hooks of this file report, beyond the codec's own:
 * the other values rejections.rule and the metric's reason take. */
static const char *const retail_rules[] = {
    /* the value hooks */
    "no UTC offset",
    "longer than 64 bytes",
    "not an ISO 3166-1 alpha-2 code",
    "not an active ISO 4217 code",
    "not one of cash, debit_card, credit_card, pix, voucher, store_credit",
    "not one of sale, rental, return",
    "not one of book, film, series",
    "not one of hardcover, paperback, dvd, blu_ray",
    "not a decimal amount",
    "negative",
    "not a positive integer",
    /* the check hook (pass 2) */
    "required for a rental",
    "required when the total is not zero",
    "not the currency's number of decimal places",
    "duplicate line number",
    "not a format of its kind",
    "only for a rental",
    "not after occurredAt",
    "required for a return",
    "only for a return",
    "not the sum of the lines",
};

const struct family family_retail = {
    .name = "retail",
    .proto = family_retail_proto,
    .subject = "retail.transactions.raw-value",
    .raw_topic = "retail.transactions.raw",
    .invalid_topic = "retail.transactions.rejected",
    .codec =
	{
	    .name = "retail",
	    .message = &collectord__retail__v1__transaction__descriptor,
	    .fields = retail_fields,
	    .nfields = sizeof(retail_fields) / sizeof(retail_fields[0]),
	    /* One till writes to a contract made for it: unknown keys are
	     * refused everywhere, a misspelt optional key included. */
	    .extra_field = NULL,
	    .original_ids_path = "originalIds",
	    .table = "retail_transactions",
	    .columns = retail_columns,
	    .ncolumns = sizeof(retail_columns) / sizeof(retail_columns[0]),
	    .partition_column = "occurred_at",
	    .check = retail_check,
	    .rules = retail_rules,
	    .nrules = sizeof(retail_rules) / sizeof(retail_rules[0]),
	},
    /* Enriched, the sixth message of retail.proto; no topic unless
     * [family.retail] enriched_topic names one. */
    .enriched_index = 5,
    .enriched_topic = NULL,
    .dedup_path = "transactionId",
    .daily = NULL,
};
