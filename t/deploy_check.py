#!/usr/bin/env python3
"""t/deploy_check.py: the checks of t/deploy.sh that need a YAML or JSON
reader.  Each subcommand prints what it found wrong, one line each, and
exits 1 if anything was; t/deploy.sh turns that into one TAP line.

  k8s-schemas SRC DST          kubernetes-validate's schemas of one Kubernetes
                               version, with their references made relative,
                               so kubeconform can load them from files
  crd-schemas DST CRD.yaml...  every version of each CRD as a JSON schema for
                               kubeconform ({kind}_{version}.json), the
                               openAPIV3Schema made strict as kubectl is
  compose SCHEMA FILE          FILE against the Compose Specification schema
  images FILE...               every image named in Kubernetes YAML or a
                               compose file carries a pinned tag
  k8s-shape BUILD FAMILIES     collectord's objects in one kustomize build:
                               probes, resources, budgets, autoscaler, one
                               Service per family port (FAMILIES: the output
                               of collectord --families)
  refs BUILD [NAME...]         every ConfigMap and Secret a pod names is in
                               BUILD, but for the NAMEs (made outside it)
  strimzi BUILD TOPICS         the Kafka cluster: KRaft node pool, topic
                               operator, the brokers collectord is given,
                               one KafkaTopic per line of TOPICS
  daemon-env BUILD DIR         collectord.conf and the daemon's environment
                               (ConfigMap and Secret) of BUILD into DIR, for
                               collectord --check-config
  compose-env FILE SERVICE     the environment of SERVICE in a compose file,
                               as NAME=VALUE lines
  dashboard-rules DASH OUT     the dashboard's queries as a Prometheus rule
                               file, for promtool check rules
  metric-names LIST FILE...    every metric a rule file or dashboard uses is
                               in LIST (/metrics of a real collectord)
  dockerignore FILE [--kept]   the paths of standard input (one a line, a
                               folder with a trailing /) that FILE, a
                               .dockerignore, lets into the build context
                               (--kept: those it leaves out)
  dockerfile FILE              "STAGE PACKAGE" for each Debian package an
                               apt-get install of each stage names, and
                               "FROM IMAGE" for each base image, build
                               arguments expanded
"""
import json
import os
import re
import sys

import yaml

PROBLEMS = []


def problem(msg):
    PROBLEMS.append(msg)


def finish():
    for p in PROBLEMS:
        print(p)
    sys.exit(1 if PROBLEMS else 0)


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# ---------------------------------------------------------------- schemas


def k8s_schemas(src, dst):
    """kubernetes-validate's schemas name themselves with an https $id and
    refer to /api/_definitions.json below it, which its own loader maps to
    the file beside them; kubeconform loads files by their path, so the $id
    goes and the references become relative to the file."""
    os.makedirs(dst, exist_ok=True)
    n = 0
    for name in os.listdir(src):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(src, name)) as f:
            schema = json.load(f)
        schema.pop("$id", None)
        text = json.dumps(schema).replace('"/api/_definitions.json#', '"_definitions.json#')
        with open(os.path.join(dst, name), "w") as f:
            f.write(text)
        n += 1
    if n == 0:
        problem(f"{src}: no schemas")


def strict(node):
    """additionalProperties: false on every object that lists its
    properties and does not keep unknown fields, as kubectl validates; and
    x-kubernetes-int-or-string as the JSON schema it means."""
    if isinstance(node, list):
        for v in node:
            strict(v)
        return
    if not isinstance(node, dict):
        return
    if node.get("x-kubernetes-int-or-string"):
        node.pop("type", None)
        node["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if ("properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        node["additionalProperties"] = False
    for v in node.values():
        strict(v)


def crd_schemas(dst, crds):
    os.makedirs(dst, exist_ok=True)
    for path in crds:
        for crd in load_all(path):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            kind = crd["spec"]["names"]["kind"].lower()
            for v in crd["spec"]["versions"]:
                schema = v.get("schema", {}).get("openAPIV3Schema")
                if schema is None:
                    problem(f"{path}: {kind} {v['name']} has no schema")
                    continue
                strict(schema)
                out = os.path.join(dst, f"{kind}_{v['name']}.json")
                with open(out, "w") as f:
                    json.dump(schema, f)


def compose(schema_path, path):
    import jsonschema

    with open(schema_path) as f:
        schema = json.load(f)
    with open(path) as f:
        doc = yaml.safe_load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    v = cls(schema, format_checker=cls.FORMAT_CHECKER)
    for e in sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in e.absolute_path) or "(top)"
        problem(f"{path}: {where}: {e.message}")


