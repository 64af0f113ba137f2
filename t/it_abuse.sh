#!/usr/bin/env bash
# t/it_abuse.sh: the attacks on the HTTP edge (t/abuse.py) against real
# collectord daemons, Kafka, the registry and MinIO.  Quick by default;
# COLLECTORD_ABUSE=full runs the big versions:
#   make check TESTS=t/it_abuse.sh COLLECTORD_ABUSE=full
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

P="it-abuse-$$"
make_topics "$P"
make_topics "$P-bh"
[ -x "$top_builddir/collectord" ] || bail "no $top_builddir/collectord: build it first"

# abuse.py owns its daemons; should it be killed, its pid files remain.
abuse_cleanup() {
	for f in "$T_DIR"/*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	cleanup
}
trap abuse_cleanup EXIT

export top_srcdir top_builddir KAFKATOOL
export ABUSE_DIR="$T_DIR" ABUSE_TOPICS="$P"
rc=missing
while IFS= read -r line; do
	case "$line" in
	"ok - "*) ok 0 "${line#ok - }" ;;
	"not ok - "*) ok 1 "${line#not ok - }" ;;
	"# abuse.py exit="*) rc=${line#\# abuse.py exit=} ;;
	*) echo "$line" ;;
	esac
done < <(python3 "$top_srcdir/t/abuse.py" 2>&1
	echo "# abuse.py exit=$?")
is "$rc" 0 "abuse.py ran to its end"
done_testing
