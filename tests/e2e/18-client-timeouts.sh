#!/usr/bin/env bash
# Client timeouts (ECR_PTC_PROXY_CLIENT_TIMEOUT, default 120 s): a download slower than the
# timeout completes as long as the client keeps reading; a connection that says nothing is
# closed after it. And what reaches logs and error bodies from a redirect is its scheme, host
# and path: never the query (a presigned URL's signature).
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

start_registry reg
blob=$(python3 "$TOP_SRCDIR/tests/e2e/seed_images.py" --registry "$REGISTRY_URL" \
    --blob-only-mib 24 --blob-repo test/slow | tail -1)
cdnblob=$(python3 "$TOP_SRCDIR/tests/e2e/seed_images.py" --registry "$REGISTRY_URL" \
    --blob-only-mib 1 --blob-repo test/slow --seed 5 | tail -1)
start_fake_upstream cdn "$REGISTRY_URL" --auth none --redirect-blobs
C_PORT=$FAKE_PORT C_URL=$FAKE_URL

port=$(free_port)
cat >"$E2E_TMP/config.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data",
 "rules": [{"prefix": "hub", "upstream": "$REGISTRY_URL"},
           {"prefix": "cdn", "upstream": "$C_URL", "allow_private_redirects": true}]}
JSON
check "a client timeout that is not a number of seconds is refused at start" \
    bash -c "! ECR_PTC_PROXY_CLIENT_TIMEOUT=2x '$PROXY_BIN' serve --config '$E2E_TMP/config.json' \
             >'$E2E_TMP/bad.log' 2>&1 && grep -q ECR_PTC_PROXY_CLIENT_TIMEOUT '$E2E_TMP/bad.log'"
ECR_PTC_PROXY_CLIENT_TIMEOUT=2 start_proxy proxy --config "$E2E_TMP/config.json"
wait_port "$port"
P="http://127.0.0.1:$port"
url="$P/v2/hub/test/slow/blobs/$blob"

check "the 24 MiB blob fills the cache" \
    test "sha256:$(curl -s "$url" | sha256sum | cut -d' ' -f1)" = "$blob"
# A steady slow reader (64 KiB every 20 ms, about 3 MB/s): never silent, slower than 2 s.
read -r got secs < <(python3 - "$port" "/v2/hub/test/slow/blobs/$blob" <<'PY'
import hashlib, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.settimeout(30)
s.connect(("127.0.0.1", int(sys.argv[1])))
t0 = time.monotonic()
s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % sys.argv[2]).encode())
buf = b""
while b"\r\n\r\n" not in buf:
    c = s.recv(65536)
    if not c:
        break
    buf += c
head, _, body = buf.partition(b"\r\n\r\n")
h = hashlib.sha256(body)
deadline = t0 + 60
while time.monotonic() < deadline:
    c = s.recv(65536)
    if not c:
        break
    h.update(c)
    time.sleep(0.02)
print("sha256:" + h.hexdigest(), int(time.monotonic() - t0))
PY
)
check "a download taking ${secs} s, longer than the 2 s timeout, completes and verifies" \
    bash -c "[ '$got' = '$blob' ] && [ '$secs' -ge 4 ]"

# An idle connection: the proxy closes it after the timeout (read returns EOF).
idle_closed() {
    local t0 rc
    t0=$(date +%s)
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    set +e
    timeout 10 cat <&3 >/dev/null
    rc=$?
    set -e
    exec 3<&-
    echo "idle connection: cat exit $rc after $(( $(date +%s) - t0 )) s"
    [ "$rc" = 0 ] && [ $(( $(date +%s) - t0 )) -le 6 ]
}
check "a connection that sends nothing is closed after the timeout" idle_closed

# A client that asks for the blob and never reads: the kernel's TCP_USER_TIMEOUT (the client
# timeout) ends the connection, and the proxy logs it gone.
python3 - "$port" "/v2/hub/test/slow/blobs/$blob" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % sys.argv[2]).encode())
time.sleep(30)
PY
STALL_PID=$!
E2E_PIDS+=("$STALL_PID")
stalled_gone() { [ "$(grep -c "blobs/$blob status=[0-9]* ms=[0-9.]* outcome=client-gone" "$E2E_TMP/proxy.log")" -ge 1 ]; }
waited=0
for _ in $(seq 1 40); do stalled_gone && break; sleep 0.5; waited=$((waited + 1)); done
check "a client that stops reading is dropped (after ~$((waited / 2)) s)" stalled_gone
stop_pid "$STALL_PID" || true

# Redirect query strings never reach the log or the client.
FAKE_PORT=$C_PORT fake_ctl faults '[{"match":"^GET /cdn/","kind":"status","status":503,"count":-1}]' >/dev/null
code=$(curl -s -o "$E2E_TMP/body" -w '%{http_code}' "$P/v2/cdn/test/slow/blobs/$cdnblob")
check "a failing CDN is an upstream error ($code)" test "$code" = 502
check "... the log names the CDN path" grep -q "/cdn/$cdnblob" "$E2E_TMP/proxy.log"
check "... but not its query" bash -c "! grep -q 'name=test' '$E2E_TMP/proxy.log'"
check "... nor does the client's error body ($(cat "$E2E_TMP/body"))" \
    bash -c "grep -q '/cdn/' '$E2E_TMP/body' && ! grep -q 'name=test' '$E2E_TMP/body'"
FAKE_PORT=$C_PORT fake_ctl faults '[]' >/dev/null
e2e_done