# ---------------------------------------------------------------- images

# name[:tag][@digest]; the tag follows the last "/".
def pinned(image):
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    tag = last.split(":", 1)[1]
    return tag not in ("", "latest") and "$" not in tag


def pod_specs(doc):
    """The pod specs of a Kubernetes object, with a name for messages."""
    kind = doc.get("kind")
    name = f"{kind}/{doc.get('metadata', {}).get('name')}"
    spec = doc.get("spec") or {}
    if kind == "Pod":
        yield name, spec
    elif kind == "CronJob":
        yield name, spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec", {})
    elif "template" in spec and isinstance(spec["template"], dict):
        yield name, spec["template"].get("spec", {})


def containers(pod):
    return (pod.get("initContainers") or []) + (pod.get("containers") or [])


def images(paths):
    for path in paths:
        docs = load_all(path)
        if len(docs) == 1 and "services" in docs[0] and "apiVersion" not in docs[0]:
            for svc, s in docs[0]["services"].items():
                img = s.get("image")
                if img is None:
                    problem(f"{path}: service {svc}: no image tag (build only)")
                elif not pinned(img) and "build" not in s:
                    problem(f"{path}: service {svc}: image {img} is not pinned")
            continue
        for d in docs:
            for name, pod in pod_specs(d):
                for c in containers(pod):
                    if not pinned(c.get("image", "")):
                        problem(f"{path}: {name}: container {c.get('name')}: image {c.get('image')} is not pinned")
            if d.get("kind") == "Kafka":
                if not d.get("spec", {}).get("kafka", {}).get("version"):
                    problem(f"{path}: Kafka/{d['metadata']['name']}: no spec.kafka.version (the operator would pick the broker image)")


