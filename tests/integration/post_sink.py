#!/usr/bin/env python3
"""An HTTP(S) sink for the integration tests: it records every POST and
answers 204, so a test can count requests and read each body.

usage: post_sink.py PORT OUTDIR [TLSDIR]

Request N (from 1) is written to OUTDIR/body.N and one line
"N <unix time> <bytes> <path>" is appended to OUTDIR/requests.log (after
the body file is complete). With TLSDIR (made by lib.sh's tls_certs) the
sink speaks HTTPS with TLSDIR/server.pem and requires a client certificate
signed by TLSDIR/ca.pem: a client without one fails the handshake (and is
logged to OUTDIR/refused.log), as a server with mutual TLS would do.
"""
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

import mtls

PORT, OUT = int(sys.argv[1]), sys.argv[2]
TLS = sys.argv[3] if len(sys.argv) > 3 else ""
lock = threading.Lock()
count = [0]
ctx = mtls.server_context(TLS) if TLS else None


def refused(e):
    with lock, open(os.path.join(OUT, "refused.log"), "a") as f:
        f.write("%s\n" % e)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        if ctx is not None:
            mtls.handshake(self, ctx, refused)
        super().setup()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        with lock:
            count[0] += 1
            k = count[0]
            with open(os.path.join(OUT, "body.%d" % k), "wb") as f:
                f.write(body)
            with open(os.path.join(OUT, "requests.log"), "a") as f:
                f.write("%d %.3f %d %s\n" % (k, time.time(), len(body), self.path))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


os.makedirs(OUT, exist_ok=True)
mtls.Server(("127.0.0.1", PORT), Handler).serve_forever()
