#!/usr/bin/env bash
# t/it_archive.sh: the archive role on the real services.  Events of every
# family, valid and invalid, through /collect, and hand-made records (not
# JSON, an unknown schema id, a corrupt payload, binary keys and headers,
# null keys and values) on topics of the run's own topics file, two of them
# made only while it runs; collectord killed -9 mid-stream and started
# again.  Every record of every archived topic is then in exactly one
# object, its line equal to the record as Kafka holds it; what was written
# before the kill is a prefix of what is there after; and an archive-only
# process with a fresh group rewrites every object with the same bytes.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

P="it-archive-$$"
FAMILIES="holded clickstream retail"
N=25 # [archive] flush_events
for f in $FAMILIES; do
	make_topics "$P-$f"
done
LATEST="$P.latest" # made later, CreateTime, 3 partitions
UNIQUE="$P.unique" # made later, compacted, 1 partition
# The run's topics file, as topics/main-topics is: a topic of a family
# (listed again by the daemon itself), and two that do not exist yet.
cat >"$T_DIR/archive-topics" <<EOF
# it_archive.sh's topics
$P-holded.raw,3,1,message.timestamp.type=LogAppendTime
$LATEST,3,1
$UNIQUE,1,1,cleanup.policy=compact
EOF
# [kafka] keys have no environment names: a file finds new topics in 1 s.
cat >"$T_DIR/collectord.conf" <<EOF
[kafka]
topic.metadata.refresh.interval.ms = 1000
EOF
SETTINGS=(COLLECTORD_PG_SQL_DIR="$top_srcdir/sql" COLLECTORD_SERVER_FAMILIES=holded,clickstream,retail
	COLLECTORD_ENRICH_GROUP_ID="$P" COLLECTORD_ENRICH_FLUSH_EVENTS=50 COLLECTORD_ENRICH_FLUSH_MS=300
	COLLECTORD_TOPICS_RAW="$P-holded.raw" COLLECTORD_TOPICS_DEAD_LETTER="$P-holded.dlq"
	COLLECTORD_FAMILY_CLICKSTREAM_RAW_TOPIC="$P-clickstream.raw"
	COLLECTORD_FAMILY_CLICKSTREAM_INVALID_TOPIC="$P-clickstream.dlq"
	COLLECTORD_FAMILY_RETAIL_RAW_TOPIC="$P-retail.raw"
	COLLECTORD_FAMILY_RETAIL_INVALID_TOPIC="$P-retail.dlq"
	COLLECTORD_ARCHIVE_TOPICS_FILE="$T_DIR/archive-topics"
	COLLECTORD_ARCHIVE_FLUSH_EVENTS=$N COLLECTORD_ARCHIVE_FLUSH_MS=300)
