#!/usr/bin/env bash
# t/it_faultsuite.sh: every fault under steady load of every family, with
# its accounting table (t/faultsuite.py), against the real services.  It
# stops and starts them: run it alone against its services.  Quick by
# default; COLLECTORD_FAULTS=full runs every fault, longer:
#   make check TESTS=t/it_faultsuite.sh COLLECTORD_FAULTS=full
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

[ -x "$top_builddir/collectord" ] || bail "no $top_builddir/collectord: build it first"

# faultsuite.py owns its daemons and restarts what it stopped; should it be
# killed, the pid files of its running daemons and its list of stopped
# services remain.
faults_cleanup() {
	for f in "$T_DIR"/*.pid; do
		[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
	FAULTS_DIR="$T_DIR" python3 "$top_srcdir/t/faultsuite.py" --restore
	cleanup
}
trap faults_cleanup EXIT

export top_srcdir top_builddir
export FAULTS_DIR="$T_DIR" FAULTS_RUN="it-faultsuite-$$"
rc=missing
while IFS= read -r line; do
	case "$line" in
	"ok - "*) ok 0 "${line#ok - }" ;;
	"not ok - "*) ok 1 "${line#not ok - }" ;;
	"# faultsuite.py exit="*) rc=${line#\# faultsuite.py exit=} ;;
	*) echo "$line" ;;
	esac
done < <(python3 "$top_srcdir/t/faultsuite.py" 2>&1
	echo "# faultsuite.py exit=$?")
# 0: every check passed; 1: some failed (above); anything else: it died.
ok "$(case $rc in 0 | 1) echo 0 ;; *) echo 1 ;; esac)" "faultsuite.py exited by itself (status $rc)"
done_testing
