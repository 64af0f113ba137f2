#!/usr/bin/env bash
# t/it_readyz.sh: /readyz follows each real service going down and coming back.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

start_daemon readyz COLLECTORD_ENRICH_GROUP_ID="it-readyz-$$"
ok "$(wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]"; echo $?)" "readyz 200 with every service up"
is "$(http_status "$URL/healthz")" 200 "healthz 200"
is "$(http_status "$URL/metrics")" 200 "metrics 200"
grep -q '^collectord_inflight_batches ' "$T_DIR/body"; ok $? "metrics text has collectord_inflight_batches"

# dep_up NAME: the value of collectord_dependency_up for NAME
dep_up() { curl -s "$URL/metrics" | awk -v d="collectord_dependency_up{dependency=\"$1\"}" '$1 == d { print $2 }'; }
for dep in kafka registry schema s3 postgres; do
	is "$(dep_up "$dep")" 1 "collectord_dependency_up{dependency=\"$dep\"} is 1"
done

# service name in scripts/services → dependency name in /readyz
for pair in pg:postgres minio:s3 registry:registry kafka:kafka; do
	svc=${pair%%:*}
	dep=${pair#*:}
	services stop "$svc" >/dev/null 2>&1
	ok "$(wait_for 120 "[ \$(http_status $URL/readyz) = 503 ] && jq -e '.dependencies.$dep.state == \"down\"' $T_DIR/body"; echo $?)" \
		"readyz 503 naming $dep while $svc is stopped"
	jq -e ".ready == false and (.dependencies.$dep.lastError | length > 0)" "$T_DIR/body" >/dev/null
	ok $? "readyz body says ready=false and gives $dep's last error"
	is "$(dep_up "$dep")" 0 "collectord_dependency_up{dependency=\"$dep\"} is 0"
	services start "$svc" >/dev/null 2>&1 || bail "cannot restart $svc"
	ok "$(wait_for 180 "[ \$(http_status $URL/readyz) = 200 ]"; echo $?)" "readyz 200 again after $svc is back"
	is "$(dep_up "$dep")" 1 "collectord_dependency_up{dependency=\"$dep\"} is 1 again"
done

# SIGHUP reopens the log and keeps serving.
kill -HUP "$DAEMON_PID"
ok "$(wait_for 30 "grep -q 'msg=\"reloaded\"' $T_DIR/readyz.log"; echo $?)" "SIGHUP: reloaded"
is "$(http_status "$URL/readyz")" 200 "still ready after SIGHUP"

# A registry that rejects our schema: not ready, and /readyz says why.
S="it-reject-$$-value"
curl -s -X PUT -H 'Content-Type: application/json' --data '{"compatibility":"FULL"}' \
	"$COLLECTORD_REGISTRY_URL/config/$S" >/dev/null
jq -n '{schemaType: "PROTOBUF", schema: "syntax = \"proto3\";\npackage other;\nmessage Other { int64 id = 1; string name = 2; }\n"}' |
	curl -s -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' --data @- \
	"$COLLECTORD_REGISTRY_URL/subjects/$S/versions" >/dev/null
MAIN_URL=$URL
MAIN_PID=$DAEMON_PID
start_daemon reject COLLECTORD_SERVER_ROLES=collect COLLECTORD_REGISTRY_SUBJECT="$S"
ok "$(wait_for 60 "[ \$(http_status $URL/readyz) = 503 ] && jq -e '.dependencies.schema.state == \"down\" and (.dependencies.schema.lastError | length > 0)' $T_DIR/body"; echo $?)" \
	"schema rejected by the registry: readyz 503 naming the schema"
diag "schema error: $(jq -r .dependencies.schema.lastError "$T_DIR/body")"
is "$(http_status "$URL/collect" --data-binary @"$top_srcdir/t/data/collect-request.json")" 503 "and /collect answers 503"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
URL=$MAIN_URL
DAEMON_PID=$MAIN_PID

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
is "$?" 0 "SIGTERM stops collectord with status 0"
T_PIDS=""
done_testing