TOPICS="$LATEST $UNIQUE"
for f in $FAMILIES; do TOPICS="$TOPICS $P-$f.raw $P-$f.dlq"; done
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
# run NAME [ENV=VALUE ...]: collectord on PORT with the run's settings
# (default roles: collect, enrich and archive); sets DAEMON_PID.
run() {
	local name=$1
	shift
	env COLLECTORD_SERVER_PORT="$PORT" "${SETTINGS[@]}" "$@" \
		"$top_builddir/collectord" --config "$T_DIR/collectord.conf" >>"$T_DIR/$name.log" 2>&1 &
	DAEMON_PID=$!
	T_PIDS="$T_PIDS $DAEMON_PID"
}
objects() { s3ls "archive/" | grep -F -e "/$P-" -e "/$P." || true; }
metric() { curl -s "$URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

run archive
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "collectord never became ready: $(body)"
is "$(json '.dependencies | keys | join(",")')" "kafka,postgres,registry,s3,schema" \
	"readyz of the default roles: kafka, postgres, registry, s3, schema"
grep -q 'msg="kafka consumer error" role=archive .*Subscribed topic not available: '"$LATEST" "$T_DIR/archive.log"
ok $? "a listed topic that does not exist yet is a warning, and the archive runs"

# --- hand-made records (hex): not JSON, an unknown schema id (999999), a
# corrupt payload under holded's id, a null key, binary keys and headers, a
# tombstone, an empty value, JSON text over two lines, JSON with blanks
sid=$(curl -s "$COLLECTORD_REGISTRY_URL/subjects/events.raw-value/versions/latest" | jq .id)
hx() { printf '%s' "$1" | od -An -tx1 -v | tr -d ' \n'; }
{
	printf '{"keyHex":"%s","valueHex":"%s","headers":[["%s","%s"],["%s",null],["%s","00ff80"]]}\n' \
		"$(hx 11111111-1111-4111-8111-111111111111)" "$(hx 'not json at all')" \
		"$(hx trace)" "$(hx abc)" "$(hx empty)" "$(hx bin)"
	printf '{"keyHex":"%s","valueHex":"00000f423f000a0362616e"}\n' "$(hx 22222222-2222-4222-8222-222222222222)"
	printf '{"keyHex":"%s","valueHex":"00%08x00ffffffff"}\n' "$(hx 33333333-3333-4333-8333-333333333333)" "$sid"
	printf '{"keyHex":null,"valueHex":"%s"}\n' "$(hx '{"no":"key"}')"
	printf '{"keyHex":"00ff10","valueHex":"%s","headers":[["fe","%s"]]}\n' "$(hx '[1,2]')" "$(hx 'é')"
	printf '{"keyHex":"%s","valueHex":null}\n' "$(hx tombstone)"
	printf '{"keyHex":"%s","valueHex":""}\n' "$(hx empty-value)"
	printf '{"keyHex":"%s","valueHex":"%s"}\n' "$(hx two-lines)" "$(hx "$(printf '{"a":\n1}')")"
	printf '{"keyHex":"%s","valueHex":"%s"}\n' "$(hx blanks)" "$(hx ' { "a" : 1.50 } ')"
} >"$T_DIR/hand.jsonl"
is "$("$KAFKATOOL" produce-lines "$P-holded.raw" <"$T_DIR/hand.jsonl")" 9 "9 hand-made records on $P-holded.raw"

# --- every family's events through /collect, valid and invalid, as a
# stream; collectord killed -9 once the archive has written some of it
gen() {
	"$top_srcdir/scripts/generate-events" --family "$1" --url "$URL/collect/$1" --count 1500 \
		--invalid-ratio 0.3 --seed "$2" >"$T_DIR/gen-$1.out" 2>&1
}
s=1
for f in $FAMILIES; do
	gen "$f" "$s" &
	eval "gen_$f=\$!"
	s=$((s + 1))
done
wait_for 120 "[ \$(objects | wc -l) -ge 30 ]" || bail "no archive objects: $(tail -n 5 "$T_DIR/archive.log")"
rm -rf "$T_DIR/before" && mkdir -p "$T_DIR/before"
objects >"$T_DIR/before.keys"
while read -r key; do s3get "$key" >"$T_DIR/before/${key//\//%}"; done <"$T_DIR/before.keys"
kill -9 "$DAEMON_PID"
diag "killed collectord -9 with $(wc -l <"$T_DIR/before.keys") archive objects written"
sleep 1
run archive
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "collectord did not come back: $(body)"

# --- the two topics made while the archive runs: read from their start
printf '%s,3,1\n%s,1,1,cleanup.policy=compact\n' "$LATEST" "$UNIQUE" >"$T_DIR/late-topics"
"$ADMIN" create-topics "$T_DIR/late-topics" >/dev/null || bail "cannot create $LATEST and $UNIQUE"
for i in $(seq 0 59); do
	printf '{"keyHex":"%s","valueHex":"%s","headers":[["%s","%s"]]}\n' "$(hx "c-$i")" \
		"$(hx "{\"correlationId\":\"c-$i\",\"n\":$i}")" "$(hx seq)" "$(hx "$i")"
done | "$KAFKATOOL" produce-lines "$LATEST" >/dev/null || bail "cannot produce to $LATEST"
for d in 2026-11-20 2026-11-21 2026-11-20; do
	printf '{"keyHex":"%s","valueHex":"%s"}\n' "$(hx "$d")" "$(hx "{\"day\":\"$d\",\"uniqueUsers\":${#d}}")"
done | "$KAFKATOOL" produce-lines "$UNIQUE" >/dev/null || bail "cannot produce to $UNIQUE"
printf '{"keyHex":"%s","valueHex":null}\n' "$(hx 2026-11-19)" | "$KAFKATOOL" produce-lines "$UNIQUE" >/dev/null

for f in $FAMILIES; do eval "wait \$gen_$f"; done
for f in $FAMILIES; do diag "$f: $(grep -E '^sent|HTTP|no answer' "$T_DIR/gen-$f.out" | tr -s ' \n' ' ')"; done

# --- quiet: every topic's records committed by the archive group
rm -rf "$T_DIR/dumps" && mkdir -p "$T_DIR/dumps"
# ends TOPIC: the sum over its partitions of the last offset + 1
ends() { jq -s 'group_by(.partition) | map(max_by(.offset).offset + 1) | add // 0' "$T_DIR/dumps/$1.jsonl"; }
caught_up() { # caught_up GROUP: every archived topic committed to its end
	local t
	for t in $TOPICS; do
		[ "$("$KAFKATOOL" committed "$1" "$t")" = "$(ends "$t")" ] || return 1
	done
}
# The generators are done: the raw topics (and the two made later) hold
# all they will; the invalid ones, once the enricher has read the raw
# topics to their end (its dead letters, of the hand-made records among
# others, go there).
for t in $TOPICS; do "$KAFKATOOL" consume "$t" >"$T_DIR/dumps/$t.jsonl"; done
enriched_all() {
	local f
	for f in $FAMILIES; do
		[ "$("$KAFKATOOL" committed "$P" "$P-$f.raw")" = "$(ends "$P-$f.raw")" ] || return 1
	done
}
wait_for 180 enriched_all || diag "the enricher did not reach the end of the raw topics"
sleep 2
for f in $FAMILIES; do "$KAFKATOOL" consume "$P-$f.dlq" >"$T_DIR/dumps/$P-$f.dlq.jsonl"; done
ok "$(wait_for 180 "caught_up $P-archive"; echo $?)" \
	"the archive group's committed offsets reach the end of every topic ($(cat "$T_DIR"/dumps/*.jsonl | wc -l) records)"
sleep 1

# fetch DIR: every archive object of the run into DIR, named by its key
fetch() {
	rm -rf "$1" && mkdir -p "$1"
	objects >"$1.keys"
	while read -r key; do s3get "$key" >"$1/${key//\//%}"; done <"$1.keys"
}
fetch "$T_DIR/after"
rm -rf "$T_DIR/enriched" && mkdir -p "$T_DIR/enriched"
for f in $FAMILIES; do
	prefix=$([ "$f" = holded ] || echo "$f/")
	s3ls "${prefix}enriched/" | grep -F "/$P-$f.raw+" | while read -r key; do
		s3get "$key" >"$T_DIR/enriched/${key//\//%}"
	done
done
ids=""
for subj in events.raw-value acme.clickstream.raw.events-value retail.transactions.raw-value; do
	for v in $(curl -s "$COLLECTORD_REGISTRY_URL/subjects/$subj/versions" | jq -r '.[]'); do
		ids="$ids$(curl -s "$COLLECTORD_REGISTRY_URL/subjects/$subj/versions/$v" | jq .id),"
	done
done
python3 "$top_srcdir/t/archive_check.py" "$T_DIR/dumps" "$T_DIR/after" "$N" "$T_DIR/enriched" "$ids" \
	>"$T_DIR/check.tap"
while read -r line; do
	case "$line" in
	"ok "*) ok 0 "${line#ok * - }" ;;
	"not ok "*) ok 1 "${line#not ok * - }" ;;
	*) echo "$line" ;;
	esac
