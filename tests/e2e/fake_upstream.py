#!/usr/bin/env python3
"""A registry "front" for end-to-end tests: forwards to a real registry (a docker-registry on
loopback) and injects what a real registry cannot be made to do on demand: token or Basic auth,
redirects of blob GETs to a "CDN" on a second port, and faults. Standard library only.

Usage:
  fake_upstream.py --port P --cdn-port C --backend http://127.0.0.1:B
                   [--auth none|token|basic] [--username U --password PW]
                   [--redirect-blobs] [--token-expires SECONDS]
Prints "ready" on stdout once both listeners accept. One line per request on stderr.
Listens on 127.0.0.1 only. A refused connection is simulated by stopping the process.

Registry listener (P):
  /v2/...      forwarded to the backend (method, path, query, Accept, Range, Content-Type and
               the body; never Authorization). Relayed back: status, body (streamed in 64 KiB
               chunks) and Content-Type, Content-Length, Docker-Content-Digest, ETag, Link,
               Location (backend host rewritten to this one), Docker-Distribution-API-Version,
               Content-Range, Accept-Ranges.
  /token       token endpoint for --auth token (GET with query service/scope; POST OAuth2 form).
  /_ctl/...    control API (never counted, never faulted):
      GET  /_ctl/counts          {"requests":[{"method","path","query","status","auth",
                                   "auth_ok","kind","listener","fault","range"}...],
                                  "by_kind":{"GET blob","HEAD blob","GET manifest",
                                   "HEAD manifest","token","cdn","cdn_rejected_auth","tags",
                                   "other"}}
                                 each request is in exactly one by_kind bucket; "cdn" counts
                                 the CDN requests that were served, "cdn_rejected_auth" those
                                 refused for carrying Authorization. status is null while a
                                 request is still being answered (or for hang/close faults).
      POST /_ctl/reset-counts    (GET works too) forget all recorded requests.
      POST /_ctl/faults [...]    replace the fault list ([] clears); GET shows what is left.
      POST /_ctl/revoke-tokens   (GET works too) every issued token becomes invalid.
      GET  /_ctl/health          "ok"
CDN listener (C):
  GET|HEAD /cdn/<digest>?name=<repo>  the blob from the backend, streamed, Content-Type
               application/octet-stream, Content-Length, Range supported; 400 for any request
               that carries an Authorization header.

Faults: a list of {"match": REGEX, "kind": KIND, "count": N, "skip": K, ...options}. REGEX is
searched (re.search) in "METHOD /path" and, when the request has a query, in
"METHOD /path?query"; the first fault in the list that matches and has count left applies.
count: how many requests it applies to (default 1, -1 forever). skip: let the first K matching
requests through untouched first (default 0). Faults apply on both listeners (match "^GET /cdn/"
for the CDN), after authentication (a 401 challenge never uses one up), before the redirect.
Kinds:
  status    answer "status" (default 500) with an OCI error body; "retry_after" adds
            Retry-After; a 429 also carries ratelimit-limit: 100;w=21600 and
            ratelimit-remaining: 0;w=21600 and the code TOOMANYREQUESTS; "headers" {} adds more.
  reset     the real status, headers and the first "after_bytes" (default 0) bytes of the real
            body, then the socket is closed with a TCP RST (SO_LINGER 0).
  corrupt   the real response with the body byte at "offset" (default 0) flipped (xor 0xff).
  slow      "header_delay_ms" before the answer, "delay_ms" between 64 KiB body chunks
            ("chunk_bytes" changes the chunk size); otherwise normal (a redirected blob GET
            is still redirected: slow its body with a fault on "^GET /cdn/").
  truncate  real headers (full Content-Length) and only "after_bytes" (default half) bytes of
            the body, then an orderly close (FIN).
  hang      read the request and answer nothing for "seconds" (default 60), then close.
  close     read the request and close the connection without answering.
reset, corrupt and truncate serve the backend's body from the listener that matched, so on a
redirected blob GET they replace the redirect.
"""

import argparse
import base64
import http.client
import json
import os
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024
SERVICE = "fake-registry"
QUIET = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError, socket.timeout)
KINDS = ("status", "reset", "corrupt", "slow", "truncate", "hang", "close")
BY_KIND = ("GET blob", "HEAD blob", "GET manifest", "HEAD manifest", "token", "cdn",
           "cdn_rejected_auth", "tags", "other")
