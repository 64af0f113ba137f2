#!/usr/bin/env bash
# t/it_collect.sh: POST /collect against real Kafka, registry and MinIO.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

P="it-collect-$$"
make_topics "$P"
OWN_PORT=$(free_port)
start_daemon collect COLLECTORD_SERVER_ROLES=collect COLLECTORD_FAMILY_HOLDED_PORT="$OWN_PORT" \
	COLLECTORD_TOPICS_RAW="$P.raw" COLLECTORD_TOPICS_DEAD_LETTER="$P.dlq" \
	COLLECTORD_SERVER_API_KEYS="k1,k2" COLLECTORD_SERVER_MAX_EVENTS=50 \
	COLLECTORD_SERVER_MAX_BODY_BYTES=65536 COLLECTORD_SERVER_MAX_DECOMPRESSED_BYTES=262144
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "collectord never became ready"
EXAMPLE="$top_srcdir/t/data/collect-request.json"
KEY="X-API-Key: k2"

# --- the contract's example: two valid events, one invalid
is "$(http_status "$URL/collect" -H "$KEY" -H 'Content-Type: application/json' --data-binary @"$EXAMPLE")" 200 "example batch: 200"
cp "$T_DIR/body" "$T_DIR/example.json"
is "$(json '[.accepted,.rejected] | @csv')" "2,1" "2 accepted, 1 rejected"
BATCH=$(json .batchId)
is "$(json '[.events[].status] | join(",")')" "accepted,accepted,rejected" "statuses by index"
is "$(json '.events[2].error')" "data.amount: not a number" "the rejection names the field and the rule"
prefix=$(echo "$BATCH" | cut -c1-28)
is "$(json "[.events[].correlationId | startswith(\"$prefix\")] | all")" true "correlationIds share the batch's first 12 bytes"
is "$(json '[.events[].correlationId[28:]] | join(",")')" "00000000,00000001,00000002" "last 4 bytes are the index"
is "$(echo "$BATCH" | cut -c15)" 7 "batch id is a UUIDv7"

# --- events.raw: keys, framing, log-append timestamps, schema id in the registry
"$KAFKATOOL" consume "$P.raw" >"$T_DIR/raw.jsonl"
is "$(wc -l <"$T_DIR/raw.jsonl" | tr -d ' ')" 2 "two records on the raw topic"
is "$(jq -r .key "$T_DIR/raw.jsonl" | sort | tr '\n' ,)" \
	"$(jq -r '[.events[0,1].correlationId] | sort | join(",")' "$T_DIR/example.json")," \
	"raw records keyed by correlationId"
is "$(jq -r .timestampType "$T_DIR/raw.jsonl" | sort -u)" LogAppendTime "raw records carry LogAppendTime"
hexes=$(jq -r .valueHex "$T_DIR/raw.jsonl")
magic=$(echo "$hexes" | cut -c1-2 | sort -u)
is "$magic" 00 "magic byte 0"
idx=$(echo "$hexes" | cut -c11-12 | sort -u)
is "$idx" 00 "message-index array is the single 0"
sid=$(( 0x$(echo "$hexes" | head -n 1 | cut -c3-10) ))
is "$(curl -s "$COLLECTORD_REGISTRY_URL/schemas/ids/$sid" | jq -r '(.schemaType // "AVRO") + " " + (.schema | contains("message Event") | tostring)')" \
	"PROTOBUF true" "schema id $sid resolves to our Protobuf schema"
curl -s "$COLLECTORD_REGISTRY_URL/subjects/events.raw-value/versions/latest" | jq -e ".id == $sid" >/dev/null
ok $? "schema id is the latest version of events.raw-value"

# --- events.dead.letter: original JSON, error and correlation-id headers
"$KAFKATOOL" consume "$P.dlq" >"$T_DIR/dlq.jsonl"
is "$(wc -l <"$T_DIR/dlq.jsonl" | tr -d ' ')" 1 "one record on the dead-letter topic"
is "$(jq -r '.headers.error' "$T_DIR/dlq.jsonl")" "data.amount: not a number" "error header"
corr2=$(jq -r '.events[2].correlationId' "$T_DIR/example.json")
is "$(jq -r '.headers["correlation-id"]' "$T_DIR/dlq.jsonl")" "$corr2" "correlation-id header"
is "$(jq -r .key "$T_DIR/dlq.jsonl")" "$corr2" "dead letter keyed by correlationId"
is "$(jq -r '.value | fromjson | .data.amount' "$T_DIR/dlq.jsonl")" "12,50" "value is the original event"

# --- S3 dead letters: one JSON Lines object per request, a line per invalid event
day=$(date -u +%Y-%m-%d)
s3get "dead-letter/date=$day/$BATCH.jsonl" >"$T_DIR/dl.json"
ok $? "dead letters stored in S3 under dead-letter/date=$day/<batchId>.jsonl"
is "$(wc -l <"$T_DIR/dl.json" | tr -d ' ')" 1 "one line for the one invalid event"
is "$(jq -r '[.error, .correlationId, .event.data.id, (.receivedAt|test("Z$")|tostring)] | join("|")' "$T_DIR/dl.json")" \
	"data.amount: not a number|$corr2|inv-2026-000732|true" "dead letter holds error, event, correlationId, receivedAt"

# --- gzip body
gzip -c "$EXAMPLE" >"$T_DIR/body.gz"
is "$(http_status "$URL/collect" -H "$KEY" -H 'Content-Encoding: gzip' --data-binary @"$T_DIR/body.gz")" 200 "gzip body: 200"
is "$(json '[.accepted,.rejected] | @csv')" "2,1" "gzip body: same outcome"

# --- a single object is a batch of one
jq -c '.[0]' "$EXAMPLE" >"$T_DIR/one.json"
is "$(http_status "$URL/collect" -H "$KEY" --data-binary @"$T_DIR/one.json")" 200 "single object: 200"
is "$(json .accepted)" 1 "single object is a batch of one"

# --- error statuses
is "$(http_status "$URL/collect" --data-binary @"$EXAMPLE")" 401 "no API key: 401"
is "$(http_status "$URL/collect" -H 'X-API-Key: nope' --data-binary @"$EXAMPLE")" 401 "wrong API key: 401"
is "$(http_status "$URL/collect" -H 'Authorization: Bearer k1' --data-binary @"$EXAMPLE")" 200 "Bearer key: 200"
is "$(http_status "$URL/collect" -H "$KEY" -X GET)" 405 "GET /collect: 405"
grep -qi '^Allow: POST' "$T_DIR/headers"; ok $? "405 says Allow: POST"
is "$(http_status "$URL/nope" -H "$KEY")" 404 "unknown path: 404"
is "$(http_status "$URL/collect/holded" -H "$KEY" --data-binary @"$EXAMPLE")" 200 "POST /collect/holded: the family by name"
is "$(json '[.accepted,.rejected] | @csv')" "2,1" "/collect/holded: the same outcome as /collect"
# The answer is written by hand, not by cJSON: a rejection quoting a key
# with a quote, a backslash, a control character and UTF-8 stays valid JSON.
jq -c '.[0] | .["x\"y\\z\u0001/é"] = 1 | [.]' "$EXAMPLE" >"$T_DIR/oddkey.json"
is "$(http_status "$URL/collect" -H "$KEY" --data-binary @"$T_DIR/oddkey.json")" 200 "a key needing escapes: 200"
is "$(json '.events[0].error' | od -An -c | tr -s ' ' | tr -d '\n')" \
	"$(printf 'x"y\\z\001/\303\251: unknown key\n' | od -An -c | tr -s ' ' | tr -d '\n')" \
	"the error quoting it is escaped right and reads back the same"
is "$(http_status "$URL/collect/nope" -H "$KEY" --data-binary @"$EXAMPLE")" 404 "an unknown family: 404"
is "$(json .error)" "not_found" "404 says not_found"
is "$(http_status "http://127.0.0.1:$OWN_PORT/collect" -H "$KEY" --data-binary @"$EXAMPLE")" 200 \
	"[family.holded] port: POST /collect on the family's own listener"
is "$(json '[.accepted,.rejected] | @csv')" "2,1" "the family's own port: the same outcome"
is "$(http_status "$URL/collect" -H "$KEY" --data-binary '{"data": [1,')" 400 "not JSON: 400"
msg=$(json .message)
bid=$(json .batchId)
case "$msg" in body:*line*column*) ok 0 "400 says where: $msg" ;; *) ok 1 "400 says where: $msg" ;; esac
s3get "dead-letter/date=$day/$bid.jsonl" >"$T_DIR/raw-dl.json"
ok $? "the rejected body is kept in S3"
is "$(jq -r '.event' "$T_DIR/raw-dl.json")" '{"data": [1,' "S3 keeps the raw body as sent"
is "$(http_status "$URL/collect" -H "$KEY" --data-binary '"text"')" 400 "JSON but not an array or object: 400"
head -c 70000 /dev/zero | tr '\0' ' ' >"$T_DIR/big"
is "$(http_status "$URL/collect" -H "$KEY" --data-binary @"$T_DIR/big")" 413 "body over max_body_bytes: 413"
jq -c '[range(51) as $i | .[0]]' "$EXAMPLE" >"$T_DIR/many.json"
is "$(http_status "$URL/collect" -H "$KEY" --data-binary @"$T_DIR/many.json")" 413 "51 events over max_events 50: 413"
head -c 300000 /dev/zero | tr '\0' ' ' | gzip -c >"$T_DIR/bomb.gz"
is "$(http_status "$URL/collect" -H "$KEY" -H 'Content-Encoding: gzip' --data-binary @"$T_DIR/bomb.gz")" 413 "gzip over max_decompressed_bytes: 413"
is "$(http_status "$URL/collect" -H "$KEY" -H 'Content-Encoding: br' --data-binary @"$EXAMPLE")" 415 "unknown encoding: 415"

# --- metrics counted it
http_status "$URL/metrics" >/dev/null
grep -q '^collectord_http_requests_total{status="200"} ' "$T_DIR/body"; ok $? "metrics count 200s"
grep -q '^collectord_events_rejected_total{family="holded",reason="not a number"} ' "$T_DIR/body"; ok $? "metrics count rejections by rule"
grep -q '^collectord_request_duration_seconds_count ' "$T_DIR/body"; ok $? "metrics have the latency histogram"

# --- a stopped broker: 503 with Retry-After, never 200
services stop kafka >/dev/null 2>&1
code=$(http_status "$URL/collect" -H "$KEY" --max-time 120 --data-binary @"$EXAMPLE")
is "$code" 503 "broker stopped: 503"
grep -qi '^Retry-After: [0-9]' "$T_DIR/headers"; ok $? "503 carries Retry-After"
diag "503 body: $(body)"
services start kafka >/dev/null 2>&1 || bail "cannot restart kafka"
ok "$(wait_for 180 "[ \$(http_status $URL/collect -H '$KEY' --data-binary @$EXAMPLE) = 200 ]"; echo $?)" "200 again once the broker is back"

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
is "$?" 0 "SIGTERM: exit 0"
T_PIDS=""
done_testing
