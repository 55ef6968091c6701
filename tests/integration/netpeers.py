# Test peers for tests/integration/test_net.sh, all in one process:
#   slow HTTP   SLOW_PORT   answers "slow ok" after SLOW seconds (threaded)
#   hold TCP    HOLD_PORT   accepts, never answers; writes "closed <n>" to
#                           HOLD_LOG when a client closes (n: seconds it held)
#   unix        UNIX_PATH   sends "hello unix\n", then closes
#   udp echo    UDP_PORT    sends each datagram back upper-cased
# usage: netpeers.py SLOW_PORT SLOW HOLD_PORT HOLD_LOG UNIX_PATH UDP_PORT
import http.server, os, socket, socketserver, sys, threading, time

slow_port, slow, hold_port, hold_log, unix_path, udp_port = sys.argv[1:7]


class Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(float(slow))
        body = b"slow ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Test", "yes")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def hold():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(hold_port)))
    s.listen(16)
    while True:
        c, _ = s.accept()

        def wait(c=c, t0=time.time()):
            while c.recv(4096):
                pass
            with open(hold_log, "a") as f:
                f.write("closed %.2f\n" % (time.time() - t0))
            c.close()

        threading.Thread(target=wait, daemon=True).start()


def unix():
    if os.path.exists(unix_path):
        os.unlink(unix_path)
    s = socket.socket(socket.AF_UNIX)
    s.bind(unix_path)
    s.listen(16)
    while True:
        c, _ = s.accept()
        c.sendall(b"hello unix\r\n")
        c.close()


def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", int(udp_port)))
    while True:
        d, a = s.recvfrom(65536)
        s.sendto(d.upper(), a)


for f in (hold, unix, udp):
    threading.Thread(target=f, daemon=True).start()
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(slow_port)), Slow)
srv.daemon_threads = True
srv.serve_forever()
