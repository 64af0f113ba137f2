#!/usr/bin/env bash
# t/it_families.sh: every event family end to end on the real services, in
# one process: verdicts with the golden errors, raw and invalid topics,
# Confluent framing with the family's schema id, its table, its S3 keys,
# its enriched topic decoded with the schema the registry holds for it;
# the clickstream family on its own port; a family not served is 404.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

P="it-families-$$"
FAMILIES="holded clickstream retail"
for f in $FAMILIES; do
	make_topics "$P-$f"
done
CS_PORT=$(free_port)
start_daemon families COLLECTORD_SERVER_FAMILIES="holded,clickstream,retail" \
	COLLECTORD_ENRICH_GROUP_ID="$P" COLLECTORD_ENRICH_FLUSH_EVENTS=10 COLLECTORD_ENRICH_FLUSH_MS=200 \
	COLLECTORD_TOPICS_RAW="$P-holded.raw" COLLECTORD_TOPICS_DEAD_LETTER="$P-holded.dlq" \
	COLLECTORD_FAMILY_HOLDED_ENRICHED_TOPIC="$P-holded.enriched" \
	COLLECTORD_FAMILY_HOLDED_ENRICHED_SUBJECT="it-families.holded.enriched-value" \
	COLLECTORD_FAMILY_CLICKSTREAM_ENRICHED_TOPIC="$P-clickstream.enriched" \
	COLLECTORD_FAMILY_CLICKSTREAM_ENRICHED_SUBJECT="it-families.clickstream.enriched-value" \
	COLLECTORD_FAMILY_RETAIL_ENRICHED_TOPIC="$P-retail.enriched" \
	COLLECTORD_FAMILY_RETAIL_ENRICHED_SUBJECT="it-families.retail.enriched-value" \
	COLLECTORD_FAMILY_CLICKSTREAM_RAW_TOPIC="$P-clickstream.raw" \
	COLLECTORD_FAMILY_CLICKSTREAM_INVALID_TOPIC="$P-clickstream.dlq" \
	COLLECTORD_FAMILY_CLICKSTREAM_PORT="$CS_PORT" \
	COLLECTORD_FAMILY_RETAIL_RAW_TOPIC="$P-retail.raw" \
	COLLECTORD_FAMILY_RETAIL_INVALID_TOPIC="$P-retail.dlq"
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "collectord never became ready: $(body)"

# family FIELD: what the family's contract says (route, subject, table, prefix)
url_of() {
	case $1 in
	holded) echo "$URL/collect" ;;
	clickstream) echo "http://127.0.0.1:$CS_PORT/collect" ;; # its own port
	retail) echo "$URL/collect/retail" ;;
	esac
}
subject_of() {
	case $1 in
	holded) echo events.raw-value ;;
	clickstream) echo acme.clickstream.raw.events-value ;;
	retail) echo retail.transactions.raw-value ;;
	esac
}
sql() { psql "$COLLECTORD_PG_CONNINFO" -At -v ON_ERROR_STOP=1 -c "$1"; }

