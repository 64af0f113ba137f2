#!/usr/bin/env bash
# bench/instructions.sh: instructions per accepted event on the collect
# path, counted by callgrind (repeatable where seconds are not).
#
# A collect-only collectord runs under valgrind --tool=callgrind twice: once
# taking N1 requests of BATCH valid events, once N2; the difference of the
# two totals divided by the extra events cancels start-up and shutdown.
# Requests are sent one at a time over one keep-alive connection, so the
# figure does not depend on the load.  Needs the services up
# (scripts/services up) and a build in build/ (or BUILD=dir).
#
#   bench/instructions.sh [BATCH] [N1] [N2]      defaults: 100 20 60
#
# KEEP=DIR keeps the callgrind files there.  Prints the figure and the functions with the most inclusive instructions
# per event (from the N2 run), so a change can be compared before and after.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
BATCH=${1:-100}
N1=${2:-20}
N2=${3:-60}
command -v valgrind >/dev/null || { echo "bench: valgrind is missing" >&2; exit 1; }
[ "$N2" -gt "$N1" ] || { echo "bench: N2 must be larger than N1" >&2; exit 2; }
eval "$("$ROOT/scripts/services" env)"
P=bench-ir-$$
TMP=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; wait $PID 2>/dev/null; [ -n "${KEEP:-}" ] && cp "$TMP"/callgrind.* "$KEEP"/ 2>/dev/null; "$BUILD/t/kafkatool" delete $(cut -d, -f1 "$TMP/topics") >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
printf '%s.raw,3,1,message.timestamp.type=LogAppendTime\n%s.dlq,1,1\n' "$P" "$P" >"$TMP/topics"
make -s -C "$BUILD" t/kafkatool >/dev/null
"$BUILD/collectord-admin" create-topics "$TMP/topics" >/dev/null
jq -c --argjson n "$BATCH" '[range($n) as $i | .[0]]' "$ROOT/t/data/collect-request.json" \
	>"$TMP/body.json"

# run N: total instructions of a daemon that took N requests.
run() {
	local n=$1 port out
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	out=$TMP/callgrind.$n
	COLLECTORD_SERVER_PORT=$port COLLECTORD_SERVER_FAMILIES=holded COLLECTORD_SERVER_ROLES=collect COLLECTORD_TOPICS_RAW=$P.raw \
		COLLECTORD_TOPICS_DEAD_LETTER=$P.dlq COLLECTORD_SERVER_LOG_LEVEL=warn \
		valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out" \
		"$BUILD/collectord" \
		2>"$TMP/log.$n" &
	PID=$!
	for _ in $(seq 1 240); do
		curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" && break
		sleep 0.5
	done
	python3 - "$port" "$n" "$TMP/body.json" <<'EOF'
import http.client, sys
port, n, body = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3], "rb").read()
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for i in range(n):
    c.request("POST", "/collect", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit("bench: request %d answered %d" % (i, r.status))
EOF
	kill -TERM "$PID"
	wait "$PID" || true
	PID=
	# one file a thread: the loop's (-01) first, then librdkafka's
	echo "$(sed -n 's/^summary: //p' "$out-01") $(cat "$out"-* | sed -n 's/^summary: //p' |
		awk '{ s += $1 } END { print s }')"
}

echo "collectord under callgrind: batches of $BATCH events, $N1 then $N2 requests"
read -r loop1 ir1 <<<"$(run "$N1")"
read -r loop2 ir2 <<<"$(run "$N2")"
per=$(( (ir2 - ir1) / ((N2 - N1) * BATCH) ))
loop=$(( (loop2 - loop1) / ((N2 - N1) * BATCH) ))
printf '%-44s %12s\n' "instructions, $N1 requests" "$ir1"
printf '%-44s %12s\n' "instructions, $N2 requests" "$ir2"
printf '%-44s %12s\n' "instructions per accepted event" "$per"
# librdkafka's own threads work on timers too, so their share varies with
# the speed of the run; the event loop's share is the repeatable one.
printf '%-44s %12s\n' "... of which the event loop's thread" "$loop"
echo "heaviest functions, inclusive, per event of the $N2-request run (start-up included):"
callgrind_annotate --inclusive=yes "$TMP/callgrind.$N2"-* 2>/dev/null |
	awk -v ev=$((N2 * BATCH)) '/^ *[0-9,]+ +\(/ && /\]$/ && !/\?\?\?|below main|libc-start/ {
		n = $1; gsub(",", "", n); $1 = ""; $2 = ""
		sub(/^ +/, ""); sub(/ \[.*\]$/, ""); sub(/^.*\/\.\.\//, "")
		if (seen[$0]++) next
		printf "  %10d  %s\n", n / ev, $0; if (++k == 30) exit }'
