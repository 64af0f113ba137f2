#!/usr/bin/env python3
"""t/status_page.py: the status page (GET /) in a real browser.

Debian's chromium, headless, driven by Selenium through Debian's
chromedriver, loads the page of a running collectord and checks that every
number it shows (each element with data-k, the path of its value in /stats)
equals what GET /stats says, that the chart has one point per second of the
window for each series, and that the totals are those the caller expects
(EXPECT: family=accepted:rejected,...).  It saves a screenshot.  TAP on
stdout.

usage: status_page.py URL SCREENSHOT EXPECT
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


def get_stats(url):
    with urllib.request.urlopen(url + "/stats", timeout=10) as r:
        return json.load(r)


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


def main():
    url, shot, expect = sys.argv[1], sys.argv[2], sys.argv[3]
    want = {}
    for item in expect.split(","):
        fam, counts = item.split("=")
        a, r = counts.split(":")
        want[fam] = (int(a), int(r))
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
        driver.get(url + "/")
        ok("collectord" in driver.title, "the page loads: %s" % driver.title)
        # Wait for a render of a /stats fetched after ours.
        first = stats["time"]
        for _ in range(100):
            r = driver.find_element(By.TAG_NAME, "body").get_attribute("data-rendered")
            if r and r > first:
                break
            time.sleep(0.1)
        ok(r is not None and r > first, "the page rendered a /stats of its own (%s)" % r)
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
            sec = driver.find_elements(By.CSS_SELECTOR, 'section[data-family="%s"]' % name)
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
        driver.save_screenshot(shot)
        ok(os.path.getsize(shot) > 10000, "screenshot saved: %s" % shot)
    finally:
        driver.quit()
    print("1..%d" % N)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
