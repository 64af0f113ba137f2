# shellcheck shell=bash
# bench/lib.sh: what bench/latency.sh, bench/rss.sh and bench/reuseport.sh
# share: a fresh topic pair, collect-only daemons on it, request bodies,
# the closed-loop maximum (wrk), the open-loop rate (bench/open_loop) and
# librdkafka's own latency at that rate (bench/produce_latency).
# Sourced; needs the services up and a build in build/ (or BUILD=dir).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
eval "$("$ROOT/scripts/services" env)"
P=bench-$$
TMP=$(mktemp -d)
PIDS=
bench_cleanup() {
	local p
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	for p in $PIDS; do wait "$p" 2>/dev/null || true; done
	# the topics go too: a run fills gigabytes of the broker's disk
	"$BUILD/t/kafkatool" delete $(cut -d, -f1 "$TMP/topics") >/dev/null 2>&1 || true
	rm -rf "$TMP"
}
trap bench_cleanup EXIT
printf '%s.raw,3,1,message.timestamp.type=LogAppendTime\n%s.dlq,1,1\n' "$P" "$P" >"$TMP/topics"
make -s -C "$BUILD" t/kafkatool >/dev/null
"$BUILD/collectord-admin" create-topics "$TMP/topics" >/dev/null
make -s -C "$BUILD" bench/open_loop bench/produce_latency >/dev/null
OPEN_LOOP=$BUILD/bench/open_loop

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_daemon PORT [LINGER_MS [REUSEPORT]]: a collect-only collectord on the
# bench topics, ready when this returns; its pid is in $DAEMON (and $PIDS).
# LINGER_MS empty: collectord's own default.  Extra COLLECTORD_* settings
# come from the caller's environment, extra [kafka] lines from $KAFKA_CONF.
start_daemon() {
	local port=$1 linger=${2:-} reuse=${3:-0} conf=$TMP/conf.$1.$RANDOM
	printf '[kafka]\n' >"$conf"
	[ -n "$linger" ] && printf 'linger.ms = %s\n' "$linger" >>"$conf"
	[ -n "${KAFKA_CONF:-}" ] && printf '%s\n' "$KAFKA_CONF" >>"$conf"
	COLLECTORD_SERVER_PORT=$port COLLECTORD_SERVER_FAMILIES=holded COLLECTORD_SERVER_ROLES=collect \
		COLLECTORD_TOPICS_RAW=$P.raw COLLECTORD_TOPICS_DEAD_LETTER=$P.dlq \
		COLLECTORD_SERVER_LOG_LEVEL=warn COLLECTORD_SERVER_SO_REUSEPORT=$reuse \
		"$BUILD/collectord" --config "$conf" 2>>"$TMP/log.$port" &
	DAEMON=$!
	PIDS="$PIDS $DAEMON"
	# Under SO_REUSEPORT another process may answer on the same port:
	# ten ready answers in a row are then all but surely from both.
	local ok=0
	for _ in $(seq 1 240); do
		if curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; then
			ok=$((ok + 1))
			if [ "$reuse" = 0 ] || [ "$ok" -ge 10 ]; then
				warm "$port"
				return 0
			fi
			continue
		fi
		ok=0
		kill -0 "$DAEMON" 2>/dev/null || break
		sleep 0.5
	done
	echo "bench: collectord on port $port did not get ready:" >&2
	cat "$TMP/log.$port" >&2
	exit 1
}

# warm PORT: 3 s of load, not measured.  The first requests after a start
# wait up to a second for the new topic's metadata and leaders; without this
# wrk's p99 of the first run is that second.
warm() {
	BENCH_BODY=$(body 10) wrk -t1 -c16 -d3s -s "$ROOT/bench/post.lua" "http://127.0.0.1:$1/collect" >/dev/null
}

# stop_daemon PID
stop_daemon() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	PIDS=$(echo "$PIDS" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ')
}

# body BATCH: a file holding a batch of BATCH copies of the same valid event.
body() {
	[ -f "$TMP/body.$1" ] ||
		jq -c --argjson n "$1" '[range($n) as $i | .[0]]' "$ROOT/t/data/collect-request.json" \
			>"$TMP/body.$1"
	echo "$TMP/body.$1"
}

