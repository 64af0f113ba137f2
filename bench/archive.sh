#!/usr/bin/env bash
# bench/archive.sh: how fast the archive role drains a raw topic into S3.
# N events are first produced through /collect (collect role only, batches
# of 100, Confluent-framed, so that each record is also decoded with the
# family's schema); then an archive-only collectord starts on the topic
# with a new group, and the time from its first record archived to the
# last one in S3 (nothing buffered, no lag) is measured from /metrics.
# Needs the services up and a build in build/ (or BUILD=dir).
# Usage: bench/archive.sh [EVENTS] [FLUSH_EVENTS]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
N=${1:-50000}
FLUSH=${2:-1000}
eval "$("$ROOT/scripts/services" env)"
P=bench-archive-$$
TMP=$(mktemp -d)
PIDS=
trap 'for p in $PIDS; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; "$BUILD/t/kafkatool" delete $(cut -d, -f1 "$TMP/topics") >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ready() { for _ in $(seq 1 120); do curl -fs -o /dev/null "$1/readyz" && return 0; sleep 0.5; done; return 1; }

printf '%s.raw,3,1,message.timestamp.type=LogAppendTime\n%s.dlq,1,1\n' "$P" "$P" >"$TMP/topics"
make -s -C "$BUILD" t/kafkatool >/dev/null
"$BUILD/collectord-admin" create-topics "$TMP/topics" >/dev/null
echo "machine: $(nproc) cores; services on loopback; $N events; [archive] flush_events $FLUSH"

# Fill the topic through /collect: valid events only, batches of 100.
PORT=$(port)
COLLECTORD_SERVER_PORT=$PORT COLLECTORD_SERVER_FAMILIES=holded COLLECTORD_SERVER_ROLES=collect COLLECTORD_TOPICS_RAW=$P.raw \
	COLLECTORD_TOPICS_DEAD_LETTER=$P.dlq COLLECTORD_SERVER_LOG_LEVEL=warn \
	"$BUILD/collectord" 2>"$TMP/collect.log" &
PIDS="$PIDS $!"
ready "http://127.0.0.1:$PORT"
jq -c '[range(100) as $i | .[0]]' "$ROOT/t/data/collect-request.json" >"$TMP/body.json"
for _ in $(seq 1 $((N / 100))); do
	curl -fs -o /dev/null --data-binary @"$TMP/body.json" "http://127.0.0.1:$PORT/collect"
done
n=$((N / 100 * 100))

PORT2=$(port)
t_start=$(date +%s.%N)
COLLECTORD_SERVER_PORT=$PORT2 COLLECTORD_SERVER_FAMILIES=holded COLLECTORD_SERVER_ROLES=archive COLLECTORD_TOPICS_RAW=$P.raw \
	COLLECTORD_TOPICS_DEAD_LETTER=$P.dlq COLLECTORD_ENRICH_GROUP_ID=$P COLLECTORD_ARCHIVE_TOPICS_FILE= \
	COLLECTORD_ARCHIVE_FLUSH_EVENTS=$FLUSH COLLECTORD_SERVER_LOG_LEVEL=warn \
	"$BUILD/collectord" 2>"$TMP/archive.log" &
PIDS="$PIDS $!"
# archived: records made into lines, and those received and not yet in S3
# (a gauge refreshed every second: read only once a refresh has passed
# since the last record was processed, so the figure is within a second).
archived() {
	curl -fs "http://127.0.0.1:$PORT2/metrics" | awk -v t="$P.raw" '
		$1 ~ "^collectord_archive_records_total\\{topic=\"" t "\"" { n += $2 }
		$1 == "collectord_archive_buffered_records" { b = $2 }
		END { print n + 0, b + 0 }'
}
got=0 buffered=1 t_all=
for _ in $(seq 1 6000); do
	read -r got buffered <<<"$(archived 2>/dev/null || echo 0 1)"
	now=$(date +%s.%N)
	[ -z "$t_all" ] && [ "$got" -ge "$n" ] && t_all=$now
	[ -n "$t_all" ] && [ "$buffered" -eq 0 ] &&
		awk -v a="$t_all" -v b="$now" 'BEGIN { exit !(b - a > 1.2) }' && break
	sleep 0.1
done
[ "$got" -ge "$n" ] && [ "$buffered" -eq 0 ] || { echo "archive did not finish: $got of $n records"; exit 1; }
objects=$("$ROOT/scripts/s3" ls "$COLLECTORD_S3_BUCKET" "archive/$P.raw/" | wc -l)
bytes=0
while read -r key; do
	bytes=$((bytes + $("$ROOT/scripts/s3" get "$COLLECTORD_S3_BUCKET/$key" | wc -c)))
done < <("$ROOT/scripts/s3" ls "$COLLECTORD_S3_BUCKET" "archive/$P.raw/")
awk -v n="$n" -v s="$t_start" -v m="$t_all" -v b="$now" -v o="$objects" -v by="$bytes" 'BEGIN {
	printf "collectord archive (from its start, group join included):\n"
	printf "  %d records decoded into lines in %.2f s: %.0f records/s\n", n, m - s, n / (m - s)
	printf "  all in S3 within %.2f s (to 1 s): %.0f records/s; %d objects, %.1f MB, %.0f bytes a line\n", b - s, n / (b - s), o, by / 1e6, by / n }'
