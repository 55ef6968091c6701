#!/usr/bin/env python3
"""A strict test receiver for OpenTSDB's /api/put, KairosDB's
/api/v1/datapoints and InfluxDB 2.x's /api/v2/write
(tests/integration/test_http_json.sh).

usage: json_receiver.py PORT OUTFILE [SCRIPT [TOKEN [CERT KEY]]]

Validates every POST body against the documented format:
  OpenTSDB  /api/put[?details]: a JSON array (or one object) of
            {"metric": str, "timestamp": int (s or ms), "value": number,
             "tags": {str: str, ...} with at least one tag}; names and tags
            only a-z A-Z 0-9 - _ . / and Unicode letters. Answers 204 (200
            with {"success":n,"failed":0,"errors":[]} when ?details).
  KairosDB  /api/v1/datapoints: a JSON array of {"name": str, "tags": {..}
            non-empty, "datapoints": [[ms int, number], ...], "ttl": int
            optional}. Answers 204.
  InfluxDB 2 /api/v2/write?org=&bucket=&precision=ns with
            "Authorization: Token TOKEN" (else 401 {"code":"unauthorized"}):
            line protocol, every line <measurement>[,k=v...] <fields> <ns>;
            each line is recorded as {"path","org","bucket","line"}.
            Answers 204.
With CERT and KEY it serves HTTPS.
Invalid bodies get 400 with the reason (OpenTSDB's details form). Each
accepted data point is appended to OUTFILE as one JSON line
{"path","name","tags","ts","value"}; each request as a line
{"request": path, "status": code, "auth": header, "ctype": header}.

SCRIPT is a comma-separated list of forced answers for the first requests,
e.g. "500,400": the first request gets 500 (not recorded), the second 400.
"""
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, OUT = int(sys.argv[1]), sys.argv[2]
SCRIPT = [int(x) for x in sys.argv[3].split(",")] if len(sys.argv) > 3 and sys.argv[3] else []
TOKEN = sys.argv[4] if len(sys.argv) > 4 else ""
CERT = sys.argv[5:7] if len(sys.argv) > 6 else None
# measurement (escaped , and space), tags (escaped , = space), fields, ns timestamp
LINE = re.compile(r'^(?:[^ ,\\]|\\.)+(?:,(?:[^ ,=\\]|\\.)+=(?:[^ ,=\\]|\\.)+)* '
                  r'(?:[^ ,=\\]|\\.)+=(?:-?[0-9.e+-]+i?|"(?:[^"\\]|\\.)*")'
                  r'(?:,(?:[^ ,=\\]|\\.)+=(?:-?[0-9.e+-]+i?|"(?:[^"\\]|\\.)*"))* [0-9]{19}$')
TSDB_OK = re.compile(r"^[-A-Za-z0-9_./\u0080-\U0010ffff]+$")


def record(obj):
    with open(OUT, "a") as f:
        f.write(json.dumps(obj, sort_keys=True) + "\n")


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_tags(tags, tsdb):
    if not isinstance(tags, dict) or not tags:
        return "tags must be a non-empty object"
    for k, v in tags.items():
        if not isinstance(v, str) or not k or not v:
            return "tag %r=%r: keys and values must be non-empty strings" % (k, v)
        if tsdb and not (TSDB_OK.match(k) and TSDB_OK.match(v)):
            return "tag %r=%r: invalid characters" % (k, v)
    return None


def check_tsdb(body):
    pts = body if isinstance(body, list) else [body]
    out = []
    for p in pts:
        if not isinstance(p, dict) or set(p) != {"metric", "timestamp", "value", "tags"}:
            return None, "bad data point %r" % (p,)
        if not isinstance(p["metric"], str) or not TSDB_OK.match(p["metric"]):
            return None, "invalid metric name %r" % (p["metric"],)
        ts = p["timestamp"]
        if not is_int(ts) or not (10 ** 9 <= ts < 10 ** 10 or 10 ** 12 <= ts < 10 ** 13):
            return None, "timestamp %r is not unix seconds or milliseconds" % (ts,)
        if not is_num(p["value"]):
            return None, "value %r is not a number" % (p["value"],)
        err = check_tags(p["tags"], True)
        if err:
            return None, err
        out.append({"name": p["metric"], "tags": p["tags"], "ts": ts, "value": p["value"]})
    return out, None


