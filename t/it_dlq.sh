#!/usr/bin/env bash
# t/it_dlq.sh: a dead letter the dead-letter topic refuses for good (bigger
# than its max.message.bytes) goes to S3 dead-letter/kafka-refused/ with its
# reason, and its partition goes on: later records land and the committed
# offset passes it.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

P="it-dlq-$$"
# One raw partition, so the later records queue behind the refused one.
printf '%s.raw,1,1,message.timestamp.type=LogAppendTime\n%s.dlq,1,1,message.timestamp.type=LogAppendTime,max.message.bytes=1000\n' \
	"$P" "$P" >"$T_DIR/topics"
"$ADMIN" create-topics "$T_DIR/topics" >/dev/null || bail "cannot create topics $P.*"
start_daemon dlq COLLECTORD_TOPICS_RAW="$P.raw" COLLECTORD_TOPICS_DEAD_LETTER="$P.dlq" \
	COLLECTORD_ENRICH_GROUP_ID="$P" COLLECTORD_ENRICH_FLUSH_EVENTS=10 COLLECTORD_ENRICH_FLUSH_MS=300
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "collectord never became ready: $(body)"
sid=$(curl -s "$COLLECTORD_REGISTRY_URL/subjects/events.raw-value/versions/latest" | jq .id)

# A small undecodable record still reaches the dead-letter topic.
"$KAFKATOOL" produce "$P.raw" 33333333-3333-4333-8333-333333333333 "$(printf '00%08x00ffffffff' "$sid")" >/dev/null
ok $? "produced a small record with a corrupt payload"
# A big one: framing, then 1500 bytes no decoder accepts.  Its dead letter
# (value, key, headers) is over the topic's 1000 bytes.
BIG_KEY=44444444-4444-4444-8444-444444444444
BIG_HEX="$(printf '00%08x00' "$sid")$(head -c 1500 /dev/zero | tr '\0' '\377' | od -An -v -tx1 | tr -d ' \n')"
"$KAFKATOOL" produce "$P.raw" "$BIG_KEY" "$BIG_HEX" >/dev/null
ok $? "produced a 1506-byte record with a corrupt payload"
ok "$(wait_for 60 "[ \$($KAFKATOOL consume $P.dlq | jq -s 'map(select(.key == \"33333333-3333-4333-8333-333333333333\")) | length') -ge 1 ]"; echo $?)" \
	"the small one reached the dead-letter topic"

# Later records on the same partition: valid events only (every third of
# make_events is invalid, and its dead letter would not fit this topic).
make_events 9 "$T_DIR/all.jsonl"
sed -n '1p;2p;4p;5p;7p;8p' "$T_DIR/all.jsonl" >"$T_DIR/sent.jsonl"
post_events "$T_DIR/sent.jsonl" "$URL" "$T_DIR/resp.jsonl"
accepted "$T_DIR/resp.jsonl" >"$T_DIR/ids"
n=$(wc -l <"$T_DIR/ids")
is "$n" 6 "6 later events accepted"
ok "$([ "$n" -ge 1 ] && wait_for 120 "[ \$(pg_count $T_DIR/ids) -ge $n ]"; echo $?)" \
	"the later events landed in PostgreSQL: the partition went on"

"$KAFKATOOL" consume "$P.raw" >"$T_DIR/raw.jsonl"
off=$(jq -r "select(.key == \"$BIG_KEY\") | .offset" "$T_DIR/raw.jsonl")
ts=$(jq -r "select(.key == \"$BIG_KEY\") | .timestamp" "$T_DIR/raw.jsonl")
day=$(date -u -d "@$((ts / 1000))" +%Y-%m-%d)
KEY="dead-letter/kafka-refused/date=$day/$P.raw+0+$off.json"
ok "$(wait_for 60 "s3get '$KEY' >'$T_DIR/refused.json'"; echo $?)" "S3 has $KEY"
is "$(jq -r .kafkaErrorCode "$T_DIR/refused.json")" MSG_SIZE_TOO_LARGE "its Kafka refusal: MSG_SIZE_TOO_LARGE"
why=$(jq -r .error "$T_DIR/refused.json" 2>/dev/null)
ok "$(case "$why" in *payload*) echo 0 ;; *) echo 1 ;; esac)" "its original reason: $why"
is "$(jq -r '[.sourceTopic, .sourcePartition, .sourceOffset, .key, .deadLetterTopic] | join(" ")' "$T_DIR/refused.json")" \
	"$P.raw 0 $off $BIG_KEY $P.dlq" "its source, key and dead-letter topic"
is "$(jq -r .valueBase64 "$T_DIR/refused.json" | base64 -d | od -An -v -tx1 | tr -d ' \n' | sha256sum)" \
	"$(printf %s "$BIG_HEX" | sha256sum)" "its value, byte for byte (base64)"
is "$($KAFKATOOL consume "$P.dlq" | jq -s "map(select(.key == \"$BIG_KEY\")) | length")" 0 \
	"the dead-letter topic does not have it"
curl -s "$URL/metrics" >"$T_DIR/metrics"
ok "$(grep -q '^collectord_dead_letters_to_s3_total [1-9]' "$T_DIR/metrics"; echo $?)" \
	"collectord_dead_letters_to_s3_total counts it"
last=$(jq -s 'map(.offset) | max' "$T_DIR/raw.jsonl")
ok "$(wait_for 60 "[ \$($KAFKATOOL committed $P $P.raw) -gt $off ]"; echo $?)" \
	"the committed offset passed the refused record ($($KAFKATOOL committed "$P" "$P.raw") > $off, last $last)"

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
is "$?" 0 "SIGTERM: exit 0"
T_PIDS=""
done_testing
