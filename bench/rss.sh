#!/usr/bin/env bash
# bench/rss.sh: the collect-only daemon's memory under steady load and under
# overload.  On a fresh collectord:
#   - the maximum rate by wrk's closed loop (10 s, CONNECTIONS clients);
#   - steady: half of it offered by bench/open_loop for STEADY seconds,
#     RSS sampled every second from /proc/PID/status, and the peak (VmHWM,
#     reset before the phase through /proc/PID/clear_refs);
#   - overload: FACTOR times the maximum over OVERLOAD_CONNECTIONS
#     connections for OVERLOAD seconds, every sample printed: the bounds
#     ([server] max_clients, max_inflight_batches, max_body_memory, [kafka]
#     queue.buffering.max.messages) should turn the excess into 503s, not
#     into memory.
# Needs the services up, a build in build/ (or BUILD=dir), and root or the
# daemon's owner for clear_refs.
#
#   bench/rss.sh [STEADY] [OVERLOAD] [BATCH] [FACTOR] [CONNECTIONS] [OVERLOAD_CONNECTIONS]
#       defaults: 60 20 100 3 64 1000      (STEADY 0: the overload only)
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
STEADY=${1:-60}
OVER=${2:-20}
BATCH=${3:-100}
FACTOR=${4:-3}
CONNS=${5:-64}
OCONNS=${6:-1000}

kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# gauges: the daemon's own view of what it holds, from /metrics.
gauges() {
	curl -s --max-time 1 "http://127.0.0.1:$port/metrics" | awk '
		$1 == "collectord_inflight_batches" { b = $2 }
		$1 == "collectord_kafka_outstanding_records" { k = $2 }
		$1 ~ /^collectord_http_clients/ { c += $2 }
		END { printf "inflight batches %5d, Kafka outstanding %6d, clients %4d", b, k, c }'
}
# sample PID SECONDS EVERY: RSS once a second for SECONDS, every EVERY-th
# printed with the gauges.
sample() {
	local i max=0 r
	for i in $(seq 1 "$2"); do
		sleep 1
		r=$(kb "$1" VmRSS)
		[ "$r" -gt "$max" ] && max=$r
		[ $((i % $3)) -eq 0 ] && printf '  t=%3ds  VmRSS %6s MB  %s\n' "$i" "$(mb "$r")" "$(gauges)"
	done
	printf '  max VmRSS sampled %s MB, VmHWM %s MB\n' "$(mb "$max")" "$(mb "$(kb "$1" VmHWM)")"
}

header "bench/rss.sh $STEADY $OVER $BATCH $FACTOR $CONNS $OCONNS"
port=$(free_port)
start_daemon "$port"
echo "idle after start: VmRSS $(mb "$(kb "$DAEMON" VmRSS)") MB"
read -r rps _ p99max _ < <(closed_max "$port" "$BATCH" "$CONNS" 10)
echo "maximum (wrk, $CONNS connections, 10 s, batches of $BATCH): $rps req/s = $((rps * BATCH)) events/s, p99 ${p99max} ms; VmHWM $(mb "$(kb "$DAEMON" VmHWM)") MB"

half=$((rps / 2))
if [ "$STEADY" -gt 0 ]; then
	echo "steady: $half req/s offered for ${STEADY}s over $CONNS connections (plus 2 s warm-up)"
	echo 5 >"/proc/$DAEMON/clear_refs"
	"$OPEN_LOOP" -r "$half" -c "$CONNS" -d "$STEADY" -w 2 -b "$(body "$BATCH")" \
		"http://127.0.0.1:$port/collect" >"$TMP/steady" &
	LOAD=$!
	sample "$DAEMON" $((STEADY + 2)) 5
	wait "$LOAD"
	sed 's/^/  /' "$TMP/steady"
fi

over=$((rps * FACTOR))
echo "overload: $over req/s offered ($FACTOR x the maximum) for ${OVER}s over $OCONNS connections"
echo 5 >"/proc/$DAEMON/clear_refs"
"$OPEN_LOOP" -r "$over" -c "$OCONNS" -d "$OVER" -w 2 -b "$(body "$BATCH")" \
	"http://127.0.0.1:$port/collect" >"$TMP/over" &
LOAD=$!
sample "$DAEMON" $((OVER + 2)) 1
wait "$LOAD"
sed 's/^/  /' "$TMP/over"
echo "after: $(sleep 5; mb "$(kb "$DAEMON" VmRSS)") MB VmRSS 5 s after the overload"