# ---------------------------------------------------------------- collectord's objects


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def collectord_deployments(docs):
    return [d for d in by_kind(docs, "Deployment")
            if d["spec"]["template"]["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "collectord"]


def container(d, name="collectord"):
    for c in d["spec"]["template"]["spec"]["containers"]:
        if c["name"] == name:
            return c
    return None


def env_of(c, name):
    for e in c.get("env") or []:
        if e["name"] == name:
            return e.get("value")
    return None


def families(path):
    """family -> port, from collectord --families (0: [server] port)."""
    out = {}
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    head = rows[0]
    for r in rows[1:]:
        row = dict(zip(head, r))
        out[row["family"]] = int(row["port"])
    return out


def k8s_shape(build, families_path):
    docs = load_all(build)
    deps = collectord_deployments(docs)
    roles = {}
    for d in deps:
        name = d["metadata"]["name"]
        c = container(d)
        if c is None:
            problem(f"Deployment/{name}: no container named collectord")
            continue
        role = env_of(c, "COLLECTORD_SERVER_ROLES")
        if not role:
            problem(f"Deployment/{name}: no COLLECTORD_SERVER_ROLES")
        roles[role] = d
        probes = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
        for probe, want in probes.items():
            got = (c.get(probe) or {}).get("httpGet", {}).get("path")
            if got != want:
                problem(f"Deployment/{name}: {probe} is {got}, want {want}")
        res = c.get("resources") or {}
        if not res.get("requests", {}).get("cpu") or not res.get("requests", {}).get("memory") \
                or not res.get("limits", {}).get("memory"):
            problem(f"Deployment/{name}: needs cpu and memory requests and a memory limit")
        labels = d["spec"]["template"]["metadata"]["labels"]
        if not any(labels_match(p["spec"]["selector"].get("matchLabels"), labels)
                   for p in by_kind(docs, "PodDisruptionBudget")):
            problem(f"Deployment/{name}: no PodDisruptionBudget selects its pods")
        mounts = {m["mountPath"] for m in c.get("volumeMounts") or []}
        if "/etc/collectord" not in mounts:
            problem(f"Deployment/{name}: collectord.conf is not mounted at /etc/collectord")
    for want in ("collect", "enrich", "archive"):
        if want not in roles:
            problem(f"no Deployment with COLLECTORD_SERVER_ROLES={want}")
    collect = roles.get("collect")
    if collect is None:
        return
    cname = collect["metadata"]["name"]
    hpas = [h for h in by_kind(docs, "HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
            and h["spec"]["scaleTargetRef"].get("name") == cname]
    if not hpas:
        problem(f"no HorizontalPodAutoscaler scales Deployment/{cname}")
    elif "replicas" in collect["spec"]:
        problem(f"Deployment/{cname} sets replicas: every kubectl apply would undo its autoscaler")

    # Every family's port is a container port of the collectors, with a
    # Service in front of it.
    c = container(collect)
    ports = {p["containerPort"]: p.get("name") for p in c.get("ports") or []}
    labels = collect["spec"]["template"]["metadata"]["labels"]
    main = next((p["containerPort"] for p in c.get("ports") or [] if p.get("name") == "http"), None)
    if main is None:
        problem(f"Deployment/{cname}: no container port named http")
        return
    services = [s for s in by_kind(docs, "Service") if s["spec"].get("selector")
                and labels_match(s["spec"]["selector"], labels)]
    for fam, port in families(families_path).items():
        port = port or main
        if port not in ports:
            problem(f"family {fam}: port {port} is not a container port of Deployment/{cname}")
            continue
        served = False
        for s in services:
            for sp in s["spec"]["ports"]:
                t = sp.get("targetPort", sp["port"])
                if t == port or t == ports[port]:
                    served = True
        if not served:
            problem(f"family {fam}: no Service in front of port {port} of the collectors")


def refs(build, external):
    docs = load_all(build)
    have = {("ConfigMap", d["metadata"]["name"]) for d in by_kind(docs, "ConfigMap")}
    have |= {("Secret", d["metadata"]["name"]) for d in by_kind(docs, "Secret")}
    have |= {("Secret", n) for n in external}
    for d in docs:
        for name, pod in pod_specs(d):
            wanted = []
            for v in pod.get("volumes") or []:
                if "configMap" in v:
                    wanted.append(("ConfigMap", v["configMap"]["name"]))
                if "secret" in v:
                    wanted.append(("Secret", v["secret"]["secretName"]))
            for c in containers(pod):
                for e in c.get("envFrom") or []:
                    if "configMapRef" in e:
                        wanted.append(("ConfigMap", e["configMapRef"]["name"]))
                    if "secretRef" in e:
                        wanted.append(("Secret", e["secretRef"]["name"]))
                for e in c.get("env") or []:
                    vf = e.get("valueFrom") or {}
                    if "configMapKeyRef" in vf:
                        wanted.append(("ConfigMap", vf["configMapKeyRef"]["name"]))
                    if "secretKeyRef" in vf:
                        wanted.append(("Secret", vf["secretKeyRef"]["name"]))
            for w in wanted:
                if w not in have:
                    problem(f"{name}: {w[0]} {w[1]} is neither in the build nor made outside it")


def parse_topics(path):
    out = []
    with open(path) as f:
        for line in f:
            line = re.sub(r"\s", "", line.split("#", 1)[0])
            if line:
                name, partitions, replicas, *conf = line.split(",")
                out.append((name, int(partitions), int(replicas),
                            dict(kv.split("=", 1) for kv in conf)))
    return out


def strimzi(build, topics_path):
    docs = load_all(build)
    kafkas = by_kind(docs, "Kafka")
    if len(kafkas) != 1:
        problem(f"{len(kafkas)} Kafka resources, want 1")
        return
    k = kafkas[0]
    cluster = k["metadata"]["name"]
    if k["spec"].get("zookeeper"):
        problem(f"Kafka/{cluster} has zookeeper: KRaft mode has none")
    if "topicOperator" not in (k["spec"].get("entityOperator") or {}):
        problem(f"Kafka/{cluster}: no topic operator for the KafkaTopics")
    pools = [p for p in by_kind(docs, "KafkaNodePool")
             if p["metadata"].get("labels", {}).get("strimzi.io/cluster") == cluster]
    roles = {r for p in pools for r in p["spec"]["roles"]}
    if not {"controller", "broker"} <= roles:
        problem(f"Kafka/{cluster}: node pools give roles {sorted(roles)}, KRaft needs controller and broker")
    # The brokers collectord and the init jobs are given: the operator's
    # bootstrap Service, on a plain listener.
    plain = [l for l in k["spec"]["kafka"]["listeners"] if not l.get("tls") and l["type"] == "internal"]
    want = {f"{cluster}-kafka-bootstrap:{l['port']}" for l in plain}
    for cm in by_kind(docs, "ConfigMap"):
        b = (cm.get("data") or {}).get("COLLECTORD_KAFKA_BROKERS")
        if b is not None and b not in want:
            problem(f"ConfigMap/{cm['metadata']['name']}: COLLECTORD_KAFKA_BROKERS={b}, the cluster answers on {sorted(want)}")
    kt = {}
    for t in by_kind(docs, "KafkaTopic"):
        if t["metadata"].get("labels", {}).get("strimzi.io/cluster") != cluster:
            problem(f"KafkaTopic/{t['metadata']['name']} is not labelled strimzi.io/cluster={cluster}")
        kt[t["spec"].get("topicName", t["metadata"]["name"])] = t["spec"]
    lines = parse_topics(topics_path)
    for name, partitions, replicas, conf in lines:
        s = kt.pop(name, None)
        if s is None:
            problem(f"topic {name}: no KafkaTopic")
            continue
        got = (s.get("partitions"), s.get("replicas"), {k: str(v) for k, v in (s.get("config") or {}).items()})
        if got != (partitions, replicas, conf):
            problem(f"topic {name}: KafkaTopic has {got}, {topics_path} says {(partitions, replicas, conf)}")
    for name in kt:
        problem(f"KafkaTopic {name} is not a line of {topics_path}")
    for j in by_kind(docs, "Job"):
        for c in containers(j["spec"]["template"]["spec"]):
            if any("create-topics" in w for w in (c.get("command") or []) + (c.get("args") or [])):
                problem(f"Job/{j['metadata']['name']} creates topics behind the topic operator's back")


def daemon_env(build, outdir):
    """collectord.conf of the ConfigMap the collectors mount, and the
    variables their envFrom and env give, with the Secret decoded."""
    import base64

    docs = load_all(build)
    cms = {d["metadata"]["name"]: d for d in by_kind(docs, "ConfigMap")}
    secrets = {d["metadata"]["name"]: d for d in by_kind(docs, "Secret")}
    os.makedirs(outdir, exist_ok=True)
    for d in collectord_deployments(docs):
        c = container(d)
        role = env_of(c, "COLLECTORD_SERVER_ROLES")
        env = {}
        for e in c.get("envFrom") or []:
            if "configMapRef" in e:
                env.update(cms[e["configMapRef"]["name"]].get("data") or {})
            if "secretRef" in e:
                s = secrets.get(e["secretRef"]["name"])
                if s is not None:
                    env.update({k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()})
                    env.update(s.get("stringData") or {})
        for e in c.get("env") or []:
            if "value" in e:
                env[e["name"]] = e["value"]
        conf = None
        for v in d["spec"]["template"]["spec"].get("volumes") or []:
            if "configMap" in v:
                conf = cms[v["configMap"]["name"]]["data"]["collectord.conf"]
        if conf is None:
            problem(f"Deployment/{d['metadata']['name']}: no collectord.conf")
            continue
        with open(os.path.join(outdir, f"{role}.conf"), "w") as f:
            f.write(conf)
        with open(os.path.join(outdir, f"{role}.env"), "w") as f:
            for k, v in sorted(env.items()):
                f.write(f"{k}={v}\n")


def compose_env(path, service):
    with open(path) as f:
        doc = yaml.safe_load(f)
    env = doc["services"][service].get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    for k, v in env.items():
        print(f"{k}={v}")


# ---------------------------------------------------------------- monitoring

GRAFANA_VARS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
}


def panels(dash):
    for p in dash.get("panels", []):
        yield p
        for q in p.get("panels", []):  # panels inside a collapsed row
            yield q


def dashboard_exprs(dash):
    for p in panels(dash):
        for t in p.get("targets") or []:
            if "expr" in t:
                yield p, t["expr"]


def expand(expr, dash):
    for k, v in GRAFANA_VARS.items():
        expr = expr.replace(k, v)
    for var in (dash.get("templating") or {}).get("list", []):
        expr = expr.replace("$" + var["name"], ".*").replace("${" + var["name"] + "}", ".*")
    return expr


def dashboard_rules(path, out):
    with open(path) as f:
        dash = json.load(f)
    rules = []
    seen_ids = set()
    for p in panels(dash):
        if p.get("type") == "row":
            continue
        if p.get("id") in seen_ids:
            problem(f"{path}: panel id {p.get('id')} used twice")
        seen_ids.add(p.get("id"))
        if not p.get("title"):
            problem(f"{path}: panel {p.get('id')} has no title")
        if not p.get("description"):
            problem(f"{path}: panel {p.get('title')!r} does not say what it shows (description)")
        if not p.get("targets"):
            problem(f"{path}: panel {p.get('title')!r} has no query")
    for i, (p, expr) in enumerate(dashboard_exprs(dash)):
        rules.append({"record": f"dashboard:panel_{p.get('id')}_query_{i}", "expr": expand(expr, dash)})
    with open(out, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)


# PromQL words that are not metric names.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "offset", "bool", "rate", "irate", "increase", "delta", "idelta",
    "deriv", "predict_linear", "histogram_quantile", "abs", "absent", "absent_over_time",
    "ceil", "floor", "round", "clamp", "clamp_min", "clamp_max", "changes", "resets",
    "time", "timestamp", "vector", "scalar", "sort", "sort_desc", "label_replace",
    "label_join", "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
    "count_over_time", "last_over_time", "present_over_time", "quantile_over_time", "exp",
    "ln", "log2", "log10", "sqrt", "inf", "nan", "le", "humanize", "humanizePercentage",
    "humanizeDuration", "value", "labels", "printf",
}
# Series Prometheus makes itself for every scrape target.
PROMETHEUS_OWN = {"up"}


def names_in(expr):
    # Drop label matchers, strings and durations first: their words are
    # label names and values, not metrics.
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    for w in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        if w not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]", w):
            yield w


