#!/usr/bin/env bash
# bench/enrich.sh: how fast the enricher drains events.raw into S3 and
# PostgreSQL, against the PostgreSQL sink's own ceiling, in the same session:
#   - ceiling: pg_sink alone inserting rows of the same shape
#     (t/pg_sink_it.t --bench), per batch size;
#   - collectord: N events are first produced through /collect (collect role
#     only); then an enrich-only collectord starts on them with a new group
#     and the time from its first row in PostgreSQL to its last is measured
#     (every event also goes to S3 before its offset is stored), with the
#     CPU time the enricher used meanwhile (a core's worth = CPU-bound),
#     the machine's busy share and the CPU of the busiest processes.
# Rows are counted ten times a second, in one psql session, by an index
# range scan over the correlationIds of the run (UUIDv7: one range, later
# than any earlier run's): about 10 ms of the server's time per 100,000
# rows counted.
# Needs the services up and a build in build/ (or BUILD=dir).
# Usage: bench/enrich.sh [EVENTS] [FLUSH_EVENTS]   (CEILING=0: skip the ceiling)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
N=${1:-20000}
FLUSH=${2:-500}
eval "$("$ROOT/scripts/services" env)"
P=bench-enrich-$$
TMP=$(mktemp -d)
PIDS=
trap 'for p in $PIDS; do kill $p 2>/dev/null || true; wait $p 2>/dev/null || true; done; "$BUILD/t/kafkatool" delete $(cut -d, -f1 "$TMP/topics") >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ready() { for _ in $(seq 1 120); do curl -fs -o /dev/null "$1/readyz" && return 0; sleep 0.5; done; return 1; }
# The count goes through one psql session for the whole run (a coprocess):
# a psql started per count, ten a second, took about a core's third from
# the drain it measures.  count sets $got.
count() {
	echo "SELECT count(*) FROM events WHERE correlation_id BETWEEN '$lo' AND '$hi';" >&"${PSQL[1]}"
	read -r got <&"${PSQL[0]}"
}
# user + system CPU seconds of process $1
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
# "NAME SECONDS" for every process name: user + system CPU summed by name
cpu_by_name() { python3 "$ROOT/bench/cpu.py"; }
# the machine's busy jiffies and all jiffies, from /proc/stat
busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }

printf "%s.raw,${PARTITIONS:-3},1,message.timestamp.type=LogAppendTime\n%s.dlq,1,1\n" "$P" "$P" >"$TMP/topics"
make -s -C "$BUILD" t/kafkatool >/dev/null
"$BUILD/collectord-admin" create-topics "$TMP/topics" >/dev/null

echo "machine: $(nproc) cores; services on loopback; $N events; flush_events $FLUSH"
if [ "${CEILING:-1}" != 0 ]; then
	echo "ceiling: the PostgreSQL sink alone (rows/s by batch size; sink-copy is the enricher's sink, ledger-w3 its sink after the dedup ledger, three partitions at once)"
	top_srcdir=$ROOT "$BUILD/t/pg_sink_it.t" --bench 20000 | sed -n 's/^# \(batch\|1 \|10 \|100 \|500 \|1000 \)/  \1/p'
fi

# Fill the topic through /collect: valid events only, batches of 100.
PORT=$(port)
COLLECTORD_SERVER_PORT=$PORT COLLECTORD_SERVER_FAMILIES=holded COLLECTORD_SERVER_ROLES=collect COLLECTORD_TOPICS_RAW=$P.raw \
	COLLECTORD_TOPICS_DEAD_LETTER=$P.dlq COLLECTORD_SERVER_LOG_LEVEL=warn \
	"$BUILD/collectord" 2>"$TMP/collect.log" &
CPID=$!
PIDS="$PIDS $CPID"
ready "http://127.0.0.1:$PORT"
python3 - "$PORT" "$((N / 100))" "$ROOT" >"$TMP/ids" <<'EOF'
import http.client, json, sys
sys.path.insert(0, sys.argv[3] + "/bench")
from bodies import Bodies
port, n = int(sys.argv[1]), int(sys.argv[2])
bodies = Bodies(sys.argv[3] + "/t/data/collect-request.json", 100)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for i in range(n):
    c.request("POST", "/collect", bodies.next(), {"Content-Type": "application/json"})
    r = c.getresponse()
    answer = r.read()
    if r.status != 200:
        sys.exit("bench: request %d answered %d" % (i, r.status))
    for e in json.loads(answer)["events"]:
        print(e["correlationId"])
EOF
kill -TERM $CPID
wait $CPID || true
n=$(wc -l <"$TMP/ids")
sort -o "$TMP/sorted" "$TMP/ids"
lo=$(head -n 1 "$TMP/sorted")
hi=$(tail -n 1 "$TMP/sorted")

PORT2=$(port)
COLLECTORD_SERVER_PORT=$PORT2 COLLECTORD_SERVER_FAMILIES=holded COLLECTORD_SERVER_ROLES=enrich COLLECTORD_TOPICS_RAW=$P.raw \
	COLLECTORD_TOPICS_DEAD_LETTER=$P.dlq COLLECTORD_ENRICH_GROUP_ID=$P \
	COLLECTORD_ENRICH_FLUSH_EVENTS=$FLUSH COLLECTORD_PG_SQL_DIR=$ROOT/sql \
	COLLECTORD_SERVER_LOG_LEVEL=warn "$BUILD/collectord" 2>"$TMP/enrich.log" &
EPID=$!
PIDS="$PIDS $EPID"
coproc PSQL { psql "$COLLECTORD_PG_CONNINFO" -X -q -At; }
PIDS="$PIDS $PSQL_PID"
t_first= got=0
for _ in $(seq 1 3000); do
	count
	now=$(date +%s.%N)
	[ -z "$t_first" ] && [ "$got" -gt 0 ] && {
		t_first=$now first=$got c_first=$(cpu $EPID) b_first=$(busy)
		cpu_by_name >"$TMP/cpu0"
	}
	[ "$got" -ge "$n" ] && break
	sleep 0.1
done
c_last=$(cpu $EPID) b_last=$(busy)
cpu_by_name >"$TMP/cpu1"
[ "$got" -ge "$n" ] || { echo "enricher did not finish: $got of $n rows"; exit 1; }
awk -v n="$n" -v f="$first" -v a="$t_first" -v b="$now" -v ca="$c_first" -v cb="$c_last" \
	'BEGIN { printf "collectord enrich: %d events in %.2f s after the first row: %.0f events/s into S3 and PostgreSQL\n", n - f, b - a, (n - f) / (b - a)
		printf "  its CPU meanwhile: %.2f s (%.0f%% of one core)\n", cb - ca, 100 * (cb - ca) / (b - a) }'
# Who used the cores meanwhile: the machine's busy share (all cores), and
# the CPU seconds of the processes that used the most.
awk -v a="$b_first" -v b="$b_last" -v nc="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " ")
	printf "  the machine meanwhile: %.0f%% busy (%d cores); CPU seconds by process:\n", 100 * (y[1] - x[1]) / (y[2] - x[2]), nc }'
awk 'NR == FNR { t0[$1] = $2; next } ($1 in t0) { d = $2 - t0[$1]; if (d >= 0.05) printf "    %-16s %6.2f\n", $1, d }' \
	"$TMP/cpu0" "$TMP/cpu1" | sort -k2 -rn | head -n 6
