#!/usr/bin/env bash
# t/install.sh: make install puts every family's files where the daemon
# looks for them: each schemas/NAME/sql/*.sql in a dist_*sql_DATA list of
# Makefile.am (installed as $(datadir)/collectord/schemas/NAME/sql, the
# default [family.NAME] sql_dir), each schemas/NAME/NAME.proto in
# dist_proto_DATA, every sql/*.sql in dist_sql_DATA, and topics/main-topics
# in dist_topics_DATA (the archive's topics file).  No services.
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
for f in schemas/*/*.proto; do
	words_of dist_proto_DATA | grep -qxF "$f"
	ok $? "$f is installed (dist_proto_DATA)"
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