day=$(date -u +%Y-%m-%d)
for f in $FAMILIES; do
	data="$top_srcdir/schemas/$f/data"
	# three valid golden events (each its own, so the dedup keys differ) and
	# two invalid ones, in that order
	{
		head -n 3 "$data/valid.jsonl" | jq -c .event
		sed -n '5p;12p' "$data/invalid.jsonl" | jq -c .event
	} | jq -cs . >"$T_DIR/$f.json"
	# Each valid event gets a dedup key of its own (the golden ones share
	# theirs, and retail's table keeps one row per transactionId across
	# runs too): the same key twice is one event.
	jq -c --arg f "$f" --arg run "$(cat /proc/sys/kernel/random/uuid)" --argjson n "$((RANDOM * 1000 + 5000))" \
		'to_entries | map(.key as $k | .value
		| if $k >= 3 then .
		  elif $f == "retail" then .transactionId = ($run[0:35] + "\($k)")
		  elif $f == "clickstream" then .id = ($n + $k)
		  elif $f == "holded" then .attributes |= with_entries(
			if (.key | test("messageidstamp$"; "i")) then .value = ($run[0:35] + "\($k)") else . end)
		  else . end)' \
		"$T_DIR/$f.json" >"$T_DIR/$f.json.t" && mv "$T_DIR/$f.json.t" "$T_DIR/$f.json"
	sed -n '5p;12p' "$data/invalid.jsonl" | jq -r .error >"$T_DIR/$f.errors"
	is "$(http_status "$(url_of "$f")" -H 'Content-Type: application/json' --data-binary @"$T_DIR/$f.json")" \
		200 "$f: a batch of 3 valid and 2 invalid events: 200"
	cp "$T_DIR/body" "$T_DIR/$f.answer"
	is "$(json '[.accepted,.rejected,(.events|map(.status)|join(","))] | @csv')" \
		'3,2,"accepted,accepted,accepted,rejected,rejected"' "$f: the verdicts, in order"
	is "$(json '.events[3,4].error')" "$(cat "$T_DIR/$f.errors")" "$f: the golden errors, exactly"

	# raw topic: keyed by correlationId, framed with the family's schema id
	"$KAFKATOOL" consume "$P-$f.raw" >"$T_DIR/$f.raw.jsonl"
	is "$(wc -l <"$T_DIR/$f.raw.jsonl" | tr -d ' ')" 3 "$f: three records on its raw topic"
	is "$(jq -r .key "$T_DIR/$f.raw.jsonl" | sort | tr '\n' ,)" \
		"$(json '[.events[0,1,2].correlationId] | sort | join(",")')," "$f: keyed by correlationId"
	hex=$(jq -r .valueHex "$T_DIR/$f.raw.jsonl" | head -n 1)
	sid=$((0x$(echo "$hex" | cut -c3-10)))
	is "$(echo "$hex" | cut -c1-2)$(echo "$hex" | cut -c11-12)" 0000 "$f: magic byte 0 and message index [0]"
	curl -s "$COLLECTORD_REGISTRY_URL/subjects/$(subject_of "$f")/versions/latest" | jq -e ".id == $sid" >/dev/null
	ok $? "$f: schema id $sid is the latest of $(subject_of "$f")"

	# invalid topic: the event as sent, the error header
	"$KAFKATOOL" consume "$P-$f.dlq" >"$T_DIR/$f.dlq.jsonl"
	is "$(jq -r '.headers.error' "$T_DIR/$f.dlq.jsonl")" "$(cat "$T_DIR/$f.errors")" \
		"$f: its invalid topic carries the errors"
	# S3: the request's dead letters under the family's prefix
	batch=$(json .batchId)
	s3get "$(prefix_of "$f")dead-letter/date=$day/$batch.jsonl" >"$T_DIR/$f.dl"
	ok $? "$f: dead letters in S3 at $(prefix_of "$f")dead-letter/date=$day/<batchId>.jsonl"
	is "$(wc -l <"$T_DIR/$f.dl" | tr -d ' ')" 2 "$f: a line per invalid event"
done

