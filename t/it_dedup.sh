#!/usr/bin/env bash
# t/it_dedup.sh: a client's retry lands once, in every family, on the real
# services.  A collect-only process and enrich-only ones on the test's own
# topics; each family's events are sent again and again in three phases:
#   1. one enricher: the same batch three times, and one event twice in
#      one batch;
#   2. the rows' tables locked, so a flush gets its first sightings into
#      the ledger and no further; the enricher killed -9 there (its blocked
#      statements ended with it), the tables released, the enricher started
#      again: it must land what the ledger holds as first, and only that;
#   3. two enrichers sharing the partitions, each batch sent twice, so a
#      copy and its first are read by different processes.
# Then, per family: one row per dedup key; the ledger names those rows;
# every other copy is a row of collectord_duplicates naming the first
# sighting; the S3 enriched objects and the enriched topic hold each key's
# first once and no other copy; the duplicates metric counts the copies;
# and the clickstream family's unique users of the run's day are exact.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

P="it-dedup-$$"
FAMILIES="holded clickstream retail"
for f in $FAMILIES; do
	make_topics "$P-$f"
done
psqlc() { psql "$COLLECTORD_PG_CONNINFO" -q -At -v ON_ERROR_STOP=1 -c "$1"; }

# The clickstream events fall on a day of the run's own (a random one in
# the years 3000 to 9000, checked unused), so its unique users can be
# checked exactly.
for _ in 1 2 3 4 5; do
	DAY=$(python3 -c 'import datetime, random; print(datetime.date(3000, 1, 1) + datetime.timedelta(days=random.randrange(2000000)))')
	used=$(psqlc "SELECT count(*) FROM clickstream_unique_users_daily WHERE day = '$DAY'" 2>/dev/null || echo 0)
	[ "$used" = 0 ] && break
done
[ "$used" = 0 ] || bail "no unused day found"

SETTINGS=(COLLECTORD_SERVER_FAMILIES=holded,clickstream,retail
	COLLECTORD_ENRICH_GROUP_ID="$P" COLLECTORD_ENRICH_FLUSH_EVENTS=10 COLLECTORD_ENRICH_FLUSH_MS=200
	COLLECTORD_TOPICS_RAW="$P-holded.raw" COLLECTORD_TOPICS_DEAD_LETTER="$P-holded.dlq"
	COLLECTORD_FAMILY_CLICKSTREAM_RAW_TOPIC="$P-clickstream.raw"
	COLLECTORD_FAMILY_CLICKSTREAM_INVALID_TOPIC="$P-clickstream.dlq"
	COLLECTORD_FAMILY_RETAIL_RAW_TOPIC="$P-retail.raw"
	COLLECTORD_FAMILY_RETAIL_INVALID_TOPIC="$P-retail.dlq"
	COLLECTORD_FAMILY_CLICKSTREAM_DAILY_TOPIC=none)
for f in $FAMILIES; do
	F=$(echo "$f" | tr '[:lower:]' '[:upper:]')
	SETTINGS+=("COLLECTORD_FAMILY_${F}_ENRICHED_TOPIC=$P-$f.enriched"
		"COLLECTORD_FAMILY_${F}_ENRICHED_SUBJECT=it-dedup.$f.enriched-value")
done
start_daemon collect COLLECTORD_SERVER_ROLES=collect "${SETTINGS[@]}"
COLLECT_URL=$URL
wait_for 120 "[ \$(http_status $COLLECT_URL/readyz) = 200 ]" || bail "the collector never became ready: $(body)"
url_of() { if [ "$1" = holded ]; then echo "$COLLECT_URL/collect"; else echo "$COLLECT_URL/collect/$1"; fi; }

dups_metric() { metric "$1" "collectord_enrich_duplicates_total{family=\"$2\"}"; }

# events F FIRST N FILE: N valid events of family F, numbered from FIRST,
# each with a dedup key of its own: the family's first golden event with
# the key (and for clickstream the run's day, and one of three customers)
# set.
RUN=$(cut -c1-24 /proc/sys/kernel/random/uuid)
events() {
	head -n 1 "$top_srcdir/schemas/$1/data/valid.jsonl" | jq -c .event |
		jq -c --arg f "$1" --arg run "$RUN" --arg day "$DAY" --argjson first "$2" --argjson n "$3" \
			'. as $e | range($first; $first + $n) as $i | $e
		| ($run + ("000000000000\($i)" | .[-12:])) as $key
		| if $f == "retail" then .transactionId = $key
		  elif $f == "clickstream" then .id = (7000000000 + $i)
			| .event.customer_id = (1 + $i % 3) | .event.timestamp = ($day + "T10:00:00Z")
		  else .attributes |= with_entries(
			if (.key | test("messageidstamp$"; "i")) then .value = $key else . end) end' >"$4"
}
# send F FILE: posts FILE's events as one batch; every event must be
# accepted; their correlationIds go to F.accepted.
send() {
	local code
	code=$(http_status "$(url_of "$1")" -H 'Content-Type: application/json' --data-binary @<(jq -cs . "$2"))
	if [ "$code" != 200 ] || [ "$(json .rejected)" != 0 ]; then
		ok 1 "$1: a batch of $(wc -l <"$2") events is accepted (HTTP $code: $(body | head -c 300))"
		return
	fi
	json '.events[].correlationId' >>"$T_DIR/$1.accepted"
	cat "$2" >>"$T_DIR/$1.sent"
}
# settle: the enrich group has committed every record of the raw topics.
settle() {
	local f
	for f in $FAMILIES; do committed_all "$P" "$P-$f.raw" "$1: $f"; done
}
# ledger F: how many keys of F's raw topic the ledger holds
ledger() { psqlc "SELECT count(*) FROM collectord_dedup WHERE topic = '$P-$1.raw'"; }