def metric_names(list_path, files):
    have = set()
    with open(list_path) as f:
        for line in f:
            m = re.match(r"# TYPE (\S+) (\S+)", line)
            if m:
                name, kind = m.groups()
                have.add(name)
                if kind == "histogram":
                    have |= {name + "_bucket", name + "_sum", name + "_count"}
    if not have:
        problem(f"{list_path}: no metrics")
    have |= PROMETHEUS_OWN
    for path in files:
        exprs = []
        if path.endswith(".json"):
            with open(path) as f:
                dash = json.load(f)
            exprs = [e for _, e in dashboard_exprs(dash)]
        else:
            with open(path) as f:
                doc = yaml.safe_load(f)
            for g in doc.get("groups", []):
                for r in g.get("rules", []):
                    exprs.append(r["expr"])
            # A rule file's recording rules are names too.
            for g in doc.get("groups", []):
                have |= {r["record"] for r in g.get("rules", []) if "record" in r}
        if not exprs:
            problem(f"{path}: no queries")
        for e in exprs:
            for n in names_in(str(e)):
                if n not in have:
                    problem(f"{path}: {n} is not a metric of collectord (in: {' '.join(str(e).split())})")


# ---------------------------------------------------------------- Dockerfile


def dockerfile(path):
    """Instructions of a Dockerfile (continuation lines joined, comments
    out), then the packages of each stage's apt-get install."""
    with open(path) as f:
        text = f.read()
    lines, cur = [], ""
    for raw in text.split("\n"):
        if raw.lstrip().startswith("#") and not cur:
            continue
        if raw.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        cur += raw.rstrip()
        if cur.endswith("\\"):
            cur = cur[:-1] + " "
            continue
        if cur.strip():
            lines.append(cur.strip())
        cur = ""
    args = {}
    stages = set()
    stage = -1
    for ins in lines:
        word, _, rest = ins.partition(" ")
        word = word.upper()
        if word == "ARG" and stage < 0 and "=" in rest:
            k, v = rest.split("=", 1)
            args[k.strip()] = v.strip()
        elif word == "FROM":
            stage += 1
            w = rest.split()
            image = w[0]
            for k, v in args.items():
                image = image.replace("${" + k + "}", v).replace("$" + k, v)
            if image not in stages:  # FROM an earlier stage is no image
                print(f"FROM {image}")
            if len(w) == 3 and w[1].upper() == "AS":
                stages.add(w[2])
        elif word == "RUN":
            for cmd in re.split(r"&&|;", rest):
                w = cmd.split()
                if len(w) >= 2 and "apt-get" in w and "install" in w:
                    for p in w[w.index("install") + 1:]:
                        if not p.startswith("-"):
                            print(f"{stage} {p}")


