#!/usr/bin/env bash
# t/install.sh: make install puts every family's files where the daemon
# and the installed scripts look for them: each schemas/NAME/sql/*.sql in a
# dist_*sql_DATA list of Makefile.am (installed as
# $(datadir)/collectord/schemas/NAME/sql, the default [family.NAME]
# sql_dir), every other file of schemas/NAME/ but its README (the .proto,
# generate.py, what it reads) in dist_NAMEschema_DATA
# ($(datadir)/collectord/schemas/NAME, where scripts/register-schemas and
# scripts/generate-events find them), every sql/*.sql in dist_sql_DATA,
# the files the scripts read from their root (topics/main-topics,
# schemas/subjects, connect/*.json), and a manual page for each man/*.in.
# No services.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
MK=$top_srcdir/Makefile.am
# shellcheck source=t/tap.sh
. "$top_srcdir/t/tap.sh"
# The words of Makefile.am's variable NAME (continuation lines joined).
words_of() {
	sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$MK" | awk -v v="$1" '$1 == v && $2 == "=" { for (i = 3; i <= NF; i++) print $i }'
}
[ -r "$MK" ] || { echo "Bail out! cannot read $MK"; exit 1; }
cd "$top_srcdir" || exit 1
for f in schemas/*/sql/*.sql; do
	fam=${f#schemas/}
	fam=${fam%%/*}
	words_of "dist_${fam}sql_DATA" | grep -qxF "$f"
	ok $? "$f is installed (dist_${fam}sql_DATA)"
	grep -qE "^${fam}sqldir = \\\$\\(datadir\\)/collectord/schemas/${fam}/sql\$" "$MK"
	ok $? "$fam's SQL goes to \$(datadir)/collectord/schemas/$fam/sql"
done
for f in schemas/*/*; do
	[ -f "$f" ] || continue
	case $f in */README.md) continue ;; esac
	fam=${f#schemas/}
	fam=${fam%%/*}
	words_of "dist_${fam}schema_DATA" | grep -qxF "$f"
	ok $? "$f is installed (dist_${fam}schema_DATA)"
done
for d in schemas/*/; do
	fam=${d#schemas/}
	fam=${fam%/}
	grep -qE "^${fam}schemadir = \\\$\\(datadir\\)/collectord/schemas/${fam}\$" "$MK"
	ok $? "$fam's folder goes to \$(datadir)/collectord/schemas/$fam"
done
for pair in topics/main-topics:dist_topics_DATA schemas/subjects:dist_schemas_DATA; do
	words_of "${pair#*:}" | grep -qxF "${pair%%:*}"
	ok $? "${pair%%:*} is installed (${pair#*:})"
done
for f in connect/*.json; do
	words_of dist_connect_DATA | grep -qxF "$f"
	ok $? "$f is installed (dist_connect_DATA)"
done
for f in man/*.in; do
	words_of man_MANS | grep -qxF "${f%.in}"
	ok $? "${f%.in} is installed (man_MANS)"
done
# [archive] topics_file's default, $(datadir)/collectord/topics/main-topics
words_of dist_topics_DATA | grep -qxF topics/main-topics
ok $? "topics/main-topics is installed (dist_topics_DATA)"
grep -qE '^topicsdir = \$\(datadir\)/collectord/topics$' "$MK"
ok $? "it goes to \$(datadir)/collectord/topics, where [archive] topics_file looks"
for f in sql/*.sql; do
	words_of dist_sql_DATA | grep -qxF "$f"
	ok $? "$f is installed (dist_sql_DATA)"
done
done_testing
