-- 001_retail.sql: the retail family's tables (seed 004, TradeMaster): one
-- row per transaction in retail_transactions, one row per line in
-- retail_transaction_lines, both partitioned by day of the transaction's
-- occurredAt with the same bounds and names, so that a day of both is
-- dropped (or detached and archived) together:
--
--   DROP TABLE retail_transaction_lines_20261120, retail_transactions_20261120;
--
-- Idempotent: applied in name order at every (re)connect, like sql/.
--
-- What the sink writes is three columns of retail_transactions:
-- occurred_at (the partition key, from occurredAt), correlation_id and data
-- (the enriched event).  Everything else is derived from data inside
-- PostgreSQL, so the columns can never disagree with the event they come
-- from, and the family's descriptor needs no column kinds beyond those the
-- Holded table uses:
--   * the transaction's scalars are stored generated columns;
--   * the lines are inserted by a statement trigger from the rows the
--     INSERT really added.  A replayed or resent transaction adds no row
--     (ON CONFLICT DO NOTHING), so it adds no lines either: the two tables
--     stay consistent without a second statement in the sink, and in the
--     same transaction as the row they belong to.
--
-- Dedup: the unique index on (transaction_id, occurred_at) stores each
-- transaction once, also when a till sends it again after a 503 (the
-- resend gets a new correlationId but keeps its transactionId and
-- occurredAt).  The one on (correlation_id, occurred_at) mirrors the Holded
-- table and serves lookups by request.  Both contain the partition key, as
-- a unique index on a partitioned table must.

