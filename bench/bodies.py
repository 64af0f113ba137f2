"""bench/bodies.py: request bodies for the enrich benchmarks.

Batches of the contract's first example event, each event with a message
id of its own: the id is the Holded family's dedup key, and the enricher
lands an id it has seen before in no sink, so copies of one event would
measure the ledger dropping duplicates, not the sinks.  The ids are a
random prefix of the run and a counter, in canonical UUID form.
"""
import json
import uuid


class Bodies:
    def __init__(self, path, batch):
        ev = json.load(open(path))[0]
        key = next(k for k in ev["attributes"] if k.lower().endswith("messageidstamp"))
        ev["attributes"][key] = "@ID@"
        self.head, self.tail = json.dumps(ev, separators=(",", ":")).encode().split(b'"@ID@"')
        self.prefix = str(uuid.uuid4())[:24].encode()
        self.batch = batch
        self.n = 0

    def next(self):
        """The next batch, as JSON bytes."""
        parts = []
        for _ in range(self.batch):
            parts.append(b'%s"%s%012x"%s' % (self.head, self.prefix, self.n, self.tail))
            self.n += 1
        return b"[" + b",".join(parts) + b"]"
