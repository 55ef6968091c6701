#!/usr/bin/env python3
"""Backends for tests/integration/test_routing.sh, one per process so a test
can stop and restart each on its own port.

usage: route_peers.py tcp PORT OUTFILE
         a line receiver (as carbon's plaintext port): every line received,
         on any connection, is appended to OUTFILE as it arrives.
       route_peers.py http PORT OUTFILE STATUS
         an HTTP receiver: each POST is answered STATUS; with a 2xx its body
         lines are appended to OUTFILE, otherwise only "#STATUS path" is.
"""
import http.server
import socket
import socketserver
import sys
import threading

lock = threading.Lock()


def append(path, data):
    with lock, open(path, "ab") as f:
        f.write(data)


def tcp(port, out):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)

    def serve(c):
        pending = b""
        while True:
            data = c.recv(65536)
            if not data:
                break
            pending += data
            lines, sep, pending = pending.rpartition(b"\n")
            if sep:
                append(out, lines + b"\n")
        c.close()

    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def http_peer(port, out, status):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if 200 <= status < 300:
                append(out, body if body.endswith(b"\n") else body + b"\n")
            else:
                append(out, ("#%d %s\n" % (status, self.path)).encode())
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    Server(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    kind, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    open(out, "ab").close()
    if kind == "tcp":
        tcp(port, out)
    else:
        http_peer(port, out, int(sys.argv[4]))
