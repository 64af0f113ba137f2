#!/usr/bin/env bash
# t/it_daily.sh: the clickstream family's unique users per day on its
# compacted topic, on the real services.  A collect-only process and two
# enrich-only processes sharing the raw topic's partitions; events over
# five days with repeated and anonymous customers; the leading publisher
# killed -9 mid-stream and started again; late events for old days after
# that.  Once quiet, the last record of each of the run's days on the topic
# is the exact count of what was sent, and the PostgreSQL view's.
#
# The topic and the PostgreSQL state are the machine's (one publisher per
# table, whichever process holds its lock, publishes every day of it), so
# the run uses five days no one else has: random ones between the years
# 3000 and 9000, checked unused, and reads only those.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

P="it-daily-$$"
make_topics "$P"
TOPIC=acme.clickstream.unique.users
TABLE=clickstream_unique_users_daily
psqlc() { psql "$COLLECTORD_PG_CONNINFO" -q -At -v ON_ERROR_STOP=1 -c "$1"; }

# --- five days of the run's own
for try in 1 2 3 4 5; do
	FIRST=$(python3 -c 'import datetime, random; print(datetime.date(3000, 1, 1) + datetime.timedelta(days=random.randrange(2000000)))')
	LAST=$(python3 -c "import datetime; print(datetime.date.fromisoformat('$FIRST') + datetime.timedelta(days=4))")
	used=$(psqlc "SELECT count(*) FROM $TABLE WHERE day BETWEEN '$FIRST' AND '$LAST'" 2>/dev/null || echo 0)
	[ "$used" = 0 ] && break
done
[ "$used" = 0 ] || bail "no unused days found"
python3 "$top_srcdir/t/daily_check.py" make "$FIRST" "$$" "$T_DIR" || bail "cannot make the events"
diag "days $FIRST to $LAST; expected $(cat "$T_DIR/expected.json")"

SETTINGS=(COLLECTORD_SERVER_FAMILIES=clickstream
	COLLECTORD_FAMILY_CLICKSTREAM_RAW_TOPIC="$P.raw" COLLECTORD_FAMILY_CLICKSTREAM_INVALID_TOPIC="$P.dlq"
	COLLECTORD_FAMILY_CLICKSTREAM_ENRICHED_TOPIC=none
	COLLECTORD_ENRICH_GROUP_ID="$P" COLLECTORD_ENRICH_FLUSH_EVENTS=50 COLLECTORD_ENRICH_FLUSH_MS=300)
start_daemon collect COLLECTORD_SERVER_ROLES=collect "${SETTINGS[@]}"
COLLECT_URL=$URL
wait_for 120 "[ \$(http_status $COLLECT_URL/readyz) = 200 ]" || bail "the collector never became ready: $(body)"

LEADER_M='collectord_daily_leader{family="clickstream"}'
PUBLISHED_M='collectord_daily_published_total{family="clickstream"}'
# leader: the number of the run's process that leads (none: empty)
leader() {
	local n
	for n in 1 2; do
		eval "[ -n \"\${URL_$n:-}\" ]" || continue
		[ "$(eval metric "\$URL_$n" "'$LEADER_M'")" = 1 ] && echo "$n"
	done
}
enrich 1
enrich 2
ok "$(wait_for 60 '[ -n "$(leader)" ]'; echo $?)" \
	"one of the two enrich processes leads the clickstream publisher"
is "$(leader | wc -l)" 1 "only one leads"
L=$(leader)
[ -n "$L" ] || bail "neither leads: another process on the machine holds the lock of $TABLE"
F=$((3 - L))
is "$(grep -c 'msg="daily count publisher leads"' "$T_DIR/enrich$L.log")" 1 "the leader logged its lead once"

