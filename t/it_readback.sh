#!/usr/bin/env bash
# t/it_readback.sh: the read-back API against the real services: what
# /collect took comes back from GET /events/{id}, /requests/{id}, /events
# (pages, filters, the cursor) and /rejections as PostgreSQL holds it;
# /families, and /families/{name}/daily where it cannot read; the API
# keys; hostile parameters, each with its 400 message and nothing
# changed; a PostgreSQL that holds a lock past the statement
# timeout (503 postgres_timeout, the loop answering meanwhile), too many
# queries at once (503 busy), and one that cannot be reached (503 at once).
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

P="it-readback-$$"
make_topics "$P-holded"
make_topics "$P-clickstream"
KEY="k-$$"
start_daemon readback COLLECTORD_SERVER_FAMILIES="holded,clickstream" \
	COLLECTORD_SERVER_API_KEYS="$KEY" \
	COLLECTORD_ENRICH_GROUP_ID="$P" COLLECTORD_ENRICH_FLUSH_EVENTS=10 COLLECTORD_ENRICH_FLUSH_MS=200 \
	COLLECTORD_TOPICS_RAW="$P-holded.raw" COLLECTORD_TOPICS_DEAD_LETTER="$P-holded.dlq" \
	COLLECTORD_FAMILY_CLICKSTREAM_RAW_TOPIC="$P-clickstream.raw" \
	COLLECTORD_FAMILY_CLICKSTREAM_INVALID_TOPIC="$P-clickstream.dlq" \
	COLLECTORD_READBACK_CONNECTIONS=1 COLLECTORD_READBACK_MAX_QUERIES=1 \
	COLLECTORD_READBACK_STATEMENT_TIMEOUT_MS=1000
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "collectord never became ready: $(body)"
H=(-H "X-API-Key: $KEY")
get() { http_status "$URL$1" "${H[@]}"; }
sql() { psql "$COLLECTORD_PG_CONNINFO" -At -v ON_ERROR_STOP=1 -c "$1"; }

# The events of this run live on a day of their own, far from every other
# run's: a window that holds this run's rows only.
YEAR=$((2200 + $$ % 700))
DAY="$YEAR-03-14"
SINCE="${DAY}T00:00:00Z"
UNTIL="${DAY}T23:59:59Z"
W="since=$SINCE&until=$UNTIL"

# One Holded request of 28 events: 25 valid ones a second apart, of types
# A and B, and invalid ones at 5, 12 and 20.
jq -c --arg day "$DAY" '.[0] as $ev | [range(28) | . as $i
	| if ($i == 5 or $i == 12 or $i == 20) then ($ev | .data.amount = "x\($i)")
	  else ($ev
		| .data.id = "rb-\($i)"
		| .attributes.type = (if $i % 3 == 0 then "A" else "B" end)
		| .attributes["X-Message-Stamp-Holded\\Core\\Messaging\\Messenger\\Stamp\\TimestampStamp"] =
			"\($day)T10:00:\("0\($i)" | .[-2:]).000Z"
		| .attributes["X-Message-Stamp-Holded\\Core\\Messaging\\Messenger\\Stamp\\MessageIdStamp"] =
			"6c1f0e8a-2d4b-4a9c-b7e3-\("000000000000\($i)" | .[-12:])")
	  end]' "$top_srcdir/t/data/collect-request.json" >"$T_DIR/holded.json"
is "$(http_status "$URL/collect" "${H[@]}" --data-binary @"$T_DIR/holded.json")" 200 "POST /collect: 28 events"
cp "$T_DIR/body" "$T_DIR/collect.json"
is "$(jq -r '"\(.accepted) \(.rejected)"' "$T_DIR/collect.json")" "25 3" "25 accepted, 3 rejected"
C0=$(jq -r '.events[0].correlationId' "$T_DIR/collect.json")
C5=$(jq -r '.events[5].correlationId' "$T_DIR/collect.json")
# Two clickstream events in the same window and one refused.
{
	head -n 2 "$top_srcdir/schemas/clickstream/data/valid.jsonl" |
		jq -c --arg t "${DAY}T11:00:00Z" --argjson n "$((RANDOM * 1000 + 5000))" \
			'.event | .event.timestamp = $t | .id = $n + input_line_number'
	sed -n '5p' "$top_srcdir/schemas/clickstream/data/invalid.jsonl" | jq -c .event
} | jq -cs . >"$T_DIR/cs.json"
is "$(http_status "$URL/collect/clickstream" "${H[@]}" --data-binary @"$T_DIR/cs.json")" 200 \
	"POST /collect/clickstream: 3 events"
