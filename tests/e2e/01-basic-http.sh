#!/usr/bin/env bash
# The real binary on a free loopback port: /v2/, /healthz, unknown paths and methods.
source "$TOP_SRCDIR/tests/e2e/lib.sh"

port=$(free_port)
start_proxy proxy --listen "127.0.0.1:$port" --data-dir "$E2E_TMP/data"
wait_port "$port"
base="http://127.0.0.1:$port"

# GET /v2/: 200, {} and the API version header.
curl -s -D "$E2E_TMP/h" -o "$E2E_TMP/b" "$base/v2/"
check "GET /v2/ answers 200" grep -q '^HTTP/1.1 200' "$E2E_TMP/h"
check "GET /v2/ carries Docker-Distribution-API-Version" \
    grep -qi '^Docker-Distribution-API-Version: registry/2.0' "$E2E_TMP/h"
check "GET /v2/ is application/json" grep -qi '^Content-Type: application/json' "$E2E_TMP/h"
check "GET /v2/ body is {}" test "$(cat "$E2E_TMP/b")" = "{}"

# HEAD /v2/: same headers, no body.
curl -s -I -o "$E2E_TMP/hh" "$base/v2/"
check "HEAD /v2/ answers 200" grep -q '^HTTP/1.1 200' "$E2E_TMP/hh"
check "HEAD /v2/ says Content-Length: 2" grep -qi '^Content-Length: 2' "$E2E_TMP/hh"

# /healthz
check "GET /healthz answers ok" test "$(curl -s -o - -w '%{http_code}' "$base/healthz")" = "ok
200"

# An unknown path: 404 with an OCI error body.
code=$(curl -s -o "$E2E_TMP/b" -w '%{http_code}' "$base/nope/at/all")
check "unknown path answers 404" test "$code" = 404
check "unknown path body is an OCI error" \
    python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["errors"][0]; assert e["code"]=="NOT_FOUND" and e["message"], e' "$E2E_TMP/b"

# A write method: 405 UNSUPPORTED.
code=$(curl -s -o "$E2E_TMP/b" -w '%{http_code}' -X POST "$base/v2/library/x/blobs/uploads/")
check "POST answers 405" test "$code" = 405
check "POST body is UNSUPPORTED" \
    python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["errors"][0]["code"]=="UNSUPPORTED"' "$E2E_TMP/b"

# Keep-alive: several requests on one connection.
out=$(curl -s -w '%{http_code} %{num_connects}\n' -o /dev/null "$base/v2/" -o /dev/null "$base/v2/" -o /dev/null "$base/healthz" | tr '\n' ' ')
check "keep-alive connection serves three requests ($out)" test "$out" = "200 1 200 0 200 0 "

# One log line per request, text format.
check "one log line per request" grep -q 'request method=POST uri=/v2/library/x/blobs/uploads/ status=405' "$E2E_TMP/proxy.log"
stop_pid "$PROXY_PID"

# --log-format json: every line is one JSON object.
port=$(free_port)
start_proxy proxyjson --listen "127.0.0.1:$port" --data-dir "$E2E_TMP/data" --log-format json
wait_port "$port"
curl -s -o /dev/null "http://127.0.0.1:$port/v2/"
# A URI of about 64 KiB (the most evhttp takes in a request line): logged as one valid line of
# at most 4 KiB, the URI cut and marked, never the object.
long=$(python3 -c 'print("/v2/library/x/manifests/" + "a" * (64 * 1024 - 512))')
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$long")
check "a 64 KiB URI is answered ($code)" test "$code" = 400
stop_pid "$PROXY_PID"
check "json logs parse line by line" python3 -c '
import json, sys
raw = open(sys.argv[1], "rb").read()
assert raw.endswith(b"\n"), raw[-80:]
lines = raw.split(b"\n")[:-1]
assert len(lines) >= 4, lines
assert all(len(l) + 1 <= 4096 for l in lines), [len(l) for l in lines]
objs = [json.loads(l) for l in lines]
events = [o["event"] for o in objs]
assert "listening" in events and "request" in events and "stopped" in events, events
long = [o for o in objs if o["event"] == "request" and o["uri"].startswith("/v2/library/x/manifests/aaaa")]
assert len(long) == 1, events
assert long[0]["truncated"] is True and long[0]["uri"].endswith("\u2026") and long[0]["status"] == "400", long[0]
' "$E2E_TMP/proxyjson.log"

# --version and --help
check "--version prints the version" bash -c '"$PROXY_BIN" --version | grep -qE "^ecr-ptc-proxy [0-9]+\.[0-9]+\.[0-9]+$"'
check "--help names both commands" bash -c '"$PROXY_BIN" --help | grep -q check-config'
set +e
"$PROXY_BIN" serve --listen nonsense >/dev/null 2>"$E2E_TMP/err"; rc=$?
set -e
check "a bad --listen exits 2" test "$rc" = 2
check "a bad --listen says why" grep -q -- '--listen: "nonsense" is not HOST:PORT' "$E2E_TMP/err"
e2e_done
