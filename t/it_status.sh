#!/usr/bin/env bash
# t/it_status.sh: the status page (GET /) in a real browser against a
# collectord on the real services: events of two families go through
# /collect, then Debian's headless chromium, driven by Selenium
# (t/status_page.py), loads the page and checks that the numbers it shows
# are those of /stats and those sent, that each family has its chart, and
# saves a screenshot: t/status-page.png in the build tree.  The daily
# panel: clickstream events of known customers on days of a window no
# other run uses (a shared database keeps every run's counts), and the
# page loaded on that window must show what GET
# /families/clickstream/daily says, which must be the exact distinct
# count per UTC day of what was sent.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

eval "$("$top_srcdir/scripts/install-deps" --web-paths)" || bail "scripts/install-deps web (and apt) first"
export CHROMIUM CHROMEDRIVER
P="it-status-$$"
make_topics "$P-holded"
make_topics "$P-clickstream"
start_daemon status COLLECTORD_SERVER_FAMILIES="holded,clickstream" \
	COLLECTORD_ENRICH_GROUP_ID="$P" COLLECTORD_ENRICH_FLUSH_EVENTS=10 COLLECTORD_ENRICH_FLUSH_MS=200 \
	COLLECTORD_TOPICS_RAW="$P-holded.raw" COLLECTORD_TOPICS_DEAD_LETTER="$P-holded.dlq" \
	COLLECTORD_FAMILY_CLICKSTREAM_RAW_TOPIC="$P-clickstream.raw" \
	COLLECTORD_FAMILY_CLICKSTREAM_INVALID_TOPIC="$P-clickstream.dlq"
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "collectord never became ready: $(body)"

# The page is the tree's file, and needs nothing from elsewhere.
is "$(http_status "$URL/")" 200 "GET /: 200"
cmp -s "$T_DIR/body" "$top_srcdir/www/status.html"
ok $? "  the page is www/status.html"
grep -i '^Content-Type: text/html' "$T_DIR/headers" >/dev/null
ok $? "  text/html"
! grep -Eiq '(src|href)=["'"'"']?(https?:)?//' "$T_DIR/body"
ok $? "  no script, style or image from another address"

# Holded: 12 batches of the contract's example (2 valid, 1 invalid) over a
# few seconds; clickstream: 5 valid, 2 invalid.
for i in $(seq 12); do
	http_status "$URL/collect" --data-binary @"$top_srcdir/t/data/collect-request.json" >/dev/null
	[ $((i % 4)) -eq 0 ] && sleep 1
done
is "$(json .accepted)" 2 "holded batches answered"
{
	head -n 5 "$top_srcdir/schemas/clickstream/data/valid.jsonl" | jq -c .event
	sed -n '5p;12p' "$top_srcdir/schemas/clickstream/data/invalid.jsonl" | jq -c .event
} | jq -cs . >"$T_DIR/cs.json"
is "$(http_status "$URL/collect/clickstream" --data-binary @"$T_DIR/cs.json")" 200 "clickstream batch: 200"
is "$(json '"\(.accepted) \(.rejected)"')" "5 2" "  5 accepted, 2 rejected"
# Wait for the enricher to catch up: lag 0 on every partition it has.
ok "$(wait_for 120 "[ \$(http_status $URL/stats) = 200 ] && [ \$(json '[.consumerLag[].lag] | add // 0') = 0 ] && [ \$(json '.consumerLag | length') -gt 0 ]"; echo $?)" \
	"the enricher caught up (lag 0)"
# The daily count.  A window of 14 days ending DAY, in 2000-2019, whose
# days (and the one on each side) hold no count yet: no other run's.
daily() { http_status "$URL/families/clickstream/daily?day=$1&days=${2:-14}"; }
before() { date -u -d "@$(( $(date -u -d "$DAY" +%s) - $1 * 86400 ))" +%F; } # before N: DAY - N days
for try in 1 2 3 4 5; do
	DAY=$(date -u -d "2000-01-01 + $(( (RANDOM * 32768 + RANDOM) % 7300 + 15 )) days" +%F)
	[ "$(daily "$(before -1)" 16)" = 200 ] || bail "GET /families/clickstream/daily: $(body)"
	[ "$(json '[.days[].count] | add')" = 0 ] && break
	DAY=
done
[ -n "$DAY" ] || bail "no free window of days found"
diag "the window: 14 days to $DAY"
is "$(json '"\(.name) \(.field) \(.window) \(.days | length)"')" \
	"uniqueUsers event.customer_id event.timestamp 16" "  its name, field, window and days"
