#!/usr/bin/env python3
"""t/faultsuite.py: every fault under steady load, accounted for event by event.

Run by t/it_faultsuite.sh, which checks the services and numbers the TAP
lines this prints ("ok - NAME", "not ok - NAME", "# ...").  It starts its own
collectord processes on the real services: collect and enrich apart
([server] roles), serving every family of `collectord --families`, on topics
and consumer groups of this run alone.  Client threads post a steady mix of
every family's events, valid and invalid (made up by scripts/generate-events,
each valid one given a dedup key of its own), in batches of 1 to 10, and
retry a 503, a timeout or a broken connection with the same body, after
Retry-After.  Then, one at a time, each fault: kill -9 of the collect and of
the enrich process, a Kafka restart, a registry restart, S3 and PostgreSQL
stopped for a while, a producer queue too small for the load, enrichers
joining and leaving the group (one killed -9), and a collector that answers
503 to batches Kafka still writes, whose clients send the same events again.

During each fault it checks that the processes stay up, /healthz answers
200, /readyz answers 503 naming the dependency, every request is answered
(or refused, when its process is dead) before the client's own timeout, and
that everything recovers without help.  After each fault, once the enrichers
have committed the end of every topic, it counts where each event went and
prints a row of the accounting table (defined in README.md, "Fault suite").

Services are stopped and started with scripts/services only, each one
started again whatever happens (finally, and `--restore` from the wrapper's
exit trap); run the suite holding /work/services.lock or its equivalent, as
every test that stops services.  Bounded: every wait has a bound so that a
broken run ends; none is a speed check.  COLLECTORD_FAULTS=full runs every
fault with more clients and longer outages; COLLECTORD_FAULTS=a,b runs the
faults named (see FAULTS).
"""
import datetime
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid

