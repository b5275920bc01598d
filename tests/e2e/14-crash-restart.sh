#!/usr/bin/env bash
# kill -9 in the middle of fills, then restart: temp files are swept, nothing half-written is
# served, every later pull succeeds and verifies, and the index passes its integrity check.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

start_registry reg
seed_images "$REGISTRY_URL" "$E2E_TMP/images.json" --set small >/dev/null
blobs=()
for s in 21 22 23; do
    blobs+=("$(python3 "$TOP_SRCDIR/tests/e2e/seed_images.py" --registry "$REGISTRY_URL" \
        --blob-only-mib 16 --blob-repo test/crash --seed "$s" | tail -1)")
done
start_fake_upstream fake "$REGISTRY_URL" --auth none

port=$(free_port)
cat >"$E2E_TMP/config.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data",
 "rules": [{"prefix": "hub", "upstream": "$FAKE_URL", "allow_private_redirects": true}]}
JSON
P="http://127.0.0.1:$port"
start_proxy proxy1 --config "$E2E_TMP/config.json"
wait_port "$port"

# A finished image first, so the index has rows worth keeping.
check "an image pulls before the crash" skopeo copy -q --src-tls-verify=false \
    "docker://127.0.0.1:$port/hub/library/alpinetest:latest" "dir:$E2E_TMP/before"

# Three slow fills in flight, then kill -9.
fake_ctl faults '[{"match":"^GET /v2/.*/blobs/","kind":"slow","delay_ms":20,"count":-1}]' >/dev/null
cpids=()
for b in "${blobs[@]}"; do
    curl -s --max-time 20 -o /dev/null "$P/v2/hub/test/crash/blobs/$b" &
    cpids+=($!)
done
for _ in $(seq 1 100); do
    [ "$(ls -A "$E2E_TMP/data/tmp" | wc -l)" -ge 3 ] && break
    sleep 0.05
done
check "three fills were in flight" test "$(ls -A "$E2E_TMP/data/tmp" | wc -l)" -ge 3
sleep 0.5
kill -KILL "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true
for p in "${cpids[@]}"; do wait "$p" 2>/dev/null || true; done
check "temp files were left by the crash" test -n "$(ls -A "$E2E_TMP/data/tmp")"
for b in "${blobs[@]}"; do
    check "the cut-off blob ${b:7:12} is not in the store" \
        bash -c "! test -f '$E2E_TMP/data/blobs/sha256/${b:7:2}/${b:7}'"
done
fake_ctl faults '[]' >/dev/null

# A stored blob whose file vanished: the index must forget it at start-up.
victim=$(python3 -c '
import json, sys
print([i for i in json.load(open(sys.argv[1])) if i["repo"] == "library/alpinetest"][0]["blobs"][-1])' "$E2E_TMP/images.json")
rm -f "$E2E_TMP/data/blobs/sha256/${victim:7:2}/${victim:7}"

start_proxy proxy2 --config "$E2E_TMP/config.json"
wait_port "$port"
check "start-up swept the temp files" test -z "$(ls -A "$E2E_TMP/data/tmp")"
check "start-up dropped the row of the missing file" grep -q 'reconcile dropped_rows=' "$E2E_TMP/proxy2.log"
for b in "${blobs[@]}"; do
    check "blob ${b:7:12} pulls and verifies after the restart" \
        test "sha256:$(curl -s "$P/v2/hub/test/crash/blobs/$b" | sha256sum | cut -d' ' -f1)" = "$b"
done
check "the image pulls again after the restart (the missing layer refetched)" skopeo copy -q \
    --src-tls-verify=false "docker://127.0.0.1:$port/hub/library/alpinetest:latest" "dir:$E2E_TMP/after"
check "... and verifies" cmp -s "$E2E_TMP/before/manifest.json" "$E2E_TMP/after/manifest.json"
check "the missing layer is back" eventually test -f "$E2E_TMP/data/blobs/sha256/${victim:7:2}/${victim:7}"
stop_pid "$PROXY_PID"
check "PRAGMA integrity_check is ok" test "$(sqlite3 "$E2E_TMP/data/index.db" 'PRAGMA integrity_check')" = ok

# A store that cannot say what it holds (here ELOOP: a shard directory that is a symlink loop;
# in life EACCES or EIO) is not a store that lost everything: start-up refuses, drops nothing.
rows=$(sqlite3 "$E2E_TMP/data/index.db" 'SELECT count(*) FROM blobs')
shard="$E2E_TMP/data/blobs/sha256/${victim:7:2}"
mv "$shard" "$shard.away"
ln -s "$(basename "$shard")" "$shard"
start_proxy proxy3 --config "$E2E_TMP/config.json"
rc=0
for _ in $(seq 1 100); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PROXY_PID" 2>/dev/null; then rc=running; stop_pid "$PROXY_PID"; else wait "$PROXY_PID" || rc=$?; fi
check "a stat error at start-up stops the start (exit $rc)" bash -c "[ '$rc' != running ] && [ '$rc' != 0 ]"
check "... with one line naming the path and the error" \
    grep -q "reconcile: cannot stat .*${victim:7:2}.*(errno" "$E2E_TMP/proxy3.log"
check "... and no index row was dropped ($rows)" \
    test "$(sqlite3 "$E2E_TMP/data/index.db" 'SELECT count(*) FROM blobs')" = "$rows"
rm "$shard"
mv "$shard.away" "$shard"
e2e_done
