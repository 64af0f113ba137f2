#!/usr/bin/env bash
# bench/enrich.sh: how fast the enricher drains events.raw into S3 and
# PostgreSQL, against the PostgreSQL sink's own ceiling, in the same session:
#   - ceiling: pg_sink alone inserting rows of the same shape
#     (t/pg_sink_it.t --bench), per batch size;
#   - collectord: N events are first produced through /collect (collect role
#     only); then an enrich-only collectord starts on them with a new group
#     and the time from its first row in PostgreSQL to its last is measured
#     (every event also goes to S3 before its offset is stored).
# Needs the services up and a build in build/ (or BUILD=dir).
# Usage: bench/enrich.sh [EVENTS] [FLUSH_EVENTS]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
N=${1:-20000}
FLUSH=${2:-500}
eval "$("$ROOT/scripts/services" env)"
P=bench-enrich-$$
TMP=$(mktemp -d)
PIDS=
trap 'for p in $PIDS; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; rm -rf "$TMP"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ready() { for _ in $(seq 1 120); do curl -fs -o /dev/null "$1/readyz" && return 0; sleep 0.5; done; return 1; }
count() {
	psql "$COLLECTORD_PG_CONNINFO" -q -At <<SQL
CREATE TEMP TABLE want (c uuid);
\copy want FROM '$TMP/ids'
SELECT count(*) FROM events e JOIN want w ON e.correlation_id = w.c;
SQL
}

printf '%s.raw,3,1,message.timestamp.type=LogAppendTime\n%s.dlq,1,1\n' "$P" "$P" >"$TMP/topics"
"$BUILD/collectord-admin" create-topics "$TMP/topics" >/dev/null

echo "machine: $(nproc) cores; services on loopback; $N events; flush_events $FLUSH"
echo "ceiling: the PostgreSQL sink alone (rows/s by batch size; pipe-w4 is what the enricher uses)"
top_srcdir=$ROOT "$BUILD/t/pg_sink_it.t" --bench 20000 | sed -n 's/^# \(batch\|1 \|10 \|100 \|1000 \)/  \1/p'

# Fill the topic through /collect: valid events only, batches of 100.
PORT=$(port)
COLLECTORD_SERVER_PORT=$PORT COLLECTORD_SERVER_FAMILIES=holded COLLECTORD_SERVER_ROLES=collect COLLECTORD_TOPICS_RAW=$P.raw \
	COLLECTORD_TOPICS_DEAD_LETTER=$P.dlq COLLECTORD_SERVER_LOG_LEVEL=warn \
	"$BUILD/collectord" 2>"$TMP/collect.log" &
PIDS="$PIDS $!"
ready "http://127.0.0.1:$PORT"
jq -c '[range(100) as $i | .[0]]' "$ROOT/t/data/collect-request.json" >"$TMP/body.json"
for _ in $(seq 1 $((N / 100))); do
	curl -fs --data-binary @"$TMP/body.json" "http://127.0.0.1:$PORT/collect"
	echo
done | jq -r '.events[].correlationId' >"$TMP/ids"
n=$(wc -l <"$TMP/ids")

PORT2=$(port)
COLLECTORD_SERVER_PORT=$PORT2 COLLECTORD_SERVER_FAMILIES=holded COLLECTORD_SERVER_ROLES=enrich COLLECTORD_TOPICS_RAW=$P.raw \
	COLLECTORD_TOPICS_DEAD_LETTER=$P.dlq COLLECTORD_ENRICH_GROUP_ID=$P \
	COLLECTORD_ENRICH_FLUSH_EVENTS=$FLUSH COLLECTORD_PG_SQL_DIR=$ROOT/sql \
	COLLECTORD_SERVER_LOG_LEVEL=warn "$BUILD/collectord" 2>"$TMP/enrich.log" &
PIDS="$PIDS $!"
t_first= got=0
for _ in $(seq 1 3000); do
	got=$(count)
	now=$(date +%s.%N)
	[ -z "$t_first" ] && [ "$got" -gt 0 ] && { t_first=$now; first=$got; }
	[ "$got" -ge "$n" ] && break
	sleep 0.1
done
[ "$got" -ge "$n" ] || { echo "enricher did not finish: $got of $n rows"; exit 1; }
awk -v n="$n" -v f="$first" -v a="$t_first" -v b="$now" \
	'BEGIN { printf "collectord enrich: %d events in %.2f s after the first row: %.0f events/s into S3 and PostgreSQL\n", n - f, b - a, (n - f) / (b - a) }'
