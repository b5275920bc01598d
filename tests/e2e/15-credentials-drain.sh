#!/usr/bin/env bash
# Credentials: a token realm that wants Basic credentials, and an upstream that wants Basic
# itself; the secret never shows in the logs. Drain: SIGTERM lets an in-flight download finish.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

start_registry reg
seed_images "$REGISTRY_URL" "$E2E_TMP/images.json" --set small >/dev/null
blob=$(python3 "$TOP_SRCDIR/tests/e2e/seed_images.py" --registry "$REGISTRY_URL" \
    --blob-only-mib 8 --blob-repo test/drain | tail -1)
start_fake_upstream tok "$REGISTRY_URL" --auth token --username robot --password 's3cr3t-T0ken'
T_PORT=$FAKE_PORT T_URL=$FAKE_URL
start_fake_upstream basic "$REGISTRY_URL" --auth basic --username robot --password 's3cr3t-T0ken'
B_PORT=$FAKE_PORT B_URL=$FAKE_URL

printf 's3cr3t-T0ken\n' >"$E2E_TMP/secret"
port=$(free_port)
cat >"$E2E_TMP/config.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data",
 "rules": [
  {"prefix": "tok", "upstream": "$T_URL", "allow_private_redirects": true,
   "credentials": {"username": "robot", "password_env": "E2E_UPSTREAM_TOKEN"}},
  {"prefix": "basic", "upstream": "$B_URL", "allow_private_redirects": true,
   "credentials": {"username": "robot", "password_file": "$E2E_TMP/secret"}},
  {"prefix": "anon", "upstream": "$T_URL", "allow_private_redirects": true}]}
JSON
E2E_UPSTREAM_TOKEN='s3cr3t-T0ken' start_proxy proxy --config "$E2E_TMP/config.json"
wait_port "$port"
P="127.0.0.1:$port"

for prefix in tok basic; do
    check "$prefix: skopeo pulls with the rule's credentials" skopeo copy -q --src-tls-verify=false \
        "docker://$P/$prefix/library/alpinetest:latest" "dir:$E2E_TMP/$prefix"
done
check "tok: one token fetch, with credentials" test "$(FAKE_PORT=$T_PORT fake_count token)" = 1
code=$(curl -s -o "$E2E_TMP/b" -w '%{http_code}' -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$P/v2/anon/library/alpinetest/manifests/latest")
check "anon: without credentials the realm refuses: $code UNAUTHORIZED" \
    bash -c "[ $code = 401 ] && grep -q UNAUTHORIZED '$E2E_TMP/b'"
check "the secret never appears in the proxy's log" bash -c "! grep -q 's3cr3t' '$E2E_TMP/proxy.log'"

# Drain: a slow download in flight when SIGTERM arrives still completes and verifies.
FAKE_PORT=$T_PORT fake_ctl faults '[{"match":"^GET /v2/.*/blobs/","kind":"slow","delay_ms":40,"count":-1}]' >/dev/null
(curl -s --max-time 30 "http://$P/v2/tok/test/drain/blobs/$blob" | sha256sum | cut -d' ' -f1 >"$E2E_TMP/drained") &
dl=$!
for _ in $(seq 1 100); do
    [ -n "$(ls -A "$E2E_TMP/data/tmp" 2>/dev/null)" ] && break
    sleep 0.05
done
kill -TERM "$PROXY_PID"
sleep 0.3
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$P/v2/" || true)
check "while draining, new connections are refused ($code)" test "$code" = 000
wait "$dl" || true
check "the in-flight download completed and verified" test "sha256:$(cat "$E2E_TMP/drained")" = "$blob"
set +e
wait "$PROXY_PID"; rc=$?
set -e
check "the proxy exited 0 after draining ($rc)" test "$rc" = 0
check "the drained fill was committed" test -f "$E2E_TMP/data/blobs/sha256/${blob:7:2}/${blob:7}"
# The commit lands after the last client is done and the loop has stopped: it is still told.
check "the drain logged fill-done for the blob" grep -q "fill-done digest=$blob bytes=" "$E2E_TMP/proxy.log"

# After a restart the drained blob comes from the store: upstream sees no GET for it.
FAKE_PORT=$T_PORT fake_ctl faults '[]' >/dev/null
FAKE_PORT=$T_PORT fake_ctl reset-counts '' >/dev/null
E2E_UPSTREAM_TOKEN='s3cr3t-T0ken' start_proxy proxy2 --config "$E2E_TMP/config.json"
wait_port "$port"
sum=$(curl -s --max-time 10 "http://$P/v2/tok/test/drain/blobs/$blob" | sha256sum | cut -d' ' -f1)
check "after a restart the drained blob is served" test "sha256:$sum" = "$blob"
check "from the store, not fetched again" test "$(FAKE_PORT=$T_PORT fake_count 'GET blob')" = 0
stop_pid "$PROXY_PID"
e2e_done