cp "$T_DIR/body" "$T_DIR/cs-collect.json"
CS0=$(jq -r '.events[0].correlationId' "$T_DIR/cs-collect.json")

ok "$(wait_for 120 "[ \$(get '/events?family=holded&$W&limit=1000') = 200 ] && [ \$(json '.events | length') = 25 ]"; echo $?)" \
	"the 25 events are read back (GET /events)"
ok "$(wait_for 120 "[ \$(get '/events?family=clickstream&$W') = 200 ] && [ \$(json '.events | length') = 2 ]"; echo $?)" \
	"the 2 clickstream events too"
ok "$(wait_for 120 "[ \$(get '/rejections?family=holded&since=$(date -u -d '-10 min' +%Y-%m-%dT%H:%M:%SZ)&limit=1000') = 200 ] && [ \$(jq --arg p $C5 '[.rejections[] | select(.correlationId[:28] == (\$p[:28]))] | length' $T_DIR/body) = 3 ]"; echo $?)" \
	"the 3 refusals are read back (GET /rejections)"

# ---- GET /events/{id}: the event as PostgreSQL holds it.
is "$(get "/events/$C0")" 200 "GET /events/{id}: 200"
cp "$T_DIR/body" "$T_DIR/one.json"
is "$(jq -r '.family, .correlationId, .time' "$T_DIR/one.json" | paste -sd' ')" \
	"holded $C0 ${DAY}T10:00:00.000000Z" "family, correlationId, time"
is "$(jq -cS .event "$T_DIR/one.json")" \
	"$(sql "SELECT data FROM events WHERE correlation_id = '$C0'" | jq -cS .)" "the event is the stored row's data"
is "$(jq -r .event.metadata.correlationId "$T_DIR/one.json")" "$C0" "  with its metadata"
is "$(get "/events/$(echo "$C0" | tr a-f A-F)")" 200 "an upper-case id finds it too"
is "$(get "/events/$CS0")" 200 "a clickstream event: 200"
is "$(json .family)" clickstream "  from its own table"
is "$(get "/events/00000000-0000-4000-8000-000000000000")" 404 "an unknown id: 404"
is "$(json .error)" not_found "  not_found"
is "$(get "/events/$C5")" 404 "a refused event is no stored event: 404"

# ---- GET /requests/{id}: the whole request in index order.
is "$(get "/requests/$C5")" 200 "GET /requests/{id} (from a refused event's id): 200"
cp "$T_DIR/body" "$T_DIR/req.json"
is "$(jq -r '"\(.accepted) \(.rejected) \(.truncated)"' "$T_DIR/req.json")" "25 3 false" "25 accepted, 3 rejected"
is "$(jq -c '[.events[].index]' "$T_DIR/req.json")" "$(jq -nc '[range(28)]')" "every index once, in order"
is "$(jq -c '[.events[] | [.index, .correlationId, .status]]' "$T_DIR/req.json")" \
	"$(jq -c '[.events[] | [.index, .correlationId, .status]]' "$T_DIR/collect.json")" \
	"each id and status as /collect answered"
is "$(jq -c '[.events[] | select(.status == "rejected") | .message]' "$T_DIR/req.json")" \
	"$(jq -c '[.events[] | select(.status == "rejected") | .error]' "$T_DIR/collect.json")" \
	"each refusal with /collect's reason"
is "$(jq -r '[.events[] | select(.status == "rejected") | "\(.path)|\(.rule)|\(.stage)"] | unique | .[]' "$T_DIR/req.json")" \
	"data.amount|not a number|collect" "  path, rule and stage apart"
is "$(jq -cS '.events[5].event' "$T_DIR/req.json")" "$(jq -cS '.[5]' "$T_DIR/holded.json")" "  and the event as sent"
is "$(jq -r '.first, .last' "$T_DIR/req.json" | paste -sd' ')" "${C0%????????}00000000 ${C0%????????}ffffffff" \
	"the request's id range"
is "$(get "/requests/00000000-0000-4000-8000-000000000000")" 404 "an unknown request: 404"

# ---- GET /events: pages newest first, the cursor, filters.
sql "SELECT correlation_id FROM events WHERE timestamp_stamp >= '$SINCE' AND timestamp_stamp < '$UNTIL'
      ORDER BY timestamp_stamp DESC, correlation_id DESC" >"$T_DIR/want-order"
