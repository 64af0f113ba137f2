#!/usr/bin/env bash
# t/it_s3_race.sh: a PUT of a partition's old owner that lands after the
# new owner's rewrite of the same object must not shrink it.  Enricher A
# writes through t/s3_holdproxy.py, which holds its PUT of the block; A is
# then frozen (SIGSTOP) until the group gives its partition to enricher B,
# which rebuilds the block with more records and writes it; only then does
# the proxy let A's PUT through.  The object must keep B's records, all of
# them: A's conditional write is refused (412).
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

P="it-s3race-$$"
printf '%s.raw,1,1,message.timestamp.type=LogAppendTime\n%s.dlq,1,1,message.timestamp.type=LogAppendTime\n' \
	"$P" "$P" >"$T_DIR/topics"
"$ADMIN" create-topics "$T_DIR/topics" >/dev/null || bail "cannot create topics $P.*"

mkdir -p "$T_DIR/proxy"
touch "$T_DIR/proxy/hold"
PROXY_PORT=$(free_port)
python3 "$top_srcdir/t/s3_holdproxy.py" "$PROXY_PORT" "$COLLECTORD_S3_ENDPOINT" "$T_DIR/proxy" "$P.raw" \
	2>"$T_DIR/proxy.log" &
T_PIDS="$T_PIDS $!"
wait_for 20 "curl -s -o /dev/null http://127.0.0.1:$PROXY_PORT/" || bail "the proxy did not start"

COMMON=(COLLECTORD_TOPICS_RAW="$P.raw" COLLECTORD_TOPICS_DEAD_LETTER="$P.dlq"
	COLLECTORD_ENRICH_GROUP_ID="$P" COLLECTORD_ENRICH_FLUSH_EVENTS=1000 COLLECTORD_ENRICH_FLUSH_MS=200)
start_daemon collect COLLECTORD_SERVER_ROLES=collect "${COMMON[@]}"
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "collect never became ready: $(body)"
C_URL=$URL
start_daemon enrich-a COLLECTORD_SERVER_ROLES=enrich "${COMMON[@]}" \
	COLLECTORD_S3_ENDPOINT="http://127.0.0.1:$PROXY_PORT" COLLECTORD_KAFKA_SESSION_TIMEOUT_MS=6000
A_PID=$DAEMON_PID
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "enricher A never became ready: $(body)"

# post N: N valid events in one batch; their correlationIds to accepted.txt
NEXT=0 # the first event number of the next batch: every event its own dedup key
post() {
	make_events $(($1 * 3 / 2)) "$T_DIR/ev.jsonl" "$NEXT"
	NEXT=$((NEXT + $1 * 3 / 2))
	jq -cs . "$T_DIR/ev.jsonl" >"$T_DIR/batch.json"
	is "$(http_status "$C_URL/collect" -H 'Content-Type: application/json' --data-binary @"$T_DIR/batch.json")" \
		200 "a batch posted"
	json '.events[] | select(.status == "accepted") | .correlationId' >>"$T_DIR/accepted.txt"
}
post 6
first=$(wc -l <"$T_DIR/accepted.txt")
ok "$(wait_for 60 "[ -s $T_DIR/proxy/held ]"; echo $?)" "A's PUT of the block ($first events) is held"
kill -STOP "$A_PID"
post 6
all=$(wc -l <"$T_DIR/accepted.txt")

start_daemon enrich-b COLLECTORD_SERVER_ROLES=enrich "${COMMON[@]}"
B_PID=$DAEMON_PID
key() { s3ls enriched/ | grep -F "/$P.raw+0+" | head -n 1; }
ok "$(wait_for 120 "[ -n \"\$(key)\" ] && [ \$(s3get \"\$(key)\" | wc -l) -eq $all ]"; echo $?)" \
	"B took the partition and wrote the block whole ($all events)"

rm "$T_DIR/proxy/hold"
ok "$(wait_for 30 "[ -s $T_DIR/proxy/released ]"; echo $?)" "the proxy let A's PUT through"
is "$(cat "$T_DIR/proxy/released")" 412 "S3 refused it: the object changed since A looked (412)"
s3get "$(key)" | jq -r .metadata.correlationId | sort >"$T_DIR/in_s3.txt"
sort "$T_DIR/accepted.txt" >"$T_DIR/want.txt"
is "$(comm -3 "$T_DIR/want.txt" "$T_DIR/in_s3.txt" | wc -l | tr -d ' ')" 0 \
	"the object holds every accepted event, once"

# A wakes up: it must not write its smaller block over B's either.
kill -CONT "$A_PID"
# It learns of the 412 and of the partition it lost, in either order: it
# reads the object again and finds its block in it, or lets the block go.
ok "$(wait_for 60 "grep -q 'S3 object changed by another writer' $T_DIR/enrich-a.log && grep -q 'partitions revoked' $T_DIR/enrich-a.log"; echo $?)" \
	"A sees the 412 and gives the partition up"
is "$(s3get "$(key)" | wc -l | tr -d ' ')" "$all" "after A wakes up the object still holds all $all"
kill -TERM "$B_PID" "$A_PID"
wait "$B_PID"
is "$?" 0 "B stops cleanly"
done_testing
