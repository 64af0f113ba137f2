#!/usr/bin/env bash
# t/it_http.sh: collectord's own HTTP/1.1 server as a client sees it, over
# raw sockets: keep-alive, pipelining, chunked bodies, 100-continue, HEAD,
# HTTP/1.0, against a real collect daemon (Kafka, registry, MinIO); and
# so_reuseport, two daemons on one port.
. "${top_srcdir:-$(dirname "$0")/..}/t/lib.sh"

P="it-http-$$"
make_topics "$P"
start_daemon http COLLECTORD_SERVER_ROLES=collect \
	COLLECTORD_TOPICS_RAW="$P.raw" COLLECTORD_TOPICS_DEAD_LETTER="$P.dlq"
wait_for 120 "[ \$(http_status $URL/readyz) = 200 ]" || bail "collectord never became ready"

python3 - "$PORT" "$top_srcdir/t/data/collect-request.json" >"$T_DIR/http.tap" <<'PY'
import socket, sys

port, body = int(sys.argv[1]), open(sys.argv[2], "rb").read()

def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    return s

def read_all(s):
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            return out
        out += d

def answers(raw):
    """Split a byte stream of HTTP answers by Content-Length."""
    res = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        n = 0
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            if k.strip().lower() == b"content-length":
                n = int(v)
        res.append((lines[0].decode(), {l.partition(b":")[0].strip().lower(): l.partition(b":")[2].strip() for l in lines[1:]}, rest[:n]))
        raw = rest[n:]
    return res

def ok(cond, name):
    print(("ok - " if cond else "not ok - ") + name)

post = b"POST /collect HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body

s = conn()
s.sendall(post * 3 + b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
a = answers(read_all(s))
ok(len(a) == 4, "pipelined: four requests in one write, four answers (%d)" % len(a))
ok(all(x[0] == "HTTP/1.1 200 OK" for x in a), "pipelined: all 200, in order")
ok(all(b'"accepted":2' in x[2] for x in a[:3]) and b"alive" in a[3][2], "pipelined: each answer is its own request's")
ok(a[-1][1].get(b"connection") == b"close", "Connection: close is honoured, then the server closes")

s = conn()
for i in range(3):
    s.sendall(post)
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    got = b""
    while len(got) < n:
        got += s.recv(n - len(got))
    ok(head.startswith(b"HTTP/1.1 200") and b'"accepted":2' in got, "keep-alive: request %d on one connection" % (i + 1))
s.close()

s = conn()
s.sendall(b"POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
first = s.recv(100)
ok(first == b"HTTP/1.1 100 Continue\r\n\r\n", "Expect: 100-continue answered before the body")
half = len(body) // 2
s.sendall(b"%x\r\n" % half + body[:half] + b"\r\n" + b"%x;ext=1\r\n" % (len(body) - half) + body[half:] + b"\r\n0\r\nX-Trailer: 1\r\n\r\n")
a = answers(read_all(s))
ok(len(a) == 1 and a[0][0] == "HTTP/1.1 200 OK" and b'"accepted":2' in a[0][2], "a chunked body in two chunks, with an extension and a trailer")

s = conn()
s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
raw = read_all(s)
head, _, rest = raw.partition(b"\r\n\r\n")
ok(head.startswith(b"HTTP/1.1 200") and b"Content-Length: 19" in head and rest == b"", "HEAD: the length of the body, no body")

s = conn()
s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
a = answers(read_all(s))
ok(len(a) == 1 and a[0][0] == "HTTP/1.1 200 OK" and a[0][1].get(b"connection") == b"close", "HTTP/1.0 without keep-alive: answered, then closed")

s = conn()
s.sendall(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n")
a = answers(read_all(s))
ok(len(a) == 2 and a[0][1].get(b"connection") == b"keep-alive", "HTTP/1.0 keep-alive: kept for the next request")

s = conn()
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
s.shutdown(socket.SHUT_WR)
a = answers(read_all(s))
ok(len(a) == 1 and a[0][0] == "HTTP/1.1 200 OK", "a client that shuts its side after the request still gets the answer")

s = conn()
s.sendall(b"\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
a = answers(read_all(s))
ok(len(a) == 1 and a[0][0] == "HTTP/1.1 200 OK", "empty lines before a request line are skipped")

s = conn()
s.sendall(b"GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
a = answers(read_all(s))
ok(len(a) == 1 and a[0][0] == "HTTP/1.1 404 Not Found" and b'"error":"not_found"' in a[0][2], "unknown path: 404 with the JSON error")

s = conn()
s.sendall(b"DELETE /collect HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
a = answers(read_all(s))
ok(len(a) == 1 and a[0][0].startswith("HTTP/1.1 405") and a[0][1].get(b"allow") == b"POST", "wrong method: 405 with Allow")
PY
while read -r line; do
	case "$line" in
	"ok - "*) ok 0 "${line#ok - }" ;;
	"not ok - "*) ok 1 "${line#not ok - }" ;;
	*) echo "# $line" ;;
	esac
done <"$T_DIR/http.tap"
is "$(grep -c '^ok - \|^not ok - ' "$T_DIR/http.tap")" 16 "every check of the client ran"

# --- so_reuseport: two processes on one port; without it the second fails
RP=$(free_port)
run_on_rp() {	# run_on_rp NAME REUSEPORT: a collect daemon on $RP, pid in RP_PID
	env COLLECTORD_SERVER_PORT="$RP" COLLECTORD_SERVER_SO_REUSEPORT="$2" COLLECTORD_SERVER_FAMILIES=holded \
		COLLECTORD_SERVER_ROLES=collect COLLECTORD_TOPICS_RAW="$P.raw" \
		COLLECTORD_TOPICS_DEAD_LETTER="$P.dlq" "$top_builddir/collectord" >>"$T_DIR/$1.log" 2>&1 &
	RP_PID=$!
	T_PIDS="$T_PIDS $RP_PID"
}
run_on_rp rp1 1
RP1=$RP_PID
wait_for 30 "curl -fsS -o /dev/null http://127.0.0.1:$RP/healthz" || bail "no daemon on $RP"
run_on_rp rp2 1
RP2=$RP_PID
wait_for 30 "grep -q 'collectord started' $T_DIR/rp2.log"
ok $? "so_reuseport = 1: a second collectord starts on the same port"
kill -0 "$RP1" 2>/dev/null && kill -0 "$RP2" 2>/dev/null
ok $? "both run"
kill "$RP1"
wait "$RP1" 2>/dev/null
is "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$RP/healthz")" 200 \
	"with the first stopped, the second still serves the port"
run_on_rp rp3 0
wait "$RP_PID"
rc=$?
ok "$([ "$rc" -ne 0 ] && echo 0 || echo 1)" "so_reuseport = 0: a third on the same port cannot listen (exit $rc)"
grep -q "cannot listen" "$T_DIR/rp3.log"
ok $? "and says so"
done_testing
