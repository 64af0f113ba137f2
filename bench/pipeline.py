#!/usr/bin/env python3
"""bench/pipeline.py: the offered-rate load of bench/pipeline.sh, and what it
measures.  Not run on its own: bench/pipeline.sh starts the daemons.

  pipeline.py COLLECT_URL ENRICH_URL EXAMPLES BATCH SECONDS RATE...

EXAMPLES is t/data/collect-request.json: its first event, with a message
id of its own in every copy (bench/bodies.py), makes the batches.

For each RATE (events/s, in order) it offers that rate to POST /collect for
SECONDS, open loop: requests of BATCH events leave on a fixed schedule
whatever the answers do, over a pool of keep-alive connections.  Every
second it reads the enricher's /metrics: the backlog is consumer lag plus
records held unconfirmed.  A rate is sustained when the collector answered
everything it was offered with 2xx, on time, the backlog did not grow over
the second half of the run by more than a tenth of what was offered
meanwhile, and ends under a second's worth of events (or two blocks of
flush_events a partition, what waiting for blocks to fill holds anyway).  It stops at the first rate not sustained, then offers half of
the highest sustained rate again and measures the end-to-end latency of a
sample of requests: from the moment the request was sent to the moment a
poller sees all its rows in PostgreSQL (the poller asks every POLL_MS for
the sampled requests' correlationId ranges, so the figure is late by up to
that much).
"""
import asyncio
import json
import os
import statistics
import sys
import time

from bodies import Bodies
from cpu import cpu_by_name

POLL_MS = 50
SAMPLE_EVERY_S = 0.1
WORKERS = 64


class Step:
    def __init__(self, rate):
        self.rate = rate
        self.sent = self.ok = self.bad = self.late = 0
        self.backlog = []  # (seconds since start, backlog)
        self.samples = []  # (sent at, first id, last id)
        self.latency = []  # end to end, seconds
        self.answer = []  # collect answer time of the samples, seconds