SRC = os.environ.get("top_srcdir", os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.environ.get("top_builddir", ".")
TDIR = os.environ.get("FAULTS_DIR", "")
RUN = os.environ.get("FAULTS_RUN", "faults-%d" % os.getpid())
KAFKATOOL = os.path.join(BUILD, "t", "kafkatool")
ADMIN = os.path.join(BUILD, "collectord-admin")
DAEMON = os.path.join(BUILD, "collectord")
SERVICES = os.path.join(SRC, "scripts", "services")
S3SCRIPT = os.path.join(SRC, "scripts", "s3")
GENERATE = os.path.join(SRC, "scripts", "generate-events")
STOPPED = os.path.join(TDIR, "stopped-services") if TDIR else ""

# quick, full, or the faults to run (a,b), with the full load if "full:a,b"
MODE = os.environ.get("COLLECTORD_FAULTS", "") or "quick"
FULL = MODE == "full" or MODE.startswith("full:")
# What the load and the outages are made of.  A client pauses between its
# batches; an outage lasts "hold" seconds once the fault is in place.
SIZES = {
    "clients": 6 if FULL else 3,
    "pause": (0.05, 0.2) if FULL else (0.15, 0.35),
    "warm": 30 if FULL else 8,    # batches answered 200 before the fault
    "after": 30 if FULL else 8,   # batches answered 200 once it recovered
    "hold": 20.0 if FULL else 5.0,
    "chunk": 5000 if FULL else 2000,  # events made up at once per family
}
INVALID_RATIO = 0.2
# The client's own timeout; the suite's collectors answer 503 "timeout" for
# a batch Kafka has not acknowledged after REQUEST_TIMEOUT_MS, well before.
CLIENT_TIMEOUT = 30.0
REQUEST_TIMEOUT_MS = 10000
GIVE_UP_S = 300.0   # a client stops retrying a batch after this long
READY_BOUND = 180.0
DRAIN_BOUND = 300.0

# ---------------------------------------------------------------- families

HOLDED_MSGID = "X-Message-Stamp-Holded\\Core\\Messaging\\Messenger\\Stamp\\MessageIdStamp"
KEY_SEQ = [random.SystemRandom().randrange(1 << 50, 1 << 52)]


def holded_key(ev):
    a = ev["attributes"]
    k = str(uuid.uuid4())
    names = [n for n in (HOLDED_MSGID, "messageIdStamp") if n in a]
    if len(names) != 1:
        raise ValueError("a valid Holded event without one messageIdStamp")
    a[names[0]] = k
    return k


def clickstream_key(ev):
    KEY_SEQ[0] += 1
    ev["id"] = KEY_SEQ[0]
    return str(KEY_SEQ[0])


def retail_key(ev):
    k = str(uuid.uuid4())
    ev["transactionId"] = k
    return k


# Each family's dedup key (issue 11): how the suite gives a valid event a
# key of its own, where the key is in the enriched event (S3 lines, the
# table's data), and the table column that holds it.  Every key is unique
# to one event of one run, so a key seen twice in a sink is an event stored
# twice.
DEDUP = {
    "holded": {"set": holded_key, "path": ("attributes", "messageIdStamp"),
               "column": "message_id_stamp", "type": "uuid"},
    "clickstream": {"set": clickstream_key, "path": ("id",),
                    "column": "id", "type": "bigint"},
    "retail": {"set": retail_key, "path": ("transactionId",),
               "column": "transaction_id", "type": "uuid"},
}

# ---------------------------------------------------------------- TAP

LOCK = threading.Lock()
FAILED = [0]


def say(line):
    with LOCK:
        print(line, flush=True)


def diag(text):
    for part in str(text).splitlines() or [""]:
        say("# " + part)


def check(cond, name, detail=None):
    name = name.replace("\n", " ")
    if cond:
        say("ok - " + name)
    else:
        FAILED[0] += 1
        say("not ok - " + name)
        if detail:
            diag("  " + str(detail))
    return bool(cond)


class Bail(Exception):
    pass


def wait_for(bound, fn, step=0.25):
    """FN's first true value within BOUND seconds, else its last value.
    The bound only ends a broken run; it is not a speed check."""
    deadline = time.monotonic() + bound
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def run(cmd, input=None, timeout=600):
    p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise Bail("%s: exit %d: %s" % (" ".join(cmd[:3]), p.returncode, p.stderr.strip()[-500:]))
    return p.stdout


# ---------------------------------------------------------------- services

def service(cmd, name):
    """scripts/services stop|start NAME.  Started services must not keep the
    caller's descriptors (the services lock among them): subprocess closes
    every descriptor above 2 in the child."""
    if cmd == "stop":
        with open(STOPPED, "a") as f:
            f.write(name + "\n")
    run([SERVICES, cmd, name], timeout=900)
    if cmd == "start":
        left = [n for n in stopped_services() if n != name]
        with open(STOPPED, "w") as f:
            f.write("".join(n + "\n" for n in left))


def stopped_services():
    try:
        with open(STOPPED) as f:
            return [l.strip() for l in f if l.strip()]
    except OSError:
        return []


def restore_services():
    ok = True
    for name in dict.fromkeys(stopped_services()):
        try:
            service("start", name)
            diag("started %s again" % name)
        except (Bail, subprocess.SubprocessError, OSError) as e:
            ok = False
            diag("cannot start %s again: %s" % (name, e))
    return ok


# ---------------------------------------------------------------- HTTP

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Attempt:
    """One try of a batch: its HTTP answer, or why there was none."""

    def __init__(self, target, during):
        self.target = target
        self.during = during    # sent while the fault was in place
        self.status = None
        self.body = b""
        self.retry_after = None
        self.error = None       # "timeout" or "connection: ..." without an answer

    def json(self):
        try:
            v = json.loads(self.body)
            return v if isinstance(v, dict) else None
        except ValueError:
            return None

    def code(self):
        j = self.json()
        return j.get("error") if j else None

    def told_why(self):
        """A JSON error body with a reason, and Retry-After on a 503."""
        j = self.json()
        return (j is not None and isinstance(j.get("error"), str) and j["error"] != "" and
                isinstance(j.get("message"), str) and j["message"] != "" and
                (self.status != 503 or (self.retry_after or "").isdigit()))


def request(method, url, body=None, timeout=5.0, target=None, during=False):
    u = urllib.parse.urlsplit(url)
    a = Attempt(target, during)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        try:
            conn.request(method, u.path, body=body, headers={"Content-Type": "application/json"})
        except (BrokenPipeError, ConnectionResetError):
            pass    # answered from the headers and closed: the answer may be there
        r = conn.getresponse()
        a.body = r.read()
        a.status = r.status
        a.retry_after = r.getheader("Retry-After")
    except socket.timeout:
        a.error = "timeout"
    except (OSError, http.client.HTTPException) as e:
        a.error = "connection: %s" % (e.__class__.__name__,)
    finally:
        conn.close()
    return a


# ---------------------------------------------------------------- daemons

class Daemon:
    """One collectord of the suite: ROLE is collect or enrich."""

    def __init__(self, suite, name, role, env=None, conf=None):
        self.suite = suite
        self.name = name
        self.role = role
        self.env = dict(env or {})
        self.conf = conf
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = os.path.join(TDIR, name + ".log")
        self.proc = None

    def start(self, ready=True):
        env = dict(os.environ)
        env.update(self.suite.settings)
        env.update(self.env)
        env["COLLECTORD_SERVER_ROLES"] = self.role
        env["COLLECTORD_SERVER_PORT"] = str(self.port)
        cmd = [DAEMON] + (["--config", self.conf] if self.conf else [])
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        with open(os.path.join(TDIR, self.name + ".pid"), "w") as f:
            f.write("%d\n" % self.proc.pid)
        self.suite.daemons[self.name] = self
        if ready:
            check(self.wait_ready(), "%s (%s) started, /readyz 200" % (self.name, self.role),
                  self.readyz_text())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def get(self, path):
        return request("GET", self.url + path, timeout=5.0)

    def ready(self):
        return self.alive() and self.get("/readyz").status == 200

    def wait_ready(self, bound=READY_BOUND):
        return wait_for(bound, self.ready)

    def readyz_text(self):
        a = self.get("/readyz")
        return "readyz: %s %s" % (a.status or a.error, a.body.decode(errors="replace")[:300])

    def names_down(self, dep):
        a = self.get("/readyz")
        j = a.json() or {}
        d = (j.get("dependencies") or {}).get(dep) or {}
        return (a.status == 503 and j.get("ready") is False and d.get("state") == "down" and
                bool(d.get("lastError")))

    def gone(self):
        """It has exited: forget it (its pid may be reused)."""
        self.suite.daemons.pop(self.name, None)
        try:
            os.unlink(os.path.join(TDIR, self.name + ".pid"))
        except OSError:
            pass

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.gone()

    def term(self):
        """SIGTERM; the exit status (None if it did not exit in time)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=REQUEST_TIMEOUT_MS / 1000 + 60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.gone()
        return rc


# ---------------------------------------------------------------- load

class Batch:
    def __init__(self, family, events):
        self.family = family
        self.events = events    # indexes into the family's pool
        self.body = None
        self.attempts = []
        self.answer = None      # the 200 answer's JSON

    def answered(self):
        return self.answer is not None


class Phase:
    """The batches of one fault, and where their attempts go."""

    def __init__(self, name):
        self.name = name
        self.batches = []
        self.lock = threading.Lock()
        self.during = False
        self.route = None       # (batch, attempt number) -> base URL
        self.inflight = 0       # requests sent and not answered yet
        self.pause = None       # the clients' pause between batches, if not SIZES'

    def add(self, b):
        with self.lock:
            self.batches.append(b)

    def all(self):
        with self.lock:
            return list(self.batches)

    def answered(self):
        return sum(1 for b in self.all() if b.answered())

    def attempts(self):
        return [a for b in self.all() for a in list(b.attempts)]


class Pool:
    """Made-up events of one family, (event, meant valid, dedup key), made
    by scripts/generate-events in chunks as the load takes them."""

    def __init__(self, family):
        self.family = family
        self.items = []
        self.next = 0
        self.lock = threading.Lock()
        self.grow()

    def grow(self):
        path = os.path.join(TDIR, "pool-%s-%d.jsonl" % (self.family, len(self.items)))
        run([GENERATE, "--family", self.family, "--count", str(SIZES["chunk"]),
             "--invalid-ratio", str(INVALID_RATIO), "--dry-run", "--keep", path])
        with open(path) as f:
            events = [json.loads(l) for l in f if l.strip()]
        with open(path + ".expect") as f:
            verdicts = [l.strip() for l in f if l.strip()]
        if len(events) != len(verdicts) or not events:
            raise Bail("generate-events: %d events, %d verdicts" % (len(events), len(verdicts)))
        for ev, v in zip(events, verdicts):
            key = DEDUP[self.family]["set"](ev) if v == "valid" else None
            self.items.append((ev, v == "valid", key))
        os.unlink(path)
        os.unlink(path + ".expect")

    def take(self, n):
        with self.lock:
            if self.next + n > len(self.items):
                self.grow()
            first = self.next
            self.next += n
            return list(range(first, self.next))


class Load:
    """Client threads posting batches of every family until stopped."""

    def __init__(self, suite, phase):
        self.suite = suite
        self.phase = phase
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True)
                        for i in range(SIZES["clients"])]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        """No new batches; wait for the clients' last ones (retried until
        answered 200 or GIVE_UP_S)."""
        self.stop.set()
        for t in self.threads:
            t.join(GIVE_UP_S + CLIENT_TIMEOUT + 30)
        return not any(t.is_alive() for t in self.threads)

    def client(self, i):
        rnd = random.Random()
        families = list(self.suite.pools)
        while not self.stop.is_set():
            fam = rnd.choice(families)
            pool = self.suite.pools[fam]
            try:
                idx = pool.take(rnd.randint(1, 10))
            except Bail as e:
                diag("client %d: %s" % (i, e))
                break
            b = Batch(fam, idx)
            b.body = json.dumps([pool.items[j][0] for j in idx]).encode()
            self.phase.add(b)
            self.send(b)
            time.sleep(rnd.uniform(*(self.phase.pause or SIZES["pause"])))

    def send(self, b):
        first = time.monotonic()
        n = 0
        while True:
            base = self.phase.route(b, n)
            with self.phase.lock:
                self.phase.inflight += 1
            a = request("POST", "%s/collect/%s" % (base, b.family), b.body, CLIENT_TIMEOUT,
                        target=base, during=self.phase.during)
            with self.phase.lock:
                self.phase.inflight -= 1
            b.attempts.append(a)
            n += 1
            if a.status == 200:
                b.answer = a.json()
                return
            if time.monotonic() - first > GIVE_UP_S:
                return
            if a.status == 503:
                time.sleep(int(a.retry_after) if (a.retry_after or "").isdigit() else 1)
            elif a.status is None:
                time.sleep(0.5)
            else:
                return      # not a retryable answer: counted, not sent again


# ---------------------------------------------------------------- sinks

def sql(query):
    out = run(["psql", os.environ["COLLECTORD_PG_CONNINFO"], "-X", "-q", "-At", "-F", "\t",
               "-v", "ON_ERROR_STOP=1"], input=query)
    return [l.split("\t") for l in out.splitlines() if l]


def sql_list(values, kind):
    return "'{%s}'::%s[]" % (",".join('"%s"' % v for v in values), kind)


def s3_list(prefix):
    out = run([S3SCRIPT, "ls", os.environ["COLLECTORD_S3_BUCKET"], prefix])
    return [l for l in out.splitlines() if l]


def s3_get_many(keys):
    """{key: bytes, or None when missing}, in one curl process (its own
    SigV4 signing, as scripts/s3)."""
    got = {}
    if not keys:
        return got
    ep = os.environ.get("COLLECTORD_S3_ENDPOINT", "http://127.0.0.1:9000").rstrip("/")
    bucket = os.environ["COLLECTORD_S3_BUCKET"]
    with tempfile.TemporaryDirectory(dir=TDIR or None) as tmp:
        names = {}
        with open(os.path.join(tmp, "curl.cfg"), "w") as cfg:
            for i, k in enumerate(keys):
                names[k] = os.path.join(tmp, "o%d" % i)
                cfg.write('url = "%s/%s/%s"\noutput = "%s"\n' %
                          (ep, bucket, urllib.parse.quote(k, safe="/"), names[k]))
        out = run(["curl", "-sS", "--aws-sigv4",
                   "aws:amz:%s:s3" % os.environ.get("COLLECTORD_S3_REGION", "us-east-1"),
                   "--user", "%s:%s" % (os.environ["COLLECTORD_S3_ACCESS_KEY"],
                                        os.environ["COLLECTORD_S3_SECRET_KEY"]),
                   "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                   "-w", "%{http_code}\n", "-K", os.path.join(tmp, "curl.cfg")])
        codes = out.split()
        for (k, path), code in zip(names.items(), codes):
            with open(path, "rb") as f:
                got[k] = f.read() if code == "200" else None
    return got


def consume(topic):
    out = run([KAFKATOOL, "consume", topic])
    return [json.loads(l) for l in out.splitlines() if l]


def offsets(group, topics):
    rows = run([KAFKATOOL, "offsets", group] + topics)
    return [(t, int(p), int(lo), int(hi), int(c))
            for t, p, lo, hi, c in (l.split("\t") for l in rows.splitlines() if l)]


def lag(group, topics):
    return sum(hi - (c if c >= 0 else lo) for _, _, lo, hi, c in offsets(group, topics))


def dig(obj, path):
    for p in path:
        if not isinstance(obj, dict) or p not in obj:
            return None
        obj = obj[p]
    return obj


def uuid_time(u):
    """The UTC day of a UUIDv7 (batchIds): where its dead letters are."""
    ms = int(u.replace("-", "")[:12], 16)
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d")


# ---------------------------------------------------------------- the suite

COLUMNS = ["fault", "sent", "answered 200", "answered 503/4xx", "in Kafka", "in PostgreSQL",
           "in S3", "duplicates", "lost", "no answer", "unacked in Kafka"]


class Suite:
    def __init__(self):
        self.daemons = {}
        self.rows = []
        self.families = self.read_families()
        self.day0 = datetime.datetime.now(datetime.timezone.utc).date()
        self.settings = {
            "COLLECTORD_SERVER_FAMILIES": ",".join(self.families),
            "COLLECTORD_SERVER_REQUEST_TIMEOUT_MS": str(REQUEST_TIMEOUT_MS),
            "COLLECTORD_PG_SQL_DIR": os.path.join(SRC, "sql"),
            "COLLECTORD_ENRICH_GROUP_ID": RUN,
            "COLLECTORD_ENRICH_FLUSH_EVENTS": "50",
            "COLLECTORD_ENRICH_FLUSH_MS": "200",
            "COLLECTORD_ENRICH_RETRY_MAX_MS": "2000",
        }
        for f in self.families:
            self.settings["COLLECTORD_FAMILY_%s_RAW_TOPIC" % f.upper()] = "%s-%s.raw" % (RUN, f)
            self.settings["COLLECTORD_FAMILY_%s_INVALID_TOPIC" % f.upper()] = "%s-%s.invalid" % (RUN, f)
            # the machine's enriched and daily topics are shared: the run's own, or none
            self.settings["COLLECTORD_FAMILY_%s_ENRICHED_TOPIC" % f.upper()] = "%s-%s.enriched" % (RUN, f)
            self.settings["COLLECTORD_FAMILY_%s_ENRICHED_SUBJECT" % f.upper()] = "faultsuite.%s.enriched-value" % f
            if f == "clickstream":
                self.settings["COLLECTORD_FAMILY_%s_DAILY_TOPIC" % f.upper()] = "none"
        self.families = self.read_families(self.settings)
        self.raw_topics = [self.families[f]["raw_topic"] for f in self.families]
        self.invalid_topics = [self.families[f]["invalid_topic"] for f in self.families]
        self.enriched_topics = [self.families[f]["enriched_topic"] for f in self.families]
        self.pools = {}

    @staticmethod
    def read_families(extra=None):
        env = dict(os.environ)
        env.update(extra or {})
        out = subprocess.run([DAEMON, "--families"], env=env, capture_output=True, text=True,
                             check=True).stdout.splitlines()
        head = out[0].split("\t")
        fams = {}
        for line in out[1:]:
            row = dict(zip(head, line.split("\t")))
            fams[row["family"]] = row
        missing = [f for f in fams if f not in DEDUP]
        if missing:
            raise Bail("no dedup key known to the suite for %s: add it to DEDUP" % missing)
        return fams

    def make_topics(self):
        path = os.path.join(TDIR, "topics")
        with open(path, "w") as f:
            for t in self.raw_topics + self.enriched_topics:
                f.write("%s,3,1,message.timestamp.type=LogAppendTime\n" % t)
            for t in self.invalid_topics:
                f.write("%s,1,1,message.timestamp.type=LogAppendTime\n" % t)
        run([ADMIN, "create-topics", path])

    def conf(self, name, kafka):
        path = os.path.join(TDIR, name + ".conf")
        with open(path, "w") as f:
            f.write("[kafka]\n" + "".join("%s = %s\n" % kv for kv in kafka.items()))
        return path

    # -------------------------------------------------------- outages

    def during(self, phase, expect):
        """The checks while a fault is in place."""
        name = phase.name
        for d in list(self.daemons.values()):
            check(d.alive(), "%s: %s stays up" % (name, d.name))
            a = d.get("/healthz")
            check(a.status == 200, "%s: %s /healthz 200" % (name, d.name), a.status or a.error)
        for d, dep in expect.get("down", []):
            check(wait_for(60 + SIZES["hold"], lambda: d.names_down(dep)),
                  "%s: %s /readyz 503 naming %s" % (name, d.name, dep), d.readyz_text())
        for d in expect.get("ready", []):
            check(d.ready(), "%s: %s stays ready (it does not need it)" % (name, d.name),
                  d.readyz_text())
        codes = expect.get("codes")
        if codes:
            seen = wait_for(60 + SIZES["hold"], lambda: [
                a for a in phase.attempts() if a.during and a.status == 503 and a.code() in codes])
            check(seen and all(a.told_why() for a in seen),
                  "%s: clients answered 503 %s, with a reason and Retry-After" %
                  (name, "/".join(sorted(codes))), "no such answer yet")

    def recovered(self, phase):
        name = phase.name
        for d in list(self.daemons.values()):
            check(d.wait_ready(), "%s: %s recovers by itself (/readyz 200)" % (name, d.name),
                  d.readyz_text())
        n = phase.answered()
        check(wait_for(READY_BOUND, lambda: phase.answered() >= n + SIZES["after"]),
              "%s: batches answered 200 again" % name)

    def drain(self, name):
        ok = wait_for(DRAIN_BOUND, lambda: lag(RUN, self.raw_topics) == 0 and
                      lag(RUN + "-rejections", self.invalid_topics) == 0, step=1.0)
        check(ok, "%s: the enrichers drain (committed offsets = end offsets)" % name,
              "lag %d raw, %d invalid" % (lag(RUN, self.raw_topics),
                                          lag(RUN + "-rejections", self.invalid_topics)))
        return ok

    # -------------------------------------------------------- one fault

    def phase(self, key, title, fault):
        name = title
        diag("--- %s" % name)
        ends = {(t, p): hi for t, p, _, hi, _ in offsets(RUN, self.raw_topics)}
        ph = Phase(name)
        c1 = self.daemons["collect"]
        ph.route = lambda b, n: c1.url
        load = Load(self, ph)
        load.start()
        check(wait_for(READY_BOUND, lambda: ph.answered() >= SIZES["warm"]),
              "%s: load flows before the fault" % name)
        gen = fault(ph)
        try:
            ph.during = True
            expect = next(gen)
            self.during(ph, expect)
            left = SIZES["hold"] - expect.get("held", 0)
            if left > 0:
                time.sleep(left)
        finally:
            try:
                next(gen)
            except StopIteration:
                pass
            ph.during = False
        self.recovered(ph)
        check(load.finish(), "%s: every client finished its batches" % name)
        self.drain(name)
        self.account(ph, ends)

    # -------------------------------------------------------- accounting

    def account(self, ph, ends):
        name = ph.name
        batches = ph.all()
        attempts = [a for b in batches for a in b.attempts]
        # What Kafka holds: the raw and invalid topics, read back whole.
        raw, invalid, unacked = {}, {}, 0
        acked = set()
        for b in batches:
            if b.answer:
                acked.update(e.get("correlationId") for e in b.answer.get("events", []))
        enricher_dl = 0
        for f, fam in self.families.items():
            for r in consume(fam["raw_topic"]):
                raw[r.get("key")] = raw.get(r.get("key"), 0) + 1
                if r["offset"] >= ends.get((fam["raw_topic"], r["partition"]), 0) and \
                        r.get("key") not in acked:
                    unacked += 1
            for r in consume(fam["invalid_topic"]):
                if "source-topic" in r.get("headers", {}):
                    enricher_dl += 1
                invalid[r.get("key")] = invalid.get(r.get("key"), 0) + 1
        # The events of this fault, by family.
        keys = {f: [] for f in self.families}
        for b in batches:
            pool = self.pools[b.family]
            for j in b.events:
                if pool.items[j][1]:
                    keys[b.family].append(pool.items[j][2])
        # PostgreSQL: the family's table by dedup key; rejections by
        # correlationId, on this run's invalid topics.
        pg, rej = {}, {}
        for f, fam in self.families.items():
            d = DEDUP[f]
            if not keys[f]:
                continue
            for k, n in sql("SELECT %s, count(*) FROM %s WHERE %s = ANY(%s) GROUP BY 1" %
                            (d["column"], fam["table"], d["column"], sql_list(keys[f], d["type"]))):
                pg[(f, k)] = int(n)
        for c, n in sql("SELECT correlation_id, count(*) FROM rejections WHERE kafka_topic = ANY(%s)"
                        " GROUP BY 1" % sql_list(self.invalid_topics, "text")):
            rej[c] = int(n)
        # S3: every enriched object of this run's raw topics, by dedup key;
        # the dead-letter object of each answered batch, by correlationId.
        s3 = {}
        days = [(self.day0 + datetime.timedelta(days=i)).strftime("%Y-%m-%d") for i in
                range((datetime.datetime.now(datetime.timezone.utc).date() - self.day0).days + 1)]
        objs = []
        for f, fam in self.families.items():
            for day in days:
                objs += [(f, k) for k in s3_list("%senriched/date=%s/%s+" %
                                                 (fam["s3_prefix"], day, fam["raw_topic"]))]
        got = s3_get_many([k for _, k in objs])
        for f, k in objs:
            for line in (got.get(k) or b"").splitlines():
                v = dig(json.loads(line), DEDUP[f]["path"])
                s3[(f, str(v))] = s3.get((f, str(v)), 0) + 1
        missing_objs = [k for _, k in objs if got.get(k) is None]
        dl_keys = {}
        for b in batches:
            if b.answer and b.answer.get("rejected"):
                bid = b.answer["batchId"]
                dl_keys[bid] = "%sdead-letter/date=%s/%s.jsonl" % (
                    self.families[b.family]["s3_prefix"], uuid_time(bid), bid)
        dl = {}
        got = s3_get_many(list(dl_keys.values()))
        for k in dl_keys.values():
            for line in (got.get(k) or b"").splitlines():
                c = json.loads(line).get("correlationId")
                dl[c] = dl.get(c, 0) + 1
        # Event by event.
        row = dict.fromkeys(COLUMNS[1:], 0)
        verdicts, dup_eg, lost_eg, unanswered_why = [], [], [], []
        for b in batches:
            pool = self.pools[b.family]
            non200 = [a for a in b.attempts if a.status is not None and a.status != 200]
            noans = [a for a in b.attempts if a.status is None]
            evs = (b.answer or {}).get("events") or []
            if b.answer and (len(evs) != len(b.events) or
                             b.answer.get("accepted", -1) + b.answer.get("rejected", -1) != len(b.events)):
                verdicts.append("batch %s: %d events, answer %s" % (b.answer.get("batchId"),
                                                                     len(b.events), evs[:2]))
            if not b.answer:
                last = b.attempts[-1] if b.attempts else None
                if not (last and last.status is not None and last.told_why()):
                    unanswered_why.append(b)
            for i, j in enumerate(b.events):
                ev, valid, key = pool.items[j]
                row["sent"] += 1
                row["answered 503/4xx"] += bool(non200)
                row["no answer"] += bool(noans)
                e = evs[i] if i < len(evs) else {}
                if valid:
                    counts = [0, pg.get((b.family, key), 0), s3.get((b.family, key), 0)]
                else:
                    counts = [0, 0, 0]
                if b.answer:
                    row["answered 200"] += 1
                    c = e.get("correlationId")
                    st = e.get("status")
                    if st != ("accepted" if valid else "rejected") or \
                            (st == "rejected" and not e.get("error")):
                        verdicts.append("%s event %s: %s" % (b.family, c, e))
                    if st == "accepted":
                        counts[0] = raw.get(c, 0)
                    else:
                        counts = [invalid.get(c, 0), rej.get(c, 0), dl.get(c, 0)]
                    row["in Kafka"] += counts[0] > 0
                    row["in PostgreSQL"] += counts[1] > 0
                    row["in S3"] += counts[2] > 0
                    if 0 in counts:
                        row["lost"] += 1
                        lost_eg.append((b.family, key or c, counts))
                if any(n > 1 for n in counts):
                    row["duplicates"] += 1
                    dup_eg.append((b.family, key or e.get("correlationId"), counts))
        row["unacked in Kafka"] = unacked
        row["fault"] = name
        self.rows.append(row)
        say_row(row)
        codes, said = {}, {}
        for a in attempts:
            k = "%s %s" % (a.status, a.code()) if a.status is not None else a.error
            if a.status != 200:
                codes[k] = codes.get(k, 0) + 1
                said.setdefault(k, (a.json() or {}).get("message"))
        diag("%s: %d batches, %d attempts; not 200: %s" % (
            name, len(batches), len(attempts),
            ", ".join("%s x%d%s" % (k, n, ' ("%s")' % said[k] if said[k] else "")
                      for k, n in sorted(codes.items())) or "none"))
        hung = [a for a in attempts if a.error == "timeout"]
        check(not hung, "%s: no request hung (each answered or refused before the client's "
              "%ds timeout)" % (name, CLIENT_TIMEOUT), "%d timed out" % len(hung))
        check(row["answered 200"] == row["sent"], "%s: every batch answered 200 in the end" % name,
              "%d of %d events" % (row["answered 200"], row["sent"]))
        bad = [a for a in attempts if a.status is not None and a.status != 200 and not a.told_why()]
        check(not bad and not unanswered_why,
              "%s: every answer other than 200 says why (JSON error and message, Retry-After on 503)"
              % name, bad[0].body[:200] if bad else "a batch given up without an answer")
        check(not verdicts, "%s: every 200 answer gives each event its verdict" % name,
              verdicts[:3])
        check(not missing_objs, "%s: every listed S3 object can be read" % name, missing_objs[:3])
        check(enricher_dl == 0, "%s: the enrichers dead-lettered nothing" % name,
              "%d records with a source-topic header" % enricher_dl)
        for col in ("in Kafka", "in PostgreSQL", "in S3"):
            check(row[col] == row["answered 200"], "%s: every event answered 200 is %s" %
                  (name, col), "%d of %d" % (row[col], row["answered 200"]))
        check(row["duplicates"] == 0, "%s: no duplicates by dedup key" % name,
              "%d, e.g. (family, key, [kafka, pg, s3]) %s" % (row["duplicates"], dup_eg[:3]))
        check(row["lost"] == 0, "%s: nothing lost" % name,
              "%d, e.g. (family, key, [kafka, pg, s3]) %s" % (row["lost"], lost_eg[:3]))
        self.unique_users(name, keys.get("clickstream") or [])

    def unique_users(self, name, ids):
        """Clickstream's unique users stay exact: every (day, customer) of the
        stored events is in the set, and each day's count is the set's size."""
        if "clickstream" not in self.families or not ids:
            return
        t = self.families["clickstream"]["table"]
        rows = sql("""
