#!/usr/bin/env bash
# t/it_enrich.sh: events posted to /collect land once in PostgreSQL and S3,
# with their metadata; hand-made bad records go to the dead-letter topic.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

P="it-enrich-$$"
make_topics "$P"
start_daemon enrich COLLECTORD_TOPICS_RAW="$P.raw" COLLECTORD_TOPICS_DEAD_LETTER="$P.dlq" \
	COLLECTORD_ENRICH_GROUP_ID="$P" COLLECTORD_ENRICH_FLUSH_EVENTS=50 COLLECTORD_ENRICH_FLUSH_MS=300
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "collectord never became ready: $(body)"

make_events 3000 "$T_DIR/sent.jsonl"
post_events "$T_DIR/sent.jsonl" "$URL" "$T_DIR/resp.jsonl"
is "$(grep -c null "$T_DIR/resp.jsonl")" 0 "every batch answered 200"
is "$(accepted "$T_DIR/resp.jsonl" | wc -l)" 2000 "2000 of 3000 events accepted"
check_landed "$P" "$T_DIR/sent.jsonl" "$T_DIR/resp.jsonl"

# Daily partitions were made on demand for both days.
is "$(psql "$COLLECTORD_PG_CONNINFO" -At -c "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass AND inhrelid::regclass::text IN ('events_20261120','events_20261121')")" 2 \
	"partitions events_20261120 and events_20261121 exist"
# One request's events from any one of its correlationIds.
c1=$(jq -r 'select(. != null) | .events[1].correlationId' "$T_DIR/resp.jsonl" | head -n 1)
b1=$(jq -r 'select(. != null) | [.events[] | select(.status == "accepted") | .correlationId] | sort | join(",")' "$T_DIR/resp.jsonl" | head -n 1)
is "$(psql "$COLLECTORD_PG_CONNINFO" -At -c "SELECT string_agg(correlation_id::text, ',' ORDER BY correlation_id) FROM events_of_request('$c1')")" \
	"$b1" "events_of_request returns exactly the request's events"

# Hand-made records: an unknown schema id, and a corrupt payload.
sid=$(curl -s "$COLLECTORD_REGISTRY_URL/subjects/events.raw-value/versions/latest" | jq .id)
"$KAFKATOOL" produce "$P.raw" 11111111-1111-4111-8111-111111111111 "00000f423f000a0362616e" >/dev/null
ok $? "produced a record with schema id 999999"
"$KAFKATOOL" produce "$P.raw" 22222222-2222-4222-8222-222222222222 "$(printf '00%08x00ffffffff' "$sid")" >/dev/null
ok $? "produced a record with a corrupt payload"
ok "$(wait_for 120 "[ \$($KAFKATOOL consume $P.dlq | jq -s 'map(select(.headers[\"source-topic\"] == \"$P.raw\")) | length') -ge 2 ]"; echo $?)" \
	"both reach the dead-letter topic"
"$KAFKATOOL" consume "$P.dlq" | jq -c "select(.headers[\"source-topic\"] == \"$P.raw\")" >"$T_DIR/dlq.jsonl"
jq -se 'map(select(.key == "11111111-1111-4111-8111-111111111111"))[0].headers.error | test("999999")' "$T_DIR/dlq.jsonl" >/dev/null
ok $? "unknown schema id: its reason names the id ($(jq -r 'select(.key | startswith("1111")) | .headers.error' "$T_DIR/dlq.jsonl"))"
jq -se 'map(select(.key == "22222222-2222-4222-8222-222222222222"))[0].headers.error | test("payload")' "$T_DIR/dlq.jsonl" >/dev/null
ok $? "corrupt payload: its reason says so ($(jq -r 'select(.key | startswith("2222")) | .headers.error' "$T_DIR/dlq.jsonl"))"
# ... and the partition went on: a new batch (events of their own: the
# first ones again would be duplicates) still lands.
make_events 3 "$T_DIR/three.jsonl" 3000
post_events "$T_DIR/three.jsonl" "$URL" "$T_DIR/resp2.jsonl"
accepted "$T_DIR/resp2.jsonl" >"$T_DIR/ids2"
ok "$(wait_for 120 "[ \$(pg_count $T_DIR/ids2) -ge 2 ]"; echo $?)" "events after the bad records still land"

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
is "$?" 0 "SIGTERM: exit 0"
T_PIDS=""
done_testing
