# eventgen.py COUNT INVALID_RATIO SEED EXPECT FAMILY: COUNT made-up events
# of FAMILY, one JSON object a line on stdout, each meant invalid with the
# probability INVALID_RATIO; the verdict each is meant to get, "valid" or
# "invalid" a line, to the file EXPECT.  SEED, a number or "" for none,
# makes them repeatable.  scripts/generate-events runs it.
#
# What an event of a family looks like is that family's business, in
# schemas/FAMILY/generate.py, which defines:
#   setup(ctx)   takes what it may use: ctx.rng, the one random.Random of
#                the run (every draw goes through it, so that a seed gives
#                the same events); ctx.root, the repository, for data files;
#                and the shared helpers below as ctx.uuid4, ctx.ulid, ...
#   valid(ms)    one event that follows the family's contract, happened at
#                ms (milliseconds since the epoch)
#   invalid(ms)  one event that breaks one rule of the contract
# Python's standard library only.
import importlib.util
import json
import os
import random
import re
import sys
import time
import types
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def die(message):
    sys.stderr.write("eventgen: error: %s\n" % message)
    sys.exit(1)


def context(rng, root):
    """The random source, the repository root and the helpers shared by the
    families' generators, all drawing from rng."""

    def uuid4():
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def uuid7(ms):
        n = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
        return str(uuid.UUID(int=n))

    def ulid(ms):
        n = (ms << 80) | rng.getrandbits(80)
        s = "".join(CROCKFORD[(n >> (5 * i)) & 31] for i in range(25, -1, -1))
        return s if rng.random() < 0.7 else s.upper()

    def object_id(sec):
        return "%08x%010x%06x" % (sec & 0xFFFFFFFF, rng.getrandbits(40), rng.getrandbits(24))

    def some_id(ms):
        r = rng.random()
        return uuid4() if r < 0.5 else ulid(ms) if r < 0.8 else object_id(ms // 1000)

    def timestamp(ms):
        t = time.gmtime(ms / 1000)
        base = time.strftime("%Y-%m-%dT%H:%M:%S", t)
        frac = ".%03d" % (ms % 1000)
        return rng.choice([
            base + frac + "Z", base + "Z", base + "+00:00", base + frac,
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000 + 7200)) + "+02:00",
        ])

    def stamp(value, key):
        # Producers send a stamp bare, as an object, or as JSON text of a one-element array.
        r = rng.random()
        if r < 0.5:
            return value
        if r < 0.75:
            return {key: value}
        return json.dumps([{key: value}])

    return types.SimpleNamespace(rng=rng, root=root, uuid4=uuid4, uuid7=uuid7, ulid=ulid,
                                 object_id=object_id, some_id=some_id, timestamp=timestamp,
                                 stamp=stamp)


def load(family, root):
    """The generator module of family, from schemas/<family>/generate.py."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", family):
        die("family %r: not a family name (lower-case letters, digits, - and _)" % family)
    path = os.path.join(root, "schemas", family, "generate.py")
    if not os.path.isfile(path):
        die("family '%s' has no generator: %s does not exist" % (family, path))
    # The module is loaded from the source tree: leave no __pycache__ in it.
    sys.dont_write_bytecode = True
    spec = importlib.util.spec_from_file_location("eventgen_" + family.replace("-", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("setup", "valid", "invalid"):
        if not callable(getattr(module, name, None)):
            die("%s: defines no function %s()" % (path, name))
    return module


def main(argv):
    if len(argv) != 6:
        die("usage: eventgen.py COUNT INVALID_RATIO SEED EXPECT FAMILY")
    try:
        count, invalid_ratio = int(argv[1]), float(argv[2])
        seed = int(argv[3]) if argv[3] else None
    except ValueError as e:
        die("COUNT, INVALID_RATIO or SEED: not a number (%s)" % e)
    expect_path, family = argv[4], argv[5]
    rng = random.Random(seed) if seed is not None else random.Random()
    gen = load(family, ROOT)
    gen.setup(context(rng, ROOT))
    now_ms = int(time.time() * 1000)
    out = sys.stdout
    with open(expect_path, "w") as expect:
        for i in range(count):
            ms = now_ms - rng.randrange(0, 3 * 24 * 3600 * 1000)
            bad = rng.random() < invalid_ratio
            e = gen.invalid(ms) if bad else gen.valid(ms)
            out.write(json.dumps(e, ensure_ascii=False) + "\n")
            expect.write("invalid\n" if bad else "valid\n")


if __name__ == "__main__":
    main(sys.argv)
