# Made-up retail receipts for scripts/generate-events (scripts/eventgen.py
# runs this module), following the contract of schemas/retail/README.md.
#   valid    receipts of stores in BRL, EUR, CLP, JPY, KWD and XOF: sales,
#            rentals (customer known, dueAt after occurredAt) and returns
#            (returnOf, a late fee), totals the exact sum of the lines in the
#            currency's digits (schemas/retail/currencies.txt)
#   invalid  a valid receipt that breaks one rule of either pass: a total a
#            cent off, a walk-in rental, a due date before the sale, a book
#            on DVD, an offset missing, ...

# The contract, in short: one closed receipt.  Amounts are decimal strings
# with exactly the currency's digits, the total is the exact sum of
# quantity x unitPrice, a rental has a known customer and a dueAt after
# occurredAt, a return a returnOf and a late fee as its price, times carry
# their UTC offset, and every value comes from the contract's sets.
import os
import time

# store id, franchise, country, currency, UTC offset in minutes
STORES = [
    ("sp-paulista-01", "fr-sudeste", "BR", "BRL", -180),
    ("rj-copacabana-02", "fr-sudeste", "BR", "BRL", -180),
    ("mad-sol-01", "fr-iberia", "ES", "EUR", 60),
    ("lis-chiado-01", "fr-iberia", "PT", "EUR", 0),
    ("scl-providencia-01", "fr-andes", "CL", "CLP", -180),
    ("tyo-shibuya-01", "fr-asia", "JP", "JPY", 540),
    ("kwi-salmiya-01", "fr-golfo", "KW", "KWD", 180),
    ("dkr-plateau-01", "fr-ouest", "SN", "XOF", 0),
]
# Sale and rental prices, in units of the currency (low, high).
PRICES = {"BRL": ((15, 120), (5, 20)), "EUR": ((5, 40), (2, 6)), "CLP": ((4000, 30000), (1500, 4000)),
          "JPY": ((600, 5000), (200, 800)), "KWD": ((1, 12), (0.5, 2)), "XOF": ((3000, 20000), (1000, 3000))}
CATALOGUE = [
    ("sku-bk-000731", "book", "Dom Casmurro"), ("sku-bk-002214", "book", "Grande Sertão: Veredas"),
    ("sku-bk-003310", "book", "Cien años de soledad"), ("sku-bk-004120", "book", "ノルウェイの森"),
    ("sku-fm-004410", "film", "Cidade de Deus"), ("sku-fm-005120", "film", "Le Fabuleux Destin d'Amélie Poulain"),
    ("sku-fm-006001", "film", "千と千尋の神隠し"), ("sku-sr-000210", "series", "Dark, season 1"),
    ("sku-sr-000377", "series", "La casa de papel, season 2"),
]
FORMATS = {"book": ["hardcover", "paperback"], "film": ["dvd", "blu_ray"], "series": ["dvd", "blu_ray"]}
PAYMENTS = ["cash", "debit_card", "credit_card", "pix", "voucher", "store_credit"]
DAY_MS = 24 * 3600 * 1000
DIGITS = {}  # currency code: digits after the point, read by setup()
rng = ulid = object_id = uuid7 = None  # set by setup()


def setup(ctx):
    """Take the run's random source and the shared helpers of eventgen.py,
    and read the currencies of the contract."""
    global rng, ulid, object_id, uuid7
    rng, ulid, object_id, uuid7 = ctx.rng, ctx.ulid, ctx.object_id, ctx.uuid7
    with open(os.path.join(ctx.root, "schemas", "retail", "currencies.txt"), encoding="utf-8") as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if len(fields) == 2:
                DIGITS[fields[0]] = int(fields[1])


def transaction_id(ms):
    r = rng.random()
    if r < 0.6:
        return uuid7(ms)
    if r < 0.7:
        return uuid7(ms).upper()
    if r < 0.75:
        return "{" + uuid7(ms) + "}"
    if r < 0.9:
        return ulid(ms)
    return object_id(ms // 1000)


def local_time(ms, offset_min, with_offset=True):
    # The store's wall-clock time with its offset: the business day as written.
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000 + offset_min * 60))
    if rng.random() < 0.2:
        text += ".%03d" % (ms % 1000)
    if not with_offset:
        return text
    if offset_min == 0 and rng.random() < 0.5:
        return text + "Z"
    sign, hh, mm = "+" if offset_min >= 0 else "-", abs(offset_min) // 60, abs(offset_min) % 60
    style = rng.random()
    if style < 0.15:
        return text + "%s%02d%02d" % (sign, hh, mm)
    if style < 0.25 and mm == 0:
        return text + "%s%02d" % (sign, hh)
    return text + "%s%02d:%02d" % (sign, hh, mm)


