#!/usr/bin/env bash
# t/it_rejections.sh: every record of the dead-letter topic becomes one row
# of table rejections: the collector's refusals with their path, rule,
# message and event, the enricher's with their origin, a value that is not
# JSON as bytes; and after a kill -9 and a restart none is missing or
# stored twice, and the committed offset reaches the topic's end.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

P="it-rej-$$"
make_topics "$P"
DAEMON_ENV="COLLECTORD_TOPICS_RAW=$P.raw COLLECTORD_TOPICS_DEAD_LETTER=$P.dlq COLLECTORD_ENRICH_GROUP_ID=$P COLLECTORD_ENRICH_FLUSH_EVENTS=10 COLLECTORD_ENRICH_FLUSH_MS=300"
# shellcheck disable=SC2086
start_daemon rej1 $DAEMON_ENV
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "collectord never became ready: $(body)"

# One valid event and three invalid ones: data.id of the wrong type, an
# accountId that is no id, the contract's own invalid example.
jq -c '[.[0],
	(.[0] | .data = {"id": 1}),
	(.[0] | .attributes["X-Message-Stamp-Holded\\Shared\\Infrastructure\\Messenger\\Stamp\\NewContextStamp"].accountId = "nope"),
	.[2]]' "$top_srcdir/t/data/collect-request.json" >"$T_DIR/batch1.json"
is "$(http_status "$URL/collect" --data-binary @"$T_DIR/batch1.json")" 200 "POST /collect: 200"
cp "$T_DIR/body" "$T_DIR/resp1.json"
is "$(jq -r '.accepted, .rejected' "$T_DIR/resp1.json" | paste -sd' ')" "1 3" "1 accepted, 3 rejected"

# rej_rows IDS-FILE: the rows of those correlationIds, tab-separated, in
# correlationId order.
rej_rows() {
	psql "$COLLECTORD_PG_CONNINFO" -q -At -F "$(printf '\t')" -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE want (c uuid);
\\copy want FROM '$1'
SELECT r.correlation_id, r.family, r.stage, coalesce(r.path, '<null>'), r.rule, r.message,
       r.event::text, r.event_bytes IS NULL, r.kafka_topic, r.kafka_partition,
       r.origin_topic IS NULL
  FROM rejections r JOIN want w ON r.correlation_id = w.c
 WHERE r.kafka_topic = '$P.dlq'
 ORDER BY r.correlation_id;
SQL
}
rej_sql() { psql "$COLLECTORD_PG_CONNINFO" -At -v ON_ERROR_STOP=1 -c "$1"; }

jq -r '.events[] | select(.status == "rejected") | .correlationId' "$T_DIR/resp1.json" | sort >"$T_DIR/ids1"
ok "$(wait_for 120 "[ \$(rej_rows $T_DIR/ids1 | wc -l) -ge 3 ]"; echo $?)" "the 3 refusals reached table rejections"
rej_rows "$T_DIR/ids1" >"$T_DIR/rows1.tsv"
is "$(wc -l <"$T_DIR/rows1.tsv")" 3 "one row each"

# Expected: from the response, which says the same as the dead letter.
for idx in 1 2 3; do
	cid=$(jq -r ".events[$idx].correlationId" "$T_DIR/resp1.json")
	msg=$(jq -r ".events[$idx].error" "$T_DIR/resp1.json")
	row=$(grep -F "$cid" "$T_DIR/rows1.tsv")
	is "$(printf '%s' "$row" | cut -f2,3)" "$(printf 'holded\tcollect')" "event $idx: family holded, stage collect"
	is "$(printf '%s' "$row" | cut -f6)" "$msg" "event $idx: message is the error ($msg)"
	is "$(printf '%s' "$row" | cut -f4)" "${msg%%: *}" "event $idx: path ${msg%%: *}"
	is "$(printf '%s' "$row" | cut -f5)" "${msg#*: }" "event $idx: rule ${msg#*: }"
	is "$(printf '%s' "$row" | cut -f7 | jq -cS .)" "$(jq -cS ".[$idx]" "$T_DIR/batch1.json")" \
		"event $idx: event is the JSON as sent"
	is "$(printf '%s' "$row" | cut -f8-11)" "$(printf 't\t%s\t0\tt' "$P.dlq")" \
		"event $idx: no event_bytes, kafka_topic $P.dlq, no origin"
done
# The exact words of the two hand-made refusals.
c1=$(jq -r '.events[1].correlationId' "$T_DIR/resp1.json")
c2=$(jq -r '.events[2].correlationId' "$T_DIR/resp1.json")
is "$(rej_sql "SELECT path || ' | ' || rule || ' | ' || message FROM rejections WHERE correlation_id = '$c1' AND kafka_topic = '$P.dlq'")" \
	"data.id | not a string | data.id: not a string" "data.id of the wrong type: path, rule, message"
