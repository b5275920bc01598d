#!/usr/bin/env python3
"""A fake of every AWS endpoint the proxy's ECR tier talks to, in one process, in front of a
real registry (a docker-registry on loopback) that stores the images. Standard library only.
Listens on 127.0.0.1 only. One line per request on stderr (listener, method, path without its
query, status, op or fault); never a secret, token, Authorization value or query string.

Usage:
  aws_fake.py --backend http://127.0.0.1:B [--ports-file F]
              [--api-port P] [--data-port P] [--s3-port P] [--imds-port P]
              [--container-port P] [--sts-port P]
              [--region R] [--account A] [--static-key AK:SK]...
              [--token-lifetime S] [--creds-lifetime S] [--imds-role NAME]
              [--container-auth TOKEN] [--web-identity-token T]
              [--min-part-bytes N] [--expired-token-status 401|403] [--max-skew S]
Binds every listener, writes the ports file, then prints "ready" on stdout. SIGTERM or SIGINT
stops it (exit 0).

Flags:
  --backend URL          the real registry, http on loopback (required)
  --api-port ... --sts-port
                         the six listeners' ports; 0 (the default) picks a free one
  --ports-file F         written before "ready": {"api":P,"data":P,"s3":P,"imds":P,
                         "container":P,"sts":P}
  --region R             us-east-1; the SigV4 scope's region, IMDS's placement/region
  --account A            123456789012; the registryId, ARNs, instance identity document
  --static-key AK:SK     a long-term key pair the API accepts (repeatable; none by default)
  --token-lifetime S     43200; lifetime of a GetAuthorizationToken password
  --creds-lifetime S     3600; lifetime of credentials issued by IMDS, container, STS
  --imds-role NAME       ecr-ptc-proxy-role; the role IMDS lists
  --container-auth TOKEN the container endpoint requires "Authorization: TOKEN" exactly
  --web-identity-token T STS requires WebIdentityToken == T (any non-empty token otherwise)
  --min-part-bytes N     5242880; ECR's minimum size of a chunked-upload part but the last
  --expired-token-status 401 (default, with the Basic challenge) or 403 (ECR's real answer to
                         an expired password: DENIED "Your authorization token has expired.")
  --max-skew S           300; X-Amz-Date must be within S seconds of now

Listeners:
  api (ECR API, AWS JSON 1.1): POST / with Content-Type application/x-amz-json-1.1 and
      X-Amz-Target AmazonEC2ContainerRegistry_V20150921.<Op>. Every call is SigV4-verified
      (service ecr, --region; canonical request from the method, path, query, the
      SignedHeaders' values and SHA-256 of the body): Authorization missing ->
      MissingAuthenticationTokenException; malformed or no/ill-formed X-Amz-Date ->
      IncompleteSignatureException; X-Amz-Date off by more than --max-skew, a wrong scope
      (date, region, service), host not signed, or a wrong signature ->
      InvalidSignatureException; an access key neither static nor issued ->
      UnrecognizedClientException; issued credentials without their X-Amz-Security-Token (it
      must be sent and signed) -> UnrecognizedClientException / InvalidSignatureException;
      issued credentials past their expiry -> ExpiredTokenException. All of these are HTTP 403.
      Errors: header x-amzn-ErrorType: <Type>:http://internal.amazon.com/coral/com.amazonaws.ecr/
      and body {"__type":"<Type>","message":"..."}; HTTP 400 unless said otherwise.
      Ops (a registryId / registryIds given must be --account, else InvalidParameterException):
        GetAuthorizationToken  {"authorizationData":[{"authorizationToken":base64("AWS:"+pw),
                               "expiresAt":<epoch seconds, a JSON number with a fraction>,
                               "proxyEndpoint":"http://127.0.0.1:<data>"}]}; a new pw each call.
        DescribeRepositories   {repositoryNames?, registryId?} -> {"repositories":[...]}; a name
                               not created -> RepositoryNotFoundException.
        CreateRepository       repositoryName (2-256 chars, ECR's pattern) -> {"repository":..};
                               InvalidParameterException, RepositoryAlreadyExistsException.
                               imageTagMutability MUTABLE|IMMUTABLE|IMMUTABLE_WITH_EXCLUSION|
                               MUTABLE_WITH_EXCLUSION; imageTagMutabilityExclusionFilters
                               [{"filterType":"WILDCARD","filter":"..."}] (1-5, only with the
                               *_WITH_EXCLUSION values); imageScanningConfiguration
                               {"scanOnPush":bool}; encryptionConfiguration {"encryptionType":
                               AES256|KMS|KMS_DSSE,"kmsKey"?}; tags [{"Key","Value"}]. Every field
                               received is recorded (GET /_ctl/repos).
        PutLifecyclePolicy     repositoryName, lifecyclePolicyText (a string of JSON, <= 30720)
        SetRepositoryPolicy    repositoryName, policyText (a string of JSON, <= 10240)
        anything else          UnknownOperationException
      A repository is: repositoryName, repositoryArn arn:aws:ecr:R:A:repository/NAME,
      registryId, repositoryUri 127.0.0.1:<data>/NAME, createdAt, imageTagMutability,
      imageTagMutabilityExclusionFilters (when set), imageScanningConfiguration,
      encryptionConfiguration.
  data (ECR's registry, the OCI distribution API): forwarded to --backend, bodies streamed both
      ways (256 KiB chunks; chunked request bodies too), the backend's Location rewritten to
      this listener. Every /v2/ request needs Authorization: Basic base64("AWS:"+pw) with a pw
      from GetAuthorizationToken that has not expired, else 401 UNAUTHORIZED with
      WWW-Authenticate: Basic realm="https://127.0.0.1:<data>/",service="ecr.amazonaws.com"
      (GET /v2/ without one too; with one it is 200 {}). Then /v2/<name>/... needs <name> to be
      a created repository, else 404 NAME_UNKNOWN (any method).
        GET  blob    307 to the s3 listener: /prod-<region>-starport-layer-bucket/<account>/
                     <name>/<digest>?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=...&
                     X-Amz-Date=...&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&
                     X-Amz-Signature=<random hex>&name=<name> (404 BLOB_UNKNOWN if absent)
        HEAD blob    answered here: 200 Content-Length, Docker-Content-Digest (or 404)
        manifests    GET, HEAD, PUT forwarded (Accept, Content-Type passed; Docker-Content-Digest
                     relayed). A PUT by tag on an immutable tag (imageTagMutability IMMUTABLE;
                     IMMUTABLE_WITH_EXCLUSION and the tag matches no filter; MUTABLE_WITH_EXCLUSION
                     and the tag matches a filter; "*" matches any run of characters) that the
                     backend already has with a different digest -> 400 TAG_INVALID; the same
                     digest is accepted. Manifests over 4 MiB -> 400 MANIFEST_INVALID.
        uploads      POST .../blobs/uploads/ (202 + Location), PATCH <location>, PUT
                     <location>?digest=... forwarded. A PATCH part smaller than --min-part-bytes
                     must be the upload's last part: the PATCH (or the PUT carrying a body) that
                     follows it on the same upload -> 400 BLOB_UPLOAD_INVALID, counted
                     patch_rejected. A 201 to a PUT (or a monolithic POST) counts
                     uploads_completed; bytes_uploaded counts the bodies of PATCH/PUT/POST
                     upload requests the backend accepted.
        anything else under /v2/ is forwarded (counted "other").
      An expired pw gets --expired-token-status.
  s3: GET/HEAD of a URL the data listener handed out streams the blob from the backend (Range
      passed through; Content-Type application/octet-stream, ETag, Accept-Ranges). A request with
      an Authorization header -> 400 InvalidArgument "Only one auth mechanism allowed"
      (s3_rejected_auth); no X-Amz-Signature -> 403 AccessDenied; a signature not issued for
      that name and digest, or older than X-Amz-Expires -> 403 SignatureDoesNotMatch /
      AccessDenied (s3_rejected).
  imds (IMDSv2): PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds 1..21600 (else
      400) -> a token (text/plain). Every GET needs a valid, unexpired X-aws-ec2-metadata-token,
      else 401 (no token at all: imds_v1_refused). GET paths:
        /latest/meta-data/iam/security-credentials/      the role name
        /latest/meta-data/iam/security-credentials/ROLE  {"Code":"Success","LastUpdated":..Z,
                                                         "Type":"AWS-HMAC","AccessKeyId":"ASIA..",
                                                         "SecretAccessKey","Token","Expiration"}
                                                         (new credentials each time; another
                                                         role -> 404)
        /latest/meta-data/placement/region               --region
        /latest/dynamic/instance-identity/document       JSON with region, accountId, ...
  container: GET <any path> -> {"AccessKeyId","SecretAccessKey","Token","Expiration",
      "RoleArn":"arn:aws:iam::A:role/x"} (new credentials each time); with --container-auth the
      header Authorization must equal it, else 401.
  sts: POST / (form) or GET/POST /?query: Action=AssumeRoleWithWebIdentity&Version=2011-06-15&
      RoleArn&RoleSessionName&WebIdentityToken[&DurationSeconds]. Unsigned. A wrong or empty
      token -> 400 InvalidIdentityToken; missing parameters -> 400 ValidationError; another
      Action -> 400 InvalidAction (all <ErrorResponse><Error><Type>Sender</Type><Code>..
      </Code><Message>..</Message></Error><RequestId>..</RequestId></ErrorResponse>). Success:
      <AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
      <AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken/><Audience/>
      <AssumedRoleUser><Arn/><AssumedRoleId/></AssumedRoleUser><Credentials><AccessKeyId/>
      <SecretAccessKey/><SessionToken/><Expiration/></Credentials><Provider/>
      </AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId/></ResponseMetadata>
      </AssumeRoleWithWebIdentityResponse>. DurationSeconds, when given, shortens the lifetime.

Credentials issued by imds, container and sts are accepted by the api listener (with their
session token) until they expire; GetAuthorizationToken passwords by the data listener.

Control API, on the api listener under /_ctl/ (never counted, never faulted, never signed):
  GET  /_ctl/health              "ok"
  GET  /_ctl/counts              {"api":{op:n}  every call received, whatever its outcome,
                                  "api_ok":{op:n}, "api_errors":{type:n} (all error answers),
                                  "api_rejected":{reason:n} (reasons: missing, malformed,
                                    date, skew, scope, host_not_signed, unknown_key, no_token,
                                    bad_token, token_not_signed, expired, signature),
                                  "sig_accepted":n, "sig_rejected":n, "api_throttled":{op:n},
                                  "data":{"GET manifest","HEAD manifest","PUT manifest",
                                    "HEAD blob","GET blob","POST upload","PUT upload",
                                    "PATCH upload","other"} every data request in one bucket,
                                  "data_unauthorized", "data_expired" (of those, an expired pw),
                                  "name_unknown", "tag_invalid", "patch_rejected",
                                  "uploads_completed", "bytes_uploaded",
                                  "uploads_open_max":{repo:n} (the most upload sessions open
                                    at once in one repository: POST 202 to its PUT),
                                  "s3" (served 2xx), "s3_rejected_auth", "s3_rejected",
                                  "s3_bytes", "imds":{path:n}, "imds_tokens", "imds_v1_refused",
                                  "imds_unauthorized", "container":{"ok","unauthorized"},
                                  "container_paths":{path:n}, "sts":{"ok","rejected"},
                                  "sts_calls":[{"RoleArn","RoleSessionName","DurationSeconds",
                                    "ok"}], "tokens_issued", "credentials_issued",
                                  "faults_applied":{listener:n},
                                  "requests":[{"t","listener","method","path","status","op",
                                    "fault"}] every request on every listener, query dropped
                                    (status null while it is being answered, or for close/hang),
                                  "requests_dropped" (beyond 200000 entries)}
  POST /_ctl/reset-counts        zero every counter and the request list (issued tokens,
                                 credentials, repositories and faults stay)
  GET  /_ctl/repos               {name: {"repositoryName", "repositoryArn", "repositoryUri",
                                  "registryId", "createdAt", "imageTagMutability",
                                  "imageTagMutabilityExclusionFilters", "imageScanningConfiguration",
                                  "encryptionConfiguration", "tags", "lifecyclePolicyText",
                                  "policyText", "request": the CreateRepository body as received}}
  POST /_ctl/repos {CreateRepository body}   create one without a signed call (not counted)
  POST /_ctl/faults [...]        replace the fault list ([] clears); GET shows what is left.
        {"listener":"api|data|s3|imds|container|sts" (absent: any), "match":REGEX (absent:
         everything; re.search on "METHOD /path" and, on api, on the op name too),
         "kind":"throttle|status|close|hang|down", "status":503, "count":N (default 1; -1
         until cleared), "seconds":S (hang, default 30, at most 600)}
        The first fault in the list that matches and has count left applies, and uses one.
        down: 503 to every request of that listener (match ignored) while it has count left,
          before any other check. The other kinds apply after the listener's authentication
          (api: the signature; data: the Basic password), elsewhere before anything.
        throttle: api 400 ThrottlingException; data 429 TOOMANYREQUESTS; s3 503 SlowDown;
          sts 400 Throttling; imds and container 429.
        status: that status with the listener's error body (api: 500 ServerException, 503
          ServiceUnavailableException, 429 ThrottlingException, other ServerException).
        close: no answer, the connection closed. hang: no answer for "seconds", then closed.
  POST /_ctl/expire-tokens       every data-plane password issued so far has expired
  POST /_ctl/expire-credentials  every credential issued so far has expired
  POST /_ctl/token-lifetime {"seconds": N}   tokens issued from now on live N s (1..86400)
"""