def check_kairos(body):
    if not isinstance(body, list):
        return None, "body must be an array"
    out = []
    for m in body:
        if not isinstance(m, dict) or not {"name", "tags", "datapoints"} <= set(m) or \
                not set(m) <= {"name", "tags", "datapoints", "ttl"}:
            return None, "bad metric %r" % (m,)
        if not isinstance(m["name"], str) or not m["name"]:
            return None, "name must be a non-empty string"
        if "ttl" in m and (not is_int(m["ttl"]) or m["ttl"] <= 0):
            return None, "ttl must be a positive integer"
        err = check_tags(m["tags"], False)
        if err:
            return None, err
        dps = m["datapoints"]
        if not isinstance(dps, list) or not dps:
            return None, "datapoints must be a non-empty array"
        for dp in dps:
            if not (isinstance(dp, list) and len(dp) == 2 and is_int(dp[0]) and
                    10 ** 12 <= dp[0] < 10 ** 13 and is_num(dp[1])):
                return None, "bad datapoint %r (want [ms, number])" % (dp,)
            out.append({"name": m["name"], "tags": m["tags"], "ts": dp[0], "value": dp[1],
                        "ttl": m.get("ttl")})
    return out, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, code, body=b""):
        self.send_response(code)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        path = self.path.split("?")[0]
        info = {"request": self.path, "auth": self.headers.get("Authorization"),
                "ctype": self.headers.get("Content-Type"), "x": self.headers.get("X-Test")}
        if path == "/api/v2/write":
            return self.influx2(raw, info)
        if SCRIPT:
            code = SCRIPT.pop(0)
            info["status"] = code
            record(info)
            return self.answer(code, b'{"error":{"code":%d,"message":"scripted"}}' % code)
        if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
            code, pts, err = 400, None, "Content-Type must be application/json"
        else:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                body, pts, err = None, None, "invalid JSON: %s" % e
            else:
                if path == "/api/put":
                    pts, err = check_tsdb(body)
                elif path == "/api/v1/datapoints":
                    pts, err = check_kairos(body)
                else:
                    pts, err = None, "no such endpoint"
            code = 400 if err else 204
        info["status"] = code
        info["error"] = err
        record(info)
        if err:
            return self.answer(400, json.dumps({"error": {"code": 400, "message": err}}).encode())
        for p in pts:
            p["path"] = path
            record(p)
        if path == "/api/put" and "details" in self.path:
            return self.answer(200, json.dumps({"success": len(pts), "failed": 0,
                                                "errors": []}).encode())
        self.answer(204)

    def influx2(self, raw, info):
        from urllib.parse import parse_qs, urlsplit
        qs = parse_qs(urlsplit(self.path).query)
        if self.headers.get("Authorization") != "Token " + TOKEN:
            info["status"] = 401
            record(info)
            return self.answer(401, b'{"code":"unauthorized","message":"unauthorized access"}')
        err = None
        if qs.get("precision") != ["ns"] or len(qs.get("org", [])) != 1 or \
                len(qs.get("bucket", [])) != 1:
            err = "want org, bucket and precision=ns in %s" % self.path
        lines = raw.decode("utf-8").split("\n")
        if lines[-1] != "":
            err = "body must end with a newline"
        for line in lines[:-1]:
            if not LINE.match(line):
                err = "unable to parse %r" % line
        info["status"] = 400 if err else 204
        info["error"] = err
        record(info)
        if err:
            return self.answer(400, json.dumps({"code": "invalid", "message": err}).encode())
        for line in lines[:-1]:
            record({"path": "/api/v2/write", "org": qs["org"][0], "bucket": qs["bucket"][0],
                    "line": line})
        self.answer(204)

    def log_message(self, *a):
        pass


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
if CERT:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT[0], CERT[1])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
