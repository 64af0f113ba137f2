#!/usr/bin/env python3
"""t/s3_holdproxy.py: a proxy in front of S3 (MinIO) that holds PUTs.

Usage: s3_holdproxy.py PORT UPSTREAM DIR MARKER

Listens on 127.0.0.1:PORT and forwards every request to UPSTREAM
(http://host:port) with its headers as received, Host included, so that a
SigV4 signature made for the proxy's address still verifies.  A PUT whose
path holds MARKER is held while DIR/hold exists: the proxy writes
DIR/held (its path) once it holds one, forwards it when DIR/hold is
removed, and writes the upstream's status to DIR/released.  Everything
else goes through at once.  It lets a test make a writer's PUT land after
another writer's, which is the race conditional writes must close.
"""
import http.client
import http.server
import os
import sys
import time
import urllib.parse

PORT, UPSTREAM, DIR, MARKER = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
UP = urllib.parse.urlsplit(UPSTREAM)


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        held = self.command == "PUT" and MARKER in self.path and os.path.exists(
            os.path.join(DIR, "hold"))
        if held:
            with open(os.path.join(DIR, "held"), "w") as f:
                f.write(self.path + "\n")
            while os.path.exists(os.path.join(DIR, "hold")):
                time.sleep(0.05)
        conn = http.client.HTTPConnection(UP.hostname, UP.port, timeout=60)
        # Expect is not signed, and the body is here already.
        headers = {k: v for k, v in self.headers.items() if k.lower() != "expect"}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if held:
            with open(os.path.join(DIR, "released"), "w") as f:
                f.write("%d\n" % resp.status)
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = forward


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Proxy).serve_forever()