# The tables: each accepted event once, its enriched event as data.
for f in $FAMILIES; do
	ids=$(jq -r '[.events[] | select(.status == "accepted") | "'\''\(.correlationId)'\''"] | join(",")' "$T_DIR/$f.answer")
	t=$(table_of "$f")
	ok "$(wait_for 120 "[ \$(sql \"SELECT count(*) FROM $t WHERE correlation_id IN ($ids)\") = 3 ]"; echo $?)" \
		"$f: its three events are rows of $t"
	is "$(sql "SELECT count(*) FROM $t WHERE correlation_id IN ($ids) AND (data->'metadata'->>'correlationId')::uuid = correlation_id")" \
		3 "$f: each row's data carries its metadata"
	ok "$(wait_for 60 "s3ls $(prefix_of "$f")enriched/ | grep -qF '/$P-$f.raw+'"; echo $?)" \
		"$f: enriched objects in S3 under $(prefix_of "$f")enriched/"
done
# The enriched topics: each landed event once, keyed by its correlationId,
# framed with the id of the family's schema under the enriched subject and
# the index of its Enriched message, and read back by protoc with the text
# the registry holds for that id.
for f in $FAMILIES; do
	proto="$top_srcdir/schemas/$f/$f.proto"
	pkg=$(sed -n 's/^package \(.*\);/\1/p' "$proto")
	index=$(grep '^message ' "$proto" | grep -n '^message Enriched ' | cut -d: -f1)
	index=$((index - 1))
	ok "$(wait_for 60 "[ \$(\"$KAFKATOOL\" consume $P-$f.enriched | wc -l) -ge 3 ]"; echo $?)" \
		"$f: three records on its enriched topic"
	"$KAFKATOOL" consume "$P-$f.enriched" >"$T_DIR/$f.enriched.jsonl"
	is "$(jq -r .key "$T_DIR/$f.enriched.jsonl" | sort | tr '\n' ,)" \
		"$(jq -r '[.events[0,1,2].correlationId] | sort | join(",")' "$T_DIR/$f.answer")," \
		"$f: each landed event once, keyed by its correlationId"
	hex=$(jq -r .valueHex "$T_DIR/$f.enriched.jsonl" | head -n 1)
	key=$(jq -r .key "$T_DIR/$f.enriched.jsonl" | head -n 1)
	esid=$((0x$(echo "$hex" | cut -c3-10)))
	curl -s "$COLLECTORD_REGISTRY_URL/subjects/it-families.$f.enriched-value/versions/latest" |
		jq -e ".id == $esid" >/dev/null
	ok $? "$f: framed with the latest id of its enriched subject ($esid)"
	is "$(echo "$hex" | cut -c11-14)" "$(printf '02%02x' $((index * 2)))" \
		"$f: message index [$index], the proto's Enriched"
	curl -s "$COLLECTORD_REGISTRY_URL/schemas/ids/$esid" | jq -r .schema >"$T_DIR/reg-$f.proto"
	echo "$hex" | cut -c15- | xxd -r -p |
		protoc --decode="$pkg.Enriched" -I "$T_DIR" "reg-$f.proto" >"$T_DIR/$f.decoded" 2>&1
	ok $? "$f: protoc decodes it as $pkg.Enriched with the registered text"
	grep -q "correlationId: \"$key\"" "$T_DIR/$f.decoded"
	ok $? "$f: metadata.correlationId is the key"
	raw_sid=$((0x$(jq -r .valueHex "$T_DIR/$f.raw.jsonl" | head -n 1 | cut -c3-10)))
	grep -q "schemaId: $raw_sid\$" "$T_DIR/$f.decoded"
	ok $? "$f: metadata.schemaId is the raw record's ($raw_sid)"
	grep -q 'publishTime: "20' "$T_DIR/$f.decoded"
	ok $? "$f: metadata.publishTime is set"
done

ids=$(jq -r '[.events[] | select(.status == "accepted") | "'\''\(.correlationId)'\''"] | join(",")' "$T_DIR/retail.answer")
is "$(sql "SELECT count(*) > 0 FROM retail_transaction_lines WHERE correlation_id IN ($ids)")" t \
	"retail: the transactions' lines are rows of retail_transaction_lines"

# Rejections: every family's refusals are rows of rejections, path and rule apart.
for f in $FAMILIES; do
	ids=$(jq -r '[.events[] | select(.status == "rejected") | "'\''\(.correlationId)'\''"] | join(",")' "$T_DIR/$f.answer")
	ok "$(wait_for 120 "[ \$(sql \"SELECT count(*) FROM rejections WHERE correlation_id IN ($ids)\") = 2 ]"; echo $?)" \
		"$f: its two refusals are rows of rejections"
	is "$(sql "SELECT string_agg(message, E'\n' ORDER BY kafka_offset) FROM rejections WHERE correlation_id IN ($ids)")" \
		"$(cat "$T_DIR/$f.errors")" "$f: with the golden messages"
	is "$(sql "SELECT count(*) FROM rejections WHERE correlation_id IN ($ids) AND family = '$f' AND stage = 'collect' AND path IS NOT NULL AND starts_with(message, path || ': ' || rule) AND event IS NOT NULL")" \
		2 "$f: family, stage, path and rule as the message says, the event as JSON"
done

# Routes: the clickstream family by name on the main port too; a family
# this process does not know is 404.
is "$(http_status "$URL/collect/clickstream" --data-binary @"$T_DIR/clickstream.json")" 200 \
	"clickstream on the main port as /collect/clickstream"
is "$(http_status "$URL/collect/nope" --data-binary '[{}]')" 404 "an unknown family: 404"
is "$(json .message)" "no such event family" "and says so"

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
is "$?" 0 "SIGTERM: exit 0"
T_PIDS=""

# A process serving Holded only does not take retail events.
start_daemon holded-only COLLECTORD_SERVER_ROLES=collect \
	COLLECTORD_TOPICS_RAW="$P-holded.raw" COLLECTORD_TOPICS_DEAD_LETTER="$P-holded.dlq"
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "collectord never became ready: $(body)"
is "$(http_status "$URL/collect/retail" --data-binary @"$T_DIR/retail.json")" 404 \
	"[server] families = holded: /collect/retail is 404"
is "$(json .message)" "this process does not collect that family ([server] families)" "and says why"
done_testing