def dockerignore_rules(path):
    """(exclude?, regex) per line of a .dockerignore, as Docker reads them:
    relative to the context root, "*" within a path element, "**" across
    elements, "!" re-includes; the last rule matching a path wins."""
    rules = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pat = os.path.normpath(line.lstrip("!").strip("/"))
            rx, i = "", 0
            while i < len(pat):
                c = pat[i]
                if pat.startswith("**", i):
                    rx += ".*"
                    i += 2
                    if pat.startswith("/", i):
                        rx += "/?"
                        i += 1
                    continue
                if c == "*":
                    rx += "[^/]*"
                elif c == "?":
                    rx += "[^/]"
                elif c == "[":
                    j = pat.index("]", i)
                    rx += pat[i:j + 1]
                    i = j
                else:
                    rx += re.escape(c)
                i += 1
            rules.append((not keep, re.compile(rx + "$")))
    return rules


def dockerignore(path, mode=None):
    rules = dockerignore_rules(path)
    kept = mode == "--kept"
    for line in sys.stdin:
        p = line.strip().rstrip("/")
        if not p:
            continue
        # A rule matches a path when it matches the path or a folder above
        # it; the last rule that matches decides.
        parts = p.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        out = False
        for exclude, rx in rules:
            if any(rx.match(x) for x in prefixes):
                out = exclude
        if kept and out:
            problem(f"{p} would not be in the image's build context")
        elif not kept and not out:
            problem(f"{p} would be in the image's build context")


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        sys.exit(2)
    cmd, args = argv[1], argv[2:]
    if cmd == "k8s-schemas":
        k8s_schemas(*args)
    elif cmd == "crd-schemas":
        crd_schemas(args[0], args[1:])
    elif cmd == "compose":
        compose(*args)
    elif cmd == "images":
        images(args)
    elif cmd == "k8s-shape":
        k8s_shape(*args)
    elif cmd == "refs":
        refs(args[0], args[1:])
    elif cmd == "strimzi":
        strimzi(*args)
    elif cmd == "daemon-env":
        daemon_env(*args)
    elif cmd == "compose-env":
        compose_env(*args)
    elif cmd == "dashboard-rules":
        dashboard_rules(*args)
    elif cmd == "metric-names":
        metric_names(args[0], args[1:])
    elif cmd == "dockerfile":
        dockerfile(*args)
    elif cmd == "dockerignore":
        dockerignore(*args)
    else:
        print(f"unknown subcommand {cmd}", file=sys.stderr)
        sys.exit(2)
    finish()


if __name__ == "__main__":
    main(sys.argv)
