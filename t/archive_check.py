"""t/archive_check.py: compare the archive's S3 objects with the topics.

usage: archive_check.py DUMPS OBJECTS N ENRICHED SCHEMA_IDS
  DUMPS       a directory of TOPIC.jsonl files: each archived topic read back
              whole (t/kafkatool consume: keyHex, headerList, valueHex,
              valueNull, timestamp, timestampType)
  OBJECTS     a directory of the run's archive objects, each file named
              after its S3 key with every "/" as "%"
  N           [archive] flush_events of the run
  ENRICHED    a directory of the run's enriched objects (any names): the
              enricher's lines, to compare each "decoded" with
  SCHEMA_IDS  the ids of the served families' subjects, comma separated
Prints TAP lines (no plan); exits 0.  Standard library only.

Every record of every dumped topic must be in exactly one object, its line
equal to the record: key, headers and value byte for byte (as text, as
JSON text spliced verbatim, or as base64), timestamp and its type; objects
named after their first record and holding one offset block each; a framed
value of a family's schema id decoded as the enricher decoded it.
"""
import base64
import collections
import datetime
import json
import os
import re
import sys

n_tests = 0


def ok(cond, name, detail=""):
    global n_tests
    n_tests += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (n_tests, name))
    if not cond and detail:
        print("# " + detail.replace("\n", "\n# "))
    return cond


def text_of(b):
    """B as a JSON string carries it as is (UTF-8, no NUL), else None."""
    if b"\x00" in b:
        return None
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None


def no_constants(name):
    raise ValueError(name)


def json_for_line(b):
    """Whether B stands in a line as it is (archive_value_is_json)."""
    if b.startswith(b"\xef\xbb\xbf") or b"\n" in b or b"\r" in b:
        return False
    t = text_of(b)
    if t is None or t.strip(" \t") == "":
        return False
    try:
        json.loads(t, parse_constant=no_constants)
    except ValueError:
        return False
    return True


def check_bytes(obj, name, b, what):
    """OBJ's NAME / NAMEBase64 member holds B exactly; a problem or None."""
    t = text_of(b)
    if t is not None:
        if obj.get(name) != t or name + "Base64" in obj:
            return "%s: %r, want the text %r" % (what, obj.get(name), t)
    elif obj.get(name + "Base64") != base64.b64encode(b).decode() or name in obj:
        return "%s: want %sBase64 %s" % (what, name, base64.b64encode(b).decode())
    return None


def frame_id(b):
    """The schema id of a Confluent frame with message index [0], or None."""
    if len(b) < 6 or b[0] != 0 or b[5] != 0:
        return None
    return int.from_bytes(b[1:5], "big")


def problems(rec, raw_line, line, ids, enriched):
    """What differs between the Kafka record REC and its archive LINE."""
    out = []
    if line.get("timestamp") != (rec["timestamp"] if rec["timestamp"] >= 0 else None):
        out.append("timestamp %r, want %r" % (line.get("timestamp"), rec["timestamp"]))
    want_tt = {"LogAppendTime": "LogAppendTime", "CreateTime": "CreateTime"}.get(rec["timestampType"])
    if line.get("timestampType") != want_tt:
        out.append("timestampType %r, want %r" % (line.get("timestampType"), want_tt))
    if rec["keyHex"] is None:
        if line.get("key", "absent") is not None or "keyBase64" in line:
            out.append("key: want null")
    else:
        p = check_bytes(line, "key", bytes.fromhex(rec["keyHex"]), "key")
        if p:
            out.append(p)
    hs = line.get("headers")
    if not isinstance(hs, list) or len(hs) != len(rec["headerList"]):
        out.append("headers %r, want %d" % (hs, len(rec["headerList"])))
    else:
        for i, (got, want) in enumerate(zip(hs, rec["headerList"])):
            p = check_bytes(got, "name", bytes.fromhex(want["nameHex"]), "header %d name" % i)
            if p:
                out.append(p)
            if want["valueHex"] is None:
                if got.get("value", "absent") is not None or "valueBase64" in got:
                    out.append("header %d: want a null value" % i)
            else:
                p = check_bytes(got, "value", bytes.fromhex(want["valueHex"]), "header %d value" % i)
                if p:
                    out.append(p)
    value = bytes.fromhex(rec["valueHex"])
    if rec["valueNull"]:
        if line.get("value", "absent") is not None or "valueBase64" in line:
            out.append("value: want null (a tombstone)")
    elif json_for_line(value):
        # Verbatim: the line holds the value's bytes between "value": and
        # the closing brace.
        if not raw_line.endswith(b'"value":' + value + b"}") or "valueBase64" in line:
            out.append("value: not the record's JSON text verbatim")
    else:
        if line.get("valueBase64") != base64.b64encode(value).decode() or "value" in line:
            out.append("valueBase64: not the record's bytes")
        sid = frame_id(value)
        if sid is not None and sid in ids:
            if line.get("schemaId") != sid:
                out.append("schemaId %r, want %d" % (line.get("schemaId"), sid))
            elif "decoded" not in line and "decodeError" not in line:
                out.append("a family's schema id without decoded or decodeError")
            elif "decoded" in line and rec["key"] in enriched:
                want = dict(enriched[rec["key"]])
                want.pop("metadata", None)
                if line["decoded"] != want:
                    out.append("decoded %r, want %r" % (line["decoded"], want))
        elif "schemaId" in line or "decoded" in line:
            out.append("schemaId for an id of no family (%r)" % sid)
    return out


