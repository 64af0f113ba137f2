#!/usr/bin/env bash
# bench/pipeline.sh: the whole pipeline under an offered rate.  A
# collect-only and an enrich-only collectord run side by side on a fresh
# raw topic; bench/pipeline.py offers fixed rates of valid events to
# POST /collect, one after the other, and says for each whether the
# enricher keeps up (its consumer lag plus unconfirmed records, read from
# /metrics every second, must not grow), then, at half of the highest rate
# sustained, the end-to-end latency from a request sent to all its rows in
# PostgreSQL.  Last, the CPU each process used over the whole run: on a
# small machine the load generator, the broker, MinIO and PostgreSQL share
# the cores with collectord.  Needs the services up and a build in build/
# (or BUILD=dir).
#
#   bench/pipeline.sh [SECONDS] [RATE...]   defaults: 10 and 10000 15000 ... 60000
#
# Requests carry BATCH (default 100) events; PARTITIONS (default 3) of the
# raw topic; the enricher's settings are the defaults (flush_events 500,
# flush_ms 1000) unless COLLECTORD_ENRICH_* says otherwise.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SECS=${1:-10}
shift || true
RATES=${*:-10000 15000 20000 25000 30000 35000 40000 50000 60000}
BATCH=${BATCH:-100}
eval "$("$ROOT/scripts/services" env)"
P=bench-pipe-$$
TMP=$(mktemp -d)
PIDS=
trap 'for p in $PIDS; do kill $p 2>/dev/null || true; wait $p 2>/dev/null || true; done; "$BUILD/t/kafkatool" delete $(cut -d, -f1 "$TMP/topics") >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ready() { for _ in $(seq 1 120); do curl -fs -o /dev/null "$1/readyz" && return 0; sleep 0.5; done; return 1; }

printf '%s.raw,%s,1,message.timestamp.type=LogAppendTime\n%s.dlq,1,1\n' "$P" "${PARTITIONS:-3}" "$P" >"$TMP/topics"
make -s -C "$BUILD" t/kafkatool >/dev/null
"$BUILD/collectord-admin" create-topics "$TMP/topics" >/dev/null

CPORT=$(port)
EPORT=$(port)
COLLECTORD_SERVER_PORT=$CPORT COLLECTORD_SERVER_FAMILIES=holded COLLECTORD_SERVER_ROLES=collect \
	COLLECTORD_TOPICS_RAW=$P.raw COLLECTORD_TOPICS_DEAD_LETTER=$P.dlq COLLECTORD_SERVER_LOG_LEVEL=warn \
	"$BUILD/collectord" 2>"$TMP/collect.log" &
PIDS="$PIDS $!"
COLLECTORD_SERVER_PORT=$EPORT COLLECTORD_SERVER_FAMILIES=holded COLLECTORD_SERVER_ROLES=enrich \
	COLLECTORD_TOPICS_RAW=$P.raw COLLECTORD_TOPICS_DEAD_LETTER=$P.dlq COLLECTORD_ENRICH_GROUP_ID=$P \
	COLLECTORD_PG_SQL_DIR=$ROOT/sql COLLECTORD_SERVER_LOG_LEVEL=warn \
	"$BUILD/collectord" 2>"$TMP/enrich.log" &
PIDS="$PIDS $!"
ready "http://127.0.0.1:$CPORT"
ready "http://127.0.0.1:$EPORT"

echo "machine: $(nproc) cores; services on loopback; collect and enrich in two processes;" \
	"${SECS}s per rate, batches of $BATCH events, ${PARTITIONS:-3} partitions"
# shellcheck disable=SC2086
FLUSH_EVENTS=${COLLECTORD_ENRICH_FLUSH_EVENTS:-500} PARTITIONS=${PARTITIONS:-3} python3 "$ROOT/bench/pipeline.py" "http://127.0.0.1:$CPORT" "http://127.0.0.1:$EPORT" "$ROOT/t/data/collect-request.json" \
	"$BATCH" "$SECS" $RATES