import argparse
import base64
import collections
import datetime
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 256 * 1024
LISTENERS = ("api", "data", "s3", "imds", "container", "sts")
FAULT_KINDS = ("throttle", "status", "close", "hang", "down")
DATA_KINDS = ("GET manifest", "HEAD manifest", "PUT manifest", "HEAD blob", "GET blob",
              "POST upload", "PUT upload", "PATCH upload", "other")
TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921."
ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazonaws.ecr/"
REPO_NAME_RE = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
# The distribution API's routes, the repository name greedy as distribution matches it, so a
# name with a "blobs" or "manifests" component (bench/blobs) is not split there.
class _V2Routes:
    _routes = [re.compile(p) for p in (
        r"^/v2/(.+)/(blobs)/(uploads(?:/.*)?)$",
        r"^/v2/(.+)/(blobs)/([^/]+)$",
        r"^/v2/(.+)/(manifests)/([^/]+)$",
        r"^/v2/(.+)/(tags)/(list)$",
        r"^/v2/(.+)/(referrers)/([^/]+)$",
    )]

    def match(self, path):
        for r in self._routes:
            m = r.match(path)
            if m is not None:
                return m
        return None


V2_RE = _V2Routes()
DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
MUTABILITY = ("MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION")
MANIFEST_ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws"))
RELAY_HEADERS = ("Content-Type", "Content-Length", "Docker-Content-Digest", "ETag", "Link",
                 "Location", "Docker-Distribution-API-Version", "Docker-Upload-UUID", "Range",
                 "Content-Range", "Accept-Ranges", "OCI-Subject")
OCI_CODES = {400: "UNSUPPORTED", 401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND",
             405: "UNSUPPORTED", 429: "TOOMANYREQUESTS", 503: "UNAVAILABLE"}
QUIET = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError,
         socket.timeout)
MAX_REQUESTS = 200000
MAX_API_BODY = 1 << 20
MAX_MANIFEST = 4 << 20
MAX_DRAIN = 64 << 20


# --- SigV4, the pieces the verifier uses (tests/e2e/29-aws-fake.sh checks them against
# AWS's test suite by importing this module) ---

def sha256_hex(data):
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()


def canonical_uri(path):
    """The path, each segment percent-decoded then encoded (RFC 3986 unreserved kept)."""
    if not path:
        return "/"
    return "/".join(urllib.parse.quote(urllib.parse.unquote(seg), safe="") for seg in path.split("/"))


def canonical_query(query):
    """The query's name=value pairs encoded and sorted by name, then value."""
    pairs = []
    for part in query.split("&") if query else ():
        if not part:
            continue
        k, _, v = part.partition("=")
        pairs.append((urllib.parse.quote(urllib.parse.unquote(k), safe=""),
                      urllib.parse.quote(urllib.parse.unquote(v), safe="")))
    return "&".join("%s=%s" % kv for kv in sorted(pairs))