: >"$T_DIR/got-order"
q="family=holded&$W&limit=7"
pages=0
sizes=""
while :; do
	[ "$(get "/events?$q")" = 200 ] || break
	pages=$((pages + 1))
	json '.events[].correlationId' >>"$T_DIR/got-order"
	sizes="$sizes $(json '.events | length')"
	next=$(json .next)
	[ "$next" = null ] && break
	q="family=holded&$W&limit=7&cursor=$next"
	[ $pages -lt 10 ] || break
done
is "$sizes" " 7 7 7 4" "limit=7: pages of 7, 7, 7, 4, the last with next null"
is "$(cat "$T_DIR/got-order")" "$(cat "$T_DIR/want-order")" "  newest first, each event once, as ORDER BY says"
is "$(get "/events?family=holded&$W&type=A&limit=1000")" 200 "type=A: 200"
is "$(json '[.events[].event.attributes.type] | unique | join(",")'),$(json '.events | length')" "A,9" "  the 9 events of type A only"
is "$(get "/events?family=holded&since=${DAY}T10:00:20Z&until=${DAY}T10:00:23Z")" 200 "since and until: 200"
is "$(json '[.events[].event.data.id] | join(",")')" "rb-22,rb-21" "  [since, until): rb-22 and rb-21 (20 was refused)"
is "$(get "/events?$W")" 200 "no family: the default family's"
is "$(json '.events | length')" 25 "  Holded's 25"

# ---- GET /rejections: the same paging.
is "$(get "/rejections?family=holded&rule=not%20a%20number&since=$(date -u -d '-10 min' +%Y-%m-%dT%H:%M:%SZ)&limit=2")" 200 \
	"GET /rejections?family&rule&limit=2: 200"
ids=$(json '.rejections[].correlationId')
n=0
while [ "$(json .next)" != null ] && [ $n -lt 500 ]; do
	get "/rejections?family=holded&rule=not%20a%20number&since=$(date -u -d '-10 min' +%Y-%m-%dT%H:%M:%SZ)&limit=2&cursor=$(json .next)" >/dev/null
	ids="$ids
$(json '.rejections[].correlationId')"
	n=$((n + 1))
done
is "$(printf '%s\n' "$ids" | grep -c "^${C5%????????}")" 3 "across the pages: this request's 3 refusals, once each"
is "$(printf '%s\n' "$ids" | sort | uniq -d | wc -l)" 0 "  no refusal on two pages"
get "/rejections?family=holded&since=$(date -u -d '-10 min' +%Y-%m-%dT%H:%M:%SZ)&limit=1000" >/dev/null
is "$(jq -r --arg c "$C5" '.rejections[] | select(.correlationId == $c) | "\(.kafka.topic) \(.stage) \(.event.data.amount)"' "$T_DIR/body")" \
	"$P-holded.dlq collect x5" "a refusal's Kafka coordinates, stage and event"
is "$(jq '[.rejections[].receivedAt] | . == (sort | reverse)' "$T_DIR/body")" true "newest first"

# ---- GET /families
is "$(get /families)" 200 "GET /families: 200"
sid=$(curl -s "$COLLECTORD_REGISTRY_URL/subjects/events.raw-value/versions/latest" | jq .id)
is "$(json '.families[] | select(.family == "holded") | "\(.rawTopic) \(.invalidTopic) \(.subject) \(.schemaId) \(.table) \(.default)"')" \
	"$P-holded.raw $P-holded.dlq events.raw-value $sid events true" "holded: topics, subject, schema id, table"
is "$(json '[.families[] | select(.family == "holded") | .routes[].path] | join(" ")')" "/collect /collect/holded" "  its routes"
is "$(json '[.families[] | select(.family == "clickstream") | .routes[].path] | join(" ")')" "/collect/clickstream" \
	"clickstream: its route"
is "$(jq -cS '[.families[] | {(.family): .daily}] | add' "$T_DIR/body")" \
	'{"clickstream":{"field":"event.customer_id","name":"uniqueUsers","path":"/families/clickstream/daily","window":"event.timestamp"},"holded":null}' \
	"  the daily count of each (clickstream's, none for holded)"

# ---- API keys
is "$(http_status "$URL/events?$W")" 401 "no key: 401"
is "$(json .error)" unauthorized "  unauthorized"
is "$(http_status "$URL/families")" 401 "/families too"
is "$(http_status "$URL/events/$C0" -H "Authorization: Bearer $KEY")" 200 "Authorization: Bearer works"
is "$(http_status "$URL/events/$C0" -H "X-API-Key: wrong")" 401 "a wrong key: 401"

