# Made-up clickstream events for scripts/generate-events (scripts/eventgen.py
# runs this module), following the contract of schemas/clickstream/README.md.
#   valid    page views, searches, product clicks and add-to-carts of
#            logged-in and anonymous visitors, IPv4 and IPv6, timestamps
#            with T or a space, a few kept extra keys
#   invalid  a valid event that breaks one rule: a string id, a bad IP, a
#            top-level customer_id, ...

# The contract, in short: id an integer 0..2^53-1, type and package_id
# non-empty strings, event.user_agent a string ("" allowed), event.ip IPv4
# or IPv6, event.timestamp RFC 3339 (T or a space), customer_id, product and
# position integers >= 0 or null/absent, page, query and referrer strings or
# null/absent, other keys of event kept, other top-level keys refused.
import time

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "",
]
QUERIES = ["shoes", "red dress", "running shoes", "backpack", "café", "gift card"]
REFERRERS = [None, "", "https://www.example.com/", "https://www.google.com/", "https://t.co/abc123"]
package = [""]  # drawn by the first event, not by setup(): a seed's events stay as they were
rng = uuid4 = None  # set by setup()


def setup(ctx):
    """Take the run's random source and the shared helpers of eventgen.py."""
    global rng, uuid4
    rng, uuid4 = ctx.rng, ctx.uuid4


def ip_address():
    r = rng.random()
    if r < 0.7:  # the documentation ranges of RFC 5737 and RFC 3849
        return "%s.%d" % (rng.choice(["192.0.2", "198.51.100", "203.0.113"]), rng.randrange(256))
    if r < 0.9:
        return "2001:db8:%x::%x" % (rng.randrange(0x10000), rng.randrange(1, 0x10000))
    return "::ffff:198.51.100.%d" % rng.randrange(256)


def click_timestamp(ms):
    t = time.gmtime(ms / 1000)
    day, clock = time.strftime("%Y-%m-%d", t), time.strftime("%H:%M:%S", t)
    return rng.choice([
        day + "T" + clock + "Z", day + "T" + clock + ".%03dZ" % (ms % 1000),
        day + " " + clock, day + " " + clock + ".%06d+00:00" % (ms % 1000 * 1000),
        day + "T" + clock + "+00:00",
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000 + 3600)) + "+01:00",
    ])


def valid(ms):
    if not package[0] or rng.random() < 0.2:  # a client's batch: a few events share it
        package[0] = "pkg-%04x" % rng.randrange(0x10000)
    typ = rng.choice(["page_view"] * 5 + ["search"] * 2 + ["product_click"] * 2 + ["add_to_cart"])
    ev = {"user_agent": rng.choice(USER_AGENTS), "ip": ip_address()}
    customer = rng.randrange(1, 100000) if rng.random() < 0.6 else None
    if customer is not None or rng.random() < 0.5:  # an anonymous visitor: null or absent
        ev["customer_id"] = customer
    ev["timestamp"] = click_timestamp(ms)
    product, query = rng.randrange(1, 5000), rng.choice(QUERIES)
    if typ == "page_view":
        ev["page"] = rng.choice(["/", "/products/%d" % product, "/cart", "/category/shoes"])
    elif typ == "search":
        ev["page"], ev["query"] = "/search?q=" + query.replace(" ", "+"), query
    elif typ == "product_click":
        ev["page"], ev["query"] = "/search?q=" + query.replace(" ", "+"), query
        ev["product"], ev["position"] = product, rng.randrange(0, 48)
    else:
        ev["page"], ev["product"] = "/products/%d" % product, product
    referrer = rng.choice(REFERRERS)
    if referrer is not None or rng.random() < 0.5:
        ev["referrer"] = referrer
    for key in ("query", "product", "position"):
        if key not in ev and rng.random() < 0.2:
            ev[key] = None
    if rng.random() < 0.15:  # unknown keys inside event are kept
        ev["session_id"] = uuid4()
    if rng.random() < 0.1:
        ev["screen"] = {"w": rng.choice([390, 1280, 1920]), "h": rng.choice([844, 800, 1080])}
    return {"id": rng.randrange(0, 2**53), "type": typ, "package_id": package[0], "event": ev}


def invalid(ms):
    e = valid(ms)
    ev = e["event"]
    breakers = [
        lambda: e.update(id=str(e["id"])),                       # id: not an integer
        lambda: e.update(id=-1),                                 # id: not a non-negative integer
        lambda: e.update(id=2**53),                              # id: out of range
        lambda: e.pop("type"),                                   # type: missing
        lambda: e.update(type=""),                               # type: empty
        lambda: e.pop("package_id"),                             # package_id: missing
        lambda: e.update(event="page_view"),                     # event: not an object
        lambda: e.update(customer_id=4711),                      # customer_id: unknown key
        lambda: e.update(metadata={"correlationId": uuid4()}),   # metadata: unknown key
        lambda: ev.pop("user_agent"),                            # event.user_agent: missing
        lambda: ev.pop("ip"),                                    # event.ip: missing
        lambda: ev.update(ip="203.0.113"),                       # event.ip: not an IP address
        lambda: ev.update(ip="203.0.113.7:8080"),
        lambda: ev.update(ip="[2001:db8::1]"),
        lambda: ev.update(ip="localhost"),
        lambda: ev.pop("timestamp"),                             # event.timestamp: missing
        lambda: ev.update(timestamp="20/11/2026 10:12:35"),      # not an RFC 3339 timestamp
        lambda: ev.update(timestamp=ms // 1000),                 # not a string
        lambda: ev.update(customer_id=-4711),                    # not a non-negative integer
        lambda: ev.update(customer_id="4711"),                   # not an integer
        lambda: ev.update(product=4.5),
        lambda: ev.update(page=42),                              # event.page: not a string
    ]
    rng.choice(breakers)()
    return e
