#!/usr/bin/env bash
# t/deploy.sh: every file behind the three ways of running collectord
# outside the build tree, checked by the tools that read them for real.
#
#   deploy/k8s       kustomize build of the base and each overlay;
#                    kubeconform (strict) of each build against the
#                    Kubernetes API schemas of two versions and Strimzi's
#                    own CRD schemas; topics.yaml is scripts/k8s-topics'
#                    output; the Strimzi cluster (KRaft, topic operator,
#                    the brokers collectord is given); probes, resources,
#                    budgets, autoscaler, a Service per family port (as the
#                    built collectord --families reports them); every
#                    ConfigMap and Secret a pod names exists; pinned images;
#                    each role's settings pass collectord --check-config
#   compose.yml      the Compose Specification's JSON schema (compose-go's),
#                    pinned images, the jobs run the tree's scripts, the
#                    daemon's environment passes collectord --check-config
#   Dockerfile       hadolint; built as scripts/test builds; its packages
#                    are install-deps' and the binaries' libraries; the
#                    context leaves the build folders out
#   deploy/monitoring  promtool check rules and test rules; the dashboard's
#                    queries checked by promtool; every metric either uses
#                    is on /metrics of a real collectord (started here with
#                    no services, which it does not need for that)
#
# Each validator is also shown a broken file it must refuse
# (t/data/deploy/), so a schema that did not load fails the test.  The
# tools come from scripts/install-deps deploy; no services.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
# shellcheck source=t/tap.sh
. "$top_srcdir/t/tap.sh"

paths=$("$top_srcdir/scripts/install-deps" --deploy-paths 2>&1) ||
	bail "the deploy tools are missing: run scripts/install-deps deploy ($paths)"
