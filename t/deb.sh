#!/usr/bin/env bash
# t/deb.sh: the Debian package.  The distributed files (make distdir, the
# tarball's contents) are copied to a temporary folder and built there
# with dpkg-buildpackage -us -uc (source and binary, DEB_BUILD_OPTIONS
# nocheck: the test suite is this one); lintian must report nothing but
# what debian/*lintian-overrides explain.  The .deb is then unpacked into a
# scratch root (dpkg -x) and what it installs is used from there: the
# binaries run, the shipped configuration parses and names SQL folders
# that exist, the units verify with systemd-analyze and are Type=notify
# under the user collectord, which systemd-sysusers creates from the
# package's file in another scratch root, the manual pages render, the
# operator scripts find their files, and the maintainer scripts do what
# they say.  The source tree is left as it was.  No services; the build
# compiles the project once (a few minutes on two cores).
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
# shellcheck source=t/tap.sh
. "$top_srcdir/t/tap.sh"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

for tool in dpkg-buildpackage dh lintian dpkg-deb mandoc man systemd-analyze systemd-sysusers readelf jq python3; do
	command -v "$tool" >/dev/null ||
		bail "$tool is missing: scripts/install-deps apt installs it"
done
VERSION=$(sed -n 's/^VERSION = //p' "$top_builddir/Makefile")
[ -n "$VERSION" ] || bail "no VERSION in $top_builddir/Makefile"
is "$(dpkg-parsechangelog -l "$top_srcdir/debian/changelog" -S Version)" "$VERSION" \
	"debian/changelog's version is configure's"

# What the tree holds now, to compare with after the build.
tree_state() {
	if git -C "$top_srcdir" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -C "$top_srcdir" status --porcelain --ignored
	else
		find "$top_srcdir" -path "$(cd "$top_builddir" && pwd)" -prune -o -print | sort
	fi
}
tree_state >"$TMP/tree.before"

# ---------------------------------------------------------------- build
SRC=$TMP/collectord-$VERSION
# The sub-make must not take this make's jobserver or flags.
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$top_builddir" distdir distdir="$SRC" \
	>"$TMP/distdir.log" 2>&1
ok $? "make distdir copies the distributed files" "$(tail -n 20 "$TMP/distdir.log")"
[ -x "$SRC/debian/rules" ]
ok $? "debian/ is distributed"
mkdir "$TMP/home"
(cd "$SRC" && env -i PATH="$PATH" HOME="$TMP/home" LC_ALL=C.UTF-8 TMPDIR="$TMP" \
	DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc) >"$TMP/build.log" 2>&1
st=$?
ok $st "dpkg-buildpackage -us -uc builds it" "$(tail -n 40 "$TMP/build.log")"
[ "$st" -eq 0 ] || bail "no package to look at"
ARCH=$(dpkg --print-architecture)
DEB=$TMP/collectord_${VERSION}_$ARCH.deb
CHANGES=$TMP/collectord_${VERSION}_$ARCH.changes
[ -f "$DEB" ] && [ -f "$TMP/collectord_$VERSION.dsc" ]
ok $? "it made collectord_${VERSION}_$ARCH.deb and collectord_$VERSION.dsc"
grep -q -- '--with-systemd' "$TMP/build.log"
ok $? "configure ran --with-systemd"

# lintian on the source and the binary package, every tag shown: info,
# pedantic and experimental ones too; overrides must explain whatever is
# left.  (Shown overrides make lintian exit 2, so the tags decide.)
lintian --display-info --pedantic --display-experimental --show-overrides \
	"$CHANGES" >"$TMP/lintian" 2>&1
st=$?
diag "lintian $(lintian --print-version) on $(basename "$CHANGES"):"
sed 's/^/#   /' "$TMP/lintian"
[ "$st" -eq 0 ] || [ "$st" -eq 2 ]
ok $? "lintian ran (exit $st)"
grep -qE '^[EWIPX]: ' "$TMP/lintian"
ok "$((1 - $?))" "lintian: no tag but the overridden ones" "$(grep -E '^[EWIPX]: ' "$TMP/lintian")"
while read -r kind tag; do
	f=$top_srcdir/debian/collectord.lintian-overrides
	[ "$kind" = source ] && f=$top_srcdir/debian/source/lintian-overrides
	# The comment line just above the override says why.
	awk -v t="$tag" '$0 ~ "(^|[: ])" t "( |$)" { exit !(prev ~ /^#/) } { prev = $0 }
		END { if (NR == 0) exit 1 }' "$f"
	ok $? "the override of $tag says why ($(basename "$f"))"
done < <(awk '/^O: / { print ($3 == "source:" ? "source " $4 : "binary " $3) }' "$TMP/lintian" | sort -u)

# ---------------------------------------------------------------- the package
ROOT=$TMP/root
dpkg -x "$DEB" "$ROOT"
ok $? "dpkg -x unpacks it into a scratch root"
is "$(dpkg-deb -f "$DEB" Package) $(dpkg-deb -f "$DEB" Version)" "collectord $VERSION" \
	"package collectord $VERSION"