V2_RE = re.compile(r"^/v2/(.+?)/(manifests|blobs|tags|referrers)/(.*)$")
PASS_HEADERS = ("Content-Type", "Content-Length", "Docker-Content-Digest", "ETag", "Link", "Location",
                "Docker-Distribution-API-Version", "Content-Range", "Accept-Ranges")
ERROR_CODES = {400: "UNSUPPORTED", 401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND",
               405: "UNSUPPORTED", 429: "TOOMANYREQUESTS", 503: "UNAVAILABLE"}


def oci_error(code, message, detail=None):
    return json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]}).encode()


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.requests = []
        self.faults = []
        self.tokens = {}  # token -> (expires_at, {repo_name: set(actions)})

    # --- counting ---
    def record(self, entry):
        with self.lock:
            self.requests.append(entry)

    def update(self, entry, **kw):
        with self.lock:
            entry.update(kw)

    def counts(self):
        with self.lock:
            reqs = [dict(e) for e in self.requests]
        by_kind = {k: 0 for k in BY_KIND}
        for e in reqs:
            by_kind[e["kind"]] = by_kind.get(e["kind"], 0) + 1
        return {"requests": reqs, "by_kind": by_kind}

    def reset_counts(self):
        with self.lock:
            self.requests = []

    # --- faults ---
    def set_faults(self, faults):
        parsed = []
        if not isinstance(faults, list):
            raise ValueError("faults must be a JSON list")
        for f in faults:
            if not isinstance(f, dict) or "match" not in f or f.get("kind") not in KINDS:
                raise ValueError("each fault needs match and kind (one of %s): %r" % (", ".join(KINDS), f))
            f = dict(f)
            f["_re"] = re.compile(f["match"])
            f["count"] = int(f.get("count", 1))
            f["skip"] = int(f.get("skip", 0))
            f["applied"] = 0
            parsed.append(f)
        with self.lock:
            self.faults = parsed

    def list_faults(self):
        with self.lock:
            return [{k: v for k, v in f.items() if k != "_re"} for f in self.faults]

    def take_fault(self, method, path, query):
        keys = [method + " " + path]
        if query:
            keys.append(method + " " + path + "?" + query)
        with self.lock:
            for f in self.faults:
                if f["count"] == 0 or not any(f["_re"].search(k) for k in keys):
                    continue
                if f["skip"] > 0:
                    f["skip"] -= 1
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                f["applied"] += 1
                return {k: v for k, v in f.items() if k != "_re"}
        return None

    # --- tokens ---
    def issue_token(self, scopes):
        granted = {}
        for scope in scopes:
            for one in scope.split():
                parts = one.split(":")
                if len(parts) >= 3 and parts[0] == "repository":
                    name = ":".join(parts[1:-1])
                    granted.setdefault(name, set()).update(a for a in parts[-1].split(",") if a)
        tok = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[tok] = (time.time() + self.args.token_expires, granted)
        return tok

    def check_token(self, tok):
        with self.lock:
            got = self.tokens.get(tok)
        if got is None or got[0] < time.time():
            return None
        return got[1]

    def revoke_tokens(self):
        with self.lock:
            self.tokens = {}


class LimitedReader:
    """A request body of known length, handed to http.client as a stream."""

    def __init__(self, f, n):
        self.f, self.left = f, n

    def read(self, n=-1):
        if self.left <= 0:
            return b""
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(n)
        self.left -= len(data)
        if not data:
            self.left = 0
        return data


