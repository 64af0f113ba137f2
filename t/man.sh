#!/usr/bin/env bash
# t/man.sh: the manual pages hold.  Each page make builds from man/*.in
# (with this build's paths) is clean for mandoc -Tlint at level warning
# and, with /etc and /usr paths, for groff as man-db runs it (the check
# lintian makes); it has every @variable@ substituted, names itself in
# .Dt, and refers only to pages that exist among ours.  collectord(8)
# documents every option of src/main.c and collectord-admin(8) every
# command and option of src/admin_main.c.  (t/config.t checks
# collectord.conf(5) against the key table.)  mandoc and man-db are not
# optional: scripts/install-deps installs them, and without them this test
# fails rather than skips.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
# shellcheck source=t/tap.sh
. "$top_srcdir/t/tap.sh"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

pages=()
for src in "$top_srcdir"/man/*.in; do
	pages+=("$top_builddir/man/$(basename "$src" .in)")
done
ok "$([ ${#pages[@]} -eq 3 ]; echo $?)" "three manual pages in man/"

have_mandoc=0
command -v mandoc >/dev/null || have_mandoc=1
ok $have_mandoc "mandoc is installed" "install it: scripts/install-deps apt (package mandoc)"
have_man=0
command -v man >/dev/null || have_man=1
ok $have_man "man-db's man is installed" "install it: scripts/install-deps apt (package man-db)"

for page in "${pages[@]}"; do
	name=$(basename "$page")
	if [ ! -f "$page" ]; then
		ok 1 "$name is built" "make $(basename "$(dirname "$page")")/$name in $top_builddir"
		continue
	fi
	if [ "$have_mandoc" -eq 0 ]; then
		mandoc -Tlint -W warning "$page" >"$TMP/lint" 2>&1
		st=$?
		[ -s "$TMP/lint" ] && st=1
		ok "$st" "$name: mandoc -Tlint -W warning is clean" "$(cat "$TMP/lint")"
	fi
	if [ "$have_man" -eq 0 ]; then
		# What lintian runs: groff's warnings on stderr are its tags.  On
		# the page with a distribution's paths: a long build prefix (make
		# distcheck's) is a word groff cannot break, and warns.
		sed -e 's|@sysconfdir@|/etc|g' -e 's|@datadir@|/usr/share|g' \
			-e 's|@docdir@|/usr/share/doc/collectord|g' "$top_srcdir/man/$name.in" >"$TMP/$name"
		LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
			man --warnings -E UTF-8 -l -Tutf8 -Z "$TMP/$name" >"$TMP/out" 2>"$TMP/err"
		st=$?
		[ -s "$TMP/err" ] && st=1
		ok "$st" "$name: groff through man-db renders it without a warning" "$(cat "$TMP/err")"
		LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$page" 2>/dev/null | grep -q '^NAME'
		ok $? "$name: man -l shows its NAME section"
	fi
	left=$(grep -o '@[a-zA-Z_]*@' "$page" | sort -u | tr '\n' ' ')
	ok "$([ -z "$left" ]; echo $?)" "$name: every @variable@ is substituted" "left: $left"
	sec=${name##*.}
	title=$(echo "${name%.*}" | tr '[:lower:]' '[:upper:]')
	grep -qxF ".Dt $title $sec" "$page"
	ok $? "$name: .Dt $title $sec"
	bad=
	while read -r ref refsec; do
		case $ref in collectord*) [ -f "$top_srcdir/man/$ref.$refsec.in" ] || bad="$bad $ref($refsec)" ;; esac
	done < <(sed -n 's/^\.Xr \([^ ]*\) \([0-9]\).*/\1 \2/p' "$page" | sort -u)
	ok "$([ -z "$bad" ]; echo $?)" "$name: its references to collectord pages exist" "missing:$bad"
done

# collectord(8) against the getopt_long table of src/main.c:
# {"config", required_argument, NULL, 'c'}: ".Fl c" and ".Fl -config".
page=$top_builddir/man/collectord.8
n=0
while IFS=' ' read -r long short; do
	n=$((n + 1))
	grep -qE "^\.It Fl $short( |$)" "$page" && grep -qE "Fl -$long( |$)" "$page"
	ok $? "collectord(8) documents -$short, --$long"
done < <(sed -n 's/^[[:space:]]*{"\([a-z-]*\)", [a-z_]*, NULL, '"'"'\(.\)'"'"'},.*/\1 \2/p' \
	"$top_srcdir/src/main.c")
ok "$([ "$n" -ge 5 ]; echo $?)" "src/main.c's options were found ($n)"

# collectord-admin(8) against the commands and options src/admin_main.c
# compares its arguments with.
page=$top_builddir/man/collectord-admin.8
cmds=$(grep -o 'strcmp(cmd, "[a-z-]*")' "$top_srcdir/src/admin_main.c" | sed 's/.*"\(.*\)".*/\1/' | sort -u)
n=0
for c in $cmds; do
	n=$((n + 1))
	case $c in
	-*) grep -qE "^\.It .*Fl ${c#-}( |$)" "$page" ;; # -h, --help
	*) grep -qE "^\.It (.* )?Cm $c( |$)" "$page" ;;
	esac
	ok $? "collectord-admin(8) documents the command $c"
done
ok "$([ "$n" -ge 6 ]; echo $?)" "src/admin_main.c's commands were found ($n)"
opts=$(grep -o 'strn\{0,1\}cmp(a, "-[a-z-]*' "$top_srcdir/src/admin_main.c" | sed 's/.*"//' | sort -u)
n=0
for o in $opts; do
	n=$((n + 1))
	grep -qE "^\.It Fl ${o#-}( |$)" "$page"
	ok $? "collectord-admin(8) documents the option $o"
done
ok "$([ "$n" -ge 6 ]; echo $?)" "src/admin_main.c's options were found ($n)"

done_testing
