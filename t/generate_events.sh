#!/usr/bin/env bash
# t/generate_events.sh: scripts/generate-events --family makes up events
# that follow their family's contract.  A checker written from the rules
# of schemas/clickstream/README.md and schemas/retail/README.md (verdicts
# only, not the error texts) must first agree with every golden case of
# schemas/*/data/ (valid.jsonl accepted, invalid.jsonl refused, except the
# rare cases it says it leaves to the codec); then every made-up event
# meant valid must pass it and every one meant invalid must fail it, for
# several seeds.  Holded's made-up events stay those of before families
# (same seed, same events).  No services, no build.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
GEN=${GENERATE_EVENTS:-$top_srcdir/scripts/generate-events}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# shellcheck source=t/tap.sh
. "$top_srcdir/t/tap.sh"

cat >"$TMP/check.py" <<'PY'
# check.py FAMILY CURRENCIES MODE FILE [EXPECT]: MODE golden checks the
# {"event", "enriched"|"error"} cases of FILE; MODE made checks the events
# of FILE (one a line) against the verdicts of EXPECT.  Prints one line per
# disagreement; exit 1 if any.
import json, math, re, socket, sys

family, currencies, mode, path = sys.argv[1:5]
DIGITS = {}
for line in open(currencies, encoding="utf-8"):
    f = line.split("#", 1)[0].split()
    if len(f) == 2:
        DIGITS[f[0]] = int(f[1])


class Bad(Exception):
    pass


def dup_hook(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise Bad(k + ": duplicate key")
        seen[k] = v
    return seen


TS = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
                r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$")
MDAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def instant(v, path, need_offset):
    """(seconds, microseconds) since the epoch, or raise."""
    if v is None:
        raise Bad(path + ": missing")
    if not isinstance(v, str):
        raise Bad(path + ": not a string")
    if v == "":
        raise Bad(path + ": empty")
    m = TS.match(v)
    if not m:
        raise Bad(path + ": not an RFC 3339 timestamp")
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if not (1 <= mo <= 12 and 1 <= d <= MDAYS[mo - 1] + (mo == 2 and leap) and h <= 23 and mi <= 59 and s <= 60):
        raise Bad(path + ": not an RFC 3339 timestamp")
    off = 0
    if m.group(9):
        oh, om = int(m.group(10)), int(m.group(11) or 0)
        if oh > 23 or om > 59:
            raise Bad(path + ": not an RFC 3339 timestamp")
        off = (oh * 60 + om) * (1 if m.group(9) == "+" else -1)
    elif not m.group(8) and need_offset:
        raise Bad(path + ": no UTC offset")
    days = (y - 1970) * 365 + sum(1 for yy in range(1970, y) if yy % 4 == 0 and (yy % 100 or yy % 400 == 0))
    days += sum(MDAYS[:mo - 1]) + (mo > 2 and leap) + d - 1
    usec = int(((m.group(7) or "") + "000000")[:6])
    return (days * 86400 + h * 3600 + mi * 60 + s - off * 60, usec)


def string(v, path, required=True, empty_ok=False, maxlen=None):
    if v is None:
        if required:
            raise Bad(path + ": missing")
        return None
    if not isinstance(v, str):
        raise Bad(path + ": not a string")
    if v == "" and not empty_ok:
        raise Bad(path + ": empty")
    if maxlen is not None and len(v.encode()) > maxlen:
        raise Bad(path + ": longer than %d bytes" % maxlen)
    return v


def obj(v, path, required=True):
    if v is None:
        if required:
            raise Bad(path + ": missing")
        return None
    if not isinstance(v, dict):
        raise Bad(path + ": not an object")
    return v


def only(o, keys, prefix):
    for k in o:
        if k not in keys:
            raise Bad(prefix + k + ": unknown key")


def integer(v, path, required, hi=2**53 - 1):
    if v is None:
        if required:
            raise Bad(path + ": missing")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
        raise Bad(path + ": not an integer")
    if v < 0:
        raise Bad(path + ": not a non-negative integer")
    if v > hi:
        raise Bad(path + ": out of range")
    return int(v)


def depth_ok(v, path, level=1):
    if level > 64:
        raise Bad(path + ": nested deeper than 64 levels")
    if isinstance(v, float) and not math.isfinite(v):
        raise Bad(path + ": number out of range")
    for x in (v.values() if isinstance(v, dict) else v if isinstance(v, list) else []):
        depth_ok(x, path, level + 1)


def clickstream(e):
    obj(e, "event")
    if not isinstance(e, dict):
        raise Bad("event: not an object")
    integer(e.get("id"), "id", True)
    string(e.get("type"), "type")
    string(e.get("package_id"), "package_id")
    ev = obj(e.get("event"), "event")
    string(ev.get("user_agent"), "event.user_agent", empty_ok=True)
    ip = string(ev.get("ip"), "event.ip")
    for fam in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(fam, ip)
            break
        except OSError:
            pass
    else:
        raise Bad("event.ip: not an IP address")
    integer(ev.get("customer_id"), "event.customer_id", False)
    instant(ev.get("timestamp"), "event.timestamp", False)
    for k in ("page", "query", "referrer"):
        string(ev.get(k), "event." + k, required=False, empty_ok=True)
    for k in ("product", "position"):
        integer(ev.get(k), "event." + k, False)
    for k, v in ev.items():
        depth_ok(v, "event." + k)
    only(e, ("id", "type", "package_id", "event"), "")


DECIMAL = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]+)?$")
HEX = "0123456789abcdefABCDEF"
CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz")