CREATE TABLE IF NOT EXISTS retail_transactions (
	occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
	correlation_id UUID NOT NULL,
	data JSONB NOT NULL,
	transaction_id UUID NOT NULL
		GENERATED ALWAYS AS ((data ->> 'transactionId')::uuid) STORED,
	-- The store's own calendar day: the date as the till wrote it, in
	-- local time (occurredAt must carry its UTC offset).  Revenue "per
	-- day" means this, not the UTC day of occurred_at: a sale at 22:30 in
	-- Sao Paulo is 01:30 UTC the next day.  make_date() because a text to
	-- date cast depends on DateStyle and cannot be a generated column.
	business_date DATE NOT NULL
		GENERATED ALWAYS AS (make_date(
		    substr(data ->> 'occurredAt', 1, 4)::integer,
		    substr(data ->> 'occurredAt', 6, 2)::integer,
		    substr(data ->> 'occurredAt', 9, 2)::integer)) STORED,
	store_id TEXT NOT NULL
		GENERATED ALWAYS AS (data #>> '{store,id}') STORED,
	franchise_id TEXT NOT NULL
		GENERATED ALWAYS AS (data #>> '{store,franchiseId}') STORED,
	country TEXT NOT NULL
		GENERATED ALWAYS AS (data #>> '{store,country}') STORED,
	employee_id TEXT NOT NULL
		GENERATED ALWAYS AS (data ->> 'employeeId') STORED,
	-- NULL for a walk-in sale.
	customer_id TEXT
		GENERATED ALWAYS AS (data ->> 'customerId') STORED,
	currency TEXT NOT NULL
		GENERATED ALWAYS AS (data ->> 'currency') STORED,
	-- NULL only when total is zero.
	payment_method TEXT
		GENERATED ALWAYS AS (data ->> 'paymentMethod') STORED,
	-- In the currency's units ("64.70" BRL is 64.70), exact: numeric keeps
	-- the scale as sent, which is the currency's ISO 4217 digits.  Sum
	-- amounts per currency only.
	total NUMERIC NOT NULL
		GENERATED ALWAYS AS ((data ->> 'total')::numeric) STORED,
	line_count INTEGER NOT NULL
		GENERATED ALWAYS AS (jsonb_array_length(data -> 'lines')) STORED,
	CONSTRAINT retail_transactions_total_check CHECK (total >= 0)
)
PARTITION BY RANGE (occurred_at);

CREATE UNIQUE INDEX IF NOT EXISTS retail_transactions_transaction_id_occurred_at_key
	ON retail_transactions (transaction_id, occurred_at);
CREATE UNIQUE INDEX IF NOT EXISTS retail_transactions_correlation_id_occurred_at_key
	ON retail_transactions (correlation_id, occurred_at);
-- "this store (employee, customer) over these days": the time condition
-- prunes partitions, the index finds the store's rows in each.
CREATE INDEX IF NOT EXISTS retail_transactions_store_id_occurred_at_idx
	ON retail_transactions (store_id, occurred_at);
CREATE INDEX IF NOT EXISTS retail_transactions_employee_id_occurred_at_idx
	ON retail_transactions (employee_id, occurred_at);
CREATE INDEX IF NOT EXISTS retail_transactions_customer_id_occurred_at_idx
	ON retail_transactions (customer_id, occurred_at)
	WHERE customer_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS retail_transaction_lines (
	-- The transaction's occurred_at: the same partition key and bounds.
	occurred_at TIMESTAMP WITH TIME ZONE NOT NULL,
	correlation_id UUID NOT NULL,
	transaction_id UUID NOT NULL,
	line_number INTEGER NOT NULL,
	kind TEXT NOT NULL,
	item_id TEXT NOT NULL,
	item_kind TEXT NOT NULL,
	item_format TEXT,
	item_title TEXT,
	quantity INTEGER NOT NULL,
	unit_price NUMERIC NOT NULL,
	-- What the line adds to the transaction's total.
	amount NUMERIC NOT NULL GENERATED ALWAYS AS (quantity * unit_price) STORED,
	-- Rentals only.
	due_at TIMESTAMP WITH TIME ZONE,
	-- Returns only: the rental line this return closes.
	return_of_transaction_id UUID,
	return_of_line_number INTEGER,
	CONSTRAINT retail_transaction_lines_quantity_check CHECK (quantity > 0),
	CONSTRAINT retail_transaction_lines_unit_price_check CHECK (unit_price >= 0)
)
PARTITION BY RANGE (occurred_at);

-- One row per line of each transaction; the trigger's ON CONFLICT DO
-- NOTHING relies on it.  correlation_id leads so that a transaction's
-- lines are one range of the index.
CREATE UNIQUE INDEX IF NOT EXISTS retail_transaction_lines_key
	ON retail_transaction_lines (correlation_id, line_number, occurred_at);
CREATE INDEX IF NOT EXISTS retail_transaction_lines_item_id_occurred_at_idx
	ON retail_transaction_lines (item_id, occurred_at);
-- Open rentals: rentals by due date, and the returns that close them.
CREATE INDEX IF NOT EXISTS retail_transaction_lines_due_at_idx
	ON retail_transaction_lines (due_at)
	WHERE kind = 'rental';
CREATE INDEX IF NOT EXISTS retail_transaction_lines_return_of_idx
	ON retail_transaction_lines (return_of_transaction_id, return_of_line_number)
	WHERE kind = 'return';

-- Text of an RFC 3339 timestamp as the collector accepts it, as
-- timestamptz: PostgreSQL takes no ',' before the fraction and rounds
-- digits past the microsecond where the collector truncates them.  The
-- collector requires a UTC offset, so TimeZone never matters here; STABLE
-- all the same, because the cast is.
CREATE OR REPLACE FUNCTION retail_timestamptz(t text)
RETURNS timestamptz
LANGUAGE sql
STABLE
PARALLEL SAFE
RETURNS NULL ON NULL INPUT
AS $$
	SELECT regexp_replace(t, '[.,]([0-9]{1,6})[0-9]*', '.\1')::timestamptz
$$;

-- Lines of the transactions one INSERT added (and only those: rows that
-- ON CONFLICT skipped are not in the transition table).
CREATE OR REPLACE FUNCTION retail_transactions_add_lines()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	INSERT INTO retail_transaction_lines (occurred_at, correlation_id,
	    transaction_id, line_number, kind, item_id, item_kind, item_format,
	    item_title, quantity, unit_price, due_at, return_of_transaction_id,
	    return_of_line_number)
	SELECT n.occurred_at, n.correlation_id, n.transaction_id,
	       (l ->> 'lineNumber')::integer, l ->> 'kind',
	       l #>> '{item,id}', l #>> '{item,kind}', l #>> '{item,format}',
	       l #>> '{item,title}', (l ->> 'quantity')::integer,
	       (l ->> 'unitPrice')::numeric, retail_timestamptz(l ->> 'dueAt'),
	       (l #>> '{returnOf,transactionId}')::uuid,
	       (l #>> '{returnOf,lineNumber}')::integer
	  FROM added n
	 CROSS JOIN LATERAL jsonb_array_elements(n.data -> 'lines') AS l
	    ON CONFLICT DO NOTHING;
	RETURN NULL;
END
$$;

-- CREATE TRIGGER has no IF NOT EXISTS (and OR REPLACE only from
-- PostgreSQL 14): create it when missing.  The files run under the
-- sink's advisory lock, so two enrichers never race here.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_trigger
	                WHERE tgname = 'retail_transactions_add_lines'
	                  AND tgrelid = 'retail_transactions'::regclass) THEN
		CREATE TRIGGER retail_transactions_add_lines
			AFTER INSERT ON retail_transactions
			REFERENCING NEW TABLE AS added
			FOR EACH STATEMENT
			EXECUTE FUNCTION retail_transactions_add_lines();
	END IF;
END
$$;

-- retail_transactions_ensure_partition(ts) makes sure the partitions of
-- both tables holding TS exist and returns the transactions' one:
-- retail_transactions_YYYYMMDD and retail_transaction_lines_YYYYMMDD for the
-- UTC day of TS, bounds [day 00:00 UTC, next day 00:00 UTC).  The sink calls
-- it, inside the batch's transaction and before the batch's INSERT, for
-- every day of the batch it has not ensured yet on its connection.  Each
-- partition is collectord_ensure_daily_partition()'s (sql/000_partitions.sql,
-- applied before this file), race-safe between enrichers and without a lock
-- when it exists.  The transactions' partition is made first, then the
-- lines', in every caller: the same lock order as the INSERT and its
-- trigger.

CREATE OR REPLACE FUNCTION retail_transactions_ensure_partition(ts timestamptz)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
	part text := collectord_ensure_daily_partition('retail_transactions', ts);
BEGIN
	PERFORM collectord_ensure_daily_partition('retail_transaction_lines', ts);
	RETURN part;
END
$$;
