#!/usr/bin/env python3
"""t/status_page.py: the status page (GET /) in a real browser.

Debian's chromium, headless, driven by Selenium through Debian's
chromedriver, loads the page of a running collectord and checks that every
number it shows (each element with data-k, the path of its value in /stats)
equals what GET /stats says, that the chart has one point per second of the
window for each series, and that the totals are those the caller expects
(EXPECT: family=accepted:rejected,...).  With DAILY (a JSON file:
{"day": "YYYY-MM-DD", "families": {NAME: {DAY: COUNT, ...}}}) it loads the
page on the 14 days to that day and checks each family's daily panel:
every number shown (data-d, its path in GET /families/NAME/daily) equals
that answer, a bar per day, its label, and the answer's counts are those
the caller computed from what it sent (a day it does not list: 0).  It
saves a screenshot.  TAP on stdout.

usage: status_page.py URL SCREENSHOT EXPECT [DAILY]
"""
import json
import os
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

N = 0
FAILED = 0


def ok(cond, name, diag=None):
    global N, FAILED
    N += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (N, name))
    if not cond:
        FAILED += 1
        if diag:
            for line in str(diag).splitlines():
                print("#   " + line)
    sys.stdout.flush()
    return cond


def get_json(url, path):
    with urllib.request.urlopen(url + path, timeout=10) as r:
        return json.load(r)


def get_stats(url):
    return get_json(url, "/stats")


def at(doc, path):
    """The value at a data-k path ("families.0.accepted.total")."""
    v = doc
    for part in path.split("."):
        if isinstance(v, list):
            v = v[int(part)]
        elif isinstance(v, dict):
            if part not in v:
                return None
            v = v[part]
        else:
            return None
    return v


def shown(v):
    """How the page writes a value."""
    return "-" if v is None else str(v)


# What changes from one second to the next without any traffic: compared
# apart, or not at all.
MOVING = ("time",)


def steady(url):
    """/stats once two readings two seconds apart agree on everything the
    page shows but the clock (the traffic has settled); the bound only ends
    a broken run."""
    def key(st):
        st = dict(st)
        st.pop("time")
        for f in st["families"]:
            for s in ("accepted", "rejected"):
                f[s] = {k: v for k, v in f[s].items() if k != "perSecond"}
        return json.dumps(st, sort_keys=True)
    last = get_stats(url)
    for _ in range(60):
        time.sleep(2)
        st = get_stats(url)
        if key(st) == key(last):
            return st
        last = st
    return last


def check_daily(driver, url, daily):
    """Each family of DAILY: its panel against its answer, and the answer
    against what was sent."""
    fams = {f["family"]: f for f in get_json(url, "/families")["families"]}
    err = driver.find_element(By.ID, "daily-error")
    ok(not err.is_displayed(), "no daily error shown", err.text)
    panels = driver.find_elements(By.CSS_SELECTOR, "section.daily")
    with_daily = sorted(n for n, f in fams.items() if f["daily"])
    ok(sorted(p.get_attribute("data-family") for p in panels) == with_daily,
       "a daily panel per family with a daily count (%s)" % ",".join(with_daily))
    for name, sent in daily["families"].items():
        f = fams.get(name)
        if not ok(f is not None and f["daily"] is not None, "%s: /families gives its daily count"
                  % name):
            continue
        doc = get_json(url, f["daily"]["path"] + "?day=" + daily["day"])
        sec = driver.find_elements(By.CSS_SELECTOR, 'section.daily[data-family="%s"]' % name)
        if not ok(len(sec) == 1, "%s: one daily panel" % name):
            continue
        sec = sec[0]
        label = "distinct %s per UTC day of %s" % (f["daily"]["field"], f["daily"]["window"])
        ok(label in sec.text, "%s: labelled \"%s\"" % (name, label), sec.text[:300])
        ok(f["daily"]["name"] in sec.find_element(By.TAG_NAME, "h2").text,
           "%s: titled %s" % (name, f["daily"]["name"]))
        ok(len(doc["days"]) == 14 and doc["days"][0]["day"] == daily["day"],
           "%s: the answer has the 14 days to %s, newest first" % (name, daily["day"]))
        # The page is the answer...
        cells = sec.find_elements(By.CSS_SELECTOR, "[data-d]")
        bad = ["%s: page %r, answer %r" % (c.get_attribute("data-d"), c.text,
                                          shown(at(doc, c.get_attribute("data-d"))))
               for c in cells if c.text != shown(at(doc, c.get_attribute("data-d")))]
        ok(len(cells) == 2 * len(doc["days"]) and not bad,
           "%s: each day and count shown equals the answer (%d)" % (name, len(cells)),
           "\n".join(bad))
        rects = sec.find_elements(By.CSS_SELECTOR, "svg rect[data-day]")
        oldest_first = list(reversed(doc["days"]))
        ok([(r.get_attribute("data-day"), int(r.get_attribute("data-count"))) for r in rects]
           == [(x["day"], x["count"]) for x in oldest_first],
           "%s: a bar per day, oldest left (%d)" % (name, len(rects)))
        top = max([x["count"] for x in doc["days"]] + [1])
        heights = [float(r.get_attribute("height")) for r in rects]
        full = max(heights + [0])
        ok(full > 0 and all(abs(h / full - x["count"] / top) < 0.01
                            for h, x in zip(heights, oldest_first)),
           "%s: each bar's height is its count" % name, heights)
        # ...and the answer is what was sent.
        got = {x["day"]: x["count"] for x in doc["days"]}
        want = {d: sent.get(d, 0) for d in got}
        ok(got == want, "%s: the counts are the distinct values sent per day (%s)"
           % (name, ",".join("%s=%d" % kv for kv in sorted(want.items()) if kv[1])),
           "got %s\nwant %s" % (got, want))


