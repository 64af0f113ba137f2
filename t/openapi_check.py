#!/usr/bin/env python3
"""t/openapi_check.py: live answers of a running collectord against the
OpenAPI document of the tree (docs/openapi.json).

Each request below is sent; its answer must have a status the document
lists for that operation, the media type it gives for that status, and a
body its schema (JSON Schema 2020-12, as OpenAPI 3.1 has it) takes.  The
requests reach every operation and most documented statuses, with the data
the caller made (CID, a stored event's correlationId).  TAP on stdout.

usage: openapi_check.py URL SPEC KEY CID
"""
import json
import re
import sys
import urllib.error
import urllib.request

import jsonschema_rs

N = 0
FAILED = 0


def ok(cond, name, diag=None):
    global N, FAILED
    N += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (N, name))
    if not cond:
        FAILED += 1
        for line in str(diag or "").splitlines():
            print("#   " + line)
    sys.stdout.flush()
    return cond


def send(url, method, path, headers=None, body=None):
    req = urllib.request.Request(url + path, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def operation(spec, method, path):
    """The path template and operation of SPEC that PATH (no query) is."""
    for template, item in spec["paths"].items():
        rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")) + "$"
        if re.match(rx, path) and method.lower() in item:
            return template, item[method.lower()]
    return None, None


def main():
    url, spec_path, key, cid = sys.argv[1:5]
    spec = json.load(open(spec_path))
    k = {"X-API-Key": key}
    status, ctype, body = send(url, "GET", "/openapi.json")
    ok(status == 200 and json.loads(body) == spec, "GET /openapi.json is the tree's docs/openapi.json")
    ok(spec.get("openapi", "").startswith("3.1"), "OpenAPI 3.1")

    collect = open(sys.argv[5], "rb").read() if len(sys.argv) > 5 else b"[{}]"
    cases = [
        ("POST", "/collect", dict(k, **{"Content-Type": "application/json"}), collect, 200),
        ("POST", "/collect/holded", dict(k, **{"Content-Type": "application/json"}), b"[{}, 1]", 200),
        ("POST", "/collect", dict(k, **{"Content-Type": "application/json"}), b"[1,", 400),
        ("POST", "/collect", {"Content-Type": "application/json"}, b"[]", 401),
        ("POST", "/collect/nosuch", k, b"[]", 404),
        ("POST", "/collect", dict(k, **{"Content-Encoding": "br"}), b"[]", 415),
        ("GET", "/healthz", {}, None, 200),
        ("GET", "/readyz", {}, None, 200),
        ("GET", "/metrics", {}, None, 200),
        ("GET", "/stats", {}, None, 200),
        ("GET", "/", {}, None, 200),
        ("GET", "/families", k, None, 200),
        ("GET", "/families", {}, None, 401),
        ("GET", "/families/clickstream/daily", k, None, 200),
        ("GET", "/families/clickstream/daily?day=2026-11-20&days=3", k, None, 200),
        ("GET", "/families/clickstream/daily?days=0", k, None, 400),
        ("GET", "/families/clickstream/daily?day=2026-02-30", k, None, 400),
        ("GET", "/families/holded/daily", k, None, 404),
        ("GET", "/families/nosuch/daily", k, None, 404),
        ("GET", "/families/clickstream/daily", {}, None, 401),
        ("GET", "/events", k, None, 200),
        ("GET", "/events?family=holded&limit=2", k, None, 200),
        ("GET", "/events?limit=0", k, None, 400),
        ("GET", "/events", {}, None, 401),
        ("GET", "/events/" + cid, k, None, 200),
        ("GET", "/events/00000000-0000-4000-8000-000000000000", k, None, 404),
        ("GET", "/events/nope", k, None, 400),
        ("GET", "/requests/" + cid, k, None, 200),
        ("GET", "/requests/00000000-0000-4000-8000-000000000000", k, None, 404),
        ("GET", "/rejections?limit=3", k, None, 200),
        ("GET", "/rejections?family=holded&rule=not%20a%20number", k, None, 200),
        ("GET", "/rejections?rule=x", k, None, 400),
    ]
    seen = {("GET", "/openapi.json")}
    for method, path, headers, body, want in cases:
        name = "%s %s" % (method, path)
        status, ctype, got = send(url, method, path, headers, body)
        template, op = operation(spec, method, path.split("?")[0])
        if not ok(op is not None, "%s: an operation of the document (%s)" % (name, template)):
            continue
        seen.add((method, template))
        ok(status == want, "%s: %d" % (name, want), "got %d: %s" % (status, got[:300]))
        resp = op["responses"].get(str(status))
        if not ok(resp is not None, "%s: status %d is documented" % (name, status)):
            continue
        media = ctype.split(";")[0].strip()
        content = resp.get("content", {})
        if not ok(media in content, "%s: %s is its documented type" % (name, media), list(content)):
            continue
        schema = content[media]["schema"]
        if media != "application/json":
            continue
        try:
            doc = json.loads(got)
        except ValueError as e:
            ok(False, "%s: JSON" % name, e)
            continue
        # The document's components beside the schema, so its $refs resolve.
        root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": spec["components"], "allOf": [schema]}
        errors = [str(e) for e in jsonschema_rs.validator_for(root).iter_errors(doc)]
        ok(not errors, "%s: the body matches its schema" % name, "\n".join(errors[:5]))
    ops = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    ok(ops <= seen, "every operation of the document was checked", sorted(ops - seen))
    print("1..%d" % N)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
