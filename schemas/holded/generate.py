# Made-up Holded events for scripts/generate-events (scripts/eventgen.py
# runs this module), following the contract of README.md ("Validation
# rules") and schemas/holded/holded.proto.
#   valid    ids as UUIDs, ULIDs and ObjectIds, stamps as strings, objects
#            and JSON-in-a-string, timestamps with and without offsets
#   invalid  a valid event that misses a field or carries a bad id, amount
#            or stamp
import json

P = "X-Message-Stamp-Holded\\"
CTX = P + "Shared\\Infrastructure\\Messenger\\Stamp\\NewContextStamp"
TS = P + "Core\\Messaging\\Messenger\\Stamp\\TimestampStamp"
MID = P + "Core\\Messaging\\Messenger\\Stamp\\MessageIdStamp"
AMP = P + "Shared\\Infrastructure\\Messenger\\Stamp\\AmplitudeTrackStamp"
TYPES = [
    ("Holded\\Invoicing\\Domain\\Invoice\\Events\\InvoiceCreatedEvent", "Invoicing"),
    ("Holded\\Invoicing\\Domain\\Invoice\\Events\\InvoicePaidEvent", "Invoicing"),
    ("Holded\\Wallet\\Domain\\Transaction\\Events\\WalletTransactionCreatedEvent", "Wallet"),
    ("Holded\\Accounting\\Domain\\Entry\\Events\\EntryBookedEvent", "Accounting"),
    ("Holded\\Crm\\Domain\\Contact\\Events\\ContactUpdatedEvent", "Crm"),
]
rng = uuid4 = some_id = timestamp = stamp = None  # set by setup()


def setup(ctx):
    """Take the run's random source and the shared helpers of eventgen.py."""
    global rng, uuid4, some_id, timestamp, stamp
    rng, uuid4, some_id, timestamp, stamp = ctx.rng, ctx.uuid4, ctx.some_id, ctx.timestamp, ctx.stamp


def valid(ms):
    typ, sub = rng.choice(TYPES)
    ctx = {"accountId": some_id(ms), "userId": some_id(ms)}
    if rng.random() < 0.5:
        ctx["requestPlatform"] = rng.choice(["web", "ios", "android", "api"])
    attrs = {
        "type": typ,
        "targetSubscription": sub,
        CTX: ctx if rng.random() < 0.8 else json.dumps([ctx]),
        TS: stamp(timestamp(ms), "dispatchedAt"),
        MID: stamp(some_id(ms), "id"),
    }
    if rng.random() < 0.4:
        amp = {"id": rng.randrange(0, 10**7)}
        if rng.random() < 0.5:
            amp["trackedDevice"] = rng.choice(["android", "ios", "web"])
        attrs[AMP] = amp
    amount = round(rng.uniform(0, 5000), 2) if rng.random() < 0.8 else rng.randrange(0, 5000)
    return {"data": {"id": "%s-%06d" % (sub.lower(), rng.randrange(10**6)), "amount": amount},
            "attributes": attrs}


def invalid(ms):
    e = valid(ms)
    a = e["attributes"]
    breakers = [
        lambda: a.pop("type"),
        lambda: a.pop(TS),
        lambda: e["data"].update(amount="12,50"),
        lambda: e["data"].pop("id"),
        lambda: a.update({TS: "yesterday at noon"}),
        lambda: a.update({MID: "not-an-id"}),
        lambda: a.update({CTX: {"accountId": uuid4(), "userId": "user-42"}}),
        lambda: a.update({CTX: {"userId": uuid4()}}),
        lambda: a.update({AMP: {"id": -5}}),
        lambda: a.update({AMP: {"id": "forty-two"}}),
        lambda: a.update({"targetSubscription": 7}),
        lambda: e.update(attributes="not an object"),
        lambda: e.pop("data"),
    ]
    rng.choice(breakers)()
    return e