def an_id(v, path):
    string(v, path)
    bare = v[1:-1] if len(v) == 38 and v[0] == "{" and v[-1] == "}" else v
    if len(bare) == 36 and all(bare[i] == "-" for i in (8, 13, 18, 23)):
        bare = bare.replace("-", "")
        if len(bare) == 32 and all(c in HEX for c in bare):
            return
    elif len(v) in (32, 24) and all(c in HEX for c in v):
        return
    elif len(v) == 26 and all(c in CROCKFORD for c in v) and v[0] in "01234567":
        return
    raise Bad(path + ": not a UUID, ULID or ObjectId")


def decimal(v, path):
    string(v, path)
    neg = v.startswith("-")
    m = DECIMAL.match(v[1:] if neg else v)
    if not m:
        raise Bad(path + ": not a decimal amount")
    if neg:
        raise Bad(path + ": negative")
    if len(m.group(1)) > 12:
        raise Bad(path + ": out of range")
    return m.group(1), (m.group(2) or "")[1:]


def posint(v, path, required=True):
    if v is None:
        if required:
            raise Bad(path + ": missing")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Bad(path + ": not a number")
    if (isinstance(v, float) and not v.is_integer()) or v < 1:
        raise Bad(path + ": not a positive integer")
    if v > 9999:
        raise Bad(path + ": out of range")
    return int(v)


def one_of(v, path, values, required=True):
    s = string(v, path, required=required)
    if s is not None and s not in values:
        raise Bad(path + ": not one of " + ", ".join(values))
    return s


def minor(text, digits):
    units, frac = text
    return int(units) * 10**digits + (int(frac) if frac else 0)