def main():
    url, shot, expect = sys.argv[1], sys.argv[2], sys.argv[3]
    want = {}
    for item in expect.split(","):
        fam, counts = item.split("=")
        a, r = counts.split(":")
        want[fam] = (int(a), int(r))
    daily = json.load(open(sys.argv[4])) if len(sys.argv) > 4 else None
    stats = steady(url)

    opts = Options()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    profile = tempfile.mkdtemp(prefix="collectord-chromium-")
    # The machine's network is closed: no background connections.
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--window-size=1400,1300",
              "--user-data-dir=" + profile):
        opts.add_argument(a)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=opts)
    try:
        driver.set_page_load_timeout(30)
        driver.get(url + "/" + ("#day=" + daily["day"] if daily else ""))
        ok("collectord" in driver.title, "the page loads: %s" % driver.title)
        # Wait for a render of a /stats fetched after ours.
        first = stats["time"]
        for _ in range(100):
            r = driver.find_element(By.TAG_NAME, "body").get_attribute("data-rendered")
            if r and r > first:
                break
            time.sleep(0.1)
        ok(r is not None and r > first, "the page rendered a /stats of its own (%s)" % r)
        for _ in range(100):
            d = driver.find_element(By.TAG_NAME, "body").get_attribute("data-daily-renders")
            if d:
                break
            time.sleep(0.1)
        ok(d is not None, "the daily panels rendered")
        driver.execute_script("window.statusPaused = true;")
        time.sleep(2.5)  # the poll under way ends; none follows
        rendered = driver.find_element(By.TAG_NAME, "body").get_attribute("data-rendered")
        now = get_stats(url)
        ok(driver.find_element(By.ID, "error").text == "", "no fetch error shown")

        # Every number shown is /stats' own.
        cells = driver.find_elements(By.CSS_SELECTOR, "[data-k]")
        keys = [c.get_attribute("data-k") for c in cells]
        ok(len(cells) > 10, "the page shows %d values from /stats" % len(cells))
        bad = []
        for c, k in zip(cells, keys):
            if k in MOVING:
                continue
            if c.text != shown(at(now, k)):
                bad.append("%s: page %r, /stats %r" % (k, c.text, shown(at(now, k))))
        ok(not bad, "each value shown equals /stats (%d compared)" % (len(cells) - 1),
           "\n".join(bad))
        ok(driver.find_element(By.ID, "time").text == rendered, "the time shown is its render's")

        # Each family: its section, its chart, its totals as sent.
        for i, f in enumerate(now["families"]):
            name = f["family"]
            sec = driver.find_elements(By.CSS_SELECTOR, 'section.family[data-family="%s"]' % name)
            ok(len(sec) == 1, "%s: one section" % name)
            if not sec:
                continue
            lines = sec[0].find_elements(By.CSS_SELECTOR, "svg polyline")
            ok(len(lines) == 2, "%s: a chart of two series" % name)
            for p in lines:
                pts = p.get_attribute("points").split()
                ok(len(pts) == now["windowSeconds"],
                   "%s: %s has a point per second (%d)" % (name, p.get_attribute("data-series"),
                                                           len(pts)))
            if name in want:
                a, r = want[name]
                ok(sec[0].find_element(By.CSS_SELECTOR, '[data-k="families.%d.accepted.total"]'
                                       % i).text == str(a), "%s: %d accepted shown" % (name, a))
                ok(sec[0].find_element(By.CSS_SELECTOR, '[data-k="families.%d.rejected.total"]'
                                       % i).text == str(r), "%s: %d rejected shown" % (name, r))
                ok(sec[0].find_element(By.CSS_SELECTOR, '[data-k="families.%d.accepted.window"]'
                                       % i).text == str(a), "%s: all %d in the window" % (name, a))
        for name in want:
            ok(any(f["family"] == name for f in now["families"]), "%s is on the page" % name)
        deps = driver.find_elements(By.CSS_SELECTOR, "#deps tr")
        ok(len(deps) == len(now["dependencies"]) and len(deps) > 0,
           "a row per dependency (%d)" % len(deps))
        lag = [k for k in keys if k.startswith("consumerLag.") and k.endswith(".lag")]
        ok(len(lag) == len(now["consumerLag"]), "a lag per partition (%d)" % len(lag))
        if daily:
            check_daily(driver, url, daily)
        driver.save_screenshot(shot)
        ok(os.path.getsize(shot) > 10000, "screenshot saved: %s" % shot)
    finally:
        driver.quit()
    print("1..%d" % N)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
