#!/usr/bin/env python3
"""A recording HTTP proxy for the integration tests: it stands between
moonstat and a real server (Prometheus, InfluxDB) and keeps what moonstat
sent, byte for byte, so a test can check headers and the raw (compressed)
body while the real server checks and stores the data.

usage: http_recorder.py PORT UPSTREAM_PORT OUTDIR [SCRIPT]

Every request is forwarded to 127.0.0.1:UPSTREAM_PORT with its method, path,
headers and body, and the upstream's answer is passed back. For request N
(from 1) the body is written to OUTDIR/body.N and a JSON line
{"n", "method", "path", "headers": {lower-case name: value}, "status"} is
appended to OUTDIR/requests.jsonl.

SCRIPT is a comma-separated list of forced answers for the first requests,
e.g. "429,503": the first request gets 429 and the second 503 without being
forwarded (recorded all the same).
"""
import http.client
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, UPSTREAM, OUT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
SCRIPT = [int(x) for x in sys.argv[4].split(",")] if len(sys.argv) > 4 and sys.argv[4] else []
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
lock = threading.Lock()
count = [0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            count[0] += 1
            n = count[0]
        with open(os.path.join(OUT, "body.%d" % n), "wb") as f:
            f.write(body)
        forced = SCRIPT[n - 1] if n <= len(SCRIPT) else 0
        if forced:
            status, headers, rbody = forced, [("Content-Type", "text/plain")], b"forced by the test\n"
        else:
            try:
                c = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=10)
                fwd = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                c.request(self.command, self.path, body=body, headers=fwd)
                r = c.getresponse()
                status, headers, rbody = r.status, r.getheaders(), r.read()
                c.close()
            except OSError as e:
                status, headers, rbody = 502, [], str(e).encode()
        with lock, open(os.path.join(OUT, "requests.jsonl"), "a") as f:
            f.write(json.dumps({"n": n, "method": self.command, "path": self.path,
                                "headers": {k.lower(): v for k, v in self.headers.items()},
                                "status": status}, sort_keys=True) + "\n")
        self.answer(status, headers, rbody)

    do_PUT = do_POST


os.makedirs(OUT, exist_ok=True)
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
