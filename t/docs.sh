#!/usr/bin/env bash
# t/docs.sh: the documentation's sources hold: every docs/*.dot renders
# with Graphviz (dot -Tsvg exits 0), and every relative link of docs/*.md
# names a file of the tree.  Graphviz is not optional here:
# scripts/install-deps installs it, and without dot this test fails
# rather than skips, so a broken diagram never goes unnoticed.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
DOCS=${DOCS_DIR:-$top_srcdir/docs}
DOT=${DOT:-dot}
# shellcheck source=t/tap.sh
. "$top_srcdir/t/tap.sh"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

dots=$(ls "$DOCS"/*.dot 2>/dev/null)
ok "$([ -n "$dots" ]; echo $?)" "docs/ has Graphviz sources"
if command -v "$DOT" >/dev/null; then
	for f in $dots; do
		"$DOT" -Tsvg "$f" -o "$TMP/out.svg" 2>"$TMP/err"
		st=$?
		[ "$st" -ne 0 ] || grep -q '<svg' "$TMP/out.svg" || st=1
		ok "$st" "$(basename "$f") renders with $DOT -Tsvg" "$(head -n 5 "$TMP/err")"
	done
else
	ok 1 "Graphviz's $DOT is installed" "install it: scripts/install-deps apt (package graphviz)"
fi

# make docs renders the files Makefile.am lists: every source must be there.
unlisted=
for f in $dots; do
	grep -q "docs/$(basename "$f")" "$top_srcdir/Makefile.am" || unlisted="$unlisted $(basename "$f")"
done
ok "$([ -z "$unlisted" ]; echo $?)" "Makefile.am's DOCS_DOT lists every docs/*.dot" "not listed:$unlisted"

# Relative links: [text](path) and [text](path#anchor); URLs and pure
# anchors left out.  Paths are relative to the page.
for md in "$DOCS"/*.md; do
	[ -f "$md" ] || continue
	bad=
	while read -r link; do
		case $link in '' | http://* | https://* | mailto:*) continue ;; esac
		# Rendered diagrams are build output, not in the tree.
		case $link in *.svg) [ -f "$DOCS/$(dirname "$link")/$(basename "$link" .svg).dot" ] && continue ;; esac
		[ -e "$(dirname "$md")/$link" ] || bad="$bad $link"
	done < <(grep -o '](\([^)#[:space:]]*\)[^)]*)' "$md" | sed -e 's/^](//' -e 's/)$//' -e 's/#.*//' | sort -u)
	ok "$([ -z "$bad" ]; echo $?)" "the relative links of $(basename "$md") lead to files" "missing:$bad"
done

done_testing