# --- 1. one enricher: the same batch three times; one event twice in a batch
enrich 1
for f in $FAMILIES; do
	events "$f" 0 6 "$T_DIR/$f.b"
	for n in 1 2 3; do send "$f" "$T_DIR/$f.b"; done
	events "$f" 6 2 "$T_DIR/$f.c"
	{ cat "$T_DIR/$f.c"; head -n 1 "$T_DIR/$f.c"; } >"$T_DIR/$f.c2"
	send "$f" "$T_DIR/$f.c2"
done
settle "one enricher"
for f in $FAMILIES; do
	is "$(ledger "$f")" 8 "$f: the ledger holds the 8 keys of 21 events sent"
	is "$(dups_metric "$URL_1" "$f")" 13 "$f: the enricher counted 13 duplicates"
done

# --- 2. killed -9 between the ledger and the rows
TABLES=$(for f in $FAMILIES; do table_of "$f"; done | paste -sd, -)
mkfifo "$T_DIR/lock.in"
psql "$COLLECTORD_PG_CONNINFO" -q -At -v ON_ERROR_STOP=1 <"$T_DIR/lock.in" >"$T_DIR/lock.out" 2>&1 &
LOCKER=$!
T_PIDS="$T_PIDS $LOCKER"
exec 7>"$T_DIR/lock.in"
echo "BEGIN; LOCK TABLE $TABLES IN ACCESS EXCLUSIVE MODE; SELECT 'locked';" >&7
ok "$(wait_for 30 "grep -q locked $T_DIR/lock.out"; echo $?)" "the rows' tables are locked ($TABLES)"
for f in $FAMILIES; do
	events "$f" 8 4 "$T_DIR/$f.d"
	send "$f" "$T_DIR/$f.d"
	send "$f" "$T_DIR/$f.d"
done
# Flushes get their first sightings into the ledger, then wait on the
# lock; how many of them before the sinks' backlog holds the rest back is
# the enricher's business.  Wait for the ledger to hold new keys whose rows
# are waiting, then kill.
WAITING="SELECT count(*) FROM pg_locks WHERE NOT granted AND relation IN ($(for t in ${TABLES//,/ }; do printf "'%s'::regclass," "$t"; done | sed 's/,$//'))"
NEWKEYS="SELECT count(*) - 24 FROM collectord_dedup WHERE topic IN ($(for f in $FAMILIES; do printf "'%s'," "$P-$f.raw"; done | sed 's/,$//'))"
r=$(wait_for 120 "[ \$(psqlc \"$NEWKEYS\") -gt 0 ] && [ \$(psqlc \"$WAITING\") -gt 0 ]"; echo $?)
sleep 1
ok "$r" "the ledger holds new keys ($(psqlc "$NEWKEYS") of 12) while the enricher's rows wait on the lock"
[ "$r" = 0 ] || diag "sessions: $(psqlc "SELECT pid, state, wait_event_type, wait_event, left(query, 150) FROM pg_stat_activity WHERE datname = current_database()")"
diag "keys in the ledger without their rows at the kill: $(for f in $FAMILIES; do printf '%s %s; ' "$f" "$(($(ledger "$f") - 8))"; done)"
kill -9 "$PID_1"
wait "$PID_1" 2>/dev/null
# The dead process's statements end with it, as in a crash of its host.
psqlc "${WAITING/count(\*)/count(pg_terminate_backend(pid))}" >/dev/null
echo "COMMIT;" >&7
exec 7>&-
wait "$LOCKER"
for f in $FAMILIES; do
	is "$(psqlc "SELECT count(*) FROM $(table_of "$f") WHERE correlation_id IN ($(tail -n 8 "$T_DIR/$f.accepted" | sed "s/.*/'&'/" | paste -sd, -))")" \
		0 "$f: none of the 8 events sent while locked is a row yet"
done
enrich 1
settle "after kill -9 and restart"

# --- 3. two enrichers; each batch sent twice
enrich 2
ok "$(wait_for 60 "grep 'partitions assigned' $T_DIR/enrich2.log | grep -qv 'count=0'"; echo $?)" \
	"the second enricher is assigned partitions"
