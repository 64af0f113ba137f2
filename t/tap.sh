# t/tap.sh: TAP output for the shell tests: t/lib.sh (the integration
# tests) and the checks of the tree itself source it.
T_N=0
T_FAILED=0

ok() {	# ok COND-EXIT-STATUS NAME [DIAGNOSTIC...]: each diagnostic line as "# ..."
	T_N=$((T_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $T_N - $2"
	else
		echo "not ok $T_N - $2"
		T_FAILED=$((T_FAILED + 1))
		shift 2
		for d in "$@"; do printf '%s\n' "$d" | sed 's/^/# /'; done
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
