#!/usr/bin/env bash
# t/it_readyz.sh: /readyz follows each real service going down and coming back.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

start_daemon readyz COLLECTORD_ENRICH_GROUP_ID="it-readyz-$$"
ok "$(wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]"; echo $?)" "readyz 200 with every service up"
is "$(http_status "$URL/healthz")" 200 "healthz 200"
is "$(http_status "$URL/metrics")" 200 "metrics 200"
grep -q '^collectord_inflight_batches ' "$T_DIR/body"; ok $? "metrics text has collectord_inflight_batches"

# service name in scripts/services → dependency name in /readyz
for pair in pg:postgres minio:s3 registry:registry kafka:kafka; do
	svc=${pair%%:*}
	dep=${pair#*:}
	services stop "$svc" >/dev/null 2>&1
	ok "$(wait_for 120 "[ \$(http_status $URL/readyz) = 503 ] && jq -e '.dependencies.$dep.state == \"down\"' $T_DIR/body"; echo $?)" \
		"readyz 503 naming $dep while $svc is stopped"
	jq -e ".ready == false and (.dependencies.$dep.lastError | length > 0)" "$T_DIR/body" >/dev/null
	ok $? "readyz body says ready=false and gives $dep's last error"
	services start "$svc" >/dev/null 2>&1 || bail "cannot restart $svc"
	ok "$(wait_for 180 "[ \$(http_status $URL/readyz) = 200 ]"; echo $?)" "readyz 200 again after $svc is back"
done

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
is "$?" 0 "SIGTERM stops collectord with status 0"
T_PIDS=""
done_testing
