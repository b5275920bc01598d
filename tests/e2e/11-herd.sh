#!/usr/bin/env bash
# A herd: 50 concurrent GETs of one uncached 200 MiB blob make exactly one upstream fetch,
# and every client gets identical, correct bytes. A client that leaves mid-transfer does not
# cancel the fill the cache still wants.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

HERD=${HERD:-50}
MIB=${HERD_MIB:-200}

start_registry reg
digest=$(python3 "$TOP_SRCDIR/tests/e2e/seed_images.py" --registry "$REGISTRY_URL" \
    --blob-only-mib "$MIB" --blob-repo test/herd | tail -1)
digest2=$(python3 "$TOP_SRCDIR/tests/e2e/seed_images.py" --registry "$REGISTRY_URL" \
    --blob-only-mib 32 --blob-repo test/herd --seed 7 | tail -1)
start_fake_upstream fake "$REGISTRY_URL" --auth token

fetches() { # upstream blob GETs that sent content (401 challenges do not count)
    fake_ctl counts | python3 -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin)["requests"]
          if r["kind"] == "GET blob" and r["status"] in (200, 206)))'
}

port=$(free_port)
cat >"$E2E_TMP/config.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data",
 "rules": [{"prefix": "hub", "upstream": "$FAKE_URL", "allow_private_redirects": true}]}
JSON
start_proxy proxy --config "$E2E_TMP/config.json"
wait_port "$port"
url="http://127.0.0.1:$port/v2/hub/test/herd/blobs/$digest"

# Slow the upstream body a little so every client joins while the fill is in flight.
fake_ctl faults '[{"match":"^GET /v2/.*/blobs/","kind":"slow","delay_ms":2,"count":-1}]' >/dev/null
start=$(date +%s%N)
pids=()
for i in $(seq 1 "$HERD"); do
    (curl -s --max-time 120 "$url" | sha256sum | cut -d' ' -f1 >"$E2E_TMP/herd.$i") &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "herd of $HERD x $MIB MiB: ${ms} ms"
fake_ctl faults '[]' >/dev/null

good=0
for i in $(seq 1 "$HERD"); do
    [ "sha256:$(cat "$E2E_TMP/herd.$i")" = "$digest" ] && good=$((good + 1))
done
check "all $HERD clients got the right bytes ($good)" test "$good" = "$HERD"
check "exactly one upstream blob fetch ($(fetches))" test "$(fetches)" = 1
check "exactly one token fetch for the scope ($(fake_count token))" test "$(fake_count token)" = 1
check "the blob is in the store" eventually test -f "$E2E_TMP/data/blobs/sha256/${digest:7:2}/${digest:7}"
tmp_empty() { test -z "$(ls -A "$E2E_TMP/data/tmp")"; }
check "no temp file is left" eventually tmp_empty

# Warm: served from disk, no upstream request.
fake_ctl reset-counts '' >/dev/null
check "a warm GET gives the right bytes" test "sha256:$(curl -s "$url" | sha256sum | cut -d' ' -f1)" = "$digest"
check "a warm GET makes no upstream request" test "$(fake_count 'GET blob')" = 0

# A client that leaves early does not cancel the fill.
fake_ctl reset-counts '' >/dev/null
fake_ctl faults '[{"match":"^GET /v2/.*/blobs/","kind":"slow","delay_ms":5,"count":-1}]' >/dev/null
url2="http://127.0.0.1:$port/v2/hub/test/herd/blobs/$digest2"
curl -s --max-time 1 -o /dev/null "$url2" || true
for _ in $(seq 1 200); do
    [ -f "$E2E_TMP/data/blobs/sha256/${digest2:7:2}/${digest2:7}" ] && break
    sleep 0.1
done
fake_ctl faults '[]' >/dev/null
check "the fill finished after its only client left" \
    test -f "$E2E_TMP/data/blobs/sha256/${digest2:7:2}/${digest2:7}"
check "... and was fetched once" test "$(fetches)" = 1
check "... and serves the right bytes" test "sha256:$(curl -s "$url2" | sha256sum | cut -d' ' -f1)" = "$digest2"
check "the proxy is still up" test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/")" = 200
e2e_done