# ---- hostile parameters: 400 with what is wrong, nothing run.
before=$(sql "SELECT count(*) FROM events")
bad() {	# bad PATH MESSAGE
	local code
	code=$(get "$1")
	is "$code $(json .error): $(json .message)" "400 bad_request: $2" "$1: 400"
}
bad "/events/not-a-uuid" "not a correlationId (a UUID such as 019aa0f3-7c21-7d3e-9a41-5b2e00000000)"
bad "/events/01HR71KJRY3W47EPK7ACQ7EMCD" "not a correlationId (a UUID such as 019aa0f3-7c21-7d3e-9a41-5b2e00000000)"
bad "/events/$C0'%20OR%20'1'='1" "not a correlationId (a UUID such as 019aa0f3-7c21-7d3e-9a41-5b2e00000000)"
bad "/events/..%2F..%2Fetc%2Fpasswd" "not a correlationId (a UUID such as 019aa0f3-7c21-7d3e-9a41-5b2e00000000)"
bad "/requests/x" "not a correlationId (a UUID such as 019aa0f3-7c21-7d3e-9a41-5b2e00000000)"
bad "/events/$C0?limit=1" 'unknown parameter "limit"'
bad "/events?limit=0" "limit: not an integer from 1 to 1000"
bad "/events?limit=1000001" "limit: not an integer from 1 to 1000"
bad "/events?limit=99999999999999999999999" "limit: not an integer from 1 to 1000"
bad "/events?limit=1;DROP%20TABLE%20events" "limit: not an integer from 1 to 1000"
bad "/events?cursor=AAAA" 'cursor: not a cursor this endpoint gave (pass its "next" as is)'
bad "/events?cursor=%27%20OR%201=1--" 'cursor: not a cursor this endpoint gave (pass its "next" as is)'
rcur=$(get "/rejections?limit=1" >/dev/null; json .next)
bad "/events?cursor=$rcur" 'cursor: not a cursor this endpoint gave (pass its "next" as is)'
bad "/events?family=holded%27;DELETE%20FROM%20events;--" "family: not a family name"
bad "/events?family=nosuch" "family: no such event family"
bad "/events?family=retail" "family: not served by this process ([server] families)"
bad "/events?since=now" "since: not an RFC 3339 time such as 2026-11-20T09:15:02Z (years 0001-9999)"
bad "/events?since=$UNTIL&until=$SINCE" "since: not before until"
bad "/events?type=%00" "type: bad percent-encoding, a NUL, or longer than 1023 bytes"
bad "/events?type=a%0d%0aSet-Cookie:%20x" "type: not UTF-8 text without control characters"
bad "/events?type=%ff%fe" "type: not UTF-8 text without control characters"
bad "/events?family=holded&family=holded" "family: given twice"
bad "/events?select=*" 'unknown parameter "select"'
bad "/rejections?rule=not%20a%20number" "rule: needs family= (a rule is a word of one family's list)"
bad "/rejections?type=x" 'unknown parameter "type"'
bad "/rejections?family=nosuch" "family: no such event family"
bad "/rejections?limit=-5" "limit: not an integer from 1 to 1000"
# SQL in a value is only a value: no match, no error.
is "$(get "/events?family=holded&$W&type=A%27%20OR%20%271%27=%271")" 200 "type=A' OR '1'='1: 200"
is "$(json '.events | length')" 0 "  matches nothing"
is "$(get "/rejections?family=holded&rule=x%27);DROP%20TABLE%20rejections;--")" 200 "rule=x');DROP TABLE rejections;--: 200"
is "$(json '.rejections | length')" 0 "  matches nothing"
is "$(sql "SELECT count(*) >= $before FROM events")" t "table events is still there, none of its rows gone"
is "$(sql "SELECT to_regclass('rejections') IS NOT NULL")" t "table rejections is still there"
is "$(http_status "$URL/events" "${H[@]}" -X POST)" 405 "POST /events: 405"
is "$(grep -i '^Allow:' "$T_DIR/headers" | tr -d '\r')" "Allow: GET, HEAD" "  Allow: GET, HEAD"
is "$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -I "${H[@]}" "$URL/events/$C0")" "200 0" "HEAD: 200 without a body"

