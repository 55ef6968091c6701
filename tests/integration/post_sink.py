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
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, OUT = int(sys.argv[1]), sys.argv[2]
TLS = sys.argv[3] if len(sys.argv) > 3 else ""
lock = threading.Lock()
count = [0]
ctx = None
if TLS:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(TLS, "server.pem"), os.path.join(TLS, "server.key"))
    ctx.load_verify_locations(os.path.join(TLS, "ca.pem"))
    ctx.verify_mode = ssl.CERT_REQUIRED


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        if ctx is not None:
            # The handshake in the handler's thread; a refused client gets
            # the alert, and what it sent meanwhile is read before closing
            # (a TLS 1.3 client sends its request before it learns of it).
            tls = ctx.wrap_socket(self.request, server_side=True, do_handshake_on_connect=False)
            try:
                tls.do_handshake()
            except (ssl.SSLError, OSError) as e:
                with lock, open(os.path.join(OUT, "refused.log"), "a") as f:
                    f.write("%s\n" % e)
                raw = socket.fromfd(tls.fileno(), socket.AF_INET, socket.SOCK_STREAM)
                raw.settimeout(2)
                try:
                    while raw.recv(65536):
                        pass
                except OSError:
                    pass
                raw.close()
                raise
            self.request = self.connection = tls
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


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a refused client certificate: go on serving


os.makedirs(OUT, exist_ok=True)
Server(("127.0.0.1", PORT), Handler).serve_forever()
