#!/usr/bin/env python3
"""A small AWS client for the end-to-end tests, standard library only: signs ECR API calls with
SigV4 (its own signer, written apart from tests/e2e/aws_fake.py's verifier), pushes a test image
through an ECR-like registry, and checks SigV4 test-suite vectors. Never prints a secret.

  aws_client.py api --endpoint URL --key AK --secret SK [--token T] [--region R]
                    [--skew SECONDS] [--no-sign-token] OP [JSON]
      One ECR call (X-Amz-Target AmazonEC2ContainerRegistry_V20150921.OP). Prints
      {"status": N, "body": <JSON or text>, "error_type": <x-amzn-ErrorType or null>}.
      --skew signs with a clock that far off; --no-sign-token sends the session token without
      signing it. Key material may come from the environment instead: AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN.
  aws_client.py creds-json FILE
      Reads IMDS / container credentials JSON from FILE, prints "AK SK TOKEN" for a shell
      "read" (to be used, never echoed).
  aws_client.py sts-creds FILE
      The same from an AssumeRoleWithWebIdentity XML answer.
  aws_client.py push --registry URL --auth "Basic ..." --repo NAME --tag TAG [--seed S]
      Pushes a config blob and one layer (monolithic POST + PUT ?digest=) and an OCI image
      manifest by tag; prints {"manifest": digest, "config": digest, "layer": digest,
      "layer_size": n}; exits 1 with the failing step's status on stderr.
  aws_client.py chunked --registry URL --auth "Basic ..." --repo NAME --parts N,N,...
      One blob uploaded as POST, one PATCH per part (sizes in bytes), PUT ?digest=; prints
      {"statuses": [POST, PATCH..., PUT], "codes": [OCI error code or null per step]} and stops
      at the first refusal.
  aws_client.py vector SUITE_DIR NAME...
      Checks aws_fake.py's canonical_request, string_to_sign and signature, and this client's
      signer, against AWS's SigV4 test-suite cases (SUITE_DIR/NAME/NAME.{req,creq,sts,authz});
      prints "ok NAME" or "FAIL NAME" (details on stderr) per case, exits 1 if any failed.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import http.client
import json
import os
import socket
import sys
import urllib.parse

ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921."
UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"


def enc(s):
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        out.append(c if c in UNRESERVED else "%%%02X" % b)
    return "".join(out)


def hmac256(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def sigv4(method, path, query_pairs, headers, body, ak, sk, region, service, when):
    """headers: dict of lowercase name -> value (already single). Returns (authorization,
    canonical request, string to sign)."""
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    names = sorted(headers)
    canon_headers = "".join(n + ":" + " ".join(headers[n].split()) + "\n" for n in names)
    qs = "&".join(k + "=" + v for k, v in sorted((enc(k), enc(v)) for k, v in query_pairs))
    segs = path.split("/")
    uri = "/".join(enc(urllib.parse.unquote(s)) for s in segs)
    creq = "\n".join([method, uri, qs, canon_headers, ";".join(names),
                      hashlib.sha256(body).hexdigest()])
    scope = "/".join([day, region, service, "aws4_request"])
    sts = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = hmac256(("AWS4" + sk).encode(), day)
    for part in (region, service, "aws4_request"):
        k = hmac256(k, part)
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    auth = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        ak, scope, ";".join(names), sig)
    return auth, creq, sts


class Connection(http.client.HTTPConnection):
    """TCP_NODELAY, so a body written after its headers is not held back by Nagle."""

    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def cmd_api(a):
    ak = a.key or os.environ.get("AWS_ACCESS_KEY_ID")
    sk = a.secret or os.environ.get("AWS_SECRET_ACCESS_KEY")
    tok = a.token or os.environ.get("AWS_SESSION_TOKEN") or None
    u = urllib.parse.urlsplit(a.endpoint)
    body = (a.json or "{}").encode()
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=a.skew)
    host = u.netloc
    h = {"host": host, "x-amz-date": when.strftime("%Y%m%dT%H%M%SZ"),
         "x-amz-target": ECR_TARGET + a.op, "content-type": "application/x-amz-json-1.1"}
    if tok and not a.no_sign_token:
        h["x-amz-security-token"] = tok
    auth, _, _ = sigv4("POST", "/", [], h, body, ak, sk, a.region, "ecr", when)
    send = {k: v for k, v in h.items() if k != "host"}
    if tok and a.no_sign_token:
        send["x-amz-security-token"] = tok
    send["Authorization"] = auth
    conn = Connection(u.hostname, u.port, timeout=10)
    conn.request("POST", "/", body=body, headers=send)
    r = conn.getresponse()
    raw = r.read()
    try:
        out = json.loads(raw)
    except ValueError:
        out = raw.decode("utf-8", "replace")
    print(json.dumps({"status": r.status, "body": out, "error_type": r.getheader("x-amzn-ErrorType")}))


def cmd_creds_json(a):
    d = json.load(open(a.file))
    print(d["AccessKeyId"], d["SecretAccessKey"], d["Token"])


def cmd_sts_creds(a):
    import xml.etree.ElementTree as ET
    ns = {"s": "https://sts.amazonaws.com/doc/2011-06-15/"}
    root = ET.parse(a.file).getroot()
    c = root.find("s:AssumeRoleWithWebIdentityResult/s:Credentials", ns)
    print(c.find("s:AccessKeyId", ns).text, c.find("s:SecretAccessKey", ns).text,
          c.find("s:SessionToken", ns).text)


class Registry:
    def __init__(self, url, auth):
        u = urllib.parse.urlsplit(url)
        self.conn = Connection(u.hostname, u.port, timeout=30)
        self.auth = auth

    def req(self, method, path, body=b"", headers=None):
        h = {"Authorization": self.auth, "Content-Length": str(len(body))}
        h.update(headers or {})
        self.conn.request(method, path, body=body, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        code = None
        if r.status >= 400:
            try:
                code = json.loads(data)["errors"][0]["code"]
            except (ValueError, KeyError, IndexError, TypeError):
                pass
        return r, data, code


def location_path(loc):
    u = urllib.parse.urlsplit(loc)
    return u.path + ("?" + u.query if u.query else "")


def upload_blob(reg, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r, _, code = reg.req("POST", "/v2/%s/blobs/uploads/" % repo)
    if r.status != 202:
        raise SystemExit("POST upload: %d %s" % (r.status, code))
    loc = location_path(r.getheader("Location"))
    sep = "&" if "?" in loc else "?"
    r, _, code = reg.req("PUT", loc + sep + "digest=" + digest, data,
                         {"Content-Type": "application/octet-stream"})
    if r.status != 201:
        raise SystemExit("PUT upload: %d %s" % (r.status, code))
    return digest


def cmd_push(a):
    reg = Registry(a.registry, a.auth)
    seed = a.seed.encode()
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": a.seed}).encode()
    layer = hashlib.sha256(seed).digest() * 64 + seed
    cd = upload_blob(reg, a.repo, config)
    ld = upload_blob(reg, a.repo, layer)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd,
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld,
                    "size": len(layer)}]}).encode()
    r, _, code = reg.req("PUT", "/v2/%s/manifests/%s" % (a.repo, a.tag), manifest,
                         {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    if r.status != 201:
        sys.stderr.write("PUT manifest: %d %s\n" % (r.status, code))
        print(json.dumps({"status": r.status, "code": code}))
        sys.exit(1)
    print(json.dumps({"manifest": r.getheader("Docker-Content-Digest"), "config": cd, "layer": ld,
                      "layer_size": len(layer)}))


def cmd_chunked(a):
    reg = Registry(a.registry, a.auth)
    sizes = [int(x) for x in a.parts.split(",") if x]
    data = [bytes([65 + i % 26]) * n for i, n in enumerate(sizes)]
    whole = b"".join(data)
    digest = "sha256:" + hashlib.sha256(whole).hexdigest()
    statuses, codes = [], []

    def done():
        print(json.dumps({"statuses": statuses, "codes": codes}))

    r, _, code = reg.req("POST", "/v2/%s/blobs/uploads/" % a.repo)
    statuses.append(r.status)
    codes.append(code)
    if r.status != 202:
        return done()
    loc = location_path(r.getheader("Location"))
    off = 0
    for part in data:
        r, _, code = reg.req("PATCH", loc, part, {"Content-Type": "application/octet-stream",
                                                  "Content-Range": "%d-%d" % (off, off + len(part) - 1)})
        statuses.append(r.status)
        codes.append(code)
        if r.status != 202:
            return done()
        off += len(part)
        loc = location_path(r.getheader("Location"))
    sep = "&" if "?" in loc else "?"
    r, _, code = reg.req("PUT", loc + sep + "digest=" + digest)
    statuses.append(r.status)
    codes.append(code)
    done()


def parse_req(text):
    """AWS test-suite .req: request line, "Name:value" header lines (a line starting with
    white space continues the previous value), blank line, body."""
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    method, rest = lines[0].split(" ", 1)
    target = rest.rsplit(" ", 1)[0]
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            n, v = headers[-1]
            headers[-1] = (n, v + "," + line.strip())
            continue
        n, _, v = line.partition(":")
        headers.append((n, v))
    path, _, query = target.partition("?")
    return method, path, query, headers, body.encode()


def cmd_vector(a):
    failed = 0
    for name in a.names:
        ok = check_vector(a.suite, name)
        print("%s %s" % ("ok" if ok else "FAIL", name))
        failed += not ok
    sys.exit(1 if failed else 0)


def check_vector(suite, name):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree (read-only under distcheck)
    import aws_fake
    d = os.path.join(suite, name)

    def rd(ext):
        with open(os.path.join(d, name + "." + ext), encoding="utf-8") as f:
            return f.read()

    method, path, query, headers, body = parse_req(rd("req"))
    want_creq, want_sts, want_authz = rd("creq"), rd("sts"), rd("authz").strip()
    signed = want_authz.split("SignedHeaders=")[1].split(",")[0].split(";")
    amz = [v for n, v in headers if n.lower() == "x-amz-date"][0].strip()
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    bad = []
    creq = aws_fake.canonical_request(method, path, query, headers, signed, aws_fake.sha256_hex(body))
    if creq != want_creq:
        bad.append("aws_fake canonical request:\n%s\n--- want:\n%s" % (creq, want_creq))
    scope = "%s/us-east-1/service/aws4_request" % amz[:8]
    if aws_fake.string_to_sign(amz, scope, creq) != want_sts:
        bad.append("aws_fake string to sign")
    sig = aws_fake.signature(secret, amz, "us-east-1", "service", creq)
    if not want_authz.endswith("Signature=" + sig):
        bad.append("aws_fake signature")
    # This client's signer: one value per header name, so only cases without repeated names.
    merged = {}
    for n, v in headers:
        if n.lower() in signed:
            merged.setdefault(n.lower(), []).append(v.strip())
    if all(len(v) == 1 for v in merged.values()) and "\n" not in "".join(v[0] for v in merged.values()):
        when = datetime.datetime.strptime(amz, "%Y%m%dT%H%M%SZ")
        pairs = [tuple(urllib.parse.unquote(x) for x in (p.partition("=")[0], p.partition("=")[2]))
                 for p in query.split("&") if p]
        auth, ccreq, _ = sigv4(method, path, pairs, {k: v[0] for k, v in merged.items()}, body,
                               "AKIDEXAMPLE", secret, "us-east-1", "service", when)
        if auth != want_authz:
            bad.append("aws_client signer:\n%s\n--- want:\n%s\n--- creq:\n%s" % (auth, want_authz, ccreq))
    if bad:
        sys.stderr.write("%s: %s\n" % (name, "\n".join(bad)))
    return not bad


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("api")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--key")
    p.add_argument("--secret")
    p.add_argument("--token")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--skew", type=int, default=0)
    p.add_argument("--no-sign-token", action="store_true")
    p.add_argument("op")
    p.add_argument("json", nargs="?")
    p.set_defaults(fn=cmd_api)
    p = sub.add_parser("creds-json")
    p.add_argument("file")
    p.set_defaults(fn=cmd_creds_json)
    p = sub.add_parser("sts-creds")
    p.add_argument("file")
    p.set_defaults(fn=cmd_sts_creds)
    for name, fn in (("push", cmd_push), ("chunked", cmd_chunked)):
        p = sub.add_parser(name)
        p.add_argument("--registry", required=True)
        p.add_argument("--auth", required=True)
        p.add_argument("--repo", required=True)
        if name == "push":
            p.add_argument("--tag", required=True)
            p.add_argument("--seed", default="seed")
        else:
            p.add_argument("--parts", required=True)
        p.set_defaults(fn=fn)
    p = sub.add_parser("vector")
    p.add_argument("suite")
    p.add_argument("names", nargs="+")
    p.set_defaults(fn=cmd_vector)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