done <"$T_DIR/check.tap"

# The hand-made records, each in the form the contract gives it.
line_of() { cat "$T_DIR"/after/*"%$P-holded.raw+"* | jq -c "select(.keyBase64 == \"$1\" or .key == \"$1\")"; }
ok "$(line_of 11111111-1111-4111-8111-111111111111 | jq -e '.valueBase64 == "bm90IGpzb24gYXQgYWxs" and .headers == [{"name":"trace","value":"abc"},{"name":"empty","value":null},{"name":"bin","valueBase64":"AP+A"}]' >/dev/null; echo $?)" \
	"not JSON: base64; headers in order, a null one, binary bytes as base64"
ok "$(line_of 22222222-2222-4222-8222-222222222222 | jq -e 'has("schemaId") | not' >/dev/null; echo $?)" \
	"an unknown schema id: base64 only, no schemaId"
ok "$(line_of 33333333-3333-4333-8333-333333333333 | jq -e ".schemaId == $sid and (.decodeError | startswith(\"payload:\"))" >/dev/null; echo $?)" \
	"a corrupt payload under holded's id: schemaId and decodeError ($(line_of 33333333-3333-4333-8333-333333333333 | jq -r .decodeError))"
cat "$T_DIR"/after/*"%$P-holded.raw+"* | jq -c 'select(has("key") and .key == null)' >"$T_DIR/nullkey"
ok "$(jq -se 'length == 1 and .[0].value == {"no":"key"}' "$T_DIR/nullkey" >/dev/null; echo $?)" \
	"a null key is null; a JSON value is JSON" "$(cat "$T_DIR/nullkey")"
ok "$(line_of AP8Q | jq -e '.value == [1,2] and .headers == [{"nameBase64":"/g==","value":"é"}]' >/dev/null; echo $?)" \
	"a binary key and header name as base64"
ok "$(line_of tombstone | jq -e '.value == null and (has("valueBase64") | not)' >/dev/null; echo $?)" "a tombstone's value is null"
ok "$(line_of empty-value | jq -e '.valueBase64 == ""' >/dev/null; echo $?)" "an empty value is empty base64"
ok "$(line_of two-lines | jq -e 'has("valueBase64")' >/dev/null; echo $?)" "JSON over two lines goes as base64"
grep -qF '"key":"blanks","headers":[],"value": { "a" : 1.50 } }' "$T_DIR"/after/*"%$P-holded.raw+"*
ok $? "JSON with blanks and 1.50 is kept byte for byte"
ok "$(jq -se 'length == 60 and all(.timestampType == "CreateTime")' "$T_DIR"/after/*"%$LATEST+"* >/dev/null; echo $?)" \
	"$LATEST, made while the archive ran: its 60 records, CreateTime"
ok "$(jq -se 'length == 4 and (map(.key) == ["2026-11-20","2026-11-21","2026-11-20","2026-11-19"]) and .[3].value == null' "$T_DIR"/after/*"%$UNIQUE+"* >/dev/null; echo $?)" \
	"$UNIQUE (compacted), made while the archive ran: every record, the tombstone too"
is "$(metric 'collectord_archive_records_total{topic="'"$P"'-holded.raw",form="decoded"}' | grep -c .)" 1 \
	"metrics: collectord_archive_records_total by topic and form"

# --- the kill -9: what was written before is a prefix of what is there
# now (a block's object is rewritten whole), and full blocks are identical
pre=0 same=0 bad=""
while read -r key; do
	f="${key//\//%}"
	pre=$((pre + 1))
	if [ ! -f "$T_DIR/after/$f" ]; then
		bad="$bad $key(gone)"
		continue
	fi
	n=$(wc -c <"$T_DIR/before/$f")
	cmp -s -n "$n" "$T_DIR/before/$f" "$T_DIR/after/$f" || bad="$bad $key"
	cmp -s "$T_DIR/before/$f" "$T_DIR/after/$f" && same=$((same + 1))
done <"$T_DIR/before.keys"
is "$bad" "" "each of the $pre objects written before the kill is a prefix of its object now ($same identical)"

# --- determinism: an archive-only process in a new group reads every topic
# from its start and rewrites every object with the same bytes
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
is "$?" 0 "SIGTERM: exit 0"
T_PIDS=""
run replay COLLECTORD_SERVER_ROLES=archive COLLECTORD_ARCHIVE_GROUP_ID="$P-replay"
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "the archive-only process never became ready: $(body)"
is "$(json '.dependencies | keys | join(",")')" "kafka,registry,s3" "readyz of the archive role alone: kafka, registry, s3"
ok "$(wait_for 180 "caught_up $P-replay"; echo $?)" "the replay's group reaches the end of every topic"
sleep 1
fetch "$T_DIR/replay"
is "$(cat "$T_DIR/replay.keys" | sort | tr '\n' ' ')" "$(cat "$T_DIR/after.keys" | sort | tr '\n' ' ')" \
	"the replay writes the same $(wc -l <"$T_DIR/after.keys") keys"
diff -r -q "$T_DIR/after" "$T_DIR/replay" >"$T_DIR/replay.diff"
ok $? "every object rewritten by the replay has the same bytes $(head -n 3 "$T_DIR/replay.diff" | tr '\n' ' ')"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
is "$?" 0 "the archive-only process: SIGTERM, exit 0"
T_PIDS=""
done_testing
