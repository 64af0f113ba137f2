#!/usr/bin/env bash
# bench/peer.sh: collectord beside a peer, Fluent Bit's in_http -> out_kafka,
# on the same broker with the same body, in the same session:
#   events/s and p99 (wrk, CONNECTIONS x batches of BATCH), CPU seconds
#   per million events in Kafka and peak RSS of each process, and when
#   the answered events were all in Kafka (see run below).
# collectord validates every event and answers after Kafka acknowledged
# the batch; Fluent Bit answers once it buffered the request, before
# Kafka, and validates nothing: it is the ceiling of a shipper, not a peer
# doing the same work.
#
#   FLUENT_BIT=/path/to/fluent-bit bench/peer.sh [SECONDS] [ROUNDS]
#
# Runs batches of 10 over 64 connections and of 100 over 32, ROUNDS
# (default 3) rounds, the two systems interleaved.  Fluent Bit is not
# built here: give the binary of a release (its in_http and out_kafka
# plugins).  Needs the services up and a build in build/ (or BUILD=dir).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SECS=${1:-10}
ROUNDS=${2:-3}
FB=${FLUENT_BIT:?set FLUENT_BIT to a fluent-bit binary}
command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
eval "$("$ROOT/scripts/services" env)"
P=bench-peer-$$
TMP=$(mktemp -d)
PIDS=
trap 'for p in $PIDS; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; "$BUILD/t/kafkatool" delete $(cut -d, -f1 "$TMP/topics") >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
printf '%s.raw,3,1,message.timestamp.type=LogAppendTime\n%s.dlq,1,1\n%s.fb,3,1,message.timestamp.type=LogAppendTime\n' \
	"$P" "$P" "$P" >"$TMP/topics"
make -s -C "$BUILD" t/kafkatool >/dev/null
"$BUILD/collectord-admin" create-topics "$TMP/topics" >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

CPORT=$(free_port)
COLLECTORD_SERVER_PORT=$CPORT COLLECTORD_SERVER_FAMILIES=holded COLLECTORD_SERVER_ROLES=collect \
	COLLECTORD_TOPICS_RAW=$P.raw COLLECTORD_TOPICS_DEAD_LETTER=$P.dlq COLLECTORD_SERVER_LOG_LEVEL=warn \
	"$BUILD/collectord" 2>"$TMP/collectord.log" &
CPID=$!
PIDS="$PIDS $CPID"
FPORT=$(free_port)
cat >"$TMP/fluent-bit.conf" <<EOF
[SERVICE]
    flush        1
    log_level    warn
[INPUT]
    name              http
    listen            127.0.0.1
    port              $FPORT
    buffer_max_size   8M
    buffer_chunk_size 1M
[OUTPUT]
    name     kafka
    match    *
    brokers  $COLLECTORD_KAFKA_BROKERS
    topics   $P.fb
    format   json
    rdkafka.acks all
    rdkafka.enable.idempotence true
EOF
"$FB" -c "$TMP/fluent-bit.conf" >"$TMP/fluent-bit.log" 2>&1 &
FPID=$!
PIDS="$PIDS $FPID"
for _ in $(seq 1 120); do curl -fs -o /dev/null "http://127.0.0.1:$CPORT/readyz" && break; sleep 0.5; done
for _ in $(seq 1 60); do curl -s -o /dev/null -X POST -d '[{}]' -H 'Content-Type: application/json' \
	"http://127.0.0.1:$FPORT/bench" && break; sleep 0.5; done

# cpu PID: user+system seconds so far; hwm PID: peak RSS in MiB
cpu() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
hwm() { awk '/VmHWM/{ printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# records TOPIC: how many records TOPIC holds (its partitions' high watermarks)
records() { "$BUILD/t/kafkatool" offsets "$P-none" "$1" | awk '{ n += $4 } END { print n + 0 }'; }

# run NAME PID URL TOPIC BATCH CONNS: one wrk run, one line of figures.
# After the run, wait until TOPIC holds every event the run was answered
# 2xx for, or it stops growing for 5 s: Fluent Bit answers before Kafka
# has the events and keeps sending its backlog after the run, which must
# neither count for it nor load the next run.  "in Kafka" is the share of
# the answered events the topic holds then, after how long, and the rate
# from the run's start to that moment.
run() {
	local name=$1 pid=$2 url=$3 topic=$4 batch=$5 conns=$6 c0 c1 out rps p99 non2xx ev
	local r0 r1 reqs want t0 t1 last same=0
	jq -c --argjson n "$batch" '[range($n) as $i | .[0]]' "$ROOT/t/data/collect-request.json" >"$TMP/body.json"
	r0=$(records "$topic")
	c0=$(cpu "$pid")
	out=$(BENCH_BODY="$TMP/body.json" wrk -t2 -c"$conns" -d"${SECS}s" --latency -s "$ROOT/bench/post.lua" "$url")
	t0=$(date +%s.%N)
	rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
	p99=$(echo "$out" | awk '$1=="99%"{print $2}')
	non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}')
	reqs=$(echo "$out" | awk '/requests in/{print $1}')
	want=$(((reqs - ${non2xx:-0}) * batch))
	ev=$(awk -v r="$rps" -v b="$batch" 'BEGIN{printf "%.0f", r * b}')
	last=-1
	for _ in $(seq 1 600); do
		r1=$(($(records "$topic") - r0))
		[ "$r1" -ge "$want" ] && break
		if [ "$r1" = "$last" ]; then
			same=$((same + 1))
			[ "$same" -ge 10 ] && break
		else
			same=0
		fi
		last=$r1
		sleep 0.5
	done
	t1=$(date +%s.%N)
	c1=$(cpu "$pid")
	printf '%-12s batch %-3s %3s conns %10s events/s  p99 %9s  CPU %6.1f s per 1M events  peak RSS %4s MiB  non-2xx %s  in Kafka %s\n' \
		"$name" "$batch" "$conns" "$ev" "$p99" \
		"$(awk -v a="$c0" -v b="$c1" -v e="$r1" 'BEGIN{ print (e > 0) ? (b - a) / e * 1e6 : 0 }')" \
		"$(hwm "$pid")" "${non2xx:-0}" \
		"$(awk -v g="$r1" -v w="$want" -v a="$t0" -v b="$t1" -v s="$SECS" \
			'BEGIN{ printf "%.0f%% after +%.1fs: %.0f events/s", (w > 0 ? 100 * g / w : 0), b - a, g / (s + b - a) }')"
}

echo "machine: $(nproc) cores shared by the broker, both systems and wrk; ${SECS}s a run, $ROUNDS rounds"
echo "fluent-bit: $("$FB" --version 2>/dev/null | head -1)"
for r in $(seq 1 "$ROUNDS"); do
	for spec in "10 64" "100 32"; do
		set -- $spec
		run collectord "$CPID" "http://127.0.0.1:$CPORT/collect" "$P.raw" "$1" "$2"
		run fluent-bit "$FPID" "http://127.0.0.1:$FPORT/bench" "$P.fb" "$1" "$2"
	done
done