depends=$(dpkg-deb -f "$DEB" Depends)
for lib in libsystemd0 librdkafka1 libpq5 libevent systemd; do
	case $depends in *"$lib"*) st=0 ;; *) st=1 ;; esac
	ok $st "Depends names $lib" "Depends: $depends"
done
(cd "$ROOT" && find . -mindepth 1 -maxdepth 1 | sort | tr '\n' ' ') >"$TMP/top"
is "$(cat "$TMP/top")" "./etc ./lib ./usr " "it installs under /etc, /lib and /usr only"

for bin in collectord collectord-admin; do
	[ -x "$ROOT/usr/bin/$bin" ]
	ok $? "/usr/bin/$bin is installed"
	"$ROOT/usr/bin/$bin" --help >"$TMP/help" 2>&1
	ok $? "$bin --help runs from the scratch root" "$(cat "$TMP/help")"
done
is "$("$ROOT/usr/bin/collectord" --version)" "collectord $VERSION" "collectord --version"
readelf -d "$ROOT/usr/bin/collectord" | grep -q 'NEEDED.*libsystemd\.so'
ok $? "collectord links libsystemd (sd_notify for Type=notify)"

# The configuration: sample and file, the file parsing as shipped, with
# no environment, and every SQL folder it names in the package.
conf=$ROOT/etc/collectord/collectord.conf
[ -f "$ROOT/etc/collectord/collectord.conf.sample" ]
ok $? "/etc/collectord/collectord.conf.sample is installed"
env -i "$ROOT/usr/bin/collectord" --check-config --config "$conf" >"$TMP/check" 2>&1
ok $? "collectord --check-config takes /etc/collectord/collectord.conf as shipped" "$(cat "$TMP/check")"
dpkg-deb -e "$DEB" "$TMP/control"
grep -qxF /etc/collectord/collectord.conf "$TMP/control/conffiles"
ok $? "/etc/collectord/collectord.conf is a conffile"
n=0
while read -r dir; do
	n=$((n + 1))
	ls "$ROOT$dir"/*.sql >/dev/null 2>&1
	ok $? "the configured SQL folder $dir holds SQL in the package"
done < <(sed -n 's/^\[[a-z.]*\] sql_dir = //p' "$TMP/check")
ok "$([ "$n" -ge 2 ]; echo $?)" "--check-config named [pg] sql_dir and the families' ($n)"

# Every SQL file, .proto and script file of the tree, where the scripts
# look for them (their root is the parent of their own folder).
share=$ROOT/usr/share/collectord
missing=$(cd "$top_srcdir" && for f in sql/*.sql schemas/*/sql/*.sql schemas/*/*.proto \
	schemas/subjects topics/main-topics; do [ -s "$share/$f" ] || printf '%s ' "$f"; done)
ok "$([ -z "$missing" ]; echo $?)" "the SQL, the schemas and the topics are under /usr/share/collectord" \
	"missing: $missing"
