"""Mutual TLS for the Python test servers (post_sink.py, apipeers.py).

    import mtls
    ctx = mtls.server_context(TLSDIR)     # TLSDIR made by lib.sh's tls_certs
    class Handler(BaseHTTPRequestHandler):
        def setup(self):
            mtls.handshake(self, ctx)      # before super().setup()
            super().setup()
    mtls.Server(("127.0.0.1", PORT), Handler).serve_forever()

The handshake runs in the handler's thread, so one slow or refused client
does not hold up the others. A client without a certificate signed by the
test CA gets the TLS alert, as from a server with mutual TLS, and not a
connection reset.
"""
import os
import socket
import ssl
from http.server import ThreadingHTTPServer


def server_context(tlsdir):
    """A server context with TLSDIR/server.pem and server.key that requires
    a client certificate signed by TLSDIR/ca.pem."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(tlsdir, "server.pem"), os.path.join(tlsdir, "server.key"))
    ctx.load_verify_locations(os.path.join(tlsdir, "ca.pem"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def handshake(handler, ctx, on_refused=None):
    """The TLS handshake of handler's connection; on success the handler
    reads and writes through TLS. On failure on_refused(error) is called,
    what the client sent meanwhile is read before closing (a TLS 1.3 client
    sends its request before it learns of the alert), and the error is
    raised again for the server's handle_error."""
    tls = ctx.wrap_socket(handler.request, server_side=True, do_handshake_on_connect=False)
    try:
        tls.do_handshake()
    except (ssl.SSLError, OSError) as e:
        if on_refused is not None:
            on_refused(e)
        raw = socket.fromfd(tls.fileno(), socket.AF_INET, socket.SOCK_STREAM)
        raw.settimeout(2)
        try:
            while raw.recv(65536):
                pass
        except OSError:
            pass
        raw.close()
        raise
    handler.request = handler.connection = tls


class Server(ThreadingHTTPServer):
    """A threading HTTP server that goes on serving after a refused client
    (its handshake error is not printed)."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        pass
