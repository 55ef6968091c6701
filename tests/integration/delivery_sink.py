#!/usr/bin/env python3
"""An HTTP write endpoint for tests/integration/test_delivery.sh.

    delivery_sink.py PORT OUT [--reject N] [--hang N] [--status CODE] [--throttle N]

Accepts POSTs (any path) and answers 204, appending each accepted body to OUT
(InfluxDB line protocol: one sample a line). Misbehaviours, by request number
(1-based, counted over every request received):
  --reject N   request N gets "400 Bad Request" with a body naming the bad
               line, and its body is written to OUT.rejected instead
  --hang N     request N is read and then never answered: the connection is
               held open without a byte until the client gives up
  --status C   every request gets status C (e.g. 503) and nothing is stored
  --throttle N request N gets "429 Too Many Requests" with "Retry-After: 2"
Every request is logged to OUT.log as "<n> <status> <bytes> <unix time>".
"""
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, out = int(sys.argv[1]), sys.argv[2]
opts = {"--reject": 0, "--hang": 0, "--status": 0, "--throttle": 0}
args = sys.argv[3:]
while args:
    opts[args[0]] = int(args[1])
    args = args[2:]
lock = threading.Lock()
count = [0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            count[0] += 1
            n = count[0]
        if n == opts["--hang"]:
            with open(out + ".log", "a") as f:
                f.write("%d hang %d\n" % (n, len(body)))
            time.sleep(3600)
            return
        if opts["--status"]:
            code = opts["--status"]
        elif n == opts["--reject"]:
            code = 400
        elif n == opts["--throttle"]:
            code = 429
        else:
            code = 204
        with lock:
            if code == 204:
                with open(out, "ab") as f:
                    f.write(body if body.endswith(b"\n") else body + b"\n")
            elif code == 400:
                with open(out + ".rejected", "ab") as f:
                    f.write(body)
            with open(out + ".log", "a") as f:
                f.write("%d %d %d %.3f\n" % (n, code, len(body), time.time()))
        if code == 400:
            self.answer(400, b'{"error":"partial write: unable to parse line 1: bad field"}')
        elif code == 429:
            self.send_response(429)
            self.send_header("Retry-After", "2")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.answer(code)


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
