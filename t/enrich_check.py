"""t/enrich_check.py: compare what was posted with what landed.

usage: enrich_check.py SENT RESPONSES PG_TSV RAW_JSONL S3_DIR SCHEMA_ID
  SENT       JSON Lines: the events posted, in order
  RESPONSES  JSON Lines: the 200 answers, one per batch, in the same order
             (a line "null" for a batch that got no 200)
  PG_TSV     rows of table events for this run (psql -At -F '\t' output of
             correlation_id, timestamp epoch ms, message_id_stamp, type,
             target_subscription, new_context_account_id, new_context_user_id, data)
  RAW_JSONL  the raw topic read back (t/kafkatool consume)
  S3_DIR     the run's enriched/ objects, downloaded
Prints TAP lines (no plan); exits 0.  Standard library only.
"""
import datetime
import json
import os
import sys
import uuid

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_to_uuid(s):
    n = 0
    for ch in s.upper():
        n = n * 32 + CROCKFORD.index(ch)
    return str(uuid.UUID(int=n))


def objectid_to_uuid(s):
    b = bytes.fromhex(s)
    return str(uuid.UUID(bytes=b[0:6] + b"\x80" + b[6:7] + b"\x80" + b[7:12] + b"\x00\x00"))


def any_to_uuid(s):
    if len(s) == 26:
        return ulid_to_uuid(s)
    if len(s) == 24:
        return objectid_to_uuid(s)
    return str(uuid.UUID(s))


LONG = "X-Message-Stamp-Holded\\"
NEWCTX = LONG + "Shared\\Infrastructure\\Messenger\\Stamp\\NewContextStamp"
TS = LONG + "Core\\Messaging\\Messenger\\Stamp\\TimestampStamp"
MSGID = LONG + "Core\\Messaging\\Messenger\\Stamp\\MessageIdStamp"


def unstamp(v, wrapper=None):
    if isinstance(v, str) and v.startswith("["):
        v = json.loads(v)
    if isinstance(v, list):
        v = v[0]
    if isinstance(v, dict) and wrapper and wrapper in v:
        v = v[wrapper]
    return v


def expected_columns(ev):
    a = ev["attributes"]
    ctx = unstamp(a[NEWCTX])
    ts = unstamp(a[TS], "dispatchedAt")
    when = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return {
        "ts_ms": int(when.timestamp() * 1000),
        "message_id": any_to_uuid(unstamp(a[MSGID], "id")),
        "type": a["type"],
        "target": a["targetSubscription"],
        "account": any_to_uuid(ctx["accountId"]),
        "user": any_to_uuid(ctx["userId"]),
        "data_id": ev["data"]["id"],
    }


n = 0


def ok(cond, name, detail=""):
    global n
    n += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (n, name))
    if not cond and detail:
        print("# " + detail)


def main():
    sent_path, resp_path, pg_path, raw_path, s3_dir, schema_id = sys.argv[1:7]
    sent = [json.loads(l) for l in open(sent_path)]
    want = {}
    i = 0
    for line in open(resp_path):
        r = json.loads(line)
        if r is None:
            # no answer for this batch: its events are not acknowledged
            continue
        for e in r["events"]:
            if e["status"] == "accepted":
                want[e["correlationId"]] = sent[r["_first"] + e["index"]]
        i += 1
    rows = {}
    dup = 0
    for line in open(pg_path):
        f = line.rstrip("\n").split("\t")
        if f[0] in rows:
            dup += 1
        rows[f[0]] = f
    ok(dup == 0, "no correlationId twice in PostgreSQL")
    missing = [c for c in want if c not in rows]
    ok(not missing, "every acknowledged event is in PostgreSQL (%d)" % len(want),
       "missing: %s" % missing[:5])
    stamps = {}
    for line in open(raw_path):
        r = json.loads(line)
        stamps[r["key"]] = int(r["timestamp"])
    bad_cols, bad_meta = [], []
    for c, ev in want.items():
        if c not in rows:
            continue
        f = rows[c]
        exp = expected_columns(ev)
        got = {"ts_ms": int(float(f[1])), "message_id": f[2], "type": f[3], "target": f[4],
               "account": f[5], "user": f[6]}
        data = json.loads(f[7])
        got["data_id"] = data["data"]["id"]
        if got != exp:
            bad_cols.append((c, got, exp))
        md = data["metadata"]
        pt = datetime.datetime.fromisoformat(md["publishTime"].replace("Z", "+00:00"))
        if (md["correlationId"] != c or md["schemaId"] != int(schema_id)
                or int(round(pt.timestamp() * 1000)) != stamps.get(c)):
            bad_meta.append((c, md, stamps.get(c)))
    ok(not bad_cols, "every column equals what was sent (ids converted)",
       "first: %s" % (bad_cols[:1],))
    ok(not bad_meta, "metadata: correlationId, publishTime = Kafka timestamp, schemaId = registry id",
       "first: %s" % (bad_meta[:1],))
    seen = {}
    for name in sorted(os.listdir(s3_dir)):
        for line in open(os.path.join(s3_dir, name)):
            c = json.loads(line)["metadata"]["correlationId"]
            seen[c] = seen.get(c, 0) + 1
    twice = [c for c, k in seen.items() if k > 1]
    ok(not twice, "no event twice across the S3 enriched objects", "e.g. %s" % twice[:3])
    absent = [c for c in want if c not in seen]
    ok(not absent, "every acknowledged event is in exactly one S3 object", "e.g. %s" % absent[:3])
    return 0


if __name__ == "__main__":
    sys.exit(main())