sleep 3
for f in $FAMILIES; do
	events "$f" 12 6 "$T_DIR/$f.e"
	send "$f" "$T_DIR/$f.e"
	send "$f" "$T_DIR/$f.e"
done
settle "two enrichers"
# The metric counts every copy dropped, a replay's too: the blocks the
# rebalance moved are read again from their start, and their copies
# dropped again (collectord_duplicates keeps one row per copy).
for f in $FAMILIES; do
	n=$(($(dups_metric "$URL_1" "$f") + $(dups_metric "$URL_2" "$f")))
	ok "$([ "$n" -ge 10 ]; echo $?)" "$f: the two enrichers counted the 4 + 6 duplicates since the restart, and replays ($n)"
done

# --- per family: each key once in every sink, every copy accounted for
for f in $FAMILIES; do
	t=$(table_of "$f")
	topic="$P-$f.raw"
	n_sent=$(wc -l <"$T_DIR/$f.sent")
	n_keys=18
	is "$(wc -l <"$T_DIR/$f.accepted")" "$n_sent" "$f: $n_sent events sent and accepted, $n_keys keys"
	ids=$(sed "s/.*/'&'/" "$T_DIR/$f.accepted" | paste -sd, -)
	psqlc "SELECT correlation_id FROM $t WHERE correlation_id IN ($ids) ORDER BY 1" >"$T_DIR/$f.rows"
	psqlc "SELECT correlation_id FROM collectord_dedup WHERE topic = '$topic' ORDER BY 1" >"$T_DIR/$f.firsts"
	is "$(wc -l <"$T_DIR/$f.rows")" "$n_keys" "$f: $n_keys rows in $t, one per key"
	is "$(wc -l <"$T_DIR/$f.firsts")" "$n_keys" "$f: $n_keys keys in the ledger"
	ok "$(cmp -s "$T_DIR/$f.rows" "$T_DIR/$f.firsts"; echo $?)" "$f: the rows are the ledger's first sightings"
	# the keys the ledger holds are the ones sent
	is "$(psqlc "SELECT dedup_key FROM collectord_dedup WHERE topic = '$topic' ORDER BY dedup_key COLLATE \"C\"" | paste -sd, -)" \
		"$(jq -r --arg f "$f" 'if $f == "retail" then .transactionId elif $f == "clickstream" then .id
			else (.attributes | to_entries[] | select(.key | test("messageidstamp$"; "i")) | .value) end' \
			"$T_DIR/$f.sent" | sort -u | LC_ALL=C sort | paste -sd, -)" "$f: the ledger's keys are the keys sent"
	is "$(psqlc "SELECT count(*) FROM collectord_duplicates WHERE topic = '$topic'")" "$((n_sent - n_keys))" \
		"$f: $((n_sent - n_keys)) rows of collectord_duplicates, one per copy"
	is "$(psqlc "SELECT count(*) FROM collectord_duplicates d JOIN collectord_dedup l USING (topic, dedup_key)
		WHERE d.topic = '$topic' AND d.first_correlation_id = l.correlation_id
		AND d.first_partition = l.partition AND d.first_offset = l.\"offset\"
		AND d.correlation_id IN ($ids) AND d.correlation_id <> l.correlation_id")" "$((n_sent - n_keys))" \
		"$f: each names its own correlationId and its key's first sighting"

	# S3: the enriched objects of the raw topic hold each first once
	mkdir -p "$T_DIR/s3-$f"
	s3ls "$(prefix_of "$f")enriched/" | grep -F "/$topic+" | while read -r key; do
		s3get "$key"
	done | jq -r .metadata.correlationId | LC_ALL=C sort >"$T_DIR/$f.s3"
	LC_ALL=C sort "$T_DIR/$f.rows" >"$T_DIR/$f.rows.c"
	ok "$(cmp -s "$T_DIR/$f.s3" "$T_DIR/$f.rows.c"; echo $?)" \
		"$f: the S3 enriched objects hold the $n_keys firsts once each ($(wc -l <"$T_DIR/$f.s3") lines)"
	# The enriched topic: keyed by correlationId.  It is written at least
	# once (a replay after a crash may write a record again, with its key);
	# what the ledger keeps out of it is every other copy.
	"$KAFKATOOL" consume "$P-$f.enriched" | jq -r .key | LC_ALL=C sort -u >"$T_DIR/$f.enriched"
	ok "$(cmp -s "$T_DIR/$f.enriched" "$T_DIR/$f.rows.c"; echo $?)" \
		"$f: the enriched topic carries the $n_keys firsts and no other copy ($(wc -l <"$T_DIR/$f.enriched") keys)"
done
is "$(psqlc "SELECT unique_users FROM clickstream_unique_users_daily WHERE day = '$DAY'")" 3 \
	"clickstream: 3 unique users on $DAY, however often their events were sent"

stop_enrichers 1 2
done_testing
