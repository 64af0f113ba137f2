#!/usr/bin/env bash
# t/it_faults.sh: nothing acknowledged is lost or duplicated when collectord
# is killed -9 mid-stream, or when PostgreSQL or S3 stop while events flow;
# offsets never run ahead of the sinks.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

P="it-faults-$$"
make_topics "$P"
SETTINGS=(COLLECTORD_TOPICS_RAW="$P.raw" COLLECTORD_TOPICS_DEAD_LETTER="$P.dlq"
	COLLECTORD_ENRICH_GROUP_ID="$P" COLLECTORD_ENRICH_FLUSH_EVENTS=40 COLLECTORD_ENRICH_FLUSH_MS=200
	COLLECTORD_ENRICH_MAX_PENDING=60)
paused() { curl -s "$URL/metrics" | awk '/^collectord_enrich_paused_partitions /{print $2}'; }
start_daemon faults "${SETTINGS[@]}"
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "collectord never became ready: $(body)"

# --- kill -9 in the middle of a stream, then start again on the same port
make_events 1500 "$T_DIR/sent1.jsonl"
post_events "$T_DIR/sent1.jsonl" "$URL" "$T_DIR/resp1.jsonl" &
poster=$!
wait_for 120 "[ \$(wc -l < $T_DIR/resp1.jsonl) -ge 40 ]"
kill -9 "$DAEMON_PID"
diag "killed collectord -9 after $(wc -l <"$T_DIR/resp1.jsonl") batches"
sleep 1
env COLLECTORD_SERVER_PORT="$PORT" COLLECTORD_PG_SQL_DIR="$top_srcdir/sql" COLLECTORD_SERVER_FAMILIES=holded \
	COLLECTORD_ARCHIVE_TOPICS_FILE= "${SETTINGS[@]}" \
	"$top_builddir/collectord" >>"$T_DIR/faults.log" 2>&1 &
DAEMON_PID=$!
T_PIDS="$T_PIDS $DAEMON_PID"
wait "$poster"
diag "$(grep -c null "$T_DIR/resp1.jsonl") batches got no 200 while collectord was down"
check_landed "$P" "$T_DIR/sent1.jsonl" "$T_DIR/resp1.jsonl"

# --- PostgreSQL, then S3, stop while events flow (valid events only:
# /collect itself needs S3 for dead letters)
committed() { "$KAFKATOOL" committed "$P" "$P.raw"; }

# outage SERVICE WHAT FIRST: stop SERVICE while events (600 of their own,
# numbered from FIRST, so that none repeats an earlier one's dedup key) are
# posted, check that the enricher holds its offsets and pauses, start it
# again, check what landed.
outage() {
	local svc=$1 what=$2 before
	make_events 600 "$T_DIR/sent-$svc.jsonl" "$3"
	jq -c 'select(.data.amount | type == "number")' "$T_DIR/sent-$svc.jsonl" >"$T_DIR/valid-$svc.jsonl"
	services stop "$svc" >/dev/null 2>&1
	post_events "$T_DIR/valid-$svc.jsonl" "$URL" "$T_DIR/resp-$svc.jsonl"
	is "$(grep -c null "$T_DIR/resp-$svc.jsonl")" 0 "collect keeps answering 200 while $what is down"
	# Auto-commit runs every 5 s: let what was stored before the outage land.
	sleep 7
	before=$(committed)
	sleep 6
	is "$(committed)" "$before" "committed offsets do not move while $what is down"
	ok "$(wait_for 30 "[ \$(http_status $URL/readyz) = 503 ]"; echo $?)" "readyz says $what is down"
	ok "$(wait_for 30 "[ \$(paused) -gt 0 ]"; echo $?)" "the partitions behind $what are paused ($(paused))"
	services start "$svc" >/dev/null 2>&1 || bail "cannot restart $svc"
	check_landed "$P" "$T_DIR/valid-$svc.jsonl" "$T_DIR/resp-$svc.jsonl"
}
outage pg PostgreSQL 2000
outage minio S3 3000
ok "$(wait_for 60 "[ \$(paused) -eq 0 ]"; echo $?)" "no partition stays paused once the sinks are back"
raw_total=$("$KAFKATOOL" consume "$P.raw" | wc -l)
ok "$(wait_for 60 "[ \$(committed) -eq $raw_total ]"; echo $?)" "offsets catch up with the topic once the sinks are back ($raw_total records)"

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
is "$?" 0 "SIGTERM: exit 0"
T_PIDS=""
done_testing