# ---- a slow PostgreSQL: a lock held past the statement timeout.
part=$(sql "SELECT 'events_' || to_char(date '$DAY', 'YYYYMMDD')")
mkfifo "$T_DIR/lockfifo"
psql "$COLLECTORD_PG_CONNINFO" -q -v ON_ERROR_STOP=1 <"$T_DIR/lockfifo" >"$T_DIR/lock.log" 2>&1 &
LOCKER=$!
exec 3>"$T_DIR/lockfifo"
echo "BEGIN; LOCK TABLE $part IN ACCESS EXCLUSIVE MODE; SELECT 'locked';" >&3
ok "$(wait_for 30 "[ \$(sql \"SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = '$part' AND l.mode = 'AccessExclusiveLock' AND l.granted\") = 1 ]"; echo $?)" \
	"a session holds $part locked"
curl -s -o "$T_DIR/slow1" -w '%{http_code}' "${H[@]}" "$URL/events?family=holded&$W" >"$T_DIR/slow1.code" &
SLOW=$!
ok "$(wait_for 30 "[ \$(sql \"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'collectord read-back' AND wait_event_type = 'Lock'\") = 1 ]"; echo $?)" \
	"the read-back query waits for the lock"
is "$(get "/events/$C0")" 503 "meanwhile a second query: 503 (max_queries 1)"
is "$(json .error)" busy "  busy"
grep -qi '^Retry-After: 1' "$T_DIR/headers"
ok $? "  with Retry-After"
is "$(get "/families/clickstream/daily")" 503 "  a daily count too"
is "$(json .error)" busy "    busy"
is "$(http_status "$URL/healthz")" 200 "meanwhile /healthz answers: the loop is free"
is "$(http_status "$URL/collect" "${H[@]}" --data-binary @"$top_srcdir/t/data/collect-request.json")" 200 \
	"meanwhile POST /collect works"
wait "$SLOW"
is "$(cat "$T_DIR/slow1.code")" 503 "the waiting query: 503 once statement_timeout_ms passed, the lock still held"
is "$(jq -r .error "$T_DIR/slow1")" postgres_timeout "  postgres_timeout"
is "$(sql "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = '$part' AND l.granted AND l.mode = 'AccessExclusiveLock'")" 1 \
	"  (the lock is still held: the timeout answered, not the lock's end)"
echo "COMMIT;" >&3
exec 3>&-
wait "$LOCKER"
is "$(get "/events?family=holded&$W&limit=1")" 200 "lock released: 200 again"

# ---- PostgreSQL unreachable for reading: 503 at once, nothing waits.
# This one only enriches: it looks its schema id up without registering.
DEAD=$(free_port)
URL1=$URL
start_daemon deadpg COLLECTORD_SERVER_ROLES=enrich COLLECTORD_SERVER_FAMILIES="holded,clickstream" \
	COLLECTORD_ENRICH_GROUP_ID="$P-dead" \
	COLLECTORD_TOPICS_RAW="$P-holded.raw" COLLECTORD_TOPICS_DEAD_LETTER="$P-holded.dlq" \
	COLLECTORD_FAMILY_CLICKSTREAM_RAW_TOPIC="$P-clickstream.raw" \
	COLLECTORD_FAMILY_CLICKSTREAM_INVALID_TOPIC="$P-clickstream.dlq" \
	COLLECTORD_READBACK_CONNINFO="host=127.0.0.1 port=$DEAD user=postgres dbname=holded connect_timeout=2"
is "$(http_status "$URL/events?$W")" 503 "read-back PostgreSQL down: 503"
is "$(json .error)" postgres_unavailable "  postgres_unavailable"
grep -qi '^Retry-After: 5' "$T_DIR/headers"
ok $? "  with Retry-After"
is "$(http_status "$URL/events/$C0")" 503 "GET /events/{id} too"
is "$(http_status "$URL/families/clickstream/daily")" 503 "GET /families/{name}/daily too"
is "$(json .error)" postgres_unavailable "  postgres_unavailable"
is "$(http_status "$URL/families/clickstream/daily?days=0")" 400 "  a bad days= is still 400 (checked first)"
is "$(http_status "$URL/events/not-an-id")" 400 "a bad id is still 400 (checked first)"
is "$(http_status "$URL/healthz")" 200 "the loop answers"
is "$(http_status "$URL/families")" 200 "/families needs no PostgreSQL"
ok "$(wait_for 30 "[ \$(http_status $URL/families) = 200 ] && [ \$(json '.families[] | select(.family == \"holded\") | .schemaId') = $sid ]"; echo $?)" \
	"the enrich role's /families: schema id $sid, looked up"
is "$(http_status "$URL/collect" --data-binary '[]')" 404 "no collect role: POST /collect is 404"
URL=$URL1
done_testing