def amount(minor, digits):
    # "0" or no leading zero, and exactly the currency's digits after the point.
    if digits == 0:
        return str(minor)
    return "%d.%0*d" % (minor // 10**digits, digits, minor % 10**digits)


def price(currency, rental):
    low, high = PRICES[currency][1 if rental else 0]
    d = DIGITS[currency]
    minor = rng.randrange(int(low * 10**d), int(high * 10**d) + 1)
    step = 10 ** max(d - 1, 0) if d else (100 if high > 1000 else 10)
    return max(minor - minor % step, step)  # round prices, never zero


def item():
    sku, kind, title = rng.choice(CATALOGUE)
    it = {"id": sku, "kind": kind}
    if rng.random() < 0.9:
        it["format"] = rng.choice(FORMATS[kind])
    if rng.random() < 0.9:
        it["title"] = title
    return it


def retail_line(kind, ms, store, currency):
    line = {"kind": kind, "item": item(), "quantity": 1}
    if kind == "sale":
        line["quantity"] = rng.choice([1, 1, 1, 2, 2, 3, 5])
        line["unitPrice"] = price(currency, False)
    elif kind == "rental":
        line["quantity"] = rng.choice([1, 1, 1, 2])
        line["unitPrice"] = price(currency, True)
        # Due back one to seven days later, at the store's closing time or so.
        line["dueAt"] = local_time(ms + rng.randrange(1, 8) * DAY_MS + rng.randrange(0, 8 * 3600) * 1000, store[4])
    else:
        # A return closes a rental line of an earlier receipt; its price is
        # the late fee, none when it came back on time.
        line["unitPrice"] = 0 if rng.random() < 0.7 else price(currency, True)
        line["returnOf"] = {"transactionId": uuid7(ms - rng.randrange(1, 20) * DAY_MS),
                            "lineNumber": rng.randrange(1, 5)}
    return line


def valid(ms):
    store = rng.choice(STORES)
    currency, d = store[3], DIGITS[store[3]]
    shape = rng.random()
    if shape < 0.5:
        kinds = ["sale"] * rng.randrange(1, 4)
    elif shape < 0.7:
        kinds = ["rental"] * rng.randrange(1, 3)
    elif shape < 0.85:
        kinds = ["sale", "rental"] + rng.choice([[], ["sale"], ["rental"]])
    else:
        kinds = ["return"] * rng.randrange(1, 3) + rng.choice([[], ["sale"], ["rental"]])
    lines, number = [], 0
    for kind in kinds:
        number += 2 if rng.random() < 0.1 else 1  # a voided line leaves a gap
        line = {"lineNumber": number}
        line.update(retail_line(kind, ms, store, currency))
        lines.append(line)
    total = sum(l["quantity"] * l["unitPrice"] for l in lines)
    for l in lines:
        l["unitPrice"] = amount(l["unitPrice"], d)
    if rng.random() < 0.1:
        rng.shuffle(lines)  # any order is allowed
    e = {"transactionId": transaction_id(ms), "occurredAt": local_time(ms, store[4]),
         "store": {"id": store[0], "franchiseId": store[1], "country": store[2]},
         "employeeId": "emp-%04d" % rng.randrange(1, 200)}
    if "rental" in kinds or rng.random() < 0.6:
        e["customerId"] = "cus-%06d" % rng.randrange(1, 10**6)
    elif rng.random() < 0.3:
        e["customerId"] = None  # a walk-in: null is absent
    e["currency"] = currency
    if total != 0 or rng.random() < 0.5:  # optional only when nothing is paid
        e["paymentMethod"] = rng.choice(PAYMENTS)
    e["total"] = amount(total, d)
    e["lines"] = lines
    return e


def as_rental(e, line, due_ms):
    # Turn a line into a rental with the given due date; the total still adds up.
    line["kind"] = "rental"
    line.pop("returnOf", None)
    line["dueAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due_ms / 1000))


def invalid(ms):
    e = valid(ms)
    d = DIGITS[e["currency"]]
    first = e["lines"][0]

    def total_off():  # total: not the sum of the lines
        t = e["total"].replace(".", "")
        e["total"] = amount(int(t) + 1, d)

    def digits_off(obj, key):  # not the currency's number of decimal places
        obj[key] = obj[key][:-1] if d else obj[key] + ".00"

    def walk_in_rental():  # customerId: required for a rental
        as_rental(e, first, ms + 3 * DAY_MS)
        e.pop("customerId", None)

    def due_before():  # lines[i].dueAt: not after occurredAt
        as_rental(e, first, ms - DAY_MS)
        e["customerId"] = "cus-000042"

    def no_payment():  # paymentMethod: required when the total is not zero
        if e["total"].strip("0.") == "":
            e["paymentMethod"] = "bitcoin"  # ... or a method not in the set
        else:
            e.pop("paymentMethod", None)

    def return_mixup():  # returnOf: only for a return / required for a return
        if first["kind"] == "return":
            first.pop("returnOf")
        else:
            first["returnOf"] = {"transactionId": uuid7(ms - DAY_MS), "lineNumber": 1}

    breakers = [
        total_off, walk_in_rental, due_before, no_payment, return_mixup,
        lambda: digits_off(e, "total"),
        lambda: digits_off(first, "unitPrice"),
        lambda: e.update(total=float(e["total"])),                     # total: not a string
        lambda: e.update(total=e["total"].replace(".", ",") if d else e["total"] + ",00"),
        lambda: e.update(occurredAt=local_time(ms, 0, with_offset=False)),   # no UTC offset
        lambda: e.update(currency=e["currency"].lower()),              # not an active ISO 4217 code
        lambda: e.update(discount=amount(100, d)),                     # discount: unknown key
        lambda: e.update(transactionId="%06d-%02d" % (rng.randrange(10**6), rng.randrange(100))),
        lambda: e.update(lines=[]),                                    # lines: empty
        lambda: e.pop("employeeId"),                                   # employeeId: missing
        lambda: e["store"].update(country="BRA"),                      # not an ISO 3166-1 alpha-2 code
        lambda: first.update(quantity=0),                              # not a positive integer
        lambda: first.update(quantity="2"),                            # not a number
        lambda: first["item"].update(format="vhs"),                    # not one of ...
        lambda: first["item"].update(kind="book", format="dvd"),       # not a format of its kind
        lambda: e["lines"].append(dict(first)),                        # duplicate line number
    ]
    rng.choice(breakers)()
    return e
