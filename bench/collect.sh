#!/usr/bin/env bash
# bench/collect.sh: /collect throughput against its two ceilings, measured
# in the same session on the same services:
#   - HTTP ceiling: GET /healthz on the same collectord (its HTTP server, no work);
#   - Kafka ceiling: librdkafka alone (bench/produce_ceiling) producing
#     records of the same size with the same acks=all/idempotent settings;
#   - collectord: POST /collect, batches of BATCH valid events, answered
#     only after Kafka acknowledged every event.
# Needs the services up (scripts/services up) and a build in build/
# (or BUILD=dir).  Usage: bench/collect.sh [SECONDS] [BATCH] [CONNECTIONS]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SECS=${1:-10}
BATCH=${2:-10}
CONNS=${3:-16}
command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
eval "$("$ROOT/scripts/services" env)"
P=bench-$$
TMP=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; wait $PID 2>/dev/null; "$BUILD/t/kafkatool" delete $(cut -d, -f1 "$TMP/topics") >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
printf '%s.raw,3,1,message.timestamp.type=LogAppendTime\n%s.dlq,1,1\n' "$P" "$P" >"$TMP/topics"
make -s -C "$BUILD" t/kafkatool >/dev/null
"$BUILD/collectord-admin" create-topics "$TMP/topics" >/dev/null
make -s -C "$BUILD" bench/produce_ceiling >/dev/null

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
COLLECTORD_SERVER_PORT=$PORT COLLECTORD_SERVER_FAMILIES=holded COLLECTORD_SERVER_ROLES=collect COLLECTORD_TOPICS_RAW=$P.raw \
	COLLECTORD_TOPICS_DEAD_LETTER=$P.dlq COLLECTORD_SERVER_LOG_LEVEL=warn \
	"$BUILD/collectord" 2>"$TMP/log" &
PID=$!
for _ in $(seq 1 120); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.5; done
jq -c --argjson n "$BATCH" '[range($n) as $i | .[0]]' "$ROOT/t/data/collect-request.json" >"$TMP/body.json"

echo "machine: $(nproc) cores; services on loopback; ${SECS}s per run, $CONNS connections, batches of $BATCH events"
hz=$(wrk -t2 -c"$CONNS" -d"${SECS}s" "http://127.0.0.1:$PORT/healthz" | awk '/Requests\/sec/{print $2}')
printf '%-46s %12s req/s\n' "HTTP ceiling (GET /healthz, same process)" "$hz"
# One framed record of event 0 is about this many bytes on the wire.
size=$(curl -s -X POST --data-binary "@$ROOT/t/data/collect-request.json" "http://127.0.0.1:$PORT/collect" >/dev/null;
	"$BUILD/t/kafkatool" consume "$P.raw" | jq -r 'select(.key | endswith("00000000")) | .valueHex | length / 2')
n=$(awk -v h="$hz" -v b="$BATCH" 'BEGIN{ n = int(h * b * 2); if (n < 200000) n = 200000; print n }')
kc=$(BENCH=1 "$BUILD/bench/produce_ceiling" "$P.raw" "$n" "$size" | awk '{print $2}')
printf '%-46s %12s events/s (%s-byte records)\n' "Kafka ceiling (librdkafka alone, acks=all)" "$kc" "$size"
out=$(BENCH_BODY="$TMP/body.json" wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$ROOT/bench/post.lua" "http://127.0.0.1:$PORT/collect")
rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}')
p50=$(echo "$out" | awk '$1=="50%"{print $2}')
p99=$(echo "$out" | awk '$1=="99%"{print $2}')
printf '%-46s %12.0f events/s (%s req/s, p50 %s, p99 %s, non-2xx %s)\n' "collectord POST /collect" \
	"$(awk -v r="$rps" -v b="$BATCH" 'BEGIN{print r * b}')" "$rps" "$p50" "$p99" "${non2xx:-0}"