def canonical_request(method, path, query, headers, signed_headers, payload_hash):
    """headers: (name, value) pairs as received; signed_headers: lowercase names. Several
    values of one name are joined with ",", each trimmed with inner runs of spaces collapsed.
    Raises KeyError naming a signed header that the request lacks."""
    values = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(re.sub(r"\s+", " ", value.strip()))
    signed = sorted(h.lower() for h in signed_headers)
    lines = []
    for h in signed:
        if h not in values:
            raise KeyError(h)
        lines.append("%s:%s\n" % (h, ",".join(values[h])))
    return "\n".join((method, canonical_uri(path), canonical_query(query), "".join(lines),
                      ";".join(signed), payload_hash))


def string_to_sign(amz_date, scope, creq):
    return "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (amz_date, scope, sha256_hex(creq))


def signing_key(secret, date, region, service):
    k = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def signature(secret, amz_date, region, service, creq):
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)
    key = signing_key(secret, amz_date[:8], region, service)
    return hmac.new(key, string_to_sign(amz_date, scope, creq).encode(), hashlib.sha256).hexdigest()


AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256\s+(.*)$")


def parse_authorization(value):
    """{"Credential": [...5 parts], "SignedHeaders": [...], "Signature": hex} or None."""
    m = AUTH_RE.match(value.strip())
    if not m:
        return None
    out = {}
    for item in m.group(1).split(","):
        k, eq, v = item.strip().partition("=")
        if eq:
            out[k] = v.strip()
    if not all(k in out for k in ("Credential", "SignedHeaders", "Signature")):
        return None
    cred = out["Credential"].split("/")
    if len(cred) != 5:
        return None
    return {"Credential": cred, "SignedHeaders": out["SignedHeaders"].split(";"),
            "Signature": out["Signature"]}


# --- helpers ---

def iso(t):
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def amz_date(t):
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def xml_escape(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def oci_error(code, message, detail=None):
    return json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]}).encode()


def wildcard_match(pattern, s):
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), s) is not None


class ApiError(Exception):
    def __init__(self, etype, message, status=400):
        super().__init__(message)
        self.etype, self.message, self.status = etype, message, status


class Aborted(Exception):
    """The connection was closed on purpose; nothing more may be written."""


class BodyReader:
    """A request body, by Content-Length or chunked; read(n) gives up to n bytes, b"" at the
    end. total counts the bytes read."""

    def __init__(self, rfile, headers):
        self.rfile = rfile
        self.chunked = "chunked" in (headers.get("Transfer-Encoding") or "").lower()
        self.left = 0 if self.chunked else int(headers.get("Content-Length") or 0)
        self.chunk_left = 0
        self.done = not self.chunked and self.left <= 0
        self.total = 0

    def read(self, n=CHUNK):
        if self.done:
            return b""
        if n is None or n < 0:
            n = CHUNK
        if not self.chunked:
            data = self.rfile.read(min(n, self.left))
            if not data:
                raise ConnectionResetError("client closed mid-body")
            self.left -= len(data)
            self.done = self.left <= 0
        else:
            if self.chunk_left == 0:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionResetError("client closed mid-body")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    for _ in range(64):  # trailers, bounded
                        t = self.rfile.readline(8192)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    self.done = True
                    return b""
                self.chunk_left = size
            data = self.rfile.read(min(n, self.chunk_left))
            if not data:
                raise ConnectionResetError("client closed mid-body")
            self.chunk_left -= len(data)
            if self.chunk_left == 0:
                self.rfile.readline(8)
        self.total += len(data)
        return data

    def read_all(self, cap):
        parts, size = [], 0
        while True:
            d = self.read(CHUNK)
            if not d:
                return b"".join(parts)
            size += len(d)
            if size > cap:
                raise ValueError("body over %d bytes" % cap)
            parts.append(d)

    def drain(self, cap=MAX_DRAIN):
        """True when the whole body was read (the connection can be reused)."""
        n = 0
        while not self.done and n <= cap:
            n += len(self.read(CHUNK))
        return self.done


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.static = {}
        for kv in args.static_key or ():
            ak, sep, sk = kv.partition(":")
            if not sep or not ak or not sk:
                raise SystemExit("--static-key wants AK:SK")
            self.static[ak] = sk
        self.creds = {}  # access key -> {"secret", "token", "expires", "source"}
        self.passwords = {}  # data-plane password -> expires
        self.imds_tokens = {}  # token -> expires
        self.presigned = collections.OrderedDict()  # signature -> (name, digest, expires)
        self.uploads = {}  # upload uuid -> bytes of its last PATCH (small part seen)
        self.repos = {}
        self.faults = []
        self.ports = {}
        self.reset_counts()

    def reset_counts(self):
        with self.lock:
            self.c = {
                "api": {}, "api_ok": {}, "api_errors": {}, "api_rejected": {}, "api_throttled": {},
                "sig_accepted": 0, "sig_rejected": 0,
                "data": {k: 0 for k in DATA_KINDS}, "data_unauthorized": 0, "data_expired": 0,
                "name_unknown": 0, "tag_invalid": 0, "patch_rejected": 0, "uploads_completed": 0,
                "bytes_uploaded": 0, "s3": 0, "s3_rejected_auth": 0, "s3_rejected": 0,
                "s3_bytes": 0, "imds": {}, "imds_tokens": 0, "imds_v1_refused": 0,
                "imds_unauthorized": 0, "container": {"ok": 0, "unauthorized": 0},
                "container_paths": {}, "sts": {"ok": 0, "rejected": 0}, "sts_calls": [],
                "tokens_issued": 0, "credentials_issued": 0, "faults_applied": {},
                "requests": [], "requests_dropped": 0, "uploads_open_max": {},
            }
            self.uploads_open = {}

    def bump(self, key, sub=None, n=1):
        with self.lock:
            if sub is None:
                self.c[key] += n
            else:
                self.c[key][sub] = self.c[key].get(sub, 0) + n

    def record(self, entry):
        with self.lock:
            if len(self.c["requests"]) < MAX_REQUESTS:
                self.c["requests"].append(entry)
            else:
                self.c["requests_dropped"] += 1

    def counts(self):
        with self.lock:
            out = json.loads(json.dumps(self.c))
        return out

    # --- credentials and tokens ---
    def issue_creds(self, source, lifetime=None):
        now = time.time()
        life = self.args.creds_lifetime if lifetime is None else lifetime
        ak = "ASIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
        cred = {"AccessKeyId": ak, "SecretAccessKey": base64.b64encode(secrets.token_bytes(30)).decode(),
                "Token": "FQoG" + base64.b64encode(secrets.token_bytes(96)).decode(),
                "expires": now + life, "source": source}
        with self.lock:
            self.creds[ak] = cred
            self.c["credentials_issued"] += 1
        return cred

    def issue_password(self):
        pw = base64.b64encode(secrets.token_bytes(96)).decode()
        exp = time.time() + self.args.token_lifetime
        with self.lock:
            self.passwords[pw] = exp
            self.c["tokens_issued"] += 1
        return pw, exp

    def password_state(self, pw):
        """"ok", "expired" or "unknown"."""
        with self.lock:
            exp = self.passwords.get(pw)
        if exp is None:
            return "unknown"
        return "ok" if exp > time.time() else "expired"

    def expire_tokens(self):
        now = time.time() - 1
        with self.lock:
            for pw in self.passwords:
                self.passwords[pw] = min(self.passwords[pw], now)

    def expire_credentials(self):
        now = time.time() - 1
        with self.lock:
            for c in self.creds.values():
                c["expires"] = min(c["expires"], now)

    def presign(self, name, digest):
        sig = secrets.token_hex(32)
        with self.lock:
            self.presigned[sig] = (name, digest, time.time() + 3600)
            while len(self.presigned) > 100000:
                self.presigned.popitem(last=False)
        return sig

    # --- faults ---
    def set_faults(self, faults):
        if not isinstance(faults, list):
            raise ValueError("faults must be a JSON list")
        parsed = []
        for f in faults:
            if not isinstance(f, dict) or f.get("kind") not in FAULT_KINDS:
                raise ValueError("each fault needs a kind (one of %s): %r" % (", ".join(FAULT_KINDS), f))
            if f.get("listener") is not None and f["listener"] not in LISTENERS:
                raise ValueError("unknown listener %r" % f["listener"])
            f = dict(f)
            f["_re"] = re.compile(f.get("match") or "")
            f["count"] = int(f.get("count", 1))
            f["applied"] = 0
            parsed.append(f)
        with self.lock:
            self.faults = parsed

    def list_faults(self):
        with self.lock:
            return [{k: v for k, v in f.items() if k != "_re"} for f in self.faults]

    def take_fault(self, listener, keys, down):
        """The first fault for <listener> with count left that is "down" (when <down>) or that
        matches one of <keys> and is not "down" (otherwise); uses one of its count."""
        with self.lock:
            for f in self.faults:
                if f["count"] == 0 or f.get("listener") not in (None, listener):
                    continue
                if down != (f["kind"] == "down"):
                    continue
                if not down and not any(f["_re"].search(k) for k in keys):
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                f["applied"] += 1
                self.c["faults_applied"][listener] = self.c["faults_applied"].get(listener, 0) + 1
                return {k: v for k, v in f.items() if k != "_re"}
        return None

    # --- repositories ---
    def repo_view(self, r):
        keys = ("repositoryArn", "registryId", "repositoryName", "repositoryUri", "createdAt",
                "imageTagMutability", "imageTagMutabilityExclusionFilters",
                "imageScanningConfiguration", "encryptionConfiguration")
        return {k: r[k] for k in keys if r.get(k) is not None}

    def create_repo(self, body):
        a = self.args
        if not isinstance(body, dict):
            raise ApiError("SerializationException", "the body must be a JSON object")
        self.check_registry(body)
        name = body.get("repositoryName")
        if not isinstance(name, str) or not name:
            raise ApiError("InvalidParameterException", "repositoryName is required")
        if not (2 <= len(name) <= 256) or not REPO_NAME_RE.fullmatch(name):
            raise ApiError("InvalidParameterException",
                           "Invalid parameter at 'repositoryName' failed to satisfy constraint: "
                           "'must satisfy regular expression '%s''" % REPO_NAME_RE.pattern)
        mut = body.get("imageTagMutability", "MUTABLE")
        if mut not in MUTABILITY:
            raise ApiError("InvalidParameterException", "imageTagMutability must be one of " + ", ".join(MUTABILITY))
        filters = body.get("imageTagMutabilityExclusionFilters")
        if filters is not None:
            if not mut.endswith("_WITH_EXCLUSION"):
                raise ApiError("InvalidParameterException",
                               "imageTagMutabilityExclusionFilters need a *_WITH_EXCLUSION imageTagMutability")
            if (not isinstance(filters, list) or not 1 <= len(filters) <= 5 or not all(
                    isinstance(f, dict) and f.get("filterType") == "WILDCARD"
                    and isinstance(f.get("filter"), str) and 1 <= len(f["filter"]) <= 128
                    for f in filters)):
                raise ApiError("InvalidParameterException",
                               "imageTagMutabilityExclusionFilters: 1 to 5 {filterType: WILDCARD, filter}")
        elif mut.endswith("_WITH_EXCLUSION"):
            raise ApiError("InvalidParameterException", "%s needs imageTagMutabilityExclusionFilters" % mut)
        scan = body.get("imageScanningConfiguration", {"scanOnPush": False})
        if not isinstance(scan, dict) or not isinstance(scan.get("scanOnPush", False), bool):
            raise ApiError("InvalidParameterException", "imageScanningConfiguration.scanOnPush must be a boolean")
        enc = body.get("encryptionConfiguration", {"encryptionType": "AES256"})
        if (not isinstance(enc, dict) or enc.get("encryptionType") not in ("AES256", "KMS", "KMS_DSSE")
                or ("kmsKey" in enc and not isinstance(enc["kmsKey"], str))):
            raise ApiError("InvalidParameterException",
                           "encryptionConfiguration.encryptionType must be AES256, KMS or KMS_DSSE")
        tags = body.get("tags", [])
        if not isinstance(tags, list) or not all(
                isinstance(t, dict) and isinstance(t.get("Key"), str) and isinstance(t.get("Value", ""), str)
                for t in tags):
            raise ApiError("InvalidParameterException", "tags must be a list of {Key, Value}")
        data_port = self.ports.get("data", 0)
        repo = {
            "repositoryName": name, "registryId": a.account,
            "repositoryArn": "arn:aws:ecr:%s:%s:repository/%s" % (a.region, a.account, name),
            "repositoryUri": "127.0.0.1:%d/%s" % (data_port, name),
            "createdAt": round(time.time(), 3), "imageTagMutability": mut,
            "imageTagMutabilityExclusionFilters": filters, "imageScanningConfiguration": scan,
            "encryptionConfiguration": enc, "tags": tags, "lifecyclePolicyText": None,
            "policyText": None, "request": body,
        }
        with self.lock:
            if name in self.repos:
                raise ApiError("RepositoryAlreadyExistsException",
                               "The repository with name '%s' already exists in the registry with id '%s'"
                               % (name, a.account))
            self.repos[name] = repo
        return self.repo_view(repo)

    def check_registry(self, body):
        rid = body.get("registryId")
        if rid is not None and rid != self.args.account:
            raise ApiError("InvalidParameterException",
                           "registryId '%s' is not this account (%s)" % (rid, self.args.account))

    def get_repo(self, name):
        with self.lock:
            r = self.repos.get(name)
            return dict(r) if r else None

    def repo_or_raise(self, body):
        self.check_registry(body)
        name = body.get("repositoryName")
        if not isinstance(name, str) or not name:
            raise ApiError("InvalidParameterException", "repositoryName is required")
        if self.get_repo(name) is None:
            raise ApiError("RepositoryNotFoundException",
                           "The repository with name '%s' does not exist in the registry with id '%s'"
                           % (name, self.args.account))
        return name

    def set_repo_text(self, name, key, text):
        with self.lock:
            self.repos[name][key] = text


