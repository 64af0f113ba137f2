#!/usr/bin/env python3
"""t/abuse.py: every attack on collectord's HTTP edge, against real daemons.

Run by t/it_abuse.sh, which checks the services, creates the topics and
numbers the TAP lines this prints ("ok - NAME", "not ok - NAME", "# ...").
Each attack states the answer the daemon must give; after each one the
daemon must still be alive, its RSS and its open descriptors must be within
bounds, and a normal client (the contract's example batch with an API key)
must be answered 200 -- also while the long attacks run.  One line per
attack, "# attack=NAME answer=... rss_kb=N fds=N peak_kb=N", records what
happened.  A daemon that dies is reported and started again, so that every
attack gets its answer.

Every socket operation has a timeout and every loop a count: a daemon that
never answers makes a test fail, never hang.  The bounds are functional
(RSS, descriptors, log lines, "closed within 3 x read_timeout_ms"), never a
speed.  COLLECTORD_ABUSE=full runs the big versions.
"""
import gzip
import json
import os
import random
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time

FULL = os.environ.get("COLLECTORD_ABUSE", "") == "full"
SRC = os.environ["top_srcdir"]
BUILD = os.environ["top_builddir"]
TDIR = os.environ["ABUSE_DIR"]
TOPICS = os.environ["ABUSE_TOPICS"]
KAFKATOOL = os.environ.get("KAFKATOOL", os.path.join(BUILD, "t", "kafkatool"))
DAEMON = os.path.join(BUILD, "collectord")

def sanitized(binary):
    """Whether BINARY is built with AddressSanitizer: its RSS then holds the
    quarantine of freed memory and the shadow map, so the RSS bounds below
    say nothing about collectord; they are checked on the plain build."""
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "libasan" in out


ASAN = sanitized(DAEMON)
S3SCRIPT = os.path.join(SRC, "scripts", "s3")
BUCKET = os.environ.get("COLLECTORD_S3_BUCKET", "events")
S3_PORT = int(re.sub(r"^.*:(\d+)/*$", r"\1",
                     os.environ.get("COLLECTORD_S3_ENDPOINT", "http://127.0.0.1:9000")))
KEY = "k1"
EXAMPLE = open(os.path.join(SRC, "t", "data", "collect-request.json"), "rb").read()
EXAMPLE_EVENTS = json.loads(EXAMPLE)

# The daemon's limits, small so that the attacks are quick.
MAX_BODY = 1048576
MAX_DECOMPRESSED = 8388608
MAX_EVENTS = 1000
MAX_CLIENTS = 64
READ_TIMEOUT_MS = 2000
IDLE_TIMEOUT_MS = 5000
MAX_BODY_MEMORY = 16777216
MAX_JSON_NODES = 200000
MAX_DEAD_LETTER = 1048576
S3_MAX_CONN = 8
LIMITS = {
    "COLLECTORD_SERVER_ROLES": "collect",
    "COLLECTORD_SERVER_API_KEYS": KEY,
    "COLLECTORD_SERVER_MAX_BODY_BYTES": str(MAX_BODY),
    "COLLECTORD_SERVER_MAX_DECOMPRESSED_BYTES": str(MAX_DECOMPRESSED),
    "COLLECTORD_SERVER_MAX_EVENTS": str(MAX_EVENTS),
    "COLLECTORD_SERVER_MAX_CLIENTS": str(MAX_CLIENTS),
    "COLLECTORD_SERVER_READ_TIMEOUT_MS": str(READ_TIMEOUT_MS),
    "COLLECTORD_SERVER_IDLE_TIMEOUT_MS": str(IDLE_TIMEOUT_MS),
    "COLLECTORD_SERVER_MAX_BODY_MEMORY": str(MAX_BODY_MEMORY),
    "COLLECTORD_SERVER_MAX_JSON_NODES": str(MAX_JSON_NODES),
    "COLLECTORD_SERVER_MAX_DEAD_LETTER_BYTES": str(MAX_DEAD_LETTER),
    "COLLECTORD_S3_MAX_CONNECTIONS": str(S3_MAX_CONN),
    "COLLECTORD_PG_SQL_DIR": os.path.join(SRC, "sql"),
}
# Descriptors beyond the baseline a healthy daemon may hold after an
# attack: its kept-alive S3 connections and a few for Kafka and libcurl.
FD_SLACK = S3_MAX_CONN + 4
MB = 1024  # in kB
RSS_AFTER_KB = 64 * MB  # RSS after any attack: at most baseline + this
PEAK_DEFAULT_KB = 48 * MB  # peak RSS during an attack: baseline + this
SIZES = {
    "disconnects": 200 if FULL else 20,
    "unauth_conns": 200 if FULL else 50,
    "body_conns": 50,
    "bomb_clients": 4 if FULL else 2,
    "slowloris": 50 if FULL else 3,
    "idle_conns": 1000 if FULL else 200,
    "amplification": 10 if FULL else 3,
    "cardinality_requests": 12,
    "cardinality_events": 1000,
}


# ---------------------------------------------------------------- TAP

def say(line):
    print(line, flush=True)


def diag(text):
    for part in str(text).splitlines() or [""]:
        say("# " + part)


FAILED = [0]


def check(cond, name, got=None, want=None):
    name = name.replace("\n", " ")
    if cond:
        say("ok - " + name)
    else:
        FAILED[0] += 1
        say("not ok - " + name)
        if got is not None:
            diag("  got:  %s" % (got,))
        if want is not None:
            diag("  want: %s" % (want,))
    return bool(cond)


def skip(name, why):
    say("ok - %s # SKIP %s" % (name, why))


def quoted(text):
    text = str(text).replace("\n", " ").replace('"', "'")
    return '"%s"' % text if re.search(r"\s", text) else text


# ---------------------------------------------------------------- HTTP

class Answer:
    """One HTTP answer, or why there was none (error)."""

    def __init__(self, status=None, headers=None, body=b"", error=None):
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.error = error

    def json(self):
        try:
            v = json.loads(self.body)
            return v if isinstance(v, dict) else {}
        except ValueError:
            return {}

    def code(self):
        return self.json().get("error")

    def __str__(self):
        if self.status is None:
            return self.error or "no answer"
        c = self.code()
        return "%d %s" % (self.status, c) if c else str(self.status)