# ours: the records of the run's days on the topic so far
ours() { "$KAFKATOOL" consume "$TOPIC" | jq -c --arg a "$FIRST" --arg b "$LAST" 'select(.key >= $a and .key <= $b)'; }
post_events "$T_DIR/part1a.jsonl" "$COLLECT_URL" "$T_DIR/resp1a.jsonl" 50
ok "$(wait_for 120 '[ -n "$(ours)" ]'; echo $?)" "the leader publishes the run's days ($(ours | wc -l) records so far)"
# mid-stream: the second part is on its way while the leader dies
post_events "$T_DIR/part1b.jsonl" "$COLLECT_URL" "$T_DIR/resp1b.jsonl" 50 &
POSTER=$!
eval "kill -9 \$PID_$L"
eval "wait \$PID_$L" 2>/dev/null
diag "killed enrich process $L (the leader) -9 with $(ours | wc -l) records of the run's days on the topic"
ok "$(wait_for 60 "[ \"\$(leader)\" = $F ]"; echo $?)" "the other process takes the lead"
wait "$POSTER"
enrich "$L"
post_events "$T_DIR/part2.jsonl" "$COLLECT_URL" "$T_DIR/resp2.jsonl" 50
cat "$T_DIR"/resp1a.jsonl "$T_DIR"/resp1b.jsonl "$T_DIR"/resp2.jsonl >"$T_DIR/resp.jsonl"
is "$(grep -c null "$T_DIR/resp.jsonl")" 0 "every batch answered 200"
is "$(accepted "$T_DIR/resp.jsonl" | wc -l)" "$(cat "$T_DIR"/part*.jsonl | wc -l)" "every event accepted"
is "$(leader)" "$F" "the restarted process follows"

# --- quiet: every event enriched, every day of the run published
committed_all "$P" "$P.raw" "quiet"
DIRTY="SELECT count(*) FROM $TABLE WHERE day BETWEEN '$FIRST' AND '$LAST' AND published IS DISTINCT FROM unique_users"
ok "$(wait_for 120 "[ \"\$(psqlc \"$DIRTY\")\" = 0 ]"; echo $?)" "no day of the run is left unpublished"
psqlc "SELECT to_char(v.day, 'YYYY-MM-DD'), v.unique_users, (extract(epoch FROM d.updated_at) * 1000)::bigint
	FROM clickstream_unique_users_per_day v JOIN $TABLE d USING (day)
	WHERE v.day BETWEEN '$FIRST' AND '$LAST' ORDER BY 1" | tr '|' '\t' >"$T_DIR/pg.tsv"
"$KAFKATOOL" consume "$TOPIC" >"$T_DIR/topic.jsonl"
python3 "$top_srcdir/t/daily_check.py" check "$T_DIR/expected.json" "$T_DIR/topic.jsonl" "$T_DIR/pg.tsv" \
	uniqueUsers >"$T_DIR/check.tap"
while read -r line; do
	case "$line" in
	"ok "*) ok 0 "${line#ok * - }" ;;
	"not ok "*) ok 1 "${line#not ok * - }" ;;
	*) echo "$line" ;;
	esac
done <"$T_DIR/check.tap"
# The index the publisher's query relies on answers it.
psqlc "SET enable_seqscan = off; EXPLAIN SELECT day FROM $TABLE WHERE published IS DISTINCT FROM unique_users ORDER BY day LIMIT 500" >"$T_DIR/explain"
grep -q clickstream_unique_users_daily_dirty "$T_DIR/explain"
ok $? "the dirty-days query can use the partial index: $(tr -s ' \n' ' ' <"$T_DIR/explain")"
p1=$(metric "$URL_1" "$PUBLISHED_M")
p2=$(metric "$URL_2" "$PUBLISHED_M")
diag "records published since start: process 1: $p1, process 2: $p2; leader now: $(leader)"
ok "$([ "$(eval metric "\$URL_$F" "'$PUBLISHED_M'")" -gt 0 ] 2>/dev/null; echo $?)" \
	"the process that took over published records"

stop_enrichers 1 2
done_testing