async def http_get(host, port, path):
    r, w = await asyncio.open_connection(host, port)
    w.write(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
    data = await r.read()
    w.close()
    return data.split(b"\r\n\r\n", 1)[1].decode()


def metric_sum(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            rest = line[len(name):]
            if rest[:1] in ("{", " "):
                total += float(line.rsplit(" ", 1)[1])
    return total


async def read_answer(r):
    head = await r.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = await r.readexactly(length)
    return status, body


async def worker(host, port, request, queue, step):
    r, w = await asyncio.open_connection(host, port)
    while True:
        ticket = await queue.get()
        if ticket is None:
            break
        due, sample = ticket
        if time.monotonic() - due > 0.5:
            step.late += 1
        t0 = time.monotonic()
        w.write(request())
        status, body = await read_answer(r)
        step.sent += 1
        if 200 <= status < 300:
            step.ok += 1
            if sample:
                ids = [e["correlationId"] for e in json.loads(body)["events"]]
                step.samples.append((t0, ids[0], ids[-1]))
                step.answer.append(time.monotonic() - t0)
        else:
            step.bad += 1
    w.close()


async def pacer(queue, step, batch, seconds):
    interval = batch / step.rate
    start = time.monotonic()
    n = 0
    next_sample = start
    while True:
        due = start + n * interval
        if due - start >= seconds:
            break
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
        sample = due >= next_sample
        if sample:
            next_sample += SAMPLE_EVERY_S
        queue.put_nowait((due, sample))
        n += 1
    return n


async def watch(enrich, step, stop, start):
    host, port = enrich
    while not stop.is_set():
        try:
            text = await http_get(host, port, "/metrics")
            b = metric_sum(text, "collectord_consumer_lag") + metric_sum(
                text, "collectord_enrich_buffered_records")
            step.backlog.append((time.monotonic() - start, b))
        except OSError:
            pass
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass


async def poller(step, batch, stop):
    """Ask PostgreSQL for the sampled requests until each has its rows."""
    conninfo = os.environ["COLLECTORD_PG_CONNINFO"]
    psql = await asyncio.create_subprocess_exec(
        "psql", conninfo, "-X", "-q", "-At", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE)
    seen = 0
    pending = {}
    while not (stop.is_set() and not pending and seen == len(step.samples)):
        for t0, lo, hi in step.samples[seen:]:
            pending[(lo, hi)] = t0
        seen = len(step.samples)
        if pending:
            keys = list(pending)
            values = ",".join("(%d,'%s'::uuid,'%s'::uuid)" % (i, lo, hi)
                              for i, (lo, hi) in enumerate(keys))
            psql.stdin.write((
                "SELECT v.i, (SELECT count(*) FROM events WHERE correlation_id BETWEEN v.a AND v.b)"
                " FROM (VALUES %s) v(i, a, b);\nSELECT 'end';\n" % values).encode())
            await psql.stdin.drain()
            now = None
            while True:
                line = (await psql.stdout.readline()).decode().strip()
                if line == "end" or line == "":
                    break
                i, n = line.split("|")
                if int(n) >= batch:
                    now = now or time.monotonic()
                    key = keys[int(i)]
                    step.latency.append(now - pending.pop(key))
        if stop.is_set() and time.monotonic() - stop.at > 30:
            break  # rows that never came: not counted
        await asyncio.sleep(POLL_MS / 1000)
    psql.stdin.close()
    await psql.wait()


async def run_step(collect, enrich, request, batch, seconds, rate, latency):
    step = Step(rate)
    queue = asyncio.Queue()
    stop = asyncio.Event()
    start = time.monotonic()
    workers = [asyncio.create_task(worker(collect[0], collect[1], request, queue, step))
               for _ in range(WORKERS)]
    watcher = asyncio.create_task(watch(enrich, step, stop, start))
    poll = asyncio.create_task(poller(step, batch, stop)) if latency else None
    offered = await pacer(queue, step, batch, seconds)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    step.offered = offered
    step.elapsed = time.monotonic() - start
    stop.at = time.monotonic()
    stop.set()
    await watcher
    if poll:
        await poll
    return step


def sustained(step, batch, seconds, slack):
    if step.bad or step.late or step.sent < step.offered:
        return False, "collector behind (%d late, %d non-2xx)" % (step.late, step.bad)
    pts = [b for t, b in step.backlog if t >= seconds / 2]
    if len(pts) < 2:
        return False, "no metrics"
    grew = pts[-1] - pts[0]
    if grew > 0.1 * step.rate * seconds / 2:
        return False, "backlog grew by %d events" % grew
    if pts[-1] > max(step.rate, slack):
        return False, "backlog %d at the end: over a second behind" % pts[-1]
    return True, "backlog %d at the end" % pts[-1]


async def drained(enrich, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        text = await http_get(enrich[0], enrich[1], "/metrics")
        if metric_sum(text, "collectord_consumer_lag") + metric_sum(
                text, "collectord_enrich_buffered_records") == 0:
            return True
        await asyncio.sleep(0.5)
    return False


def hostport(url):
    host, port = url.split("//")[1].split(":")
    return host, int(port)


async def main():
    collect, enrich = hostport(sys.argv[1]), hostport(sys.argv[2])
    batch, seconds = int(sys.argv[4]), float(sys.argv[5])
    rates = [int(r) for r in sys.argv[6:]]
    bodies = Bodies(sys.argv[3], batch)

    def request():
        body = bodies.next()
        return (b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)) + body
    # Records wait for their block of flush_events to fill, and one block
    # a partition is in flight: that much backlog is the design's.
    slack = 2 * int(os.environ.get("FLUSH_EVENTS", "500")) * int(os.environ.get("PARTITIONS", "3"))
    best = 0
    cpu0 = cpu_by_name()
    print("%-10s %10s %10s %10s  %s" % ("offered/s", "answered/s", "2xx", "backlog", "verdict"))
    for rate in rates:
        step = await run_step(collect, enrich, request, batch, seconds, rate, False)
        good, why = sustained(step, batch, seconds, slack)
        print("%-10d %10.0f %10d %10s  %s: %s" % (
            rate, step.sent * batch / step.elapsed, step.ok * batch,
            ",".join("%d" % b for _, b in step.backlog[::2]),
            "sustained" if good else "NOT sustained", why), flush=True)
        if not good:
            break
        best = rate
        if not await drained(enrich, 20):
            print("  (backlog did not drain within 20 s)")
            break
    print("highest sustained offered rate: %d events/s" % best)
    if best > 0:
        await drained(enrich, 20)
        await latency_run(collect, enrich, request, batch, seconds, best // 2)
    print("CPU seconds over the whole run, by process (collectord: both roles; java: the"
          " broker and the registry):")
    cpu1 = cpu_by_name()
    t = os.times()
    cpu1["this load generator"] = t.user + t.system
    for name, secs in sorted(((n, s - cpu0.get(n, 0)) for n, s in cpu1.items()),
                             key=lambda x: -x[1]):
        if secs >= 0.5:
            print("  %-22s %6.1f" % (name, secs))


async def latency_run(collect, enrich, request, batch, seconds, half):
    step = await run_step(collect, enrich, request, batch, seconds, half, True)
    lat = sorted(step.latency)
    if not lat:
        print("no latency samples")
        return
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    ans = sorted(step.answer)
    print("at %d events/s (half): end-to-end latency, sent -> all rows in PostgreSQL, "
          "%d requests sampled: p50 %.0f ms, p90 %.0f ms, p99 %.0f ms, max %.0f ms "
          "(the /collect answer alone: p50 %.1f ms, p99 %.1f ms)" % (
              half, len(lat), q(0.5), q(0.9), q(0.99), lat[-1] * 1000,
              statistics.median(ans) * 1000, ans[min(len(ans) - 1, int(0.99 * len(ans)))] * 1000))


asyncio.run(main())