def main():
    dumps, objs, n, enr_dir, ids_arg = sys.argv[1:6]
    n = int(n)
    ids = {int(x) for x in ids_arg.split(",") if x}

    records = {}
    for f in sorted(os.listdir(dumps)):
        topic = f[: -len(".jsonl")]
        with open(os.path.join(dumps, f), encoding="utf-8", errors="replace") as fh:
            for l in fh:
                r = json.loads(l)
                r["key"] = bytes.fromhex(r["keyHex"]).decode("utf-8", "replace") if r["keyHex"] else None
                records[(topic, r["partition"], r["offset"])] = r
    ok(len(records) > 0, "the topics hold %d records" % len(records))

    enriched = {}
    for f in os.listdir(enr_dir):
        with open(os.path.join(enr_dir, f), encoding="utf-8") as fh:
            for l in fh:
                e = json.loads(l)
                enriched[e["metadata"]["correlationId"]] = e

    seen = collections.Counter()
    lines_of = {}
    bad_names, bad_blocks, bad_lines = [], [], []
    key_re = re.compile(r"^archive/([A-Za-z0-9._-]+)/date=(\d{4}-\d\d-\d\d)/([A-Za-z0-9._-]+)\+(\d+)\+(\d{10,})\.jsonl$")
    nobj = 0
    for f in sorted(os.listdir(objs)):
        key = f.replace("%", "/")
        nobj += 1
        with open(os.path.join(objs, f), "rb") as fh:
            body = fh.read()
        m = key_re.match(key)
        raw_lines = body.split(b"\n")
        if not body.endswith(b"\n") or b"" in raw_lines[:-1]:
            bad_lines.append("%s: not newline-terminated lines" % key)
            continue
        raw_lines = raw_lines[:-1]
        try:
            lines = [json.loads(l) for l in raw_lines]
        except ValueError as e:
            bad_lines.append("%s: a line is not JSON: %s" % (key, e))
            continue
        if not m or m.group(1) != m.group(3) or not lines:
            bad_names.append(key)
            continue
        first = lines[0]
        date = datetime.datetime.fromtimestamp(
            max(first["timestamp"] or 0, 0) / 1000, datetime.timezone.utc).strftime("%Y-%m-%d")
        if (first["topic"], first["partition"], first["offset"], date) != (m.group(1), int(m.group(4)), int(m.group(5)), m.group(2)):
            bad_names.append("%s: first line %s/%d/%d of %s" % (key, first["topic"], first["partition"], first["offset"], date))
        offs = [l["offset"] for l in lines]
        if (any(l["topic"] != first["topic"] or l["partition"] != first["partition"] for l in lines)
                or offs != sorted(set(offs)) or len({o // n for o in offs}) != 1):
            bad_blocks.append("%s: offsets %s" % (key, offs))
        for raw, l in zip(raw_lines, lines):
            c = (l["topic"], l["partition"], l["offset"])
            seen[c] += 1
            lines_of[c] = (raw, l)
    ok(nobj > 0, "%d archive objects" % nobj)
    ok(not bad_lines, "every object is JSON Lines", "; ".join(bad_lines[:5]))
    ok(not bad_names, "every object is named archive/<topic>/date=<its first record's day>/<topic>+<partition>+<its first offset, 10 digits>.jsonl",
       "; ".join(bad_names[:5]))
    ok(not bad_blocks, "every object holds one block of %d offsets of one partition, in order" % n,
       "; ".join(bad_blocks[:5]))
    dups = [c for c, k in seen.items() if k > 1]
    ok(not dups, "no record is in two objects or twice in one", "%d duplicates, e.g. %s" % (len(dups), dups[:5]))
    missing = sorted(set(records) - set(seen))
    ok(not missing, "every record of every topic is archived (%d)" % len(records),
       "%d missing, e.g. %s" % (len(missing), missing[:5]))
    extra = sorted(set(seen) - set(records))
    ok(not extra, "nothing archived that the topics do not hold", "e.g. %s" % extra[:5])

    wrong = []
    forms = collections.Counter()
    decoded_seen = 0
    for c, rec in records.items():
        if c not in lines_of:
            continue
        raw, l = lines_of[c]
        p = problems(rec, raw, l, ids, enriched)
        if p:
            wrong.append("%s/%d/%d: %s" % (c[0], c[1], c[2], "; ".join(p)))
        forms["value" if "value" in l and l["value"] is not None else
              "decoded" if "decoded" in l else
              "decodeError" if "decodeError" in l else
              "base64" if "valueBase64" in l else "null"] += 1
        if "decoded" in l and rec["key"] in enriched:
            decoded_seen += 1
    ok(not wrong, "every line equals its record: key, headers, value, timestamp and type (%s)" %
       ", ".join("%s %d" % kv for kv in sorted(forms.items())), "\n".join(wrong[:10]))
    ok(decoded_seen > 0, "decoded values equal the enricher's events without metadata (%d compared)" % decoded_seen)


if __name__ == "__main__":
    main()