def retail(e):
    if not isinstance(e, dict):
        raise Bad("event: not an object")
    an_id(e.get("transactionId"), "transactionId")
    at = instant(e.get("occurredAt"), "occurredAt", True)
    st = obj(e.get("store"), "store")
    string(st.get("id"), "store.id", maxlen=64)
    string(st.get("franchiseId"), "store.franchiseId", maxlen=64)
    c = string(st.get("country"), "store.country")
    if not re.fullmatch(r"[A-Z]{2}", c):
        raise Bad("store.country: not an ISO 3166-1 alpha-2 code")
    only(st, ("id", "franchiseId", "country"), "store.")
    string(e.get("employeeId"), "employeeId", maxlen=64)
    string(e.get("customerId"), "customerId", required=False, maxlen=64)
    cur = string(e.get("currency"), "currency")
    if cur not in DIGITS:
        raise Bad("currency: not an active ISO 4217 code")
    one_of(e.get("paymentMethod"), "paymentMethod",
           ["cash", "debit_card", "credit_card", "pix", "voucher", "store_credit"], required=False)
    total = decimal(e.get("total"), "total")
    lines = e.get("lines")
    if lines is None:
        raise Bad("lines: missing")
    if not isinstance(lines, list):
        raise Bad("lines: not an array")
    if not lines:
        raise Bad("lines: empty")
    parsed = []
    for i, l in enumerate(lines):
        p = "lines[%d]" % i
        if not isinstance(l, dict):
            raise Bad(p + ": not an object")
        num = posint(l.get("lineNumber"), p + ".lineNumber")
        kind = one_of(l.get("kind"), p + ".kind", ["sale", "rental", "return"])
        it = obj(l.get("item"), p + ".item")
        string(it.get("id"), p + ".item.id", maxlen=64)
        ikind = one_of(it.get("kind"), p + ".item.kind", ["book", "film", "series"])
        fmt = one_of(it.get("format"), p + ".item.format", ["hardcover", "paperback", "dvd", "blu_ray"], required=False)
        string(it.get("title"), p + ".item.title", required=False)
        only(it, ("id", "kind", "format", "title"), p + ".item.")
        q = posint(l.get("quantity"), p + ".quantity")
        price = decimal(l.get("unitPrice"), p + ".unitPrice")
        due = None if l.get("dueAt") is None else instant(l["dueAt"], p + ".dueAt", True)
        ro = obj(l.get("returnOf"), p + ".returnOf", required=False)
        if ro is not None:
            an_id(ro.get("transactionId"), p + ".returnOf.transactionId")
            posint(ro.get("lineNumber"), p + ".returnOf.lineNumber")
            only(ro, ("transactionId", "lineNumber"), p + ".returnOf.")
        only(l, ("lineNumber", "kind", "item", "quantity", "unitPrice", "dueAt", "returnOf"), p + ".")
        parsed.append((p, num, kind, ikind, fmt, q, price, due, ro))
    if "originalIds" in e:
        raise Bad("originalIds: reserved key")
    only(e, ("transactionId", "occurredAt", "store", "employeeId", "customerId", "currency",
             "paymentMethod", "total", "lines"), "")
    # Pass 2.
    d = DIGITS[cur]
    rentals = [x[0] for x in parsed if x[2] == "rental"]
    if rentals and e.get("customerId") is None:
        raise Bad("customerId: required for a rental (%s is a rental)" % rentals[0])
    if minor(total, len(total[1])) != 0 and e.get("paymentMethod") is None:
        raise Bad("paymentMethod: required when the total is not zero")
    if len(total[1]) != d:
        raise Bad("total: not the currency's number of decimal places")
    seen, total_minor = {}, 0
    for p, num, kind, ikind, fmt, q, price, due, ro in parsed:
        if num in seen:
            raise Bad(p + ".lineNumber: duplicate line number")
        seen[num] = p
        if fmt is not None and fmt not in {"book": ("hardcover", "paperback")}.get(ikind, ("dvd", "blu_ray")):
            raise Bad(p + ".item.format: not a format of its kind")
        if len(price[1]) != d:
            raise Bad(p + ".unitPrice: not the currency's number of decimal places")
        if kind == "rental" and due is None:
            raise Bad(p + ".dueAt: required for a rental")
        if kind != "rental" and due is not None:
            raise Bad(p + ".dueAt: only for a rental")
        if due is not None and due <= at:
            raise Bad(p + ".dueAt: not after occurredAt")
        if kind == "return" and ro is None:
            raise Bad(p + ".returnOf: required for a return")
        if kind != "return" and ro is not None:
            raise Bad(p + ".returnOf: only for a return")
        total_minor += q * minor(price, d)
    if total_minor != minor(total, d):
        raise Bad("total: not the sum of the lines")


CHECK = {"clickstream": clickstream, "retail": retail}[family]