is "$(json '[.days[].day] | "\(.[0]) \(.[15])"')" \
	"$(before -1) $(before 14)" "  newest first, day= the first"
# Days before DAY and customers (none: anonymous): a customer counts once a
# day however often it comes; -14 and +1 are outside the window; +02:00
# at 01:00 is the UTC day before.
C=$(( $$ * 100 ))
: >"$T_DIR/daily.tsv"
for e in "0 1 10:00:00Z" "0 1 23:59:59Z" "0 2 00:00:00Z" "0 3 12:00:00Z" "0 none 12:00:00Z" \
	"2 1 08:00:00Z" "2 4 08:00:00Z" "2 4 21:00:00Z" "5 5 01:00:00+02:00" "5 5 03:00:00Z" \
	"6 6 12:00:00Z" "13 2 00:00:01Z" "14 7 12:00:00Z" "-1 8 12:00:00Z"; do
	set -- $e
	ts="$(before "$1")T$3"
	cust=$([ "$2" = none ] && echo null || echo $((C + $2)))
	printf '%s\t%s\t%s\n' "$ts" "$cust" "$(date -u -d "$ts" +%F)" >>"$T_DIR/daily.tsv"
done
n=0
while IFS=$'\t' read -r ts cust _; do
	n=$((n + 1))
	head -n 1 "$top_srcdir/schemas/clickstream/data/valid.jsonl" |
		jq -c --arg ts "$ts" --argjson c "$cust" --argjson id "$((C + n))" \
			'.event | .id = $id | .event.timestamp = $ts | .event.customer_id = $c'
done <"$T_DIR/daily.tsv" | jq -cs . >"$T_DIR/daily.json"
SENT=$(jq length "$T_DIR/daily.json")
is "$(http_status "$URL/collect/clickstream" --data-binary @"$T_DIR/daily.json")" 200 \
	"clickstream: $SENT events on known days: 200"
is "$(json .accepted)" "$SENT" "  all accepted"
# The exact counts of what was sent, per UTC day of the window: distinct
# customers, anonymous ones left out.
awk -F'\t' '$2 != "null" { print $3 "\t" $2 }' "$T_DIR/daily.tsv" | sort -u |
	jq -R -s --arg day "$DAY" \
		'{day: $day, families: {clickstream: (split("\n") | map(select(. != "") | split("\t")[0])
			| group_by(.) | map({(.[0]): length}) | add)}}' >"$T_DIR/daily-want.json"
diag "sent, distinct customers per day: $(jq -c .families.clickstream "$T_DIR/daily-want.json")"
# Landed once all of them can be read back: the count is kept in the
# events' own transaction.
SINCE="$(before 14)T00:00:00Z"
UNTIL="$(before -2)T00:00:00Z"
ok "$(wait_for 120 "[ \$(http_status '$URL/events?family=clickstream&since=$SINCE&until=$UNTIL&limit=1000') = 200 ] && [ \$(json '.events | length') = $SENT ]"; echo $?)" \
	"the $SENT events are stored"
is "$(daily "$DAY")" 200 "GET /families/clickstream/daily?day=$DAY: 200"
is "$(jq -cS '[.days[] | select(.count > 0) | {(.day): .count}] | add' "$T_DIR/body")" \
	"$(jq -cS '.families.clickstream | with_entries(select(.key <= $d and .key > $f))' \
		--arg d "$DAY" --arg f "$(before 14)" "$T_DIR/daily-want.json")" \
	"  the exact distinct customers per UTC day of what was sent"

http_status "$URL/stats" >/dev/null
is "$(json '[.families[] | "\(.family)=\(.accepted.total):\(.rejected.total)"] | sort | join(",")')" \
	"clickstream=$((5 + SENT)):2,holded=24:12" "/stats: what was sent"

SHOT="$top_builddir/t/status-page.png"
"$WEB_PYTHON" "$top_srcdir/t/status_page.py" "$URL" "$SHOT" "holded=24:12,clickstream=$((5 + SENT)):2" \
	"$T_DIR/daily-want.json" >"$T_DIR/page.tap" 2>"$T_DIR/page.err"
rc=$?
grep -v '^ok ' "$T_DIR/page.tap" | sed 's/^/# /'
[ $rc -eq 0 ] || sed 's/^/# /' "$T_DIR/page.err" | tail -20
ok $rc "in chromium: the page shows /stats' numbers ($(grep -c '^ok' "$T_DIR/page.tap") checks, $(grep -c '^not ok' "$T_DIR/page.tap") failed)"
[ -s "$SHOT" ]
ok $? "screenshot: $SHOT"
done_testing
