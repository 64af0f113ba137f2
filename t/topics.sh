#!/usr/bin/env bash
# t/topics.sh: topics/main-topics and the families' schemas/*/topics files
# say the same, so neither drifts from the other (see main-topics' header):
# every topic line of main-topics is a line of exactly one family's file,
# every family's line is in main-topics, no topic is named twice, and
# Holded's two lines are exactly today's.  Also: every subject of
# schemas/subjects names a readable file and a known type.  No services.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
MAIN=${TOPICS_MAIN:-$top_srcdir/topics/main-topics}
SCHEMAS=${TOPICS_SCHEMAS:-$top_srcdir/schemas}
# shellcheck source=t/tap.sh
. "$top_srcdir/t/tap.sh"
# Topic lines of a file: comments and blank lines out, spaces kept (a
# line that differs by a space is a drift too).
lines() { grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$1"; }

[ -r "$MAIN" ] || { echo "Bail out! cannot read $MAIN"; exit 1; }
families=
for d in "$SCHEMAS"/*/; do
	[ -d "$d" ] && families="$families $(basename "$d")"
done
for fam in $families; do
	f=$SCHEMAS/$fam/topics
	[ -f "$SCHEMAS/$fam/$fam.proto" ] || continue	# not a family folder
	ok "$([ -r "$f" ] && [ -n "$(lines "$f")" ]; echo $?)" "schemas/$fam/topics exists and names topics"
	missing=$(lines "$f" | grep -vxF -f <(lines "$MAIN"))
	ok "$([ -z "$missing" ]; echo $?)" "every line of schemas/$fam/topics is in main-topics" \
		"missing from $MAIN:" "$missing"
done

# Lines of main-topics found in no family file, and lines found in two.
stray=
twice=
while IFS= read -r line; do
	n=0
	for fam in $families; do
		f=$SCHEMAS/$fam/topics
		[ -r "$f" ] && lines "$f" | grep -qxF -- "$line" && n=$((n + 1))
	done
	[ "$n" -eq 0 ] && stray="$stray$line
"
	[ "$n" -gt 1 ] && twice="$twice$line
"
done < <(lines "$MAIN")
ok "$([ -z "$stray" ]; echo $?)" "every line of main-topics is a line of a family's topics file" \
	"in main-topics only (add it to its family's file, or remove it):" "$stray"
ok "$([ -z "$twice" ]; echo $?)" "no line of main-topics belongs to two families" "$twice"

dups=$(lines "$MAIN" | cut -d, -f1 | sed 's/[[:space:]]//g' | sort | uniq -d)
ok "$([ -z "$dups" ]; echo $?)" "no topic is named twice in main-topics" "$dups"

# The Holded family's topics stay exactly as they were before families.
want='events.raw,3,1,message.timestamp.type=LogAppendTime
events.dead.letter,1,1,message.timestamp.type=LogAppendTime'
got=$(lines "$SCHEMAS/holded/topics" 2>/dev/null)
ok "$([ "$got" = "$want" ]; echo $?)" "Holded's topic lines are unchanged" "got: $got"

# Subjects: SUBJECT TYPE FILE, the file readable.
bad=
while read -r subject type file rest; do
	case $subject in '' | '#'*) continue ;; esac
	case $type in PROTOBUF | AVRO | JSON) ;; *) bad="$bad $subject:type=$type" ;; esac
	{ [ -r "$top_srcdir/$file" ] && [ -z "$rest" ]; } || bad="$bad $subject:file=$file"
done <"$SCHEMAS/subjects"
ok "$([ -z "$bad" ]; echo $?)" "every subject of schemas/subjects has a known type and a readable file" "$bad"

done_testing
