#!/usr/bin/env python3
"""A strict test receiver for Datadog's HTTP intake (tests/integration/test_datadog.sh).

usage: dd_receiver.py PORT OUTFILE API_KEY [SCRIPT]

Every POST must carry "DD-API-KEY: API_KEY" (else 403 {"errors":["Forbidden"]},
as the real intake answers a bad key) and Content-Type application/json; a
body with Content-Encoding gzip or deflate is decompressed first. The body is
then validated against the documented format of its endpoint:

  /api/v1/series    {"series": [{"metric", "points": [[ts, value], ...],
                    "type": "gauge"|"rate"|"count", "interval": int (required
                    for rate and count), "host": str, "tags": [str]}]}
                    -> 202 {"status": "ok"}
  /api/v2/series    {"series": [{"metric", "type": 0..3, "points":
                    [{"timestamp": int, "value": number}], "interval": int
                    (required for count and rate), "resources": [{"name",
                    "type"}], "tags": [str]}]} -> 202 {"errors": []}
  /api/v1/check_run [{"check", "host_name", "status": 0..3, "timestamp": int,
                    "message": str, "tags": [str]}] -> 202 {"status": "ok"}
  /api/v1/events    {"title", "text", "date_happened": int, "host", "tags",
                    "alert_type": info|warning|error|success|...}
                    -> 202 {"status": "ok", "event": {...}}

Metric and check names: ASCII letters, digits, "_" and ".", starting with a
letter, at most 200 characters. Tags: start with a letter, then letters,
digits, "_", "-", ":", ".", "/", at most 200 characters. Unknown fields,
wrong types, missing required fields: 400 {"errors": ["<reason>"]}; bad JSON
or a body that does not decompress: 400 too. Unknown paths: 404.

Each accepted point/check/event is appended to OUTFILE as one JSON line
({"path", "metric", "host", "tags", "type", "interval", "ts", "value"} for
series, the object itself plus "path" for checks and events); each request
as {"request", "status", "error", "encoding", "key_ok"}.

SCRIPT is a comma-separated list of forced answers for the first requests,
e.g. "500,429": the first request gets 500, the second 429 (not recorded as
data).
"""
import gzip
import json
import re
import sys
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, OUT, KEY = int(sys.argv[1]), sys.argv[2], sys.argv[3]
SCRIPT = [int(x) for x in sys.argv[4].split(",")] if len(sys.argv) > 4 and sys.argv[4] else []
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,199}$")
TAG = re.compile(r"^[^\W\d_][\w\-:./]*$")
ALERT = {"error", "warning", "info", "success", "user_update", "recommendation", "snapshot"}


class Bad(Exception):
    pass


def record(obj):
    with open(OUT, "a") as f:
        f.write(json.dumps(obj, sort_keys=True) + "\n")


def need(cond, why):
    if not cond:
        raise Bad(why)


def is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_keys(obj, required, optional, what):
    need(isinstance(obj, dict), "%s must be an object" % what)
    missing = set(required) - set(obj)
    need(not missing, "%s: missing %s" % (what, ", ".join(sorted(missing))))
    extra = set(obj) - set(required) - set(optional)
    need(not extra, "%s: unknown field %s" % (what, ", ".join(sorted(extra))))


def check_name(n, what):
    need(isinstance(n, str) and NAME.match(n), "%s %r breaks the metric name rules" % (what, n))


def check_tags(tags):
    need(isinstance(tags, list), "tags must be an array")
    for t in tags:
        need(isinstance(t, str) and len(t) <= 200 and TAG.match(t), "invalid tag %r" % (t,))
    return tags


def check_ts(ts, what):
    need(is_int(ts) and 10 ** 9 <= ts < 10 ** 10, "%s %r is not unix seconds" % (what, ts))


def series_v1(body):
    check_keys(body, ["series"], [], "payload")
    need(isinstance(body["series"], list) and body["series"], "series must be a non-empty array")
    out = []
    for s in body["series"]:
        check_keys(s, ["metric", "points"], ["type", "interval", "host", "tags"], "series")
        check_name(s["metric"], "metric")
        typ = s.get("type", "gauge")
        need(typ in ("gauge", "rate", "count"), "type %r is not gauge, rate or count" % (typ,))
        iv = s.get("interval")
        need(iv is None or (is_int(iv) and iv > 0), "interval %r is not a positive integer" % (iv,))
        need(typ == "gauge" or iv is not None, "a %s needs an interval" % typ)
        need("host" not in s or isinstance(s["host"], str), "host must be a string")
        tags = check_tags(s.get("tags", []))
        need(isinstance(s["points"], list) and s["points"], "points must be a non-empty array")
        for p in s["points"]:
            need(isinstance(p, list) and len(p) == 2 and is_num(p[1]), "bad point %r" % (p,))
            check_ts(p[0], "point timestamp")
            out.append({"metric": s["metric"], "host": s.get("host"), "tags": tags, "type": typ,
                        "interval": iv, "ts": p[0], "value": p[1]})
    return out