def connect(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_some(sock, deadline):
    """Bytes, b"" at end of stream, None past DEADLINE."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    sock.settimeout(left)
    try:
        return sock.recv(65536)
    except socket.timeout:
        return None


def read_answer(sock, deadline, head_only=False):
    """The answer on SOCK (status line, headers, body) before DEADLINE."""
    buf = b""
    try:
        for _ in range(10000):
            if b"\r\n\r\n" in buf:
                break
            chunk = recv_some(sock, deadline)
            if chunk is None:
                return Answer(error="no answer" if not buf else "partial answer")
            if chunk == b"":
                return Answer(error="closed without an answer" if not buf else "truncated answer")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
        if not m:
            return Answer(error="not HTTP: %r" % lines[0][:60])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        status = int(m.group(1))
        if head_only:
            return Answer(status, headers, b"")
        if "content-length" in headers:
            want = int(headers["content-length"])
            for _ in range(100000):
                if len(rest) >= want:
                    break
                chunk = recv_some(sock, deadline)
                if not chunk:
                    break
                rest += chunk
            return Answer(status, headers, rest[:want])
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            for _ in range(100000):
                for _ in range(10000):
                    if b"\r\n" in rest:
                        break
                    chunk = recv_some(sock, deadline)
                    if not chunk:
                        return Answer(status, headers, body)
                    rest += chunk
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0] or b"0", 16)
                if size == 0:
                    return Answer(status, headers, body)
                for _ in range(100000):
                    if len(rest) >= size + 2:
                        break
                    chunk = recv_some(sock, deadline)
                    if not chunk:
                        return Answer(status, headers, body + rest)
                    rest += chunk
                body += rest[:size]
                rest = rest[size + 2:]
            return Answer(status, headers, body)
        for _ in range(100000):
            chunk = recv_some(sock, deadline)
            if not chunk:
                break
            rest += chunk
        return Answer(status, headers, rest)
    except ConnectionResetError:
        return Answer(error="connection reset")
    except OSError as e:
        return Answer(error="socket error: %s" % e.strerror)


def build_request(method, path, body=b"", headers=(), key=True, length=True):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1", "Connection: close"]
    if key:
        lines.append("X-API-Key: " + KEY)
    lines.extend(headers)
    if length and (body or method == "POST"):
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def exchange(port, data, timeout=30.0):
    """Send raw DATA on a new connection and read the answer."""
    deadline = time.monotonic() + timeout
    try:
        s = connect(port, min(timeout, 10.0))
    except OSError as e:
        return Answer(error="cannot connect: %s" % (e.strerror or e))
    try:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer before it read everything
        except socket.timeout:
            return Answer(error="send timed out")
        return read_answer(s, deadline)
    except OSError as e:
        return Answer(error="socket error: %s" % (e.strerror or e))
    finally:
        s.close()


def request(port, method, path, body=b"", headers=(), key=True, timeout=30.0):
    return exchange(port, build_request(method, path, body, headers, key), timeout)


def post_collect(port, body, gz=False, headers=(), timeout=60.0):
    h = list(headers)
    if gz:
        h.append("Content-Encoding: gzip")
        body = gzip.compress(body, 6)
    h.append("Content-Type: application/json")
    return request(port, "POST", "/collect", body, h, timeout=timeout)


def metrics(port):
    """{(name, labels): value} from /metrics, and the text."""
    a = request(port, "GET", "/metrics", key=False, timeout=20)
    out = {}
    text = a.body.decode("utf-8", "replace") if a.status == 200 else ""
    for ln in text.splitlines():
        if not ln or ln.startswith("#"):
            continue
        m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)$", ln)
        if m:
            try:
                out[(m.group(1), m.group(2) or "")] = float(m.group(3))
            except ValueError:
                pass
    return out, text


def metric(port, name, labels=""):
    return metrics(port)[0].get((name, labels), 0.0)


def send_watching(sock, data, deadline, piece=65536):
    """Send DATA in pieces; stop early once the server answers or closes.
    Returns the bytes sent."""
    sent = 0
    p = select.poll()
    p.register(sock, select.POLLIN | select.POLLOUT)
    for _ in range(1 + len(data) // 1024 + 10000):
        if sent >= len(data) or time.monotonic() >= deadline:
            break
        ev = p.poll(500)
        if any(e & (select.POLLIN | select.POLLHUP | select.POLLERR) for _, e in ev):
            break
        if any(e & select.POLLOUT for _, e in ev):
            try:
                sock.setblocking(False)
                n = sock.send(data[sent:sent + piece])
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                break
            finally:
                sock.setblocking(True)
            sent += n
    return sent


# ---------------------------------------------------------------- processes

def proc_status(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for ln in f:
                if ln.startswith(field + ":"):
                    return int(ln.split()[1])
    except OSError:
        pass
    return 0


def proc_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


def proc_cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def tcp_conns_to(pid, port):
    """The process's TCP sockets connected to PORT on this host."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return 0
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for ln in f:
                    col = ln.split()
                    if len(col) < 10:
                        continue
                    rport = int(col[2].rsplit(":", 1)[1], 16)
                    # 0A: LISTEN; the rest are connections in some state.
                    if rport == port and col[3] != "0A" and col[9] in inodes:
                        n += 1
        except OSError:
            pass
    return n


class Sampler(threading.Thread):
    """Calls FN every PERIOD seconds until stopped; keeps the largest value."""

    def __init__(self, fn, period=0.05):
        super().__init__(daemon=True)
        self.fn, self.period, self.max = fn, period, 0
        self.done = threading.Event()

    def run(self):
        for _ in range(100000):
            self.max = max(self.max, self.fn())
            if self.done.wait(self.period):
                break

    def stop(self):
        self.done.set()
        self.join(10)
        self.max = max(self.max, self.fn())
        return self.max


class Daemon:
    """One collectord of the suite, restarted when an attack killed it."""

    def __init__(self, name, env, limit_nofile=None):
        self.name = name
        self.env = dict(env)
        self.limit_nofile = limit_nofile
        self.log = os.path.join(TDIR, name + ".log")
        self.proc = None
        self.port = 0
        self.base_rss = self.base_fds = 0

    def start(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        env = dict(os.environ)
        env.update(LIMITS)
        env.update(self.env)
        env["COLLECTORD_SERVER_PORT"] = str(self.port)
        env["COLLECTORD_SERVER_FAMILIES"] = "holded"
        env.pop("COLLECTORD_ABUSE", None)
        lim = self.limit_nofile

        def pre():
            if lim is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (lim, lim))

        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([DAEMON], env=env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=pre)
        with open(os.path.join(TDIR, self.name + ".pid"), "w") as f:
            f.write("%d\n" % self.proc.pid)
        for _ in range(240):
            if not self.alive():
                return False
            if request(self.port, "GET", "/readyz", key=False, timeout=5).status == 200:
                break
            time.sleep(0.25)
        else:
            return False
        # Warm up: the first batches grow the producer's buffers.
        for _ in range(3):
            post_collect(self.port, EXAMPLE, timeout=30)
        self.base_rss = self.rss()
        self.base_fds = self.fds()
        diag("%s: pid %d port %d baseline rss_kb=%d fds=%d" %
             (self.name, self.pid, self.port, self.base_rss, self.base_fds))
        return True

    @property
    def pid(self):
        return self.proc.pid if self.proc else 0

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def death(self):
        rc = self.proc.poll() if self.proc else None
        if rc is None:
            return None
        return "daemon died (%s)" % ("signal %d" % -rc if rc < 0 else "exit %d" % rc)

    def rss(self):
        return proc_status(self.pid, "VmRSS")

    def fds(self):
        return proc_fds(self.pid)

    def reset_peak(self):
        """Reset VmHWM (Linux clear_refs 5); False where not allowed."""
        try:
            with open("/proc/%d/clear_refs" % self.pid, "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def log_size(self):
        try:
            return os.path.getsize(self.log)
        except OSError:
            return 0

    def log_since(self, offset):
        try:
            with open(self.log, "rb") as f:
                f.seek(offset)
                return f.read()
        except OSError:
            return b""

    def log_tail(self, n=15):
        try:
            with open(self.log, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        try:
            os.unlink(os.path.join(TDIR, self.name + ".pid"))
        except OSError:
            pass
        self.proc = None


class NormalClient(threading.Thread):
    """A well-behaved client posting the example batch, one at a time."""

    def __init__(self, daemon):
        super().__init__(daemon=True)
        self.d = daemon
        self.answers = []
        self.done = threading.Event()

    def run(self):
        for _ in range(1000):
            self.answers.append(str(post_collect(self.d.port, EXAMPLE, timeout=30)))
            if self.done.wait(0.3):
                break

    def stop(self):
        self.done.set()
        self.join(60)
        return self.answers


def normal_request(d):
    return post_collect(d.port, EXAMPLE, timeout=30)


# ---------------------------------------------------------------- S3 stand-in

class BlackHoleS3(threading.Thread):
    """A listening socket on loopback standing for S3.  In mode "hold" it
    accepts every PUT, reads it and never answers; a request without an
    object key (the daemon's bucket check) is answered 200 so that S3
    looks up.  Mode "ok" answers 200 (the held PUTs too), mode "fail"
    answers 500 with an S3 error document."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.mode = "ok"
        self.cond = threading.Condition()
        self.held = 0
        self.puts = 0
        self.stopping = False

    def set_mode(self, mode):
        with self.cond:
            self.mode = mode
            self.cond.notify_all()

    def run(self):
        for _ in range(1000000):
            if self.stopping:
                break
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            c.settimeout(30)
            deadline = time.monotonic() + 30
            buf = b""
            for _ in range(1000):
                if b"\r\n\r\n" in buf or len(buf) > 65536:
                    break
                chunk = recv_some(c, deadline)
                if not chunk:
                    return
                buf += chunk
            head, _, body = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = (lines[0].split(" ") + ["", ""])[:2]
            hdr = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                hdr[k.strip().lower()] = v.strip()
            if hdr.get("expect", "").lower() == "100-continue":
                c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            want = int(hdr.get("content-length", "0") or 0)
            for _ in range(100000):
                if len(body) >= want:
                    break
                chunk = recv_some(c, deadline)
                if not chunk:
                    return
                body += chunk
            has_key = path.split("?")[0].strip("/").count("/") >= 1
            with self.cond:
                if method == "PUT":
                    self.puts += 1
                mode = self.mode
                if mode == "hold" and method == "PUT" and has_key:
                    self.held += 1
                    for _ in range(1200):
                        if self.mode != "hold" or self.stopping:
                            break
                        self.cond.wait(0.5)
                    self.held -= 1
                    mode = self.mode
            if mode == "fail":
                doc = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError"
                       "</Code><Message>We encountered an internal error, please try again."
                       "</Message><Resource>%s</Resource></Error>" % path).encode()
                if method == "HEAD":
                    doc = b""
                c.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml"
                          b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(doc) + doc)
            else:
                c.sendall(b"HTTP/1.1 200 OK\r\nETag: \"0\"\r\nConnection: close\r\n"
                          b"Content-Length: 0\r\n\r\n")
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        self.sock.close()


# ---------------------------------------------------------------- helpers

def kafka_records(topic):
    try:
        r = subprocess.run([KAFKATOOL, "consume", topic], capture_output=True, timeout=90)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None
    out = []
    for ln in r.stdout.decode("utf-8", "replace").splitlines():
        try:
            out.append(json.loads(ln))
        except ValueError:
            pass
    return out


def s3_ls(prefix):
    try:
        r = subprocess.run([S3SCRIPT, "ls", BUCKET, prefix], capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None
    return [k for k in r.stdout.decode().splitlines() if k]


def s3_get(key):
    try:
        r = subprocess.run([S3SCRIPT, "get", "%s/%s" % (BUCKET, key)], capture_output=True,
                           timeout=120)
    except subprocess.TimeoutExpired:
        return None
    return r.stdout if r.returncode == 0 else None


def batch_day(batch_id):
    """UTC date of a UUIDv7 batch id (its first 48 bits are Unix ms)."""
    ms = int(batch_id.replace("-", "")[:12], 16)
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))


def dead_letters_of(batch_id):
    """The S3 dead-letter keys of a batch: its own object, or (before the
    one-object layout) one per correlationId, which share its 28 chars."""
    return s3_ls("dead-letter/date=%s/%s" % (batch_day(batch_id), batch_id[:28]))


def names_index(message, index):
    return re.search(r"(event|index|\[)\D{0,16}\b%d\b" % index, message or "", re.I) is not None


def summarize(answers):
    """'401 unauthorized x50' from a list of answer strings."""
    counts = {}
    for a in answers:
        counts[a] = counts.get(a, 0) + 1
    return ", ".join("%s x%d" % (a, n) if n > 1 else a
                     for a, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def run_threads(fn, args_list, join_timeout=120):
    out = [None] * len(args_list)

    def wrap(i, a):
        try:
            out[i] = fn(*a)
        except Exception as e:  # reported as that client's answer
            out[i] = "client error: %s" % e

    ts = [threading.Thread(target=wrap, args=(i, a), daemon=True)
          for i, a in enumerate(args_list)]
    for t in ts:
        t.start()
    end = time.monotonic() + join_timeout
    for t in ts:
        t.join(max(0.1, end - time.monotonic()))
    return out


def wait_until(fn, seconds, period=0.25):
    end = time.monotonic() + seconds
    for _ in range(int(seconds / period) + 2):
        v = fn()
        if v or time.monotonic() >= end:
            return v
        time.sleep(period)
    return fn()


# ---------------------------------------------------------------- framework

class Suite:
    def __init__(self):
        self.daemons = {}

    def ensure(self, d):
        if d.alive():
            return True
        if d.proc is not None:
            d.stop()
        if not d.start():
            check(False, "%s: collectord starts" % d.name, d.death() or "not ready", "ready")
            diag(d.log_tail())
            return False
        return True

    def attack(self, name, d, fn, during=False, peak_kb=PEAK_DEFAULT_KB, after_client=True,
               fd_bound=None):
        """Run attack FN(d) -> [(subname, answer)]; then the health checks."""
        if not self.ensure(d):
            diag("attack=%s answer=%s rss_kb=0 fds=0" % (name, quoted("daemon would not start")))
            return
        t0 = time.monotonic()
        log0 = d.log_size()
        exact_peak = d.reset_peak()
        sampler = Sampler(d.rss)
        sampler.start()
        normal = NormalClient(d) if during else None
        if normal:
            normal.start()
        try:
            answers = fn(d)
        except Exception as e:
            check(False, "%s: the attack ran" % name, "%s: %s" % (type(e).__name__, e))
            answers = [(name, "suite error: %s" % e)]
        during_answers = normal.stop() if normal else []
        peak = max(sampler.stop(), proc_status(d.pid, "VmHWM") if exact_peak else 0)
        bound = fd_bound if fd_bound is not None else d.base_fds + FD_SLACK
        # A crashing daemon closes its sockets a moment before it is a
        # zombie: look again once its descriptors have settled.
        time.sleep(0.2)
        died = d.death()
        if not died:
            wait_until(lambda: d.fds() <= bound or not d.alive(), 10)
            fds, rss = d.fds(), d.rss()
            died = d.death()
        diag("%s: took %.1f s" % (name, time.monotonic() - t0))
        if b"dependency=kafka" in d.log_since(log0):
            diag("note: Kafka went down during this attack (restarted from outside?): "
                 "its 503 kafka_unavailable answers say nothing about the attack")
        if died:
            check(False, "%s: collectord still alive" % name, died, "alive")
            diag(d.log_tail())
            for sub, ans in answers:
                diag("attack=%s answer=%s rss_kb=0 fds=0" % (sub, quoted("%s; %s" % (ans, died))))
            for what in ("RSS", "descriptors", "normal client"):
                skip("%s: %s after the attack" % (name, what), died)
            d.stop()
            self.ensure(d)
            return
        check(True, "%s: collectord still alive" % name)
        if normal:
            check(during_answers and all(a.startswith("200") for a in during_answers),
                  "%s: a normal client is answered 200 during the attack (%d requests)" %
                  (name, len(during_answers)), summarize(during_answers) or "none", "200")
        if ASAN:
            diag("%s: RSS peak %d kB, after %d kB (baseline %d): not bounded under "
                 "AddressSanitizer, whose quarantine keeps freed memory" %
                 (name, peak, rss, d.base_rss))
        else:
            check(peak <= d.base_rss + peak_kb and rss <= d.base_rss + RSS_AFTER_KB,
                  "%s: RSS peak %d kB <= baseline %d + %d kB, after %d kB <= baseline + %d kB" %
                  (name, peak, d.base_rss, peak_kb, rss, RSS_AFTER_KB))
        check(fds <= bound, "%s: %d open descriptors after the attack <= %d (baseline %d + %d)"
              % (name, fds, bound, d.base_fds, bound - d.base_fds))
        if after_client:
            a = normal_request(d)
            check(a.status == 200, "%s: a normal client is answered 200 after the attack" % name,
                  a, "200")
        for sub, ans in answers:
            diag("attack=%s answer=%s rss_kb=%d fds=%d peak_kb=%d" %
                 (sub, quoted(ans), rss, fds, peak))


# ---------------------------------------------------------------- attacks

def event_with_id(n):
    ev = json.loads(json.dumps(EXAMPLE_EVENTS[0]))
    ev["data"]["id"] = "x" * n
    return ev


def a1_invalid(d):
    body = json.dumps([{"data": {"id": "x" * 1000000}}]).encode()
    a = post_collect(d.port, body, gz=True)
    msg = a.json().get("message", "")
    check(a.status == 413 and a.code() == "record_too_large",
          "1a: an invalid 1 MB event (1 KB gzip) is answered 413 record_too_large", a,
          "413 record_too_large")
    check(names_index(msg, 0), "1a: the message names the event index 0", msg, "event 0")
    return [("1a-invalid-1MB-event", a)]


def a1_valid(d):
    b = post_collect(d.port, json.dumps([event_with_id(1000000)]).encode(), gz=True)
    check(b.status == 413 and b.code() == "record_too_large",
          "1b: a valid event made 1 MB large is answered 413 record_too_large", b,
          "413 record_too_large")
    return [("1b-valid-1MB-event", b)]


def a2_partial_batch(d):
    before = metric(d.port, "collectord_produce_errors_total")
    batch = [EXAMPLE_EVENTS[0], EXAMPLE_EVENTS[1], event_with_id(1000000)]
    a = post_collect(d.port, json.dumps(batch).encode(), gz=True)
    check(a.status == 413, "2: [valid, valid, 1 MB valid] is answered 413", a, "413")
    bid = a.json().get("batchId", "")
    check(len(bid) == 36, "2: the 413 body carries the batchId", a.body[:200], "batchId")
    produced = "?"
    if len(bid) == 36:
        recs = kafka_records(TOPICS + ".raw")
        if check(recs is not None, "2: the raw topic can be read"):
            mine = [r for r in recs if str(r.get("key", "")).startswith(bid[:28])]
            produced = len(mine)
            check(not mine, "2: nothing of the refused batch is on the raw topic",
                  "%d records" % len(mine), "0")
    after = metric(d.port, "collectord_produce_errors_total")
    check(after == before, "2: collectord_produce_errors_total unchanged", after - before, 0)
    return [("2-partial-batch", "%s; raw records=%s; produce_errors +%g" %
             (a, produced, after - before))]


def a3_disconnect(d, s3):
    n = SIZES["disconnects"]
    base = d.base_fds
    gone0 = metric(d.port, "collectord_http_clients_gone_total")
    keys0 = {}
    for t in (".raw", ".dlq"):
        keys0[t] = {r.get("key") for r in kafka_records(TOPICS + "-bh" + t) or []}
    s3.set_mode("hold")
    req = build_request("POST", "/collect", EXAMPLE, ["Content-Type: application/json"])

    def client():
        try:
            s = connect(d.port)
        except OSError as e:
            return "cannot connect: %s" % e.strerror
        try:
            s.sendall(req)
            time.sleep(0.5)
            return "sent"
        except OSError as e:
            return "send failed: %s" % e.strerror
        finally:
            s.close()

    results = []
    wave = 20
    for i in range(0, n, wave):
        results += run_threads(client, [()] * min(wave, n - i), 30)
    check(all(r == "sent" for r in results), "3: %d clients sent a batch and left" % n,
          summarize(results), "sent")
    bound = base + S3_MAX_CONN + 4
    wait_until(lambda: d.fds() <= bound, 5)
    fds = d.fds()
    held = s3.held
    check(fds <= bound, "3: descriptors back to %d <= baseline %d + %d within 5 s "
          "(the connections were freed, not held until the S3 timeout)" %
          (fds, base, bound - base), fds, "<= %d" % bound)
    gone = wait_until(lambda: metric(d.port, "collectord_http_clients_gone_total") - gone0 >= n,
                      5)
    gone_n = metric(d.port, "collectord_http_clients_gone_total") - gone0
    check(gone, "3: collectord_http_clients_gone_total grew by >= %d" % n, gone_n, ">= %d" % n)
    # S3 now takes the dead letters: a batch whose client left must still
    # not be produced (the client will send it again).
    s3.set_mode("ok")
    wait_until(lambda: s3.held == 0 and metric(d.port, "collectord_inflight_batches") == 0, 15)
    time.sleep(1)
    counts = []
    for t in (".raw", ".dlq"):
        recs = kafka_records(TOPICS + "-bh" + t)
        if recs is not None:
            recs = [r for r in recs if r.get("key") not in keys0[t]]
        counts.append("?" if recs is None else str(len(recs)))
        check(recs == [], "3: nothing of the abandoned batches on the %s topic" % t,
              "unreadable" if recs is None else "%d new records" % len(recs), "0")
    return [("3-client-disconnect", "fds %d (baseline %d), S3 PUTs held %d, clients_gone +%g, "
             "raw/dlq records %s" % (fds, base, held, gone_n, "/".join(counts)))]


def hold_with_body(port, key, length, send_bytes, hold_s):
    """Headers announcing LENGTH bytes, SEND_BYTES of them, then hold the
    connection open and read the answer.  Returns the answer."""
    try:
        s = connect(port)
    except OSError as e:
        return Answer(error="cannot connect: %s" % e.strerror)
    try:
        head = build_request("POST", "/collect", b"", ["Content-Type: application/json",
                                                       "Content-Length: %d" % length],
                             key=key, length=False)
        s.settimeout(5)
        try:
            s.sendall(head)
        except OSError:
            pass
        deadline = time.monotonic() + hold_s + 10
        send_watching(s, b" " * send_bytes, deadline)
        return read_answer(s, time.monotonic() + hold_s)
    finally:
        s.close()


def a4_unauth(d):
    n = SIZES["unauth_conns"]
    out = run_threads(lambda: hold_with_body(d.port, False, 1000000, 100 * 1024, 5),
                      [()] * n, 90)
    ans = [str(a) for a in out]
    ok401 = sum(1 for a in out if isinstance(a, Answer) and a.status == 401)
    check(ok401 == n, "4a: %d unauthenticated 1 MB bodies held open: each answered 401 after "
          "its headers" % n, summarize(ans), "401 unauthorized x%d" % n)
    return [("4a-unauthenticated-bodies", summarize(ans))]


def a4_body_memory(d):
    n = SIZES["body_conns"]
    piece = 900 * 1024
    out = run_threads(lambda: hold_with_body(d.port, True, 1000000, piece, 6), [()] * n, 120)
    ans = [str(a) for a in out]
    busy = [a for a in out if isinstance(a, Answer) and a.status == 503]
    fit = MAX_BODY_MEMORY // piece + 2
    check(len(busy) >= n - fit, "4b: %d bodies of 900 KB held open: those past max_body_memory "
          "are answered 503 (at least %d)" % (n, n - fit), summarize(ans),
          ">= %d x 503" % (n - fit))
    check(busy and all("retry-after" in a.headers for a in busy),
          "4b: each 503 carries Retry-After", [a.headers for a in busy[:2]], "Retry-After")
    check(not any(isinstance(a, Answer) and a.status == 200 for a in out),
          "4b: no incomplete body is answered 200")
    return [("4b-body-memory", summarize(ans))]


def zeros(n):
    return b"[" + b",".join([b"0"] * n) + b"]"


GZ_HEADERS = ["Content-Encoding: gzip", "Content-Type: application/json"]


def a5_events(d):
    bomb = gzip.compress(zeros(4000000), 9)
    k = SIZES["bomb_clients"]
    out = run_threads(lambda: request(d.port, "POST", "/collect", bomb, GZ_HEADERS,
                                      timeout=90), [()] * k, 120)
    ans = [str(a) for a in out]
    check(all(isinstance(a, Answer) and a.status == 413 and a.code() == "too_many_events"
              for a in out),
          "5a: %d clients posting 4,000,000 events in %d bytes of gzip: 413 too_many_events"
          % (k, len(bomb)), summarize(ans), "413 too_many_events")
    return [("5a-gzip-bomb-events", summarize(ans))]


def a5_values(d):
    bomb = gzip.compress(b"[" + zeros(3000000) + b"]", 9)
    b = request(d.port, "POST", "/collect", bomb, GZ_HEADERS, timeout=90)
    check(b.status == 413 and b.code() == "too_many_values",
          "5b: one event holding 3,000,000 values: 413 too_many_values", b,
          "413 too_many_values")
    return [("5b-gzip-bomb-values", b)]


def trickle(port, prefix, drip, period, limit_s):
    """Send PREFIX at once, then DRIP one byte every PERIOD seconds; returns
    (closed, seconds from the first byte to the close, answer text)."""
    try:
        s = connect(port)
    except OSError as e:
        return (False, 0.0, "cannot connect: %s" % e.strerror)
    t0 = time.monotonic()
    got = b""
    try:
        if prefix:
            s.sendall(prefix)
        p = select.poll()
        p.register(s, select.POLLIN)
        i = 0
        next_send = time.monotonic()
        for _ in range(int(limit_s / 0.05) + 100):
            now = time.monotonic()
            if now - t0 > limit_s:
                return (False, now - t0, "still open" + (" after %r" % got[:40] if got else ""))
            if now >= next_send and i < len(drip):
                try:
                    s.send(drip[i:i + 1])
                except OSError:
                    return (True, time.monotonic() - t0, got[:12].decode("latin-1") or "closed")
                i += 1
                next_send = now + period
            if p.poll(50):
                try:
                    chunk = s.recv(4096)
                except OSError:
                    return (True, time.monotonic() - t0, got[:12].decode("latin-1") or "reset")
                if not chunk:
                    status = got[:12].decode("latin-1").strip()
                    return (True, time.monotonic() - t0, status or "closed")
                got += chunk
        return (False, time.monotonic() - t0, "still open")
    finally:
        s.close()


def a6_slowloris(d):
    k = SIZES["slowloris"]
    limit = 3 * READ_TIMEOUT_MS / 1000.0
    head = ("POST /collect HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: %s\r\n"
            "Content-Type: application/json\r\nX-Padding: %s\r\n\r\n" % (KEY, "a" * 400)).encode()
    body_head = ("POST /collect HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: %s\r\n"
                 "Content-Length: 10000\r\n\r\n" % KEY).encode()
    args = [(d.port, b"", head, 0.5, limit + 1.0)] * k + \
           [(d.port, body_head, b"[" + b" " * 9999, 1.0, limit + 1.0)] * k
    out = run_threads(trickle, args, 60)
    res = []
    for what, part in (("headers", out[:k]), ("body", out[k:])):
        fine = [r for r in part if isinstance(r, tuple) and r[0] and r[1] <= limit]
        text = summarize(["%s after %.1f s" % (r[2], r[1]) if isinstance(r, tuple) and r[0]
                          else (r[2] if isinstance(r, tuple) else str(r)) for r in part])
        check(len(fine) == k, "6: %d connections trickling their %s a byte at a time: each "
              "closed within 3 x read_timeout_ms (%.0f s) of its first byte" % (k, what, limit),
              text, "closed")
        res.append(("6-slowloris-" + what, text))
    return res


def open_idle(port, n, connect_s=5.0):
    """N connections that never send a byte; returns the connected sockets."""
    socks, pending = [], {}
    p = select.poll()
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
            socks.append(s)
            continue
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            continue
        pending[s.fileno()] = s
        p.register(s, select.POLLOUT)
    end = time.monotonic() + connect_s
    for _ in range(1000):
        if not pending or time.monotonic() >= end:
            break
        for fd, ev in p.poll(100):
            s = pending.pop(fd, None)
            if s is None:
                continue
            p.unregister(fd)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                socks.append(s)
            else:
                s.close()
    for s in pending.values():
        s.close()
    return socks


def a7_idle(d):
    n = SIZES["idle_conns"]
    bound = MAX_CLIENTS + d.base_fds + FD_SLACK
    log0 = d.log_size()
    fds = Sampler(d.fds, 0.1)
    fds.start()
    socks = open_idle(d.port, n)
    time.sleep(3)
    top = fds.stop()
    grown = d.log_size() - log0
    lines = 0
    with open(d.log, "rb") as f:
        f.seek(log0)
        lines = f.read().count(b"\n")
    for s in socks:
        s.close()
    check(top <= bound, "7a: %d idle connections (%d connected): descriptors stay <= "
          "max_clients + baseline + %d = %d" % (n, len(socks), FD_SLACK, bound), top,
          "<= %d" % bound)
    check(lines <= 6, "7a: the log grew by at most a few lines", "%d lines, %d bytes" %
          (lines, grown), "<= 6 lines")
    return [("7a-idle-connections", "%d connected, daemon fds up to %d, log +%d lines" %
             (len(socks), top, lines))]


def a7_nofile(d):
    n = 200
    log0 = d.log_size()
    cpu0 = proc_cpu_ticks(d.pid)
    socks = open_idle(d.port, n)
    time.sleep(3)
    cpu = proc_cpu_ticks(d.pid) - cpu0
    with open(d.log, "rb") as f:
        f.seek(log0)
        grown = f.read()
    lines = grown.count(b"\n")
    for s in socks:
        s.close()
    hz = os.sysconf("SC_CLK_TCK")
    diag("7b: daemon CPU over the 3 s hold at the descriptor limit: %.2f s" % (cpu / hz))
    check(lines <= 20, "7b: at the descriptor limit (ulimit -n 64) the log stays small "
          "(rate-limited)", "%d lines, %d bytes" % (lines, len(grown)), "<= 20 lines")
    return [("7b-descriptor-limit", "%d connected, log +%d lines, cpu %.2f s over 3 s" %
             (len(socks), lines, cpu / hz))]


def amplification_body():
    return gzip.compress(json.dumps([{}] * 1000).encode(), 9)


def a8_amplification(d):
    hdr = GZ_HEADERS
    body = amplification_body()
    a = request(d.port, "POST", "/collect", body, hdr, timeout=90)
    j = a.json()
    check(a.status == 200 and j.get("rejected") == 1000,
          "8a: 1000 {} events in %d bytes: 200 with 1000 rejected" % len(body), a,
          "200, rejected 1000")
    bid = j.get("batchId", "")
    objs = dead_letters_of(bid) if len(bid) == 36 else None
    if objs == []:
        time.sleep(1)
        objs = dead_letters_of(bid)
    want = "dead-letter/date=%s/%s.jsonl" % (batch_day(bid), bid) if bid else "?"
    check(objs == [want], "8a: exactly one S3 dead-letter object for the request, %s" % want,
          "%s objects" % ("?" if objs is None else len(objs)) +
          (": %s ..." % objs[:2] if objs else ""), want)
    lines = "?"
    if objs == [want]:
        doc = s3_get(want) or b""
        lines = doc.count(b"\n")
        check(lines == 1000, "8a: the object has one line per invalid event", lines, 1000)
    ans = [("8a-dead-letter-amplification", "%s; %s S3 objects; %s lines" %
            (a, "?" if objs is None else len(objs), lines))]
    # Many at once: the S3 connections stay within [s3] max_connections.
    k = SIZES["amplification"]
    conns = Sampler(lambda: tcp_conns_to(d.pid, S3_PORT), 0.02)
    conns.start()
    out = run_threads(lambda: request(d.port, "POST", "/collect", body, hdr, timeout=90),
                      [()] * k, 120)
    top = conns.stop()
    check(all(isinstance(x, Answer) and x.status == 200 for x in out),
          "8b: %d such requests in parallel are answered 200" % k,
          summarize([str(x) for x in out]), "200")
    check(top <= S3_MAX_CONN, "8b: the daemon's TCP connections to S3 stay <= %d" % S3_MAX_CONN,
          top, "<= %d" % S3_MAX_CONN)
    ans.append(("8b-parallel-amplification", "%s; S3 connections up to %d" %
                (summarize([str(x) for x in out]), top)))
    return ans


def escape_event(nesc, i):
    # Invalid (no attributes); its string is NESC \u0001 escapes, valid JSON.
    return '{"data":{"id":"esc-%d","s":"%s"}}' % (i, "\\u0001" * nesc)


DEAD_LETTER_LIMIT = MAX_DEAD_LETTER + 4096


def a8_escapes_many(d):
    hdr = GZ_HEADERS
    limit = DEAD_LETTER_LIMIT
    # Nine events of 840 KB each: each fits a Kafka record, together they
    # are far past max_dead_letter_bytes.
    many = ("[" + ",".join(escape_event(140000, i) for i in range(9)) + "]").encode()
    a = request(d.port, "POST", "/collect", gzip.compress(many, 9), hdr, timeout=90)
    j = a.json()
    check(a.status == 200 and j.get("rejected") == 9,
          "8c: nine invalid events of 840 KB of \\u0001 escapes (%d bytes inflated): "
          "200 with 9 rejected" % len(many), a, "200, rejected 9")
    total = "?"
    bid = j.get("batchId", "")
    if len(bid) == 36:
        objs = dead_letters_of(bid) or []
        sizes = [len(s3_get(k) or b"") for k in objs]
        total = sum(sizes)
        check(len(objs) == 1 and total <= limit,
              "8c: one dead-letter object of <= max_dead_letter_bytes + 4 KB (%d)" % limit,
              "%d objects, %d bytes" % (len(objs), total), "1 object <= %d" % limit)
    return [("8c-dead-letter-size-many", "%s; dead letters %s bytes" % (a, total))]


def a8_escapes_one(d):
    hdr = GZ_HEADERS
    limit = DEAD_LETTER_LIMIT
    # One event as large as the inflated body may be: refused whole, or
    # stored in a bounded dead letter.
    nesc = (MAX_DECOMPRESSED - 200) // 6
    one = ("[" + escape_event(nesc, 0) + "]").encode()
    b = request(d.port, "POST", "/collect", gzip.compress(one, 9), hdr, timeout=90)
    jb = b.json()
    total = "-"
    if b.status == 200 and len(jb.get("batchId", "")) == 36:
        objs = dead_letters_of(jb["batchId"]) or []
        total = sum(len(s3_get(k) or b"") for k in objs)
        check(total <= limit, "8d: the dead letter of one 8 MB event is <= %d bytes" % limit,
              total, "<= %d" % limit)
    else:
        check(b.status == 413 and b.code() == "record_too_large",
              "8d: one event of 8 MB of \\u0001 escapes: 413 record_too_large or a bounded "
              "dead letter", b, "413 record_too_large, or 200")
    return [("8d-dead-letter-size-one", "%s; dead letters %s bytes" % (b, total))]


def a9_cardinality(d):
    token = "zq%08x" % random.getrandbits(32)
    hdr = GZ_HEADERS
    nreq, nev = SIZES["cardinality_requests"], SIZES["cardinality_events"]
    out = []
    base = json.dumps(EXAMPLE_EVENTS[0])[:-1]
    for r in range(nreq):
        evs = ['%s,"k%d: %s%d-%d": 1}' % (base, i, token, r, i) for i in range(nev)]
        body = gzip.compress(("[" + ",".join(evs) + "]").encode(), 6)
        out.append(str(request(d.port, "POST", "/collect", body, hdr, timeout=120)))
    _, text = metrics(d.port)
    series = [ln for ln in text.splitlines()
              if ln.startswith("collectord_events_rejected_total{")]
    check(all(a.startswith("200") for a in out),
          "9: %d requests of %d events with client-chosen keys: 200" % (nreq, nev),
          summarize(out), "200")
    check(text and token not in text, "9: no /metrics label holds a client-chosen key",
          [ln for ln in series if token in ln][:2], "none")
    check(len(series) <= 64, "9: collectord_events_rejected_total has <= 64 series",
          len(series), "<= 64")
    return [("9-metric-cardinality", "%s; %d rejected series; /metrics %d bytes" %
             (summarize(out), len(series), len(text)))]


def a10_http(d):
    before = metric(d.port, 'collectord_http_requests_total', '{status="400"}')
    key = "X-API-Key: " + KEY
    cases = [
        ("10-two-content-lengths", 400,
         "POST /collect HTTP/1.1\r\nHost: x\r\n%s\r\nContent-Length: 5\r\n"
         "Content-Length: 6\r\n\r\n[{}]  " % key),
        ("10-content-length-plus", 400,
         "POST /collect HTTP/1.1\r\nHost: x\r\n%s\r\nContent-Length: +5\r\n\r\n[{}] " % key),
        ("10-no-host", 400,
         "POST /collect HTTP/1.1\r\n%s\r\nContent-Length: 4\r\n\r\n[{}]" % key),
        ("10-bad-chunk-size", 400,
         "POST /collect HTTP/1.1\r\nHost: x\r\n%s\r\nTransfer-Encoding: chunked\r\n\r\n"
         "zz\r\n[{}]\r\n0\r\n\r\n" % key),
        ("10-chunk-past-max-body", 413,
         "POST /collect HTTP/1.1\r\nHost: x\r\n%s\r\nTransfer-Encoding: chunked\r\n\r\n"
         "%x\r\n[%s" % (key, 2 * MAX_BODY, " " * 1000)),
    ]
    ans = []
    n400 = 0
    for name, want, raw in cases:
        a = exchange(d.port, raw.encode(), timeout=10)
        check(a.status == want, "%s: %d" % (name, want), a, want)
        n400 += want == 400
        ans.append((name, a))
    after = metric(d.port, 'collectord_http_requests_total', '{status="400"}')
    check(after - before >= n400, '10: collectord_http_requests_total{status="400"} grew by '
          '>= %d' % n400, after - before, ">= %d" % n400)
    ans.append(("10-400s-counted", "+%g" % (after - before)))
    return ans


def a11_json(d):
    cases = [
        ("11-nul-between-tokens", b'[{"data":1},\x00{}]', True),
        ("11-leading-zero", b'[{"a":01}]', False),
        ("11-trailing-dot", b'[{"a":1.}]', False),
    ]
    ans = []
    for name, body, where in cases:
        a = post_collect(d.port, body)
        msg = a.json().get("message", "")
        check(a.status == 400, "%s: 400" % name, a, 400)
        if where:
            check("line" in msg and "column" in msg, "%s: the message says the line and "
                  "column" % name, msg, "line, column")
        ans.append((name, a))
    return ans


def a12_check_config(d):
    conf = os.path.join(TDIR, "secrets.conf")
    with open(conf, "w") as f:
        f.write("[kafka]\nsasl.password = hunter3\nssl.key.password = hunter3\n")
    ans = []
    for name, conninfo in (("12-check-config-conninfo",
                            "host=127.0.0.1 password=hunter2 dbname=x"),
                           ("12-check-config-conninfo-uri",
                            "postgresql://u:hunter2@127.0.0.1/x")):
        env = dict(os.environ)
        env["COLLECTORD_PG_CONNINFO"] = conninfo
        try:
            r = subprocess.run([DAEMON, "--check-config", "--config", conf], env=env,
                               capture_output=True, timeout=30)
            out, rc = r.stdout + r.stderr, r.returncode
        except subprocess.TimeoutExpired:
            out, rc = b"", "timeout"
        leaks = sorted(set(re.findall(rb"hunter[23]", out)))
        check(rc == 0 and not leaks, "%s: --check-config exits 0 and prints no password" % name,
              "exit %s, printed %s" % (rc, [x.decode() for x in leaks]), "exit 0, none")
        leaked = [ln.decode() for ln in out.splitlines() if b"hunter" in ln]
        ans.append((name, "exit %s; %s" % (rc, ("leaks: " + "; ".join(leaked)) if leaked
                                           else "no password printed")))
    return ans


def leaks_in(text):
    return [m for m in ("dead-letter", "/%s/" % BUCKET) if m in text]


def a12_s3_errors(d, s3):
    s3.set_mode("fail")
    a = post_collect(d.port, EXAMPLE, timeout=60)
    body = a.body.decode("utf-8", "replace")
    check(a.status == 503, "12: a batch S3 refuses to store is answered 503", a, 503)
    check(not leaks_in(body), "12: the 503 body names no object key or bucket path",
          body[:300], "no dead-letter/ key")
    # The bucket check runs every few seconds; wait for it to see the failure.
    seen = [Answer()]

    def s3_down():
        seen[0] = request(d.port, "GET", "/readyz", key=False, timeout=10)
        return b'"down"' in seen[0].body

    wait_until(s3_down, 15)
    rz = seen[0]
    text = rz.body.decode("utf-8", "replace")
    check(not leaks_in(text), "12: /readyz names no object key or bucket path", text[:300],
          "no dead-letter/ key")
    s3.set_mode("ok")
    wait_until(lambda: request(d.port, "GET", "/readyz", key=False, timeout=10).status == 200, 15)
    return [("12-collect-503-body", "%s: %s" % (a, body.strip()[:160])),
            ("12-readyz-body", "%s: %s" % (rz.status, text.strip()[:160]))]


# ---------------------------------------------------------------- main

def main():
    say("# collectord abuse suite, %s mode (COLLECTORD_ABUSE=full for the big one)" %
        ("full" if FULL else "quick"))
    suite = Suite()
    topics = {"COLLECTORD_TOPICS_RAW": TOPICS + ".raw",
              "COLLECTORD_TOPICS_DEAD_LETTER": TOPICS + ".dlq"}
    main_d = Daemon("abuse", topics)
    s3 = BlackHoleS3()
    s3.start()
    bh = Daemon("blackhole", {"COLLECTORD_TOPICS_RAW": TOPICS + "-bh.raw",
                              "COLLECTORD_TOPICS_DEAD_LETTER": TOPICS + "-bh.dlq",
                              "COLLECTORD_S3_ENDPOINT": "http://127.0.0.1:%d" % s3.port,
                              "COLLECTORD_S3_TIMEOUT_MS": "600000"})
    started = []
    try:
        if not suite.ensure(main_d):
            return 1
        started.append(main_d)
        A = suite.attack
        A("1a double free, invalid event", main_d, a1_invalid)
        A("1b double free, valid event", main_d, a1_valid)
        A("2 partial batch", main_d, a2_partial_batch)
        if suite.ensure(bh):
            started.append(bh)
            A("3 client disconnect", bh, lambda d: a3_disconnect(d, s3),
              fd_bound=bh.base_fds + S3_MAX_CONN + 4)
        A("4a unauthenticated bodies", main_d, a4_unauth, during=True, peak_kb=16 * MB)
        A("4b body memory", main_d, a4_body_memory,
          peak_kb=MAX_BODY_MEMORY // 1024 + 12 * MB)
        A("5a gzip bomb, events", main_d, a5_events, during=True, peak_kb=64 * MB)
        A("5b gzip bomb, values", main_d, a5_values, during=True, peak_kb=64 * MB)
        A("6 slowloris", main_d, a6_slowloris, during=True)
        A("7a idle connections", main_d, a7_idle)
        if FULL:
            nofile = Daemon("nofile", dict(topics, COLLECTORD_SERVER_MAX_CLIENTS="1000"),
                            limit_nofile=64)
            if suite.ensure(nofile):
                started.append(nofile)
                A("7b descriptor limit", nofile, a7_nofile)
                nofile.stop()
        A("8 dead-letter amplification", main_d, a8_amplification, during=True)
        A("8c dead-letter size, many events", main_d, a8_escapes_many)
        A("8d dead-letter size, one event", main_d, a8_escapes_one)
        A("9 metric cardinality", main_d, a9_cardinality)
        A("10 HTTP strictness", main_d, a10_http)
        A("11 JSON strictness", main_d, a11_json)
        A("12 secrets in --check-config", main_d, a12_check_config)
        if suite.ensure(bh):
            A("12 secrets in S3 errors", bh, lambda d: a12_s3_errors(d, s3))
    finally:
        for d in (main_d, bh):
            d.stop()
        s3.stop()
    say("# abuse suite done, %d failed" % FAILED[0])
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
    sys.exit(main())
