#!/usr/bin/env bash
# bench/enrich-instructions.sh: instructions per enriched event on the
# enrich path (Kafka -> registry -> decode/enrich -> S3 + PostgreSQL),
# counted by callgrind (repeatable where seconds are not).
#
# Two raw topics are filled through /collect (a collect-only collectord,
# not measured) with N1 and N2 valid events.  Then an enrich-only
# collectord runs under valgrind --tool=callgrind on each topic, with a
# new consumer group, until /metrics says it enriched every event and
# holds none unconfirmed; it is stopped with SIGTERM.  The difference of
# the two totals divided by the extra events cancels start-up and
# shutdown.  Every thread counts, librdkafka's included.  Needs the
# services up and a build in build/ (or BUILD=dir).
#
#   bench/enrich-instructions.sh [N1] [N2] [FLUSH_EVENTS]   defaults: 5000 15000 500
#
# KEEP=DIR keeps the callgrind files there.  Prints the figure and the
# functions with the most inclusive instructions per event (N2 run).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
N1=${1:-5000}
N2=${2:-15000}
FLUSH=${3:-500}
command -v valgrind >/dev/null || { echo "bench: valgrind is missing" >&2; exit 1; }
[ "$N2" -gt "$N1" ] || { echo "bench: N2 must be larger than N1" >&2; exit 2; }
eval "$("$ROOT/scripts/services" env)"
P=bench-eir-$$
TMP=$(mktemp -d)
PIDS=
trap 'for p in $PIDS; do kill $p 2>/dev/null || true; wait $p 2>/dev/null || true; done
	[ -z "${KEEP:-}" ] || cp "$TMP"/callgrind.* "$KEEP"/ || true; "$BUILD/t/kafkatool" delete $(cut -d, -f1 "$TMP/topics") >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ready() { for _ in $(seq 1 240); do curl -fs -o /dev/null "$1/readyz" && return 0; sleep 0.5; done; return 1; }
metric() { curl -fs "$1/metrics" | awk -v m="$2" 'index($0, m) == 1 { s += $NF } END { print s + 0 }'; }

printf '%s.a,3,1,message.timestamp.type=LogAppendTime\n%s.b,3,1,message.timestamp.type=LogAppendTime\n%s.dlq,1,1\n' \
	"$P" "$P" "$P" >"$TMP/topics"
make -s -C "$BUILD" t/kafkatool >/dev/null
"$BUILD/collectord-admin" create-topics "$TMP/topics" >/dev/null

# fill TOPIC N: N valid events through a collect-only daemon.
fill() {
	local topic=$1 n=$2 port pid
	port=$(port)
	COLLECTORD_SERVER_PORT=$port COLLECTORD_SERVER_FAMILIES=holded COLLECTORD_SERVER_ROLES=collect \
		COLLECTORD_TOPICS_RAW=$topic COLLECTORD_TOPICS_DEAD_LETTER=$P.dlq COLLECTORD_SERVER_LOG_LEVEL=warn \
		"$BUILD/collectord" 2>"$TMP/collect.log" &
	pid=$!
	PIDS="$PIDS $pid"
	ready "http://127.0.0.1:$port"
	python3 - "$port" "$((n / 100))" "$ROOT" <<'EOF'
import http.client, sys
sys.path.insert(0, sys.argv[3] + "/bench")
from bodies import Bodies
port, n = int(sys.argv[1]), int(sys.argv[2])
bodies = Bodies(sys.argv[3] + "/t/data/collect-request.json", 100)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for i in range(n):
    c.request("POST", "/collect", bodies.next(), {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("bench: request %d answered %d" % (i, r.status))
EOF
	kill -TERM "$pid"
	wait "$pid" || true
}

# run TOPIC N: total instructions of an enricher that drained N events.
run() {
	local topic=$1 n=$2 port out pid url
	port=$(port)
	url=http://127.0.0.1:$port
	out=$TMP/callgrind.$n
	COLLECTORD_SERVER_PORT=$port COLLECTORD_SERVER_FAMILIES=holded COLLECTORD_SERVER_ROLES=enrich \
		COLLECTORD_TOPICS_RAW=$topic COLLECTORD_TOPICS_DEAD_LETTER=$P.dlq COLLECTORD_ENRICH_GROUP_ID=$P.$n \
		COLLECTORD_ENRICH_FLUSH_EVENTS=$FLUSH COLLECTORD_PG_SQL_DIR=$ROOT/sql COLLECTORD_SERVER_LOG_LEVEL=warn \
		valgrind --tool=callgrind --callgrind-out-file="$out" "$BUILD/collectord" 2>"$TMP/log.$n" &
	pid=$!
	PIDS="$PIDS $pid"
	ready "$url"
	for _ in $(seq 1 1200); do
		[ "$(metric "$url" 'collectord_enrich_records_total{outcome="enriched"}')" -ge "$n" ] &&
			[ "$(metric "$url" collectord_enrich_buffered_records)" -eq 0 ] && break
		sleep 0.5
	done
	kill -TERM "$pid"
	wait "$pid" || true
	sed -n 's/^summary: //p' "$out"
}

echo "enrich-only collectord under callgrind: $N1 then $N2 events, flush_events $FLUSH"
fill "$P.a" "$N1"
fill "$P.b" "$N2"
ir1=$(run "$P.a" "$N1")
ir2=$(run "$P.b" "$N2")
per=$(((ir2 - ir1) / (N2 - N1)))
printf '%-44s %12s\n' "instructions, $N1 events" "$ir1"
printf '%-44s %12s\n' "instructions, $N2 events" "$ir2"
printf '%-44s %12s\n' "instructions per enriched event" "$per"
echo "heaviest functions, inclusive, per event of the $N2-event run (start-up included):"
callgrind_annotate --inclusive=yes "$TMP/callgrind.$N2" 2>/dev/null |
	awk -v ev="$N2" '/^ *[0-9,]+ +\(/ && /\]$/ && !/\?\?\?|below main|libc-start|start_thread|clone/ {
		n = $1; gsub(",", "", n); $1 = ""; $2 = ""
		sub(/^ +/, ""); sub(/ \[.*\]$/, ""); sub(/^.*\/\.\.\//, "")
		if (seen[$0]++) next
		printf "  %10d  %s\n", n / ev, $0; if (++k == 40) exit }'