def series_v2(body):
    check_keys(body, ["series"], [], "payload")
    need(isinstance(body["series"], list) and body["series"], "series must be a non-empty array")
    out = []
    for s in body["series"]:
        check_keys(s, ["metric", "points"], ["type", "interval", "resources", "tags", "unit",
                                             "source_type_name", "metadata"], "series")
        check_name(s["metric"], "metric")
        typ = s.get("type", 0)
        need(is_int(typ) and 0 <= typ <= 3, "type %r is not 0..3" % (typ,))
        iv = s.get("interval")
        need(iv is None or (is_int(iv) and iv > 0), "interval %r is not a positive integer" % (iv,))
        need(typ not in (1, 2) or iv is not None, "a count or rate needs an interval")
        host = None
        for r in s.get("resources", []):
            check_keys(r, ["name", "type"], [], "resource")
            need(isinstance(r["name"], str) and isinstance(r["type"], str), "bad resource %r" % r)
            if r["type"] == "host":
                host = r["name"]
        tags = check_tags(s.get("tags", []))
        need(isinstance(s["points"], list) and s["points"], "points must be a non-empty array")
        for p in s["points"]:
            check_keys(p, ["timestamp", "value"], [], "point")
            check_ts(p["timestamp"], "point timestamp")
            need(is_num(p["value"]), "value %r is not a number" % (p["value"],))
            out.append({"metric": s["metric"], "host": host, "tags": tags, "type": typ,
                        "interval": iv, "ts": p["timestamp"], "value": p["value"]})
    return out


def check_run(body):
    need(isinstance(body, list) and body, "a service check payload is a non-empty array")
    for c in body:
        check_keys(c, ["check", "host_name", "status", "tags"], ["timestamp", "message"],
                   "service check")
        check_name(c["check"], "check")
        need(isinstance(c["host_name"], str), "host_name must be a string")
        need(is_int(c["status"]) and 0 <= c["status"] <= 3, "status %r is not 0..3" % c["status"])
        check_tags(c["tags"])
        if "timestamp" in c:
            check_ts(c["timestamp"], "timestamp")
        need(isinstance(c.get("message", ""), str), "message must be a string")
    return body


def event(body):
    check_keys(body, ["title", "text"], ["date_happened", "host", "tags", "alert_type",
                                         "priority", "aggregation_key", "source_type_name",
                                         "related_event_id", "device_name"], "event")
    need(isinstance(body["title"], str) and body["title"], "title must be a non-empty string")
    need(isinstance(body["text"], str) and len(body["text"]) <= 4000,
         "text must be a string of at most 4000 characters")
    if "date_happened" in body:
        check_ts(body["date_happened"], "date_happened")
    need(isinstance(body.get("host", ""), str), "host must be a string")
    check_tags(body.get("tags", []))
    need(body.get("alert_type", "info") in ALERT, "bad alert_type %r" % body.get("alert_type"))
    return [body]


ENDPOINTS = {"/api/v1/series": series_v1, "/api/v2/series": series_v2,
             "/api/v1/check_run": check_run, "/api/v1/events": event}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        path = self.path.split("?")[0]
        enc = self.headers.get("Content-Encoding")
        info = {"request": self.path, "encoding": enc,
                "key_ok": self.headers.get("DD-API-KEY") == KEY}
        if SCRIPT:
            code = SCRIPT.pop(0)
            info["status"] = code
            record(info)
            return self.answer(code, {"errors": ["scripted %d" % code]})
        if not info["key_ok"]:
            info["status"] = 403
            record(info)
            return self.answer(403, {"errors": ["Forbidden"]})
        if path not in ENDPOINTS:
            info["status"] = 404
            record(info)
            return self.answer(404, {"errors": ["Not found"]})
        try:
            need(self.headers.get("Content-Type", "").split(";")[0] == "application/json",
                 "Content-Type must be application/json")
            if enc == "gzip":
                raw = gzip.decompress(raw)
            elif enc == "deflate":
                raw = zlib.decompress(raw)
            else:
                need(enc in (None, "identity"), "unsupported Content-Encoding %r" % enc)
            try:
                body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise Bad("Payload is not a valid JSON: %s" % e)
            items = ENDPOINTS[path](body)
        except (Bad, OSError, EOFError, zlib.error) as e:
            info["status"], info["error"] = 400, str(e)
            record(info)
            return self.answer(400, {"errors": [str(e)]})
        info["status"] = 202
        record(info)
        for it in items:
            it["path"] = path
            record(it)
        if path == "/api/v2/series":
            return self.answer(202, {"errors": []})
        if path == "/api/v1/events":
            return self.answer(202, {"status": "ok", "event": items[0]})
        self.answer(202, {"status": "ok"})

    def log_message(self, *a):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