def verdict(text):
    try:
        CHECK(json.loads(text, object_pairs_hook=dup_hook))
        return "valid", ""
    except Bad as b:
        return "invalid", str(b)


bad = 0
if mode == "golden":
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        case = json.loads(line)
        want = "invalid" if "error" in case else "valid"
        got, why = verdict(json.dumps(case["event"]))
        if got != want:
            bad += 1
            print("%s:%d %r: checker says %s %s, golden says %s %s"
                  % (path, n, case["name"], got, why, want, case.get("error", "")))
else:
    expect = open(sys.argv[5]).read().split()
    for n, (line, want) in enumerate(zip(open(path, encoding="utf-8"), expect), 1):
        got, why = verdict(line)
        if got != want:
            bad += 1
            print("event %d meant %s, is %s %s: %s" % (n, want, got, why, line.strip()[:400]))
sys.exit(1 if bad else 0)
PY

CUR=$top_srcdir/schemas/retail/currencies.txt
for fam in clickstream retail; do
	for kind in valid invalid; do
		out=$(python3 "$TMP/check.py" "$fam" "$CUR" golden "$top_srcdir/schemas/$fam/data/$kind.jsonl" 2>&1)
		ok $? "the checker agrees with every case of schemas/$fam/data/$kind.jsonl" "$out"
	done
	for seed in 1 2 3; do
		"$GEN" --family "$fam" --dry-run --count 400 --invalid-ratio 0.3 --seed "$seed" \
			--keep "$TMP/$fam.jsonl" >/dev/null 2>"$TMP/err"
		ok $? "generate-events --family $fam --dry-run --seed $seed runs" "$(cat "$TMP/err")"
		out=$(python3 "$TMP/check.py" "$fam" "$CUR" made "$TMP/$fam.jsonl" "$TMP/$fam.jsonl.expect" 2>&1 | head -n 20)
		ok "$([ -z "$out" ]; echo $?)" "seed $seed: every made-up $fam event gets the verdict it was made for" "$out"
		n_valid=$(grep -c '^valid' "$TMP/$fam.jsonl.expect")
		n_invalid=$(grep -c '^invalid' "$TMP/$fam.jsonl.expect")
		ok "$([ "$n_valid" -gt 200 ] && [ "$n_invalid" -gt 60 ]; echo $?)" \
			"seed $seed: both kinds made ($n_valid valid, $n_invalid invalid)"
	done
done

# Every breaker of a family breaks a rule: 2000 events, all meant
# invalid, each checked on its own.
for fam in clickstream retail; do
	"$GEN" --family "$fam" --dry-run --count 2000 --invalid-ratio 1 --seed 4 --keep "$TMP/all.jsonl" >/dev/null
	out=$(python3 "$TMP/check.py" "$fam" "$CUR" made "$TMP/all.jsonl" "$TMP/all.jsonl.expect" 2>&1 | head -n 20)
	ok "$([ -z "$out" ]; echo $?)" "all-invalid $fam events are all refused" "$out"
done

# Holded: the made-up events of a seed are those the generator made before
# it had families (this digest), at a fixed clock.
mkdir -p "$TMP/clock"
echo 'import time; time.time = lambda: 1764000000.0' >"$TMP/clock/sitecustomize.py"
sum=$(PYTHONPATH=$TMP/clock "$GEN" --dry-run --count 200 --invalid-ratio 0.2 --seed 7 | sha256sum | cut -c1-16)
is_want=${HOLDED_DIGEST:-8bfcd7ec5fae0bd2}
ok "$([ "$sum" = "$is_want" ]; echo $?)" "Holded's made-up events are unchanged" "digest $sum, want $is_want"

# A family that does not exist is refused by name.
out=$("$GEN" --family nosuch --dry-run 2>&1)
st=$?
ok "$([ "$st" -ne 0 ] && printf '%s' "$out" | grep -q "no family 'nosuch'"; echo $?)" \
	"--family nosuch is refused with its name" "$out"

done_testing