# closed_max PORT BATCH CONNECTIONS SECONDS: the most requests per second
# the daemon answers with CONNECTIONS clients that each wait for an answer
# before sending again (wrk).  Prints "RPS P50 P99 NON2XX" (latencies in
# ms).
closed_max() {
	local out
	out=$(BENCH_BODY=$(body "$2") wrk -t2 -c"$3" -d"${4}s" --latency -s "$ROOT/bench/post.lua" \
		"http://127.0.0.1:$1/collect")
	echo "$out" | awk '
		function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
		/Requests\/sec/ { rps = $2 } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
		/Non-2xx/ { bad = $NF }
		END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, bad }'
}

# open_rate PORT BATCH CONNECTIONS SECONDS RATE: offer RATE requests per
# second on the open-loop schedule (2 s warm-up).  Prints "ANSWERED_RPS P50
# P99 P999 NON2XX ERRORS BACKLOG" (latencies in ms, from the scheduled send).
open_rate() {
	"$OPEN_LOOP" -r "$5" -c "$3" -d "$4" -w 2 -b "$(body "$2")" "http://127.0.0.1:$1/collect" |
		awk '/^offered/ { rps = $5 } /^answers/ { gsub(",", ""); non = $6; err = $8; bl = $10 }
			/^latency/ { p50 = $4; p99 = $8; p999 = $10 }
			END { printf "%.0f %s %s %s %d %d %d\n", rps, p50, p99, p999, non, err, bl }'
}

# served PORT: "ANSWERED OVER_10MS" from the daemon's own request timer
# (collectord_request_duration_seconds, from a request's whole body read to
# its answer): the requests answered so far and how many of them took over
# 10 ms inside the daemon.
served() {
	curl -fs "http://127.0.0.1:$1/metrics" | awk '
		/^collectord_request_duration_seconds_bucket\{le="0.01"\}/ { le = $2 }
		/^collectord_request_duration_seconds_count/ { n = $2 }
		END { print n + 0, n - le }'
}

# record_bytes: the value size of a record the daemons wrote to the raw
# topic (they write the same event each time); after start_daemon.
record_bytes() {
	"$BUILD/t/kafkatool" consume "$P.raw" 1 | jq -r '.valueHex | length / 2'
}

# rdkafka_rate BATCH SECONDS RATE BYTES [LINGER_MS]: librdkafka alone on the
# raw topic, RATE batches of BATCH records of BYTES a second on the
# open-loop schedule (2 s warm-up), each batch on one partition as the
# daemon places a request's events: the latency floor under open_rate.
# Prints "P50 P99 P999" (ms, from the scheduled send).
rdkafka_rate() {
	"$BUILD/bench/produce_latency" "$P.raw" "$3" "$1" "$2" 2 "$4" ${5:+"$5"} |
		awk '{ print $4, $6, $8 }'
}

# cpu_snap PID...: jiffies of the whole machine (busy, total) and of the
# processes, for cpu_since.
cpu_snap() {
	local p t=0
	for p in "$@"; do
		t=$((t + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat")))
	done
	awk -v t="$t" '$1 == "cpu" { idle = $5 + $6; tot = 0; for (i = 2; i <= 9; i++) tot += $i
		print tot - idle, tot, t }' /proc/stat
}

# cpu_since SNAP PID...: "MACHINE% PROCS%" since SNAP: the machine's busy
# share of all its cores, and the processes' share of one core.
cpu_since() {
	local snap=$1
	shift
	echo "$snap $(cpu_snap "$@")" | awk -v n="$(nproc)" '{
		dt = $5 - $2; printf "%.0f %.0f\n", 100 * ($4 - $1) / dt, 100 * n * ($6 - $3) / dt }'
}

# header WHAT: the lines a results file starts with.
header() {
	echo "# $1"
	echo "# commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
	echo "# machine: $(nproc) cores, shared by the broker (and the other services), the daemon(s) and the load tools; services on loopback"
}
