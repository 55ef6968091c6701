# Test servers for tests/integration/test_docker_k8s.sh, answering recorded
# documents (tests/fixtures/docker, tests/fixtures/k8s):
#
#   apipeers.py docker SOCKET FIXDIR LOG
#     The Docker Engine API over HTTP on a unix socket. GET /containers/json
#     answers FIXDIR/containers.json; GET /containers/<id>/stats answers
#     FIXDIR/stats_<name>.json for a listed container with such a file, else
#     404 as dockerd does for a container that is gone. With one-shot=true
#     the answer has an empty precpu_stats (as dockerd >= API 1.41) and the
#     container's CPU counters advance by 50 ms of 2 CPU-seconds per request
#     (5% of one CPU with online_cpus 2). Every request line goes to LOG.
#
#   apipeers.py kubelet PORT TLSDIR SUMMARY
#     The kubelet's HTTPS port on 127.0.0.1: server.pem/server.key of TLSDIR
#     (made by lib.sh's tls_certs), client certificates required and
#     verified against TLSDIR/ca.pem; GET /stats/summary answers the SUMMARY
#     file, anything else 404.
import http.server, json, os, socketserver, sys, threading

import mtls


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status, body, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def docker(sock_path, fixdir, log):
    containers = json.load(open(os.path.join(fixdir, "containers.json")))
    by_id = {c["Id"]: c["Names"][0].lstrip("/") for c in containers}
    counts = {}
    lock = threading.Lock()

    class Docker(Quiet):
        def address_string(self):
            return "unix"

        def do_GET(self):
            with lock, open(log, "a") as f:
                f.write(self.path + "\n")
            path, _, query = self.path.partition("?")
            if path in ("/containers/json", "/v1.41/containers/json"):
                return self.answer(200, json.dumps(containers).encode())
            parts = path.split("/")
            if len(parts) == 4 and parts[1] == "containers" and parts[3] == "stats":
                name = by_id.get(parts[2])
                f = name and os.path.join(fixdir, "stats_%s.json" % name)
                if not f or not os.path.exists(f):
                    msg = {"message": "No such container: %s" % parts[2]}
                    return self.answer(404, json.dumps(msg).encode())
                st = json.load(open(f))
                if "one-shot=true" in query:
                    with lock:
                        n = counts[name] = counts.get(name, 0) + 1
                    st["precpu_stats"] = {"cpu_usage": {"total_usage": 0}, "throttling_data": {}}
                    st["cpu_stats"]["cpu_usage"]["total_usage"] += n * 50000000
                    st["cpu_stats"]["system_cpu_usage"] += n * 2000000000
                    st["cpu_stats"]["online_cpus"] = 2
                return self.answer(200, json.dumps(st).encode())
            self.answer(404, b'{"message":"page not found"}')

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    if os.path.exists(sock_path):
        os.unlink(sock_path)
    Server(sock_path, Docker).serve_forever()


def kubelet(port, tlsdir, summary):
    body = open(summary, "rb").read()

    class Kubelet(Quiet):
        def setup(self):
            mtls.handshake(self, ctx)  # a refused client gets the alert, as from a kubelet
            super().setup()

        def do_GET(self):
            if self.path == "/stats/summary":
                return self.answer(200, body)
            self.answer(404, b"404 page not found\n", "text/plain")

    ctx = mtls.server_context(tlsdir)
    mtls.Server(("127.0.0.1", int(port)), Kubelet).serve_forever()


if sys.argv[1] == "docker":
    docker(*sys.argv[2:5])
else:
    kubelet(*sys.argv[2:5])