class Aborted(Exception):
    """The connection was closed on purpose; nothing more may be written."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as real registries have (Go's net/http sets it on every connection). With
    # Nagle on, a small body written after its headers on a kept-alive connection waits for
    # the client's delayed ACK: 40 ms per small response that no real upstream would cost.
    disable_nagle_algorithm = True
    server_version = "fake-registry/1"
    sys_version = ""
    timeout = 300  # idle keep-alive connections go away eventually

    def log_message(self, fmt, *args):
        pass

    def version_string(self):
        return self.server_version

    def handle(self):
        try:
            super().handle()
        except (Aborted, ValueError, OSError):
            self.close_connection = True

    def finish(self):
        try:
            super().finish()
        except (OSError, ValueError):
            pass

    def send_response(self, code, message=None):
        if getattr(self, "entry", None) is not None:
            self.state.update(self.entry, status=code)
        super().send_response(code, message)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = lambda self: self.dispatch()

    # --- plumbing ---
    @property
    def state(self):
        return self.server.state

    @property
    def args(self):
        return self.server.state.args

    def dispatch(self):
        self.entry = None
        self.body_left = int(self.headers.get("Content-Length") or 0)
        sp = urllib.parse.urlsplit(self.path)
        self.req_path, self.query = sp.path, sp.query
        if self.server.listener == "main" and self.req_path.startswith("/_ctl/"):
            return self.control()
        self.entry = {
            "t": round(time.time(), 3), "listener": self.server.listener, "method": self.command,
            "path": self.req_path, "query": self.query, "status": None,
            "auth": "Authorization" in self.headers, "auth_ok": None,
            "kind": self.classify(), "fault": None, "range": self.headers.get("Range"),
        }
        self.state.record(self.entry)
        try:
            if self.server.listener == "cdn":
                self.route_cdn()
            else:
                self.route_main()
        except Aborted:
            self.close_connection = True
        except QUIET:
            self.close_connection = True
        finally:
            e = self.entry
            sys.stderr.write("%s %s %s%s %s %s%s\n" % (
                e["listener"], e["method"], e["path"], "?" + e["query"] if e["query"] else "",
                e["status"], e["kind"], " fault=" + e["fault"] if e["fault"] else ""))
            self.drain_body()

    def drain_body(self):
        if self.close_connection or self.body_left <= 0:
            return
        if self.body_left > 4 * 1024 * 1024:
            self.close_connection = True
            return
        while self.body_left > 0:
            data = self.rfile.read(min(CHUNK, self.body_left))
            if not data:
                self.close_connection = True
                break
            self.body_left -= len(data)

    def read_body(self):
        data = self.rfile.read(self.body_left) if self.body_left > 0 else b""
        self.body_left = 0
        return data

    def classify(self):
        if self.server.listener == "cdn":
            return "cdn"
        if self.req_path == "/token":
            return "token"
        m = V2_RE.match(self.req_path)
        if m:
            what, rest = m.group(2), m.group(3)
            if what == "blobs" and not rest.startswith("uploads") and self.command in ("GET", "HEAD"):
                return self.command + " blob"
            if what == "manifests" and self.command in ("GET", "HEAD"):
                return self.command + " manifest"
            if what == "tags":
                return "tags"
        return "other"

    def send(self, status, body=b"", headers=(), content_type="application/json"):
        self.send_response(status)
        if content_type and body:
            self.send_header("Content-Type", content_type)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def send_json(self, status, obj, headers=()):
        self.send(status, json.dumps(obj).encode(), headers)

    def abort(self, rst):
        """Closes the client connection now: RST when rst, else an orderly FIN."""
        self.close_connection = True
        try:
            if rst:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for f in (self.wfile, self.rfile):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        try:
            self.connection.close()
        except OSError:
            pass
        raise Aborted()

    # --- control API ---
    def control(self):
        what = self.req_path[len("/_ctl/"):].strip("/")
        body = self.read_body()
        if what == "counts" and self.command == "GET":
            return self.send_json(200, self.state.counts())
        if what == "reset-counts" and self.command in ("GET", "POST"):
            self.state.reset_counts()
            return self.send_json(200, {"ok": True})
        if what == "revoke-tokens" and self.command in ("GET", "POST"):
            self.state.revoke_tokens()
            return self.send_json(200, {"ok": True})
        if what == "faults" and self.command == "GET":
            return self.send_json(200, self.state.list_faults())
        if what == "faults" and self.command == "POST":
            try:
                self.state.set_faults(json.loads(body.decode() or "[]"))
            except (ValueError, re.error) as e:
                return self.send_json(400, {"error": str(e)})
            return self.send_json(200, {"faults": len(self.state.list_faults())})
        if what == "health":
            return self.send(200, b"ok", content_type="text/plain")
        return self.send_json(404, {"error": "unknown control path " + self.req_path})

    # --- auth ---
    def challenge(self, name, error=None):
        realm = "http://127.0.0.1:%d/token" % self.server.port
        value = 'Bearer realm="%s",service="%s"' % (realm, SERVICE)
        if name:
            actions = "pull" if self.command in ("GET", "HEAD") else "pull,push"
            value += ',scope="repository:%s:%s"' % (name, actions)
        if error:
            value += ',error="%s"' % error
        detail = [{"Type": "repository", "Class": "", "Name": name, "Action": "pull"}] if name else None
        self.send(401, oci_error("UNAUTHORIZED", "authentication required", detail),
                  [("WWW-Authenticate", value), ("Docker-Distribution-API-Version", "registry/2.0")])

    def basic_ok(self):
        h = self.headers.get("Authorization", "")
        if not h.lower().startswith("basic "):
            return False
        try:
            user, _, pw = base64.b64decode(h[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.args.username and pw == self.args.password

    def authorized(self, name):
        mode = self.args.auth
        if mode == "none":
            return True
        if mode == "basic":
            ok = self.basic_ok()
            self.state.update(self.entry, auth_ok=ok)
            if not ok:
                self.send(401, oci_error("UNAUTHORIZED", "authentication required"),
                          [("WWW-Authenticate", 'Basic realm="fake"'),
                           ("Docker-Distribution-API-Version", "registry/2.0")])
            return ok
        h = self.headers.get("Authorization", "")
        if not h.lower().startswith("bearer "):
            self.state.update(self.entry, auth_ok=False)
            self.challenge(name)
            return False
        granted = self.state.check_token(h[7:].strip())
        if granted is None:
            self.state.update(self.entry, auth_ok=False)
            self.challenge(name, "invalid_token")
            return False
        if name:
            need = "pull" if self.command in ("GET", "HEAD") else "push"
            acts = granted.get(name, set())
            if need not in acts and "*" not in acts:
                self.state.update(self.entry, auth_ok=False)
                self.challenge(name, "insufficient_scope")
                return False
        self.state.update(self.entry, auth_ok=True)
        return True

    def token(self):
        if self.command == "POST":
            form = urllib.parse.parse_qs(self.read_body().decode("utf-8", "replace"))
            scopes = form.get("scope", [])
            creds_ok = self.basic_ok() or (form.get("username", [None])[0] == self.args.username and
                                           form.get("password", [None])[0] == self.args.password)
        elif self.command == "GET":
            scopes = urllib.parse.parse_qs(self.query).get("scope", [])
            creds_ok = self.basic_ok()
        else:
            return self.send(405, oci_error("UNSUPPORTED", "method not allowed"))
        if self.args.username is not None and not creds_ok:
            self.state.update(self.entry, auth_ok=False)
            return self.send(401, json.dumps({"details": "incorrect username or password"}).encode(),
                             [("WWW-Authenticate", 'Basic realm="fake-token"')])
        self.state.update(self.entry, auth_ok=self.args.username is not None)
        tok = self.state.issue_token(scopes)
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.send_json(200, {"token": tok, "access_token": tok, "expires_in": self.args.token_expires,
                             "issued_at": issued, "scope": " ".join(scopes)})

    # --- faults ---
    def fault(self):
        """Returns (fault or None, pace) after doing whatever a fault that ends the request does."""
        f = self.state.take_fault(self.command, self.req_path, self.query)
        if f is None:
            return None, None
        kind = f["kind"]
        self.state.update(self.entry, fault=kind)
        if kind == "status":
            self.fault_status(f)
            return f, None
        if kind == "hang":
            end = time.time() + float(f.get("seconds", 60))
            while time.time() < end:
                time.sleep(min(0.1, max(0.0, end - time.time())))
            self.abort(rst=False)
        if kind == "close":
            self.abort(rst=False)
        if kind == "slow":
            if f.get("header_delay_ms"):
                time.sleep(float(f["header_delay_ms"]) / 1000)
            return None, (float(f.get("delay_ms", 0)) / 1000, int(f.get("chunk_bytes", CHUNK)))
        return f, None  # reset, corrupt, truncate: the caller serves the real body

    def fault_status(self, f):
        code = int(f.get("status", f.get("code", 500)))
        headers = [("Docker-Distribution-API-Version", "registry/2.0")]
        if f.get("retry_after") is not None:
            headers.append(("Retry-After", str(f["retry_after"])))
        if code == 429:
            headers += [("ratelimit-limit", "100;w=21600"), ("ratelimit-remaining", "0;w=21600")]
            body = oci_error("TOOMANYREQUESTS", "You have reached your pull rate limit (fake).")
        else:
            ecode = ERROR_CODES.get(code, "UNKNOWN")
            if code == 404:
                ecode = "BLOB_UNKNOWN" if "/blobs/" in self.req_path else (
                    "MANIFEST_UNKNOWN" if "/manifests/" in self.req_path else "NOT_FOUND")
            body = oci_error(ecode, "injected fault: status %d" % code)
        for k, v in (f.get("headers") or {}).items():
            headers.append((k, str(v)))
        if "body" in f:
            body = f["body"].encode() if isinstance(f["body"], str) else json.dumps(f["body"]).encode()
        self.send(code, body, headers)

    # --- backend ---
    def backend(self, method, path_q, extra=None, body=None):
        u = self.server.backend
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=300)
        headers = {}
        accept = self.headers.get_all("Accept")
        if accept:
            headers["Accept"] = ", ".join(accept)
        if self.headers.get("Range"):
            headers["Range"] = self.headers["Range"]
        if body is not None:
            if self.headers.get("Content-Type"):
                headers["Content-Type"] = self.headers["Content-Type"]
            headers["Content-Length"] = str(self.body_left)
        headers.update(extra or {})
        try:
            conn.request(method, path_q, body=body, headers=headers)
            return conn, conn.getresponse()
        except OSError as e:
            conn.close()
            self.send(502, oci_error("UNAVAILABLE", "backend unreachable: %s" % e))
            return None, None

    def relay(self, conn, resp, fault=None, pace=None, rewrite=None):
        """Streams a backend response to the client, applying a body fault if any."""
        try:
            status = resp.status
            hdrs = []
            for name in PASS_HEADERS:
                v = resp.getheader(name)
                if v is None:
                    continue
                if name == "Location":
                    v = v.replace(self.server.backend_base, "http://127.0.0.1:%d" % self.server.port)
                hdrs.append((name, v))
            if rewrite:
                hdrs = rewrite(hdrs)
            length = resp.getheader("Content-Length")
            bodyless = self.command == "HEAD" or status in (204, 304) or status < 200
            chunked = length is None and not bodyless
            self.send_response(status)
            for k, v in hdrs:
                self.send_header(k, v)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            kind = fault["kind"] if fault else None
            if kind == "reset" and bodyless:
                self.abort(rst=True)
            if bodyless:
                return
            cut = None
            if kind == "reset":
                cut = int(fault.get("after_bytes", 0))
            elif kind == "truncate":
                cut = int(fault.get("after_bytes", int(length or 0) // 2))
            flip = int(fault.get("offset", 0)) if kind == "corrupt" else None
            delay, size = pace or (0, CHUNK)
            sent = 0
            while cut is None or sent < cut:
                n = size if cut is None else min(size, cut - sent)
                data = resp.read1(n)
                if not data:
                    break
                if flip is not None and sent <= flip < sent + len(data):
                    b = bytearray(data)
                    b[flip - sent] ^= 0xFF
                    data = bytes(b)
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    self.wfile.write(data)
                sent += len(data)
                if delay:
                    time.sleep(delay)
            if cut is not None:
                self.abort(rst=(kind == "reset"))
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        finally:
            conn.close()

    # --- routes ---
    def route_main(self):
        if self.req_path == "/token":
            f, pace = self.fault()
            if f is not None:
                return  # a status fault; other kinds make no sense for /token and are ignored
            return self.token()
        if not (self.req_path == "/v2" or self.req_path.startswith("/v2/")):
            f, _ = self.fault()
            if f is None or f["kind"] != "status":
                self.send(404, oci_error("NOT_FOUND", "not found"))
            return
        m = V2_RE.match(self.req_path)
        name = m.group(1) if m else None
        if not self.authorized(name):
            return
        f, pace = self.fault()
        if f is not None and f["kind"] == "status":
            return
        path_q = self.req_path + ("?" + self.query if self.query else "")
        is_blob_get = (m is not None and m.group(2) == "blobs" and self.command == "GET"
                       and not m.group(3).startswith("uploads"))
        if is_blob_get and self.args.redirect_blobs and f is None:
            conn, resp = self.backend("HEAD", path_q)
            if resp is None:
                return
            ok = resp.status == 200
            resp.read()
            conn.close()
            if ok:
                loc = "http://127.0.0.1:%d/cdn/%s?%s" % (self.server.cdn_port, m.group(3),
                                                          urllib.parse.urlencode({"name": name}))
                return self.send(307, b"", [("Location", loc),
                                            ("Docker-Distribution-API-Version", "registry/2.0")])
        body = None
        if self.command in ("POST", "PUT", "PATCH") and self.body_left > 0:
            body = LimitedReader(self.rfile, self.body_left)
        conn, resp = self.backend(self.command, path_q, body=body)
        if body is not None:
            self.body_left = body.left
        if resp is None:
            return
        self.relay(conn, resp, f, pace)

    def route_cdn(self):
        if "Authorization" in self.headers:
            self.state.update(self.entry, kind="cdn_rejected_auth")
            return self.send(400, b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism "
                                  b"allowed; Authorization header not accepted</Message></Error>",
                             content_type="application/xml")
        if not self.req_path.startswith("/cdn/") or self.command not in ("GET", "HEAD"):
            return self.send(404, b"<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml")
        name = urllib.parse.parse_qs(self.query).get("name", [None])[0]
        digest = self.req_path[len("/cdn/"):]
        if not name:
            return self.send(400, b"<Error><Code>InvalidRequest</Code></Error>", content_type="application/xml")
        f, pace = self.fault()
        if f is not None and f["kind"] == "status":
            return
        conn, resp = self.backend(self.command, "/v2/%s/blobs/%s" % (name, digest), extra={"Accept": "*/*"})
        if resp is None:
            return

        def s3_headers(hdrs):
            out = []
            for k, v in hdrs:
                if k in ("Content-Length", "Content-Range", "Accept-Ranges"):
                    out.append((k, v))
            if resp.status in (200, 206):
                out += [("Content-Type", "application/octet-stream"), ("ETag", '"%s"' % digest.split(":")[-1])]
                if not any(k == "Accept-Ranges" for k, _ in out):
                    out.append(("Accept-Ranges", "bytes"))
            else:
                out.append(("Content-Type", hdrs and dict(hdrs).get("Content-Type") or "application/json"))
            return out

        self.relay(conn, resp, f, pace, rewrite=s3_headers)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, QUIET + (Aborted,)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cdn-port", type=int, required=True)
    ap.add_argument("--backend", required=True, help="base URL of the real registry, http://127.0.0.1:B")
    ap.add_argument("--auth", choices=["none", "token", "basic"], default="none")
    ap.add_argument("--redirect-blobs", action="store_true")
    ap.add_argument("--token-expires", type=int, default=300, help="token lifetime in seconds")
    ap.add_argument("--username")
    ap.add_argument("--password")
    args = ap.parse_args()
    if (args.username is None) != (args.password is None):
        ap.error("--username and --password go together")
    if args.auth == "basic" and args.username is None:
        ap.error("--auth basic needs --username and --password")
    backend = urllib.parse.urlsplit(args.backend)
    if backend.scheme != "http" or backend.hostname not in ("127.0.0.1", "localhost", "::1"):
        ap.error("--backend must be an http URL on loopback")
    state = State(args)
    servers = []
    for listener, port in (("main", args.port), ("cdn", args.cdn_port)):
        srv = Server(("127.0.0.1", port), Handler)
        srv.listener, srv.state, srv.port, srv.cdn_port = listener, state, args.port, args.cdn_port
        srv.backend = backend
        srv.backend_base = "%s://%s" % (backend.scheme, backend.netloc)
        servers.append(srv)
    for srv in servers:
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    def stop(*_):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("ready", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