class BackendConnection(http.client.HTTPConnection):
    """TCP_NODELAY: http.client writes headers and body apart, and Nagle would hold the body
    until the peer's delayed ACK (40 ms a request)."""

    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "aws-fake/1"
    sys_version = ""
    timeout = 300

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
            self.entry["status"] = code
        super().send_response(code, message)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = lambda self: self.dispatch()

    @property
    def state(self):
        return self.server.state

    @property
    def args(self):
        return self.server.state.args

    @property
    def listener(self):
        return self.server.listener

    def port_of(self, name):
        return self.state.ports[name]

    def dispatch(self):
        self.entry = None
        self.body = BodyReader(self.rfile, self.headers)
        sp = urllib.parse.urlsplit(self.path)
        self.req_path, self.query = sp.path, sp.query
        if self.listener == "api" and self.req_path.startswith("/_ctl/"):
            try:
                return self.control()
            finally:
                self.finish_body()
        self.entry = {"t": round(time.time(), 3), "listener": self.listener, "method": self.command,
                      "path": self.req_path, "status": None, "op": None, "fault": None}
        self.state.record(self.entry)
        if self.listener == "api":
            target = self.headers.get("X-Amz-Target") or ""
            self.entry["op"] = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else target or "?"
            self.state.bump("api", self.entry["op"])
        try:
            f = self.state.take_fault(self.listener, (), down=True)
            if f is not None:
                self.entry["fault"] = "down"
                self.fault_answer(dict(f, kind="status", status=503), down=True)
            else:
                getattr(self, "route_" + self.listener)()
        except (Aborted,) + QUIET:
            self.close_connection = True
        finally:
            e = self.entry
            sys.stderr.write("%s %s %s %s%s%s\n" % (
                e["listener"], e["method"], e["path"], e["status"],
                " op=" + e["op"] if e["op"] else "", " fault=" + e["fault"] if e["fault"] else ""))
            self.finish_body()

    def finish_body(self):
        if self.close_connection or self.body.done:
            return
        try:
            if not self.body.drain():
                self.close_connection = True
        except (OSError, ValueError):
            self.close_connection = True

    def send(self, status, body=b"", headers=(), content_type="application/json"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        if content_type and (body or status >= 400):
            self.send_header("Content-Type", content_type)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def send_json(self, status, obj, headers=(), content_type="application/json"):
        self.send(status, json.dumps(obj).encode(), headers, content_type)

    def abort(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise Aborted()

    # --- faults ---
    def fault(self, op=None):
        keys = [self.command + " " + self.req_path] + ([op] if op else [])
        f = self.state.take_fault(self.listener, keys, down=False)
        if f is None:
            return False
        self.entry["fault"] = f["kind"]
        self.fault_answer(f)
        return True

    def fault_answer(self, f, down=False):
        kind = f["kind"]
        if kind == "close":
            self.abort()
        if kind == "hang":
            end = time.time() + min(float(f.get("seconds", 30)), 600.0)
            while time.time() < end:
                time.sleep(min(0.1, max(0.0, end - time.time())))
            self.abort()
        lst = self.listener
        throttle = kind == "throttle"
        code = int(f.get("status", 503)) if kind == "status" else None
        if lst == "api":
            if throttle:
                return self.api_error(ApiError("ThrottlingException", "Rate exceeded"))
            etype = {503: "ServiceUnavailableException", 429: "ThrottlingException"}.get(code, "ServerException")
            return self.api_error(ApiError(etype, "injected fault: status %d" % code, code))
        if lst == "data":
            if throttle:
                return self.send(429, oci_error("TOOMANYREQUESTS", "Rate exceeded"))
            return self.send(code, oci_error(OCI_CODES.get(code, "UNKNOWN"), "injected fault: status %d" % code))
        if lst == "s3":
            if throttle:
                return self.s3_error(503, "SlowDown", "Please reduce your request rate.")
            c = {503: "ServiceUnavailable", 500: "InternalError", 403: "AccessDenied"}.get(code, "InternalError")
            return self.s3_error(code, c, "injected fault: status %d" % code)
        if lst == "sts":
            if throttle:
                return self.sts_error(400, "Throttling", "Rate exceeded")
            c = {503: "ServiceUnavailable", 500: "InternalFailure"}.get(code, "InternalFailure")
            return self.sts_error(code, c, "injected fault: status %d" % code, "Receiver")
        if throttle:
            return self.send(429, "Too Many Requests\n", content_type="text/plain")
        return self.send(code, "injected fault: status %d\n" % code, content_type="text/plain")

    # --- control API ---
    def control(self):
        what = self.req_path[len("/_ctl/"):].strip("/")
        try:
            raw = self.body.read_all(MAX_API_BODY)
        except ValueError as e:
            self.close_connection = True
            return self.send_json(413, {"error": str(e)})
        st = self.state
        if what == "health":
            return self.send(200, b"ok", content_type="text/plain")
        if what == "counts" and self.command == "GET":
            return self.send_json(200, st.counts())
        if what == "reset-counts" and self.command in ("GET", "POST"):
            st.reset_counts()
            return self.send_json(200, {"ok": True})
        if what == "repos" and self.command == "GET":
            with st.lock:
                repos = json.loads(json.dumps(st.repos))
            return self.send_json(200, repos)
        if what == "repos" and self.command == "POST":
            try:
                return self.send_json(200, {"repository": st.create_repo(json.loads(raw.decode() or "{}"))})
            except ValueError as e:
                return self.send_json(400, {"error": str(e)})
            except ApiError as e:
                return self.send_json(400, {"__type": e.etype, "message": e.message})
        if what == "faults" and self.command == "GET":
            return self.send_json(200, st.list_faults())
        if what == "faults" and self.command == "POST":
            try:
                st.set_faults(json.loads(raw.decode() or "[]"))
            except (ValueError, re.error) as e:
                return self.send_json(400, {"error": str(e)})
            return self.send_json(200, {"faults": len(st.list_faults())})
        if what == "expire-tokens" and self.command == "POST":
            st.expire_tokens()
            return self.send_json(200, {"ok": True})
        if what == "expire-credentials" and self.command == "POST":
            st.expire_credentials()
            return self.send_json(200, {"ok": True})
        if what == "token-lifetime" and self.command == "POST":
            try:
                secs = float(json.loads(raw.decode() or "{}")["seconds"])
            except (ValueError, KeyError, TypeError) as e:
                return self.send_json(400, {"error": "want {\"seconds\": N}: %s" % e})
            if not 1 <= secs <= 86400:
                return self.send_json(400, {"error": "seconds must be 1..86400"})
            st.args.token_lifetime = secs
            return self.send_json(200, {"token_lifetime": secs})
        return self.send_json(404, {"error": "unknown control path " + self.req_path})

    # --- ECR API ---
    def api_error(self, e):
        self.state.bump("api_errors", e.etype)
        self.send_json(e.status, {"__type": e.etype, "message": e.message},
                       [("x-amzn-ErrorType", e.etype + ERROR_TYPE_SUFFIX),
                        ("x-amzn-RequestId", str(uuid.uuid4()))],
                       content_type="application/x-amz-json-1.1")

    def reject_sig(self, reason, etype, message):
        self.state.bump("api_rejected", reason)
        self.state.bump("sig_rejected")
        raise ApiError(etype, message, 403)

    def verify_sigv4(self, body):
        a = self.args
        auth = self.headers.get("Authorization")
        if not auth:
            self.reject_sig("missing", "MissingAuthenticationTokenException", "Missing Authentication Token")
        p = parse_authorization(auth)
        if p is None:
            self.reject_sig("malformed", "IncompleteSignatureException",
                            "Authorization header requires 'Credential', 'Signature' and "
                            "'SignedHeaders' parameters (AWS4-HMAC-SHA256).")
        date = self.headers.get("X-Amz-Date") or ""
        try:
            t = datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            self.reject_sig("date", "IncompleteSignatureException", "X-Amz-Date is missing or malformed")
        now = time.time()
        if abs(now - t) > a.max_skew:
            self.reject_sig("skew", "InvalidSignatureException",
                            "Signature expired: %s is now earlier or later than %s (%s +/- %d s)."
                            % (date, amz_date(now), amz_date(now), a.max_skew))
        ak, sdate, region, service, term = p["Credential"]
        if sdate != date[:8] or region != a.region or service != "ecr" or term != "aws4_request":
            self.reject_sig("scope", "InvalidSignatureException",
                            "Credential should be scoped to a valid region, date and service "
                            "(%s/%s/ecr/aws4_request)." % (date[:8], a.region))
        signed = [h.lower() for h in p["SignedHeaders"]]
        if "host" not in signed:
            self.reject_sig("host_not_signed", "InvalidSignatureException", "'Host' must be a signed header.")
        with self.state.lock:
            secret = self.state.static.get(ak)
            cred = dict(self.state.creds[ak]) if secret is None and ak in self.state.creds else None
        if secret is None and cred is None:
            self.reject_sig("unknown_key", "UnrecognizedClientException",
                            "The security token included in the request is invalid.")
        if cred is not None:
            secret = cred["SecretAccessKey"]
            tok = self.headers.get("X-Amz-Security-Token")
            if tok is None:
                self.reject_sig("no_token", "UnrecognizedClientException",
                                "The security token included in the request is invalid.")
            if not hmac.compare_digest(tok.encode(), cred["Token"].encode()):
                self.reject_sig("bad_token", "UnrecognizedClientException",
                                "The security token included in the request is invalid.")
            if "x-amz-security-token" not in signed:
                self.reject_sig("token_not_signed", "InvalidSignatureException",
                                "'X-Amz-Security-Token' must be a signed header.")
            if cred["expires"] <= now:
                self.reject_sig("expired", "ExpiredTokenException",
                                "The security token included in the request is expired")
        try:
            creq = canonical_request(self.command, self.req_path, self.query, self.headers.items(),
                                     signed, sha256_hex(body))
        except KeyError as e:
            self.reject_sig("signature", "InvalidSignatureException",
                            "The signed header %s is not in the request." % e)
        want = signature(secret, date, a.region, "ecr", creq)
        if not hmac.compare_digest(want, p["Signature"].lower()):
            self.reject_sig("signature", "InvalidSignatureException",
                            "The request signature we calculated does not match the signature you "
                            "provided. Check your AWS Secret Access Key and signing method. Consult "
                            "the service documentation for details.")
        self.state.bump("sig_accepted")

    def route_api(self):
        try:
            try:
                body = self.body.read_all(MAX_API_BODY)
            except ValueError:
                self.close_connection = True
                raise ApiError("SerializationException", "request body too large", 413)
            target = self.headers.get("X-Amz-Target") or ""
            op = self.entry["op"]
            self.verify_sigv4(body)
            if self.fault(op):
                if self.entry["fault"] == "throttle":
                    self.state.bump("api_throttled", op)
                return
            if self.command != "POST" or self.req_path != "/" or not target.startswith(TARGET_PREFIX):
                raise ApiError("UnknownOperationException", "Unknown operation %s" % op)
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/x-amz-json-1.1":
                raise ApiError("SerializationException", "Content-Type must be application/x-amz-json-1.1")
            try:
                req = json.loads(body.decode() or "{}")
            except (ValueError, UnicodeDecodeError):
                raise ApiError("SerializationException", "the body is not JSON")
            if not isinstance(req, dict):
                raise ApiError("SerializationException", "the body must be a JSON object")
            fn = getattr(self, "op_" + op, None) if re.fullmatch(r"[A-Za-z]+", op) else None
            if fn is None:
                raise ApiError("UnknownOperationException", "Unknown operation %s" % op)
            out = fn(req)
            self.state.bump("api_ok", op)
            self.send_json(200, out, [("x-amzn-RequestId", str(uuid.uuid4()))],
                           content_type="application/x-amz-json-1.1")
        except ApiError as e:
            self.api_error(e)

    def op_GetAuthorizationToken(self, req):
        ids = req.get("registryIds")
        if ids is not None and (not isinstance(ids, list) or any(i != self.args.account for i in ids)):
            raise ApiError("InvalidParameterException", "registryIds must be [%s]" % self.args.account)
        pw, exp = self.state.issue_password()
        return {"authorizationData": [{
            "authorizationToken": base64.b64encode(("AWS:" + pw).encode()).decode(),
            "expiresAt": round(exp, 3),
            "proxyEndpoint": "http://127.0.0.1:%d" % self.port_of("data")}]}

    def op_DescribeRepositories(self, req):
        st = self.state
        st.check_registry(req)
        names = req.get("repositoryNames")
        with st.lock:
            repos = {k: dict(v) for k, v in st.repos.items()}
        if names is None:
            return {"repositories": [st.repo_view(r) for _, r in sorted(repos.items())]}
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not 1 <= len(names) <= 100:
            raise ApiError("InvalidParameterException", "repositoryNames must be a list of 1 to 100 names")
        for n in names:
            if n not in repos:
                raise ApiError("RepositoryNotFoundException",
                               "The repository with name '%s' does not exist in the registry with id '%s'"
                               % (n, self.args.account))
        return {"repositories": [st.repo_view(repos[n]) for n in names]}

    def op_CreateRepository(self, req):
        return {"repository": self.state.create_repo(req)}

    def policy_text(self, req, key, cap):
        text = req.get(key)
        if not isinstance(text, str) or not text or len(text) > cap:
            raise ApiError("InvalidParameterException", "%s must be a string of 1 to %d characters" % (key, cap))
        try:
            json.loads(text)
        except ValueError:
            raise ApiError("InvalidParameterException", "Invalid parameter at '%s': not valid JSON" % key)
        return text

    def op_PutLifecyclePolicy(self, req):
        name = self.state.repo_or_raise(req)
        text = self.policy_text(req, "lifecyclePolicyText", 30720)
        self.state.set_repo_text(name, "lifecyclePolicyText", text)
        return {"registryId": self.args.account, "repositoryName": name, "lifecyclePolicyText": text}

    def op_SetRepositoryPolicy(self, req):
        name = self.state.repo_or_raise(req)
        text = self.policy_text(req, "policyText", 10240)
        self.state.set_repo_text(name, "policyText", text)
        return {"registryId": self.args.account, "repositoryName": name, "policyText": text}

    # --- ECR data plane ---
    def data_kind(self, m):
        if m is None:
            return "other"
        what, rest = m.group(2), m.group(3) or ""
        if what == "manifests" and self.command in ("GET", "HEAD", "PUT"):
            return self.command + " manifest"
        if what == "blobs" and rest.startswith("uploads"):
            if self.command in ("POST", "PUT", "PATCH"):
                return self.command + " upload"
            return "other"
        if what == "blobs" and self.command in ("GET", "HEAD"):
            return self.command + " blob"
        return "other"

    def data_unauthorized(self, expired=False):
        self.state.bump("data_unauthorized")
        if expired:
            self.state.bump("data_expired")
        if expired and self.args.expired_token_status == 403:
            return self.send(403, oci_error(
                "DENIED", "Your authorization token has expired. Reauthenticate and try again."))
        realm = 'Basic realm="https://127.0.0.1:%d/",service="ecr.amazonaws.com"' % self.port_of("data")
        self.send(401, oci_error("UNAUTHORIZED", "Not Authorized"),
                  [("WWW-Authenticate", realm), ("Docker-Distribution-API-Version", "registry/2.0")])

    def data_auth(self):
        """"ok", "expired" or "unknown"."""
        h = self.headers.get("Authorization") or ""
        if not h[:6].lower() == "basic ":
            return "unknown"
        try:
            user, _, pw = base64.b64decode(h[6:].strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return "unknown"
        if user != "AWS":
            return "unknown"
        return self.state.password_state(pw)

    def route_data(self):
        st = self.state
        m = V2_RE.match(self.req_path)
        st.bump("data", self.data_kind(m))
        if not (self.req_path in ("/v2", "/v2/") or self.req_path.startswith("/v2/")):
            return self.send(404, oci_error("NOT_FOUND", "not found"))
        auth = self.data_auth()
        if auth != "ok":
            return self.data_unauthorized(expired=(auth == "expired"))
        if self.fault():
            return
        if self.req_path in ("/v2", "/v2/"):
            return self.send(200, b"{}", [("Docker-Distribution-API-Version", "registry/2.0")])
        if m is None:
            return self.forward()
        name, what, rest = m.group(1), m.group(2), m.group(3) or ""
        repo = st.get_repo(name)
        if repo is None:
            st.bump("name_unknown")
            return self.send(404, oci_error(
                "NAME_UNKNOWN", "The repository with name '%s' does not exist in the registry with id '%s'"
                % (name, self.args.account)))
        if what == "blobs" and rest.startswith("uploads"):
            return self.data_upload(name, rest)
        if what == "blobs" and self.command in ("GET", "HEAD") and DIGEST_RE.match(rest):
            return self.data_blob(name, rest)
        if what == "manifests" and self.command == "PUT":
            return self.data_manifest_put(repo, rest)
        return self.forward()

    def data_blob(self, name, digest):
        conn, resp = self.backend("HEAD", "/v2/%s/blobs/%s" % (name, digest))
        if resp is None:
            return
        try:
            resp.read()
            status, length = resp.status, resp.getheader("Content-Length")
            got = resp.getheader("Docker-Content-Digest") or digest
        finally:
            conn.close()
        if status != 200:
            if status == 404:
                return self.send(404, oci_error("BLOB_UNKNOWN", "blob unknown to registry", digest))
            return self.send(status, oci_error(OCI_CODES.get(status, "UNKNOWN"), "backend answered %d" % status))
        if self.command == "HEAD":
            self.send_response(200)
            self.send_header("Content-Length", length or "0")
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Docker-Content-Digest", got)
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.end_headers()
            return
        a = self.args
        now = time.time()
        sig = self.state.presign(name, digest)
        cred = "ASIAFAKEPRESIGNED000/%s/%s/s3/aws4_request" % (amz_date(now)[:8], a.region)
        q = urllib.parse.urlencode([
            ("X-Amz-Security-Token", "FQoGfake" + secrets.token_hex(16)),
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Date", amz_date(now)),
            ("X-Amz-SignedHeaders", "host"), ("X-Amz-Expires", "3600"),
            ("X-Amz-Credential", cred), ("X-Amz-Signature", sig), ("name", name)])
        loc = "http://127.0.0.1:%d/prod-%s-starport-layer-bucket/%s/%s/%s?%s" % (
            self.port_of("s3"), a.region, a.account, name, digest, q)
        self.send(307, b"", [("Location", loc), ("Docker-Distribution-API-Version", "registry/2.0")])

    def tag_immutable(self, repo, tag):
        mut = repo["imageTagMutability"]
        filters = [f["filter"] for f in repo.get("imageTagMutabilityExclusionFilters") or ()]
        hit = any(wildcard_match(f, tag) for f in filters)
        if mut == "IMMUTABLE":
            return True
        if mut == "IMMUTABLE_WITH_EXCLUSION":
            return not hit
        if mut == "MUTABLE_WITH_EXCLUSION":
            return hit
        return False

    def data_manifest_put(self, repo, ref):
        name = repo["repositoryName"]
        try:
            body = self.body.read_all(MAX_MANIFEST)
        except ValueError:
            self.close_connection = True
            return self.send(400, oci_error("MANIFEST_INVALID", "manifest over 4 MiB"))
        if not DIGEST_RE.match(ref) and self.tag_immutable(repo, ref):
            conn, resp = self.backend("HEAD", "/v2/%s/manifests/%s" % (name, ref),
                                      extra={"Accept": MANIFEST_ACCEPT})
            if resp is None:
                return
            try:
                resp.read()
                old = resp.getheader("Docker-Content-Digest") if resp.status == 200 else None
            finally:
                conn.close()
            new = "sha256:" + sha256_hex(body)
            if old is not None and old != new:
                self.state.bump("tag_invalid")
                return self.send(400, oci_error(
                    "TAG_INVALID", "The image tag '%s' already exists in the '%s' repository and cannot "
                    "be overwritten because the repository is immutable." % (ref, name)))
        self.forward(body=body)

    def data_upload(self, name, rest):
        st = self.state
        upload_id = rest[len("uploads"):].strip("/")
        if upload_id and self.command in ("PATCH", "PUT"):
            with st.lock:
                small = st.uploads.get(upload_id)
            has_body = self.command == "PATCH" or self.body.chunked or self.body.left > 0
            if small is not None and has_body:
                st.bump("patch_rejected")
                return self.send(400, oci_error(
                    "BLOB_UPLOAD_INVALID", "A previous part of this upload was %d bytes: every part "
                    "but the last must be at least %d bytes." % (small, self.args.min_part_bytes)))
        status = self.forward(stream=True)
        # Upload sessions open at once per repository: a 202 to POST opens one, the PUT to its
        # location (whatever its answer) closes it.
        with st.lock:
            o = st.uploads_open.get(name, 0)
            if self.command == "POST" and not upload_id and status == 202:
                st.uploads_open[name] = o + 1
                m = st.c["uploads_open_max"]
                m[name] = max(m.get(name, 0), o + 1)
            elif self.command == "PUT" and upload_id and o > 0:
                st.uploads_open[name] = o - 1
        if status is None:
            return
        n = self.body.total
        if 200 <= status < 300:
            st.bump("bytes_uploaded", n=n)
            if self.command == "PATCH" and upload_id:
                with st.lock:
                    if n < self.args.min_part_bytes:
                        st.uploads[upload_id] = n
                    else:
                        st.uploads.pop(upload_id, None)
            if status == 201 and self.command in ("PUT", "POST"):
                st.bump("uploads_completed")
                with st.lock:
                    st.uploads.pop(upload_id, None)

    # --- backend plumbing ---
    def backend(self, method, path_q, extra=None, body=None, length=None):
        u = self.server.backend
        conn = BackendConnection(u.hostname, u.port or 80, timeout=300, blocksize=CHUNK)
        headers = {}
        accept = self.headers.get_all("Accept")
        if accept:
            headers["Accept"] = ", ".join(accept)
        for h in ("Range", "Content-Range"):
            if self.headers.get(h):
                headers[h] = self.headers[h]
        chunked = False
        if body is not None:
            if self.headers.get("Content-Type"):
                headers["Content-Type"] = self.headers["Content-Type"]
            if length is None:
                headers["Transfer-Encoding"] = "chunked"
                chunked = True
            else:
                headers["Content-Length"] = str(length)
        elif method in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = "0"
        headers.update(extra or {})
        try:
            conn.request(method, path_q, body=body, headers=headers, encode_chunked=chunked)
            return conn, conn.getresponse()
        except OSError as e:
            conn.close()
            if not self.body.done:
                self.close_connection = True
            self.send(502, oci_error("UNAVAILABLE", "backend unreachable: %s" % e.__class__.__name__))
            return None, None

    def forward(self, body=None, stream=False):
        """Sends this request to the backend and relays the answer; returns its status or
        None. <body>: bytes already read; <stream>: stream the request body."""
        path_q = self.req_path + ("?" + self.query if self.query else "")
        if body is not None:
            conn, resp = self.backend(self.command, path_q, body=body, length=len(body))
        elif self.command in ("POST", "PUT", "PATCH") and not self.body.done:
            length = None if self.body.chunked else self.body.left
            conn, resp = self.backend(self.command, path_q, body=self.body, length=length)
        else:
            conn, resp = self.backend(self.command, path_q)
        if resp is None:
            return None
        self.relay(conn, resp)
        return resp.status

    def relay(self, conn, resp, header_filter=None, count_s3=False):
        try:
            hdrs = []
            for name in RELAY_HEADERS:
                v = resp.getheader(name)
                if v is None:
                    continue
                if name == "Location":
                    v = v.replace(self.server.backend_base, "http://127.0.0.1:%d" % self.server.server_port)
                hdrs.append((name, v))
            if header_filter:
                hdrs = header_filter(hdrs)
            length = resp.getheader("Content-Length")
            bodyless = self.command == "HEAD" or resp.status in (204, 304) or resp.status < 200
            chunked = length is None and not bodyless
            self.send_response(resp.status)
            for k, v in hdrs:
                self.send_header(k, v)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            elif length is None:
                self.send_header("Content-Length", "0")
            self.end_headers()
            if bodyless:
                return
            sent = 0
            for _ in range(1 << 40):  # bounded by the body's length
                data = resp.read(CHUNK)
                if not data:
                    break
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    self.wfile.write(data)
                sent += len(data)
                if count_s3:
                    self.state.bump("s3_bytes", n=len(data))
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            elif length is not None and sent != int(length):
                self.abort()  # the backend fell short; the client must see a broken body
        finally:
            conn.close()

    # --- S3 ---
    def s3_error(self, status, code, message):
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message>"
                "<RequestId>%s</RequestId></Error>" % (code, xml_escape(message), secrets.token_hex(8).upper()))
        self.send(status, body, content_type="application/xml")

    def route_s3(self):
        st = self.state
        if self.fault():
            return
        if "Authorization" in self.headers:
            st.bump("s3_rejected_auth")
            return self.s3_error(400, "InvalidArgument", "Only one auth mechanism allowed; only the "
                                 "X-Amz-Algorithm query parameter, Signature query string parameter or the "
                                 "Authorization header should be specified")
        q = urllib.parse.parse_qs(self.query)
        sig = (q.get("X-Amz-Signature") or [None])[0]
        if not sig:
            st.bump("s3_rejected")
            return self.s3_error(403, "AccessDenied", "Query-string authentication requires the "
                                 "X-Amz-Signature parameter")
        if self.command not in ("GET", "HEAD"):
            st.bump("s3_rejected")
            return self.s3_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
        name = (q.get("name") or [""])[0]
        digest = self.req_path.rsplit("/", 1)[-1]
        with st.lock:
            issued = st.presigned.get(sig)
        if issued is None or issued[0] != name or issued[1] != digest:
            st.bump("s3_rejected")
            return self.s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does "
                                 "not match the signature you provided.")
        if issued[2] < time.time():
            st.bump("s3_rejected")
            return self.s3_error(403, "AccessDenied", "Request has expired")
        conn, resp = self.backend(self.command, "/v2/%s/blobs/%s" % (name, digest), extra={"Accept": "*/*"})
        if resp is None:
            return
        if resp.status not in (200, 206):
            conn.close()
            if resp.status == 416:
                return self.s3_error(416, "InvalidRange", "The requested range is not satisfiable")
            return self.s3_error(404, "NoSuchKey", "The specified key does not exist.")
        st.bump("s3")

        def s3_headers(hdrs):
            out = [(k, v) for k, v in hdrs if k in ("Content-Length", "Content-Range", "Accept-Ranges")]
            out += [("Content-Type", "application/octet-stream"),
                    ("ETag", '"%s"' % digest.split(":")[-1][:32]),
                    ("x-amz-request-id", secrets.token_hex(8).upper())]
            if not any(k == "Accept-Ranges" for k, _ in out):
                out.append(("Accept-Ranges", "bytes"))
            return out

        self.relay(conn, resp, header_filter=s3_headers, count_s3=True)

    # --- IMDSv2 ---
    def route_imds(self):
        st = self.state
        st.bump("imds", self.req_path)
        if self.fault():
            return
        if self.req_path == "/latest/api/token":
            if self.command != "PUT":
                return self.send(405, "", content_type="text/plain")
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds") or ""
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.send(400, "", content_type="text/plain")
            tok = "AQAE" + base64.b64encode(secrets.token_bytes(40)).decode()
            with st.lock:
                st.imds_tokens[tok] = time.time() + int(ttl)
                st.c["imds_tokens"] += 1
            return self.send(200, tok, [("X-aws-ec2-metadata-token-ttl-seconds", ttl)],
                             content_type="text/plain")
        if self.command not in ("GET", "HEAD"):
            return self.send(405, "", content_type="text/plain")
        tok = self.headers.get("X-aws-ec2-metadata-token")
        if tok is None:
            st.bump("imds_v1_refused")
            return self.send(401, "", content_type="text/plain")
        with st.lock:
            exp = st.imds_tokens.get(tok)
        if exp is None or exp < time.time():
            st.bump("imds_unauthorized")
            return self.send(401, "", content_type="text/plain")
        a = self.args
        p = self.req_path
        base = "/latest/meta-data/iam/security-credentials"
        if p in (base, base + "/"):
            return self.send(200, a.imds_role, content_type="text/plain")
        if p.startswith(base + "/"):
            if p[len(base) + 1:].rstrip("/") != a.imds_role:
                return self.send(404, "", content_type="text/plain")
            c = st.issue_creds("imds")
            return self.send_json(200, {
                "Code": "Success", "LastUpdated": iso(time.time()), "Type": "AWS-HMAC",
                "AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                "Token": c["Token"], "Expiration": iso(c["expires"])}, content_type="text/plain")
        if p == "/latest/meta-data/placement/region":
            return self.send(200, a.region, content_type="text/plain")
        if p == "/latest/dynamic/instance-identity/document":
            return self.send_json(200, {
                "accountId": a.account, "architecture": "x86_64", "availabilityZone": a.region + "a",
                "imageId": "ami-0123456789abcdef0", "instanceId": "i-0123456789abcdef0",
                "instanceType": "m5.large", "pendingTime": iso(time.time() - 3600),
                "privateIp": "10.0.0.10", "region": a.region, "version": "2017-09-30"},
                content_type="text/plain")
        return self.send(404, "", content_type="text/plain")

    # --- container credentials ---
    def route_container(self):
        st = self.state
        st.bump("container_paths", self.req_path)
        if self.fault():
            return
        want = self.args.container_auth
        if want is not None:
            got = self.headers.get("Authorization")
            if got is None or not hmac.compare_digest(got.encode(), want.encode()):
                st.bump("container", "unauthorized")
                return self.send_json(401, {"code": "AccessDenied", "message": "Authorization token is invalid"})
        if self.command != "GET":
            return self.send_json(405, {"code": "MethodNotAllowed", "message": "GET only"})
        c = st.issue_creds("container")
        st.bump("container", "ok")
        self.send_json(200, {"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                             "Token": c["Token"], "Expiration": iso(c["expires"]),
                             "RoleArn": "arn:aws:iam::%s:role/x" % self.args.account})

    # --- STS ---
    def sts_error(self, status, code, message, etype="Sender"):
        body = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n  <Error>\n'
                '    <Type>%s</Type>\n    <Code>%s</Code>\n    <Message>%s</Message>\n  </Error>\n'
                '  <RequestId>%s</RequestId>\n</ErrorResponse>\n'
                % (etype, code, xml_escape(message), uuid.uuid4()))
        self.send(status, body, content_type="text/xml")

    def route_sts(self):
        st = self.state
        if self.fault():
            return
        try:
            raw = self.body.read_all(MAX_API_BODY)
        except ValueError:
            self.close_connection = True
            return self.sts_error(413, "ValidationError", "request too large")
        params = urllib.parse.parse_qs(self.query, keep_blank_values=True)
        if self.command == "POST" and raw:
            for k, v in urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items():
                params.setdefault(k, []).extend(v)
        p = {k: v[0] for k, v in params.items()}
        call = {"RoleArn": p.get("RoleArn"), "RoleSessionName": p.get("RoleSessionName"),
                "DurationSeconds": p.get("DurationSeconds"), "ok": False}

        def reject(code, message, status=400):
            st.bump("sts", "rejected")
            with st.lock:
                st.c["sts_calls"].append(call)
            return self.sts_error(status, code, message)

        if self.req_path != "/" or self.command not in ("GET", "POST"):
            return reject("InvalidAction", "Could not find operation for %s %s" % (self.command, self.req_path))
        if p.get("Action") != "AssumeRoleWithWebIdentity":
            return reject("InvalidAction", "Could not find operation %s for version %s"
                          % (p.get("Action"), p.get("Version")))
        missing = [k for k in ("RoleArn", "RoleSessionName", "WebIdentityToken") if not p.get(k)]
        if missing:
            field = missing[0][0].lower() + missing[0][1:]
            return reject("ValidationError", "1 validation error detected: Value null at '%s' failed to "
                          "satisfy constraint: Member must not be null" % field)
        want = self.args.web_identity_token
        if want is not None and not hmac.compare_digest(p["WebIdentityToken"].encode(), want.encode()):
            return reject("InvalidIdentityToken", "Couldn't retrieve verification key from your identity provider, "
                          "please reference AssumeRoleWithWebIdentity documentation for requirements")
        life = self.args.creds_lifetime
        if p.get("DurationSeconds"):
            if not p["DurationSeconds"].isdigit() or not 900 <= int(p["DurationSeconds"]) <= 43200:
                return reject("ValidationError", "DurationSeconds must be between 900 and 43200")
            life = min(life, int(p["DurationSeconds"]))
        c = st.issue_creds("sts", life)
        call["ok"] = True
        st.bump("sts", "ok")
        with st.lock:
            st.c["sts_calls"].append(call)
        role = p["RoleArn"].rsplit("/", 1)[-1]
        sess = p["RoleSessionName"]
        body = (
            '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n'
            '  <AssumeRoleWithWebIdentityResult>\n'
            '    <SubjectFromWebIdentityToken>system:serviceaccount:default:ecr-ptc-proxy</SubjectFromWebIdentityToken>\n'
            '    <Audience>sts.amazonaws.com</Audience>\n'
            '    <AssumedRoleUser>\n'
            '      <Arn>arn:aws:sts::%s:assumed-role/%s/%s</Arn>\n'
            '      <AssumedRoleId>AROA0123456789EXAMPLE:%s</AssumedRoleId>\n'
            '    </AssumedRoleUser>\n'
            '    <Credentials>\n'
            '      <AccessKeyId>%s</AccessKeyId>\n'
            '      <SecretAccessKey>%s</SecretAccessKey>\n'
            '      <SessionToken>%s</SessionToken>\n'
            '      <Expiration>%s</Expiration>\n'
            '    </Credentials>\n'
            '    <Provider>arn:aws:iam::%s:oidc-provider/oidc.eks.%s.amazonaws.com/id/EXAMPLE</Provider>\n'
            '  </AssumeRoleWithWebIdentityResult>\n'
            '  <ResponseMetadata>\n'
            '    <RequestId>%s</RequestId>\n'
            '  </ResponseMetadata>\n'
            '</AssumeRoleWithWebIdentityResponse>\n' % (
                self.args.account, xml_escape(role), xml_escape(sess), xml_escape(sess), c["AccessKeyId"],
                c["SecretAccessKey"], c["Token"], iso(c["expires"]), self.args.account, self.args.region,
                uuid.uuid4()))
        self.send(200, body, content_type="text/xml")


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
    for lst in LISTENERS:
        ap.add_argument("--%s-port" % lst, type=int, default=0)
    ap.add_argument("--ports-file")
    ap.add_argument("--backend", required=True)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--account", default="123456789012")
    ap.add_argument("--static-key", action="append")
    ap.add_argument("--token-lifetime", type=int, default=43200)
    ap.add_argument("--creds-lifetime", type=int, default=3600)
    ap.add_argument("--imds-role", default="ecr-ptc-proxy-role")
    ap.add_argument("--container-auth")
    ap.add_argument("--web-identity-token")
    ap.add_argument("--min-part-bytes", type=int, default=5 * 1024 * 1024)
    ap.add_argument("--expired-token-status", type=int, choices=(401, 403), default=401)
    ap.add_argument("--max-skew", type=int, default=300)
    args = ap.parse_args()
    backend = urllib.parse.urlsplit(args.backend)
    if backend.scheme != "http" or backend.hostname not in ("127.0.0.1", "localhost", "::1"):
        ap.error("--backend must be an http URL on loopback")
    if not re.fullmatch(r"[0-9]{12}", args.account):
        ap.error("--account must be 12 digits")
    state = State(args)
    servers = []
    for lst in LISTENERS:
        srv = Server(("127.0.0.1", getattr(args, lst + "_port")), Handler)
        srv.listener, srv.state, srv.backend = lst, state, backend
        srv.backend_base = "%s://%s" % (backend.scheme, backend.netloc)
        state.ports[lst] = srv.server_address[1]
        servers.append(srv)
    if args.ports_file:
        tmp = args.ports_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state.ports, f)
            f.write("\n")
        os.replace(tmp, args.ports_file)
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
