#!/usr/bin/env python3
"""t/daily_check.py: the events and the checks of t/it_daily.sh.

  daily_check.py make FIRST_DAY SEED DIR
      Clickstream events over five UTC days from FIRST_DAY (YYYY-MM-DD):
      DIR/part1a.jsonl and part1b.jsonl on the first four days,
      DIR/part2.jsonl on all five, most of them late events for the first
      two; customers repeat within and across days, a quarter of the
      events are anonymous (customer_id null or absent), and some carry an
      offset that puts them on the UTC day before or after their local
      date.  DIR/expected.json: the exact distinct customers per UTC day of
      all of them.

  daily_check.py check EXPECTED TOPIC_DUMP PG_TSV NAME
      TAP lines (no plan): the records of the run's days on the topic
      (kafkatool consume lines) against EXPECTED and against the
      PostgreSQL view (PG_TSV: day, count, updated_at in epoch ms, a line
      per day); NAME is the count's JSON key.
"""
import datetime
import json
import random
import re
import sys

DAYS = 5


def make(first_day, seed, out):
    rnd = random.Random(int(seed))
    day0 = datetime.date.fromisoformat(first_day)
    days = [day0 + datetime.timedelta(days=i) for i in range(DAYS)]
    seen = {d.isoformat(): set() for d in days}
    next_id = [rnd.randrange(1, 1 << 40)]

    def event(day, customers):
        """One event whose UTC day is DAY."""
        t = datetime.datetime.combine(day, datetime.time(0), datetime.timezone.utc)
        t += datetime.timedelta(seconds=rnd.randrange(86400), milliseconds=rnd.randrange(1000))
        r = rnd.random()
        if r < 0.1:
            # local date of the day after (late evening UTC, east offset)
            stamp = t.astimezone(datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
        elif r < 0.2:
            stamp = t.astimezone(datetime.timezone(datetime.timedelta(hours=-8)))
        else:
            stamp = t
        text = stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        detail = {"user_agent": "it-daily", "ip": "203.0.113.%d" % rnd.randrange(1, 255),
                  "timestamp": text, "page": "/p/%d" % rnd.randrange(100)}
        a = rnd.random()
        if a < 0.125:
            detail["customer_id"] = None
        elif a >= 0.25:
            c = rnd.choice(customers)
            detail["customer_id"] = c
            seen[day.isoformat()].add(c)
        next_id[0] += 1
        return {"id": next_id[0], "type": "page_view", "package_id": "pkg-it-daily",
                "event": detail}

    def write(name, events):
        with open("%s/%s.jsonl" % (out, name), "w") as f:
            for e in events:
                f.write(json.dumps(e, separators=(",", ":")) + "\n")

    pool = list(range(1, 301))
    write("part1a", [event(rnd.choice(days[:4]), pool) for _ in range(1200)])
    write("part1b", [event(rnd.choice(days[:4]), pool) for _ in range(1200)])
    # late events: new and known customers on the first two days
    pool2 = list(range(150, 451))
    late = [event(rnd.choice(days[:2]), pool2) for _ in range(900)]
    late += [event(rnd.choice(days[2:]), pool2) for _ in range(300)]
    rnd.shuffle(late)
    write("part2", late)
    with open("%s/expected.json" % out, "w") as f:
        json.dump({d: len(s) for d, s in seen.items()}, f, sort_keys=True)


def check(expected_path, dump_path, pg_path, name):
    expected = json.load(open(expected_path))
    pg = {}
    for line in open(pg_path):
        day, count, at = line.rstrip("\n").split("\t")
        pg[day] = (int(count), int(at))
    records = {d: [] for d in expected}
    malformed = []
    for line in open(dump_path):
        r = json.loads(line)
        if r.get("key") not in expected:
            continue
        try:
            v = json.loads(r["value"])
        except (KeyError, TypeError, ValueError):
            malformed.append(r.get("value"))
            continue
        records[r["key"]].append((r["partition"], r["offset"], v))
    n = 0

    def ok(cond, what):
        nonlocal n
        n += 1
        print("%s %d - %s" % ("ok" if cond else "not ok", n, what))
        return cond

    total = sum(len(v) for v in records.values())
    ok(malformed == [], "every value of the run's days is JSON (%d records)" % total)
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    shape = [v for rs in records.values() for _, _, v in rs
             if sorted(v) != sorted(["day", name, "updatedAt"]) or not isinstance(v[name], int)
             or not stamp.match(str(v["updatedAt"]))]
    ok(shape == [], "every value is {day, %s, updatedAt (RFC 3339 UTC, ms)} %s"
       % (name, json.dumps(shape[:2])))
    ok(all(v["day"] == d for d, rs in records.items() for _, _, v in rs),
       "every value's day is its key")
    last = {}
    for d, rs in records.items():
        rs.sort(key=lambda x: (x[0], x[1]))
        if rs:
            last[d] = rs[-1][2]
    ok(sorted(last) == sorted(expected), "every day of the run has a record (%d days)" % len(last))
    got = {d: v[name] for d, v in last.items()}
    ok(got == expected, "the last record of every day is the exact count: %s; expected %s"
       % (json.dumps(got, sort_keys=True), json.dumps(expected, sort_keys=True)))
    ok({d: c for d, (c, _) in pg.items()} == expected,
       "the PostgreSQL view gives the same counts: %s"
       % json.dumps({d: c for d, (c, _) in pg.items()}, sort_keys=True))
    down = [(d, [v[name] for _, _, v in rs]) for d, rs in records.items()
            if any(a[2][name] > b[2][name] for a, b in zip(rs, rs[1:]))]
    ok(down == [], "no day's count ever goes down on the topic %s" % json.dumps(down[:1]))
    bad_at = []
    for d, v in last.items():
        if d in pg:
            ms = int(datetime.datetime.fromisoformat(v["updatedAt"].replace("Z", "+00:00"))
                     .timestamp() * 1000 + 0.5)
            if ms != pg[d][1]:
                bad_at.append((d, v["updatedAt"], pg[d][1]))
    ok(bad_at == [], "the last record's updatedAt is the count's updated_at %s" % bad_at[:2])
    print("# records per day: %s" % json.dumps({d: len(rs) for d, rs in sorted(records.items())}))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "make":
        make(*sys.argv[2:])
    elif len(sys.argv) == 6 and sys.argv[1] == "check":
        check(*sys.argv[2:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