eval "$paths"
[ -x "$top_builddir/collectord" ] || bail "no $top_builddir/collectord: build first"
T=$(mktemp -d "${TMPDIR:-/tmp}/collectord-deploy.XXXXXX")
DAEMON_PID=
cleanup() {
	[ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
cd "$top_srcdir" || bail "cannot cd to $top_srcdir"
K8S=deploy/k8s
MON=deploy/monitoring
# The oldest Kubernetes Strimzi 0.51 supports, and the newest whose
# schemas kubernetes-validate ships.
K8S_VERSIONS="1.30.0 1.37.0"
OVERLAYS="minikube production"
PY() { "$DEPLOY_PYTHON" "$top_srcdir/t/deploy_check.py" "$@"; }
# check NAME COMMAND...: one TAP line, COMMAND's output as its diagnostic.
check() {
	local name=$1 out st
	shift
	out=$("$@" 2>&1)
	st=$?
	ok "$st" "$name" "$out"
}
# env_vars FILE: VARS=(the NAME=VALUE lines of FILE, values may hold
# spaces) plus PATH and the sanitizers' options of the --enable-asan build.
env_vars() {
	VARS=(PATH="$PATH")
	[ -n "${ASAN_OPTIONS:-}" ] && VARS+=(ASAN_OPTIONS="$ASAN_OPTIONS")
	[ -n "${UBSAN_OPTIONS:-}" ] && VARS+=(UBSAN_OPTIONS="$UBSAN_OPTIONS")
	mapfile -t -O "${#VARS[@]}" VARS <"$1"
}
# with_env FILE COMMAND...: COMMAND with only env_vars FILE as environment.
with_env() {
	env_vars "$1"
	shift
	env -i "${VARS[@]}" "$@"
}
diag "kustomize $KUSTOMIZE_VERSION, kubeconform $KUBECONFORM_VERSION, promtool (prometheus $PROMETHEUS_VERSION)," \
	"$("$HADOLINT" --version), Strimzi CRDs $STRIMZI_VERSION, compose-go $COMPOSE_GO_VERSION schema"

# ---------------------------------------------------------------- Kubernetes

check "deploy/k8s/kafka/topics.yaml is scripts/k8s-topics' output (topics/main-topics)" \
	diff -u "$K8S/kafka/topics.yaml" <(scripts/k8s-topics)

for o in base $OVERLAYS; do
	dir=$K8S/overlays/$o
	[ "$o" = base ] && dir=$K8S/base
	check "kustomize build $dir" sh -c '"$1" build "$2" >"$3"' _ "$KUSTOMIZE" "$dir" "$T/$o.yaml"
done

mkdir -p "$T/schemas/crd"
for v in $K8S_VERSIONS; do
	check "Kubernetes $v API schemas (kubernetes-validate) made loadable" \
		PY k8s-schemas "$K8S_SCHEMAS/v$v-local-strict" "$T/schemas/k8s/v$v-local-strict"
done
check "Strimzi $STRIMZI_VERSION CRDs as JSON schemas" PY crd-schemas "$T/schemas/crd" "$STRIMZI_CRDS"/*.yaml
# kubeconform VERSION FILE: strict, every kind must have a schema.
kubeconform() {
	"$KUBECONFORM" -strict -summary -kubernetes-version "$1" \
		-schema-location "$T/schemas/k8s/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
		-schema-location "$T/schemas/crd/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" "$2"
}
for o in $OVERLAYS; do
	for v in $K8S_VERSIONS; do
		check "overlays/$o: kubeconform -strict, Kubernetes $v and Strimzi $STRIMZI_VERSION schemas" \
			kubeconform "$v" "$T/$o.yaml"
	done
done
bad=t/data/deploy/invalid-k8s.yaml
want=$(grep -c '^kind:' "$bad")
got=$(kubeconform 1.30.0 "$bad" 2>&1 | sed -n 's/.*Invalid: \([0-9]*\),.*/\1/p')
is "${got:-none}" "$want" "kubeconform refuses each of the $want broken objects of $bad"

check "overlays/minikube: a KRaft Strimzi cluster, its topic operator, one KafkaTopic per topic line, collectord given its bootstrap" \
	PY strimzi "$T/minikube.yaml" topics/main-topics
check "overlays/minikube: every ConfigMap and Secret a pod names is in the build" \
	PY refs "$T/minikube.yaml"
check "overlays/production: every ConfigMap and Secret a pod names is in the build, but collectord-credentials (yours)" \
	PY refs "$T/production.yaml" collectord-credentials
check "deploy/k8s: every image is pinned (and the Kafka version)" PY images "$T/minikube.yaml" "$T/production.yaml"

# Each role's collectord.conf and environment, as the pods get them, read by
# the daemon itself.  Production's credentials are yours: stand-ins here.
for o in $OVERLAYS; do
	check "overlays/$o: the collectord pods' settings" PY daemon-env "$T/$o.yaml" "$T/$o-env"
	for role in collect enrich; do
		conf=$T/$o-env/$role.conf
		[ "$o" = production ] && printf '%s\n' COLLECTORD_PG_CONNINFO='host=pg dbname=collectord' \
			COLLECTORD_S3_ACCESS_KEY=key COLLECTORD_S3_SECRET_KEY=secret >>"$T/$o-env/$role.env"
		check "overlays/$o: collectord --check-config takes the $role pods' settings" \
			with_env "$T/$o-env/$role.env" "$top_builddir/collectord" --check-config --config "$conf"
	done
	with_env "$T/$o-env/collect.env" "$top_builddir/collectord" --families \
		--config "$T/$o-env/collect.conf" >"$T/$o-families" 2>&1
	check "overlays/$o: roles collect and enrich; probes /healthz and /readyz, resources, budgets, the collect autoscaler, a Service per family port" \
		PY k8s-shape "$T/$o.yaml" "$T/$o-families"
done
# Production's topics get 3 replicas; the file's say 1.
check "scripts/create-topics --replicas 3 gives every topic of main-topics 3 replicas" sh -c '
	out=$(COLLECTORD_ADMIN="$1" scripts/create-topics --dry-run --replicas 3) || exit 1
	n=$(grep -cv -e "^[[:space:]]*#" -e "^[[:space:]]*\$" topics/main-topics)
	printf "%s\n" "$out"
	[ "$(printf "%s\n" "$out" | grep -c " replicas=3 ")" -eq "$n" ] &&
		[ "$(printf "%s\n" "$out" | grep -c "^would-create ")" -eq "$n" ]' _ "$top_builddir/collectord-admin"
# The jobs run scripts the image carries.
missing=
for f in $(grep -ho '/usr/share/collectord/[a-z]*/[A-Za-z0-9_.-]*' "$T/minikube.yaml" "$T/production.yaml" | sort -u); do
	rel=${f#/usr/share/collectord/}
	grep -qE "\.\./$rel( |\$)" Dockerfile || missing="$missing $f"
	[ -e "$rel" ] || missing="$missing $rel(not in the tree)"
done
ok "$([ -z "$missing" ]; echo $?)" "the init jobs' scripts and files are in the tree and in the image (Dockerfile)" "$missing"

# One version everywhere: configure.ac's, the image tag of deploy/k8s and
# of compose.yml.
version=$(sed -n 's/^AC_INIT(\[collectord\], \[\([^]]*\)\].*/\1/p' configure.ac)
tags=$(grep -ho 'collectord:[0-9][0-9.]*' compose.yml "$T/minikube.yaml" | sort -u | tr '\n' ' ')
ok "$([ -n "$version" ] && [ "$tags" = "collectord:$version " ] &&
	grep -q "newTag: $version\$" "$K8S/base/kustomization.yaml"; echo $?)" \
	"compose.yml and deploy/k8s tag the image with configure.ac's version ($version)" "tags: $tags"

# ---------------------------------------------------------------- compose

check "compose.yml is valid under the Compose Specification (compose-go $COMPOSE_GO_VERSION schema)" \
	PY compose "$COMPOSE_SCHEMA" compose.yml
bad=t/data/deploy/invalid-compose.yml
out=$(PY compose "$COMPOSE_SCHEMA" "$bad")
st=$?
miss=
for svc in $("$DEPLOY_PYTHON" -c 'import sys, yaml; print(" ".join(yaml.safe_load(open(sys.argv[1]))["services"]))' "$bad"); do
	printf '%s\n' "$out" | grep -q "services/$svc" || miss="$miss $svc"
done
ok "$([ "$st" -ne 0 ] && [ -z "$miss" ]; echo $?)" "the Compose schema refuses each broken service of $bad" "not refused:$miss" "$out"
check "compose.yml: every image is pinned" PY images compose.yml
PY compose-env compose.yml collectord >"$T/compose.env"
check "compose.yml: collectord --check-config takes the collectord service's environment" \
	with_env "$T/compose.env" "$top_builddir/collectord" --check-config --config /dev/null
missing=
for f in $(grep -o '/opt/collectord/[A-Za-z0-9_./-]*' compose.yml | sort -u); do
	rel=${f#/opt/collectord/}
	[ -e "$rel" ] || missing="$missing $f"
done
ok "$([ -z "$missing" ]; echo $?)" "compose.yml's one-shot jobs run the tree's own scripts (mounted at /opt/collectord)" "$missing"

# ---------------------------------------------------------------- Dockerfile

check "hadolint $("$HADOLINT" --version | awk '{print $NF}') finds nothing in the Dockerfile" "$HADOLINT" --no-color Dockerfile
PY dockerfile Dockerfile >"$T/docker" || bail "cannot read the Dockerfile"
bad=$(awk '$1 == "FROM" && ($2 !~ /:[^\/]+$/ || $2 ~ /:latest$/) { print $2 }' "$T/docker")
ok "$([ -z "$bad" ] && grep -q '^FROM ' "$T/docker"; echo $?)" "the Dockerfile's base images are pinned" "$bad"
# Built as scripts/test builds: autogen, ../configure --enable-werror in
# build/, make; then the unit tests.
check "the Dockerfile configures with --enable-werror in build/ and runs the unit tests, as scripts/test" sh -c '
	grep -q "^WORKDIR /src/build\$" Dockerfile && grep -q "\.\./autogen.sh" Dockerfile &&
	grep -qE "\.\./configure --enable-werror( |\$)" Dockerfile && grep -q "make unit-check" Dockerfile &&
	grep -qE "\.\./configure --enable-werror( |\$)|configure --enable-werror" scripts/test'
# Its build packages are scripts/install-deps' build packages.
sed -n '/^APT_PACKAGES=(/,/^)/p' scripts/install-deps | sed '1d;$d' | tr -s ' \t' '\n\n' | grep . | sort >"$T/apt"
awk '$1 == "0" { print $2 }' "$T/docker" | sort >"$T/build-pkgs"
extra=$(comm -23 "$T/build-pkgs" "$T/apt")
# Every library, compiler and autotools package of install-deps, but
# those of --with-systemd and of the fuzzers, which the image does not use.
want=$(grep -E '^(lib.*-dev|uuid-dev|zlib1g-dev|protobuf-c-compiler|build-essential|autoconf|automake|libtool|pkg-config)$' "$T/apt" |
	grep -vxE 'libsystemd-dev|libclang-rt-[0-9]+-dev')
lack=$(comm -13 "$T/build-pkgs" <(printf '%s\n' "$want" | sort))
ok "$([ -z "$extra$lack" ]; echo $?)" "the Dockerfile's build stage installs scripts/install-deps' build packages" \
	"not in install-deps: $extra" "missing: $lack"
# Its runtime packages are those of the libraries the binaries link
# directly (their NEEDED entries; the libraries' own needs come with them).
for b in collectord collectord-admin; do
	readelf -d "$top_builddir/$b" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | while read -r name; do
		ldd "$top_builddir/$b" | awk -v n="$name" '$1 == n && $3 ~ /^\// { print $3 }'
	done
done | sort -u | while read -r lib; do
	dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null
done | cut -d: -f1 | sort -u |
	# libc6 is in every Debian image; the sanitizers' runtimes only in the
	# --enable-asan build.
	grep -vxE 'libc6|libasan[0-9]*|libubsan[0-9]*|liblsan[0-9]*|libgcc-s1|libstdc\+\+6' >"$T/libs"
awk '$1 == "1" && $2 ~ /^lib|^zlib1g$/ { print $2 }' "$T/docker" | sort >"$T/runtime-libs"
ok "$([ -s "$T/libs" ] && cmp -s "$T/libs" "$T/runtime-libs"; echo $?)" \
	"the Dockerfile's runtime stage installs the packages of exactly the libraries collectord and collectord-admin link" \
	"linked (dpkg -S):" "$(cat "$T/libs")" "installed:" "$(cat "$T/runtime-libs")"
missing=
for d in $(grep -E '/$' .gitignore | grep -v '^#' | sed 's:^/::; s:/$::'); do
	grep -qxF -e "$d" -e "**/$d" .dockerignore || missing="$missing $d"
done
ok "$([ -z "$missing" ]; echo $?)" ".dockerignore leaves out every folder .gitignore names (build/ and the services' state among them)" "$missing"
# In a git work tree (not in a release tarball, whose configure and
# Makefile.in the image makes again itself):
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	check "no file git ignores here (build output, service state) would enter the image's build context" \
		sh -c 'git ls-files -oi --exclude-standard --directory | "$1" "$2" dockerignore .dockerignore' _ "$DEPLOY_PYTHON" "$top_srcdir/t/deploy_check.py"
	check "every file git tracks would enter the image's build context" \
		sh -c 'git ls-files | "$1" "$2" dockerignore .dockerignore --kept' _ "$DEPLOY_PYTHON" "$top_srcdir/t/deploy_check.py"
fi

# ---------------------------------------------------------------- monitoring

check "promtool check rules $MON/collectord-alerts.yaml" "$PROMTOOL" check rules "$MON/collectord-alerts.yaml"
check "promtool test rules: each alert fires on its outage and not beside it" \
	sh -c 'cd "$1" && "$2" test rules collectord-alerts.test.yaml' _ "$MON" "$PROMTOOL"
check "$MON/collectord-dashboard.json: JSON, every panel titled, described and queried" \
	PY dashboard-rules "$MON/collectord-dashboard.json" "$T/dashboard-rules.yaml"
check "promtool parses every query of the dashboard" "$PROMTOOL" check rules "$T/dashboard-rules.yaml"

# collectord's metrics, as a daemon with every role serves them: its
# dependencies on ports where nothing listens, which /metrics does not need.
free_port() {
	"$DEPLOY_PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
port=$(free_port)
dead=$(free_port)
cat >"$T/metrics.env" <<EOF
COLLECTORD_SERVER_LISTEN=127.0.0.1
COLLECTORD_SERVER_PORT=$port
COLLECTORD_SERVER_ROLES=collect,enrich
COLLECTORD_KAFKA_BROKERS=127.0.0.1:$dead
COLLECTORD_REGISTRY_URL=http://127.0.0.1:$dead
COLLECTORD_S3_ENDPOINT=http://127.0.0.1:$dead
COLLECTORD_PG_CONNINFO=host=127.0.0.1 port=$dead user=collectord dbname=collectord connect_timeout=1
COLLECTORD_PG_SQL_DIR=$top_srcdir/sql
EOF
env_vars "$T/metrics.env"
env -i "${VARS[@]}" "$top_builddir/collectord" --config /dev/null >"$T/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 120); do
	curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break
	sleep 0.25
done
curl -fsS -o "$T/metrics" "http://127.0.0.1:$port/metrics" 2>"$T/curl.err"
ok $? "a collectord with no services serves /metrics" "$(cat "$T/curl.err")" "$(tail -n 20 "$T/daemon.log")"
kill "$DAEMON_PID" && wait "$DAEMON_PID"
ok $? "that collectord stops cleanly on SIGTERM" "$(tail -n 20 "$T/daemon.log")"
DAEMON_PID=
n=$(grep -c '^# TYPE collectord_' "$T/metrics" 2>/dev/null)
ok "$([ "${n:-0}" -ge 20 ]; echo $?)" "it declares its metrics ($n of them)"
check "every metric the alert rules and the dashboard use is one collectord exports" \
	PY metric-names "$T/metrics" "$MON/collectord-alerts.yaml" "$MON/collectord-dashboard.json"

# README, "Monitoring", says what each alert and panel means.
missing=
while IFS= read -r name; do
	grep -qF -- "$name" README.md || missing="$missing
$name"
done < <(sed -n 's/^ *- alert: //p' "$MON/collectord-alerts.yaml"
	"$DEPLOY_PYTHON" -c 'import json, sys
for p in json.load(open(sys.argv[1]))["panels"]:
    print(p["title"])' "$MON/collectord-dashboard.json")
ok "$([ -z "$missing" ]; echo $?)" "README.md explains every alert and every dashboard panel" "not in README.md:$missing"

done_testing
