#!/usr/bin/env python3
"""A tiny forward HTTP proxy for tests: answers absolute-form requests (GET http://host/...),
sends them on to --target (whatever host they named), streams the answer back, and counts
them. CONNECT host:port (what clients send for https) opens a tunnel to --target's host and
port, whatever they named, and counts too. GET /_count (origin-form) returns the count.
Loopback only; standard library only."""
import argparse
import http.client
import select
import socket
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

    def do_CONNECT(self):
        global COUNT
        with LOCK:
            COUNT += 1
        t = urllib.parse.urlsplit(ARGS.target)
        try:
            up = socket.create_connection((t.hostname, t.port), timeout=30)
        except OSError as e:
            self.send_error(502, "cannot reach the target: %s" % e)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        a = self.connection
        ends = [a, up]
        try:
            for _ in range(10 ** 7):  # bounded; a tunnel ends when either side closes
                ready, _, _ = select.select(ends, [], [], 60)
                if not ready:
                    break
                done = False
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        done = True
                        break
                    (up if s is a else a).sendall(data)
                if done:
                    break
        except OSError:
            pass
        finally:
            up.close()
            self.close_connection = True


ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--target", required=True)
ARGS = ap.parse_args()
srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
print("ready", flush=True)
srv.serve_forever()
