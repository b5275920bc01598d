#!/usr/bin/env python3
"""A tiny forward HTTP proxy for tests: answers absolute-form requests (GET http://host/...),
sends them on to --target (whatever host they named), streams the answer back, and counts
them. GET /_count (origin-form) returns the count. Loopback only; standard library only."""
import argparse
import http.client
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNT = 0
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fwd %s\n" % (fmt % args))

    def _forward(self):
        global COUNT
        if self.path == "/_count":
            body = str(COUNT).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        u = urllib.parse.urlsplit(self.path)
        if not u.scheme:
            self.send_error(400, "not an absolute-form request")
            return
        with LOCK:
            COUNT += 1
        t = urllib.parse.urlsplit(ARGS.target)
        conn = http.client.HTTPConnection(t.hostname, t.port, timeout=30)
        path = u.path + ("?" + u.query if u.query else "")
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("proxy-connection", "connection", "host")}
        conn.request(self.command, path, headers=headers)
        r = conn.getresponse()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("connection", "transfer-encoding"):
                self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            while True:
                chunk = r.read(65536)
                if not chunk:
                    break
                self.wfile.write(chunk)
        conn.close()

    do_GET = _forward
    do_HEAD = _forward


ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--target", required=True)
ARGS = ap.parse_args()
srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
print("ready", flush=True)
srv.serve_forever()
