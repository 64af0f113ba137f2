# t/lib.sh: shared shell for the integration tests (TAP).  They run against
# the real services started by scripts/services; each test starts its own
# collectord on a free port with its own topics, and stops it at exit.
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$PWD}"
T_N=0
T_FAILED=0
T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/collectord-it.XXXXXX")
T_PIDS=""

ok() {	# ok COND-EXIT-STATUS NAME
	T_N=$((T_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $T_N - $2"
	else
		echo "not ok $T_N - $2"
		T_FAILED=$((T_FAILED + 1))
	fi
}
is() {	# is GOT WANT NAME
	if [ "$1" = "$2" ]; then ok 0 "$3"; else
		ok 1 "$3"; echo "#   got:  $1"; echo "#   want: $2"; fi
}
diag() { echo "# $*"; }
bail() { echo "Bail out! $*"; exit 1; }
done_testing() {
	echo "1..$T_N"
	[ "$T_FAILED" -eq 0 ]
}

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
	printf '%s.raw,3,1,message.timestamp.type=LogAppendTime\n%s.dlq,1,1,message.timestamp.type=LogAppendTime\n' \
		"$1" "$1" >"$T_DIR/topics"
	"$ADMIN" create-topics "$T_DIR/topics" >/dev/null || bail "cannot create topics $1.*"
}

# start_daemon NAME [ENV=VALUE ...]: collectord with its own port; sets
# URL and DAEMON_PID.  Extra settings come as COLLECTORD_* variables.
start_daemon() {
	local name=$1
	shift
	PORT=$(free_port)
	URL="http://127.0.0.1:$PORT"
	env COLLECTORD_SERVER_PORT="$PORT" \
		COLLECTORD_PG_SQL_DIR="$top_srcdir/sql" \
		"$@" "$top_builddir/collectord" >>"$T_DIR/$name.log" 2>&1 &
	DAEMON_PID=$!
	T_PIDS="$T_PIDS $DAEMON_PID"
	wait_for 30 "curl -fsS -o /dev/null $URL/healthz" || bail "collectord $name did not start"
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
