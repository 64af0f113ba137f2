# t/lib.sh: shared shell for the integration tests (TAP).  They run against
# the real services started by scripts/services; each test starts its own
# collectord on a free port with its own topics, and stops it at exit.
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$PWD}"
T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/collectord-it.XXXXXX")
T_PIDS=""
# shellcheck source=t/tap.sh
. "$top_srcdir/t/tap.sh"

cleanup() {
	for p in $T_PIDS; do kill "$p" 2>/dev/null; done
	for p in $T_PIDS; do wait "$p" 2>/dev/null; done
	if [ "$T_FAILED" -ne 0 ] && ls "$T_DIR"/*.log >/dev/null 2>&1; then
		for f in "$T_DIR"/*.log; do
			echo "# --- tail of $f"; tail -n 30 "$f" | sed 's/^/# /'
		done
	fi
	rm -rf "$T_DIR"
}
trap cleanup EXIT

# The services' settings; they must be up (scripts/services up).
services() { "$top_srcdir/scripts/services" "$@"; }
if [ -z "${COLLECTORD_KAFKA_BROKERS:-}" ]; then
	eval "$(services env)" || bail "scripts/services env failed"
fi
services status >/dev/null 2>&1 ||
	bail "the services are not running: run scripts/services up (or the README's test command)"

# s3get KEY: the object from the bucket on stdout.
s3get() { "$top_srcdir/scripts/s3" get "$COLLECTORD_S3_BUCKET/$1"; }
s3ls() { "$top_srcdir/scripts/s3" ls "$COLLECTORD_S3_BUCKET" "$1"; }
KAFKATOOL="$top_builddir/t/kafkatool"
ADMIN="$top_builddir/collectord-admin"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# make_topics PREFIX: creates PREFIX.raw and PREFIX.dlq, LogAppendTime.
make_topics() {
	printf '%s.raw,3,1,message.timestamp.type=LogAppendTime\n%s.dlq,1,1,message.timestamp.type=LogAppendTime\n%s.enriched,3,1,message.timestamp.type=LogAppendTime\n' \
		"$1" "$1" "$1" >"$T_DIR/topics"
	"$ADMIN" create-topics "$T_DIR/topics" >/dev/null || bail "cannot create topics $1.*"
}

# start_daemon NAME [ENV=VALUE ...]: collectord with its own port; sets
# URL and DAEMON_PID.  Extra settings come as COLLECTORD_* variables.  It
# serves the Holded family only, on the test's own topics, unless the
# settings say otherwise (COLLECTORD_SERVER_FAMILIES=...); its archive
# role reads only the served families' topics (no topics file), so the
# test's own.  The enriched and daily topics a family has by default are the
# machine's, shared: off unless the test names its own.
start_daemon() {
	local name=$1
	shift
	PORT=$(free_port)
	URL="http://127.0.0.1:$PORT"
	env COLLECTORD_SERVER_PORT="$PORT" \
		COLLECTORD_PG_SQL_DIR="$top_srcdir/sql" \
		COLLECTORD_SERVER_FAMILIES=holded \
		COLLECTORD_ARCHIVE_TOPICS_FILE= \
		COLLECTORD_FAMILY_CLICKSTREAM_ENRICHED_TOPIC=none \
		COLLECTORD_FAMILY_CLICKSTREAM_DAILY_TOPIC=none \
		"$@" "$top_builddir/collectord" >>"$T_DIR/$name.log" 2>&1 &
	DAEMON_PID=$!
	T_PIDS="$T_PIDS $DAEMON_PID"
	wait_for 30 "curl -fsS -o /dev/null $URL/healthz" ||
		bail "collectord $name did not start: $(tail -n 3 "$T_DIR/$name.log" | tr '\n' ' ')"
}

# wait_for SECONDS COMMAND: retry COMMAND every 0.25 s until it succeeds.
# The bound only keeps a broken run from hanging; it is not a speed check.
wait_for() {
	local deadline=$(($(date +%s) + $1))
	while ! eval "$2" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$deadline" ] && return 1
		sleep 0.25
	done
	return 0
}

http_status() {	# http_status URL [curl args...]: prints the status code
	local url=$1
	shift
	curl -s -o "$T_DIR/body" -D "$T_DIR/headers" -w '%{http_code}' "$@" "$url"
}
body() { cat "$T_DIR/body"; }
json() { jq -r "$1" "$T_DIR/body"; }

# table_of FAMILY, prefix_of FAMILY: the family's table and its S3 key
# prefix, as its contract names them.
table_of() {
	case $1 in
	holded) echo events ;;
	clickstream) echo clickstream_events ;;
	retail) echo retail_transactions ;;
	esac
}
prefix_of() { [ "$1" = holded ] || echo "$1/"; }

# metric URL NAME: the value of series NAME (labels included) at URL/metrics.
metric() { curl -s "$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }

# committed_all GROUP TOPIC WHAT: one check, that GROUP commits (within
# 180 s) the end of every partition of TOPIC as the topic is now
committed_all() {
	local end
	"$KAFKATOOL" consume "$2" >"$T_DIR/committed_all.jsonl"
	end=$(jq -s 'group_by(.partition) | map(max_by(.offset).offset + 1) | add // 0' \
		"$T_DIR/committed_all.jsonl")
	ok "$(wait_for 180 "[ \"\$($KAFKATOOL committed $1 $2)\" = $end ]"; echo $?)" \
		"$3: group $1 committed all $end records of $2"
}

# enrich N: the enrich-only process N on its own port, kept across
# restarts, with the test's SETTINGS (an array of ENV=VALUE); sets PID_N,
# PORT_N and URL_N, and waits for its /readyz.
enrich() {
	local n=$1 port
	eval "port=\${PORT_$n:-}"
	[ -n "$port" ] || port=$(free_port)
	env COLLECTORD_SERVER_PORT="$port" COLLECTORD_PG_SQL_DIR="$top_srcdir/sql" \
		COLLECTORD_ARCHIVE_TOPICS_FILE= COLLECTORD_SERVER_ROLES=enrich "${SETTINGS[@]}" \
		"$top_builddir/collectord" >>"$T_DIR/enrich$n.log" 2>&1 &
	eval "PID_$n=$! PORT_$n=$port URL_$n=http://127.0.0.1:$port"
	T_PIDS="$T_PIDS $!"
	wait_for 120 "[ \$(http_status http://127.0.0.1:$port/readyz) = 200 ]" ||
		bail "enrich process $n never became ready: $(body)"
}

# stop_enrichers N...: SIGTERM to each enrich process, which must exit 0,
# and no error in any enrich process's log.
stop_enrichers() {
	local n
	for n in "$@"; do
		eval "kill -TERM \$PID_$n; wait \$PID_$n"
		is "$?" 0 "enrich process $n: SIGTERM, exit 0"
	done
	grep -h 'level=error' "$T_DIR"/enrich*.log >"$T_DIR/errors"
	is "$(wc -l <"$T_DIR/errors")" 0 "no error in the enrich processes' logs $(head -n 2 "$T_DIR/errors")"
}

# make_events N FILE [FIRST]: N events (numbered from FIRST, default 0) cycling through the contract's example
# (a canonical event, a ULID/ObjectId/stamp-string one, an invalid one),
# each with its own data.id and message id (its dedup key: the same id
# twice is one event), over two days.
make_events() {
	jq -c --argjson n "$1" --argjson first "${3:-0}" '
		. as $ex | range($first; $first + $n) as $i | $ex[$i % 3]
		| .data.id = "ev-\($i)"
		| if $i % 3 == 0 then
			.attributes["X-Message-Stamp-Holded\\Core\\Messaging\\Messenger\\Stamp\\MessageIdStamp"] =
			  "6c1f0e8a-2d4b-4a9c-b7e3-\("000000000000\($i)" | .[-12:])"
		  | .attributes["X-Message-Stamp-Holded\\Core\\Messaging\\Messenger\\Stamp\\TimestampStamp"] =
			  "2026-11-2\($i % 2)T09:15:02.481Z"
		  elif $i % 3 == 1 then
			.attributes["X-Message-Stamp-Holded\\Core\\Messaging\\Messenger\\Stamp\\MessageIdStamp"] =
			  "[{\"id\": \"01hr71kjry3w47\("000000000000\($i)" | .[-12:])\"}]"
		  else . end' "$top_srcdir/t/data/collect-request.json" >"$2"
}

# post_events SENT URL RESPONSES [BATCH]: posts SENT (JSON Lines) in batches
# (default 10); RESPONSES gets one line per batch: the 200 answer with
# "_first" (index of its first event in SENT), or null.
post_events() {
	local sent=$1 url=$2 out=$3 size=${4:-10} total first=0 code
	total=$(wc -l <"$sent")
	: >"$out"
	while [ "$first" -lt "$total" ]; do
		sed -n "$((first + 1)),$((first + size))p" "$sent" | jq -cs . >"$T_DIR/batch.json"
		code=$(curl -s -o "$T_DIR/answer.json" -w '%{http_code}' --max-time 60 \
			--data-binary @"$T_DIR/batch.json" "$url/collect" || true)
		if [ "$code" = 200 ]; then
			jq -c --argjson f "$first" '. + {_first: $f}' "$T_DIR/answer.json" >>"$out"
		else
			echo null >>"$out"
		fi
		first=$((first + size))
	done
}

# accepted RESPONSES: the acknowledged correlationIds, one a line.
accepted() { jq -r 'select(. != null) | .events[] | select(.status == "accepted") | .correlationId' "$1"; }

# pg_rows IDS OUT: the rows of table events whose correlation_id is in IDS.
pg_rows() {
	psql "$COLLECTORD_PG_CONNINFO" -q -At -F "$(printf '\t')" -v ON_ERROR_STOP=1 >"$2" <<SQL
CREATE TEMP TABLE want (c uuid);
\copy want FROM '$1'
SELECT e.correlation_id, extract(epoch FROM e.timestamp_stamp) * 1000, e.message_id_stamp,
       e.type, e.target_subscription, e.new_context_account_id, e.new_context_user_id, e.data
  FROM events e JOIN want w ON e.correlation_id = w.c;
SQL
}

# pg_count IDS: how many of IDS are in table events.
pg_count() {
	psql "$COLLECTORD_PG_CONNINFO" -q -At -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE want (c uuid);
\copy want FROM '$1'
SELECT count(*) FROM events e JOIN want w ON e.correlation_id = w.c;
SQL
}

# s3_fetch TOPIC DIR: download every enriched object of TOPIC into DIR.
s3_fetch() {
	mkdir -p "$2"
	s3ls enriched/ | grep -F "/$1+" | while read -r key; do
		s3get "$key" >"$2/$(basename "$key")"
	done
}

# check_landed P SENT RESPONSES: wait until every acknowledged event is in
# PostgreSQL, then compare columns, metadata and S3 objects.
check_landed() {
	local p=$1 sent=$2 resp=$3 n sid
	accepted "$resp" >"$T_DIR/ids"
	n=$(wc -l <"$T_DIR/ids")
	ok "$(wait_for 240 "[ \$(pg_count $T_DIR/ids) -ge $n ]"; echo $?)" "all $n acknowledged events reached PostgreSQL"
	# The S3 flush of the same records may still be finishing.
	wait_for 60 "[ \$(s3ls enriched/ | grep -cF '/$p.raw+') -gt 0 ]"
	sleep 2
	pg_rows "$T_DIR/ids" "$T_DIR/pg.tsv"
	"$KAFKATOOL" consume "$p.raw" >"$T_DIR/raw.jsonl"
	rm -rf "$T_DIR/s3" && s3_fetch "$p.raw" "$T_DIR/s3"
	sid=$(curl -s "$COLLECTORD_REGISTRY_URL/subjects/events.raw-value/versions/latest" | jq .id)
	python3 "$top_srcdir/t/enrich_check.py" "$sent" "$resp" "$T_DIR/pg.tsv" \
		"$T_DIR/raw.jsonl" "$T_DIR/s3" "$sid" >"$T_DIR/check.tap"
	while read -r line; do
		case "$line" in
		"ok "*) ok 0 "${line#ok * - }" ;;
		"not ok "*) ok 1 "${line#not ok * - }" ;;
		*) echo "$line" ;;
		esac
	done <"$T_DIR/check.tap"
}
