#!/usr/bin/env bash
# t/it_status.sh: the status page (GET /) in a real browser against a
# collectord on the real services: events of two families go through
# /collect, then Debian's headless chromium, driven by Selenium
# (t/status_page.py), loads the page and checks that the numbers it shows
# are those of /stats and those sent, that each family has its chart, and
# saves a screenshot: t/status-page.png in the build tree.
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
is "$(json '[.families[] | "\(.family)=\(.accepted.total):\(.rejected.total)"] | sort | join(",")')" \
	"clickstream=5:2,holded=24:12" "/stats: what was sent"

SHOT="$top_builddir/t/status-page.png"
"$WEB_PYTHON" "$top_srcdir/t/status_page.py" "$URL" "$SHOT" "holded=24:12,clickstream=5:2" >"$T_DIR/page.tap" 2>"$T_DIR/page.err"
rc=$?
grep -v '^ok ' "$T_DIR/page.tap" | sed 's/^/# /'
[ $rc -eq 0 ] || sed 's/^/# /' "$T_DIR/page.err" | tail -20
ok $rc "in chromium: the page shows /stats' numbers ($(grep -c '^ok' "$T_DIR/page.tap") checks, $(grep -c '^not ok' "$T_DIR/page.tap") failed)"
[ -s "$SHOT" ]
ok $? "screenshot: $SHOT"
done_testing