is "$(rej_sql "SELECT path || ' | ' || rule || ' | ' || message FROM rejections WHERE correlation_id = '$c2' AND kafka_topic = '$P.dlq'")" \
	"attributes.newContextStamp.accountId | not a UUID, ULID or ObjectId | attributes.newContextStamp.accountId: not a UUID, ULID or ObjectId" \
	"a bad accountId: path, rule, message"
is "$(rej_sql "SELECT count(*) FROM rejections WHERE kafka_topic = '$P.dlq' AND correlation_id = '$(jq -r '.events[0].correlationId' "$T_DIR/resp1.json")'")" \
	0 "the accepted event is not a rejection"

# A record of the dead-letter topic that is not JSON: kept as bytes.
"$KAFKATOOL" produce "$P.dlq" 55555555-5555-4555-8555-555555555555 "00ff68656c6c6f" \
	"error=payload: not JSON" >/dev/null
ok $? "produced a dead letter whose value is not JSON"
# A raw record the enricher cannot decode: its dead letter says where it
# came from.
sid=$(curl -s "$COLLECTORD_REGISTRY_URL/subjects/events.raw-value/versions/latest" | jq .id)
"$KAFKATOOL" produce "$P.raw" 66666666-6666-4666-8666-666666666666 "$(printf '00%08x00ffffffff' "$sid")" >/dev/null
ok $? "produced a raw record with a corrupt payload"
ok "$(wait_for 120 "[ \$(rej_sql \"SELECT count(*) FROM rejections WHERE kafka_topic = '$P.dlq' AND correlation_id IN ('55555555-5555-4555-8555-555555555555', '66666666-6666-4666-8666-666666666666')\") -ge 2 ]"; echo $?)" \
	"both reached table rejections"
is "$(rej_sql "SELECT stage, coalesce(path, '<null>'), rule, message, event IS NULL, encode(event_bytes, 'hex') FROM rejections WHERE kafka_topic = '$P.dlq' AND correlation_id = '55555555-5555-4555-8555-555555555555'")" \
	"collect|<null>|not JSON|payload: not JSON|t|00ff68656c6c6f" "not JSON: event NULL, event_bytes the bytes, path NULL for payload"
raw_off=$("$KAFKATOOL" consume "$P.raw" | jq -r 'select(.key == "66666666-6666-4666-8666-666666666666") | "\(.partition)|\(.offset)"')
is "$(rej_sql "SELECT stage, coalesce(path, '<null>'), rule, origin_topic, origin_partition || '|' || origin_offset, message LIKE 'payload: %' FROM rejections WHERE kafka_topic = '$P.dlq' AND correlation_id = '66666666-6666-4666-8666-666666666666'")" \
	"enrich|<null>|undecodable record|$P.raw|$raw_off|t" "the enricher's refusal: stage enrich, its rule word, its origin"

# kill -9, then start again: what was written and not committed is read
# again and absorbed; new refusals still land.  First the enricher's own
# commit of the raw topic, so that it does not dead-letter 6666 twice.
ok "$(wait_for 60 "[ \$($KAFKATOOL committed $P $P.raw) -eq 2 ]"; echo $?)" \
	"the enricher committed both raw records"
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
T_PIDS=""
# shellcheck disable=SC2086
start_daemon rej2 $DAEMON_ENV
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "collectord did not become ready again: $(body)"
jq -c '[.[2], (.[0] | .data = {"id": 2})]' "$top_srcdir/t/data/collect-request.json" >"$T_DIR/batch2.json"
is "$(http_status "$URL/collect" --data-binary @"$T_DIR/batch2.json")" 200 "after the restart: POST /collect 200"
total=$("$KAFKATOOL" consume "$P.dlq" | wc -l)
is "$total" 7 "the dead-letter topic holds 7 records"
ok "$(wait_for 120 "[ \$(rej_sql \"SELECT count(*) FROM rejections WHERE kafka_topic = '$P.dlq'\") -ge $total ]"; echo $?)" \
	"all $total are rows"
is "$(rej_sql "SELECT count(*), count(DISTINCT kafka_offset), min(kafka_offset), max(kafka_offset) FROM rejections WHERE kafka_topic = '$P.dlq'")" \
	"$total|$total|0|$((total - 1))" "each offset exactly once, none missing"
is "$(rej_sql "SELECT count(*) - count(DISTINCT correlation_id) FROM rejections WHERE kafka_topic = '$P.dlq'")" \
	0 "no refusal stored twice"
ok "$(wait_for 60 "[ \$($KAFKATOOL committed $P-rejections $P.dlq) -eq $total ]"; echo $?)" \
	"group $P-rejections committed up to the end ($($KAFKATOOL committed "$P-rejections" "$P.dlq"))"
curl -s "$URL/metrics" >"$T_DIR/metrics"
ok "$(grep -q '^collectord_rejections_rows_total{family="holded"} [1-9]' "$T_DIR/metrics"; echo $?)" \
	"collectord_rejections_rows_total counts the rows per family"

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
is "$?" 0 "SIGTERM: exit 0"
T_PIDS=""
done_testing