subject=$(awk '!/^#/ && NF == 3 { print $1; exit }' "$share/schemas/subjects")
file=$(awk '!/^#/ && NF == 3 { print $3; exit }' "$share/schemas/subjects")
"$share/scripts/register-schemas" --print "$subject" | jq -j .schema >"$TMP/schema"
cmp -s "$TMP/schema" "$share/$file"
ok $? "scripts/register-schemas --print $subject reads the installed $file"
for d in "$share"/schemas/*/; do
	fam=$(basename "$d")
	out=$("$share/scripts/generate-events" --dry-run --count 3 --seed 1 --family "$fam" 2>&1)
	st=$?
	[ "$st" -eq 0 ] && [ "$(printf '%s\n' "$out" | jq -c . | wc -l)" -eq 3 ] || st=1
	ok $st "scripts/generate-events --dry-run --family $fam makes up events from the package" "$out"
done
is "$(PATH="$ROOT/usr/bin:$PATH" COLLECTORD_ADMIN='' "$share/scripts/create-topics" --admin-path)" \
	"$ROOT/usr/bin/collectord-admin" "scripts/create-topics uses the installed collectord-admin"
want=$(grep -cvE '^[[:space:]]*(#|$)' "$share/topics/main-topics")
got=$("$ROOT/usr/bin/collectord-admin" create-topics "$share/topics/main-topics" --dry-run \
	--config "$conf" | grep -c '^would-create ')
is "$got" "$want" "collectord-admin create-topics --dry-run reads every topic of the installed main-topics"

# The units, as systemd 252 reads them: no warning, executables and
# manual pages that exist (pointed into the scratch root), Type=notify,
# the user.
for unit in collectord.service collectord@.service; do
	u=$ROOT/lib/systemd/system/$unit
	[ -f "$u" ]
	ok $? "/lib/systemd/system/$unit is installed"
	grep -qx 'Type=notify' "$u"
	ok $? "$unit is Type=notify"
	grep -qx 'User=collectord' "$u" && ! grep -q '^DynamicUser=' "$u"
	ok $? "$unit runs as the system user collectord"
	grep -qx 'ExecStart=/usr/bin/collectord --config /etc/collectord/collectord.conf' "$u"
	ok $? "$unit starts /usr/bin/collectord with /etc/collectord/collectord.conf"
	mkdir -p "$TMP/units"
	sed "s|^ExecStart=/usr/bin/|ExecStart=$ROOT/usr/bin/|" "$u" >"$TMP/units/$unit"
	# (It also looks the Documentation= manual pages up: the package's.)
	MANPATH=$ROOT/usr/share/man systemd-analyze verify "$TMP/units/$unit" >"$TMP/verify" 2>&1
	st=$?
	[ -s "$TMP/verify" ] && st=1
	ok $st "systemd-analyze verify $unit: clean" "$(cat "$TMP/verify")"
done
exposure=$(systemd-analyze security --offline=yes --root="$ROOT" collectord.service 2>/dev/null |
	sed -n 's/.*Overall exposure level for collectord.service: //p')
diag "systemd-analyze security --offline: $exposure"
ok "$([ -n "$exposure" ]; echo $?)" "systemd-analyze security rates collectord.service"

# The user, made by systemd-sysusers from the package's file, as the
# postinst does with DPKG_ROOT.
sysusers=$ROOT/usr/lib/sysusers.d/collectord.conf
[ -f "$sysusers" ]
ok $? "/usr/lib/sysusers.d/collectord.conf is installed"
mkdir -p "$TMP/sys/etc" "$TMP/sys/usr/lib/sysusers.d"
cp "$sysusers" "$TMP/sys/usr/lib/sysusers.d/"
systemd-sysusers --root="$TMP/sys" collectord.conf >"$TMP/sysusers.log" 2>&1
ok $? "systemd-sysusers takes it" "$(cat "$TMP/sysusers.log")"
IFS=: read -r name _ uid _ _ home shell < <(grep '^collectord:' "$TMP/sys/etc/passwd")
is "${name:-} ${home:-} ${shell:-}" "collectord /nonexistent /usr/sbin/nologin" \
	"it makes the user collectord, without home or shell"
ok "$([ "${uid:-0}" -gt 0 ] && [ "${uid:-0}" -lt 1000 ]; echo $?)" "a system uid ($uid)"
grep -q '^collectord:' "$TMP/sys/etc/group"
ok $? "and the group collectord"

# The maintainer scripts.
for s in postinst postrm; do
	sh -n "$TMP/control/$s"
	ok $? "$s is valid sh"
done
grep -q 'systemd-sysusers .*collectord.conf' "$TMP/control/postinst"
ok $? "postinst runs systemd-sysusers"
awk '/systemd-sysusers/ { s = NR } /chown root:collectord/ { c = NR } END { exit !(s && c && s < c) }' \
	"$TMP/control/postinst"
ok $? "postinst gives the configuration to the group collectord once the group exists"
# dh_installsystemd --no-enable: a unit is enabled again only if it was.
grep -q "deb-systemd-helper debian-installed 'collectord.service'" "$TMP/control/postinst"
ok $? "postinst does not enable collectord.service on a first install"

# The manual pages: installed, clean, rendering, with this package's paths.
for page in man8/collectord.8 man8/collectord-admin.8 man5/collectord.conf.5; do
	p=$ROOT/usr/share/man/$page.gz
	[ -f "$p" ]
	ok $? "/usr/share/man/$page.gz is installed"
	name=$(basename "$page")
	mkdir -p "$TMP/man"
	zcat "$p" >"$TMP/man/$name"
	mandoc -Tlint -W warning "$TMP/man/$name" >"$TMP/lint" 2>&1 && [ ! -s "$TMP/lint" ]
	ok $? "$name: mandoc -Tlint clean" "$(cat "$TMP/lint")"
	LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$p" 2>"$TMP/err" >"$TMP/man/$name.txt"
	grep -q '^NAME' "$TMP/man/$name.txt" && [ ! -s "$TMP/err" ]
	ok $? "$name: man -l renders it" "$(cat "$TMP/err")"
done
grep -q '/etc/collectord/collectord.conf' "$TMP/man/collectord.conf.5.txt" &&
	grep -q '/usr/share/collectord/sql' "$TMP/man/collectord.conf.5.txt"
ok $? "collectord.conf(5) names the package's paths"
for f in README.md copyright changelog.gz; do
	[ -f "$ROOT/usr/share/doc/collectord/$f" ]
	ok $? "/usr/share/doc/collectord/$f is installed"
done

tree_state >"$TMP/tree.after"
cmp -s "$TMP/tree.before" "$TMP/tree.after"
ok $? "the source tree is as it was" "$(diff "$TMP/tree.before" "$TMP/tree.after")"

done_testing