CREATE TEMP TABLE mine AS SELECT DISTINCT (event_timestamp AT TIME ZONE 'UTC')::date AS day, customer_id
  FROM %s WHERE id = ANY(%s) AND customer_id IS NOT NULL;
SELECT 'missing', day, customer_id FROM mine
 EXCEPT SELECT 'missing', day, customer_id FROM clickstream_unique_users;
SELECT 'count', day, count(*) FROM clickstream_unique_users WHERE day IN (SELECT day FROM mine) GROUP BY day
 EXCEPT SELECT 'count', day, unique_users FROM clickstream_unique_users_per_day;
""" % (t, sql_list(ids, "bigint")))
        check(not rows, "%s: clickstream unique users exact for the days of these events" % name,
              rows[:3])

    # -------------------------------------------------------- the faults

    def kill_collect(self, ph):
        c1 = self.daemons["collect"]
        # with requests in flight, so that some die between Kafka's
        # acknowledgement and their answer
        busy = wait_for(30, lambda: ph.inflight > 0, step=0.001)
        c1.kill9()
        diag("killed %s -9 %s" % (c1.name, "with requests in flight" if busy else
                                  "(no request was in flight)"))
        # started again at once, as a supervisor would: what matters is
        # what the crash left behind, not how long the port stays closed
        time.sleep(1.0)
        yield {"held": SIZES["hold"]}
        c1.start()

    def kill_enrich(self, ph):
        e1 = self.daemons["enrich"]
        e1.kill9()
        diag("killed %s -9" % e1.name)
        yield {"ready": [self.daemons["collect"]]}
        e1.start()

    def outage(self, svc, down):
        def fault(ph):
            c1, e1 = self.daemons["collect"], self.daemons["enrich"]
            service("stop", svc)
            diag("stopped %s" % svc)
            exp = {"down": [(c1 if d == "collect" else e1, dep) for d, dep in down["names"]],
                   "ready": [c1] if down.get("collect_ready") else [],
                   "codes": down.get("codes")}
            yield exp
            service("start", svc)
            diag("started %s" % svc)
        return fault

    def queue_full(self, ph):
        c2 = Daemon(self, "collect-tiny-queue", "collect",
                    conf=self.conf("tiny-queue", {"queue.buffering.max.messages": 12,
                                                  "linger.ms": 200}))
        c2.start()
        ph.route = lambda b, n: c2.url
        ph.pause = (0.0, 0.05)  # batches close together, so that they meet in the queue
        yield {"codes": {"kafka_queue_full"}}
        c1 = self.daemons["collect"]
        ph.route = lambda b, n: c1.url
        ph.pause = None
        # its last batches are answered before it exits
        time.sleep(2 * SIZES["pause"][1])
        check(c2.term() == 0, "%s: SIGTERM: exit 0" % c2.name)

    def late_503(self, ph):
        """A collector that answers 503 (request timeout) to batches its
        producer still writes (linger.ms beyond request_timeout_ms); the
        clients send the same events again, to the healthy collector (as
        behind a load balancer).  The resends must not land twice."""
        c3 = Daemon(self, "collect-late", "collect",
                    env={"COLLECTORD_SERVER_REQUEST_TIMEOUT_MS": "100"},
                    conf=self.conf("late", {"linger.ms": 1000}))
        c3.start()
        c1 = self.daemons["collect"]
        ph.route = lambda b, n: c3.url if n == 0 else c1.url
        yield {"codes": {"timeout"}}
        ph.route = lambda b, n: c1.url
        time.sleep(2 * SIZES["pause"][1] + 2.0)
        check(c3.term() == 0, "%s: SIGTERM: exit 0" % c3.name)

    def rebalance(self, ph):
        step = SIZES["hold"] / 3
        e2 = Daemon(self, "enrich-2", "enrich")
        e3 = Daemon(self, "enrich-3", "enrich")
        e2.start()
        time.sleep(step)
        e3.start()
        time.sleep(step)
        e3.kill9()
        diag("killed %s -9" % e3.name)
        time.sleep(step)
        yield {"held": SIZES["hold"]}
        e3.start()
        time.sleep(step)
        for d in (e2, e3):
            check(d.term() == 0, "%s: SIGTERM: exit 0" % d.name)

    def faults(self):
        return [
            ("kill-collect", "kill -9 collect", self.kill_collect),
            ("kill-enrich", "kill -9 enrich", self.kill_enrich),
            ("kafka", "restart Kafka", self.outage("kafka", {
                "names": [("collect", "kafka"), ("enrich", "kafka")],
                "codes": {"kafka_unavailable", "timeout"}})),
            ("registry", "restart the registry", self.outage("registry", {
                "names": [("collect", "registry"), ("enrich", "registry")]})),
            ("s3", "stop S3", self.outage("minio", {
                "names": [("collect", "s3"), ("enrich", "s3")], "codes": {"s3_unavailable"}})),
            ("pg", "stop PostgreSQL", self.outage("pg", {
                "names": [("enrich", "postgres")], "collect_ready": True})),
            ("queue", "producer queue full", self.queue_full),
            ("rebalance", "rebalance: enrichers 2 and 3 join, one killed -9", self.rebalance),
            ("late-503", "503 written late, client resends", self.late_503),
        ]

    def main(self):
        faults = self.faults()
        known = [k for k, _, _ in faults]
        if MODE == "full":
            chosen = known
        elif MODE == "quick":
            # One of each kind: a process killed, a sink and a dependency
            # stopped, and a client's resend of events Kafka wrote late
            # (the dedup ledger's case).
            chosen = ["kill-enrich", "pg", "s3", "registry", "late-503"]
        else:
            chosen = [k.strip() for k in MODE.split(":")[-1].split(",") if k.strip()]
            unknown = [k for k in chosen if k not in known]
            if unknown:
                raise Bail("COLLECTORD_FAULTS: no fault %s (full, quick or some of %s)" %
                           (unknown, ",".join(known)))
        diag("mode %s: %s; %d clients, outages of %.0fs; topics %s-*" % (
            MODE, ", ".join(chosen), SIZES["clients"], SIZES["hold"], RUN))
        self.make_topics()
        self.pools = {f: Pool(f) for f in self.families}
        Daemon(self, "collect", "collect").start()
        Daemon(self, "enrich", "enrich").start()
        if not all(d.ready() for d in self.daemons.values()):
            raise Bail("the daemons did not become ready")
        t0 = time.monotonic()
        for key, title, fn in faults:
            if key in chosen:
                self.phase(key, title, fn)
        elapsed = time.monotonic() - t0
        for d in list(self.daemons.values()):
            check(d.term() == 0, "%s: SIGTERM: exit 0" % d.name)
        self.write_table(elapsed)

    def write_table(self, elapsed):
        now = datetime.datetime.now(datetime.timezone.utc)
        header = ["# Fault suite, %s" % now.strftime("%Y-%m-%d %H:%M UTC"), "",
                  "`COLLECTORD_FAULTS=%s`, tree %s, %d client threads, outages of %.0f s, "
                  "%.0f s of faults; definitions in README.md (\"Fault suite\")."
                  % (MODE, git_describe(), SIZES["clients"], SIZES["hold"], elapsed)]
        text = table_text(self.rows, header)
        path = os.path.join(BUILD, "faults-%s.md" % now.strftime("%Y%m%dT%H%M%SZ"))
        with open(path, "w") as f:
            f.write(text)
        diag("accounting table: %s" % path)
        diag(text)


def say_row(row):
    diag("| " + " | ".join(str(row[c]) for c in COLUMNS) + " |")


def table_text(rows, header):
    lines = header + ["", "| " + " | ".join(COLUMNS) + " |",
                      "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(r[c]) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def git_describe():
    try:
        return subprocess.run(["git", "-C", SRC, "describe", "--always", "--dirty"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"




def main():
    if sys.argv[1:] == ["--restore"]:
        return 0 if restore_services() else 1
    if not TDIR:
        print("faultsuite.py: run it from t/it_faultsuite.sh", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    suite = None
    try:
        suite = Suite()
        suite.main()
        check(True, "the suite ran to its end")
    except Bail as e:
        check(False, "the suite ran to its end", e)
    except Exception:  # a defect of the suite: say where, still clean up
        check(False, "the suite ran to its end", traceback.format_exc())
    finally:
        if suite:
            for d in list(suite.daemons.values()):
                if d.alive():
                    d.proc.kill()
                    d.proc.wait()
                d.gone()
        restore_services()
    return 1 if FAILED[0] else 0


if __name__ == "__main__":
    sys.exit(main())
