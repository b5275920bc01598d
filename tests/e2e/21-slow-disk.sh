#!/usr/bin/env bash
# A slow disk never stalls the event loop: a cold manifest is answered from the bytes in hand
# and committed (fsync, rename, fsync of the directory) on the commit thread, like blobs, so
# other clients are answered meanwhile. The disk is made slow by tests/e2e/slow_fsync.c, an
# LD_PRELOAD shim that sleeps in every fsync and logs the thread that called it.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

"${CC:-cc}" -shared -fPIC -o "$E2E_TMP/slow_fsync.so" "$TOP_SRCDIR/tests/e2e/slow_fsync.c" -ldl
start_registry reg
seed_images "$REGISTRY_URL" "$E2E_TMP/images.json" --set small >/dev/null
read -r REPO DIGEST MT < <(python3 -c '
import json, sys
i = [x for x in json.load(open(sys.argv[1])) if x["repo"] == "test/docker-v2"][0]
print(i["repo"], i["digest"], i["media_type"])' "$E2E_TMP/images.json")

port=$(free_port)
cat >"$E2E_TMP/config.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data",
 "rules": [{"prefix": "hub", "upstream": "$REGISTRY_URL"}]}
JSON
# ASan's runtime must come first; with the shim preloaded it does not (the check is only a
# warning about interposition, which is what the shim is for).
SLOW_FSYNC_MS=2000 SLOW_FSYNC_LOG="$E2E_TMP/fsync.log" LD_PRELOAD="$E2E_TMP/slow_fsync.so" \
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
    start_proxy proxy --config "$E2E_TMP/config.json"
wait_port "$port" 60
P="http://127.0.0.1:$port"
check "the shim is in effect (start-up fsynced through it)" eventually test -s "$E2E_TMP/fsync.log"
# Let start-up's own slow fsyncs (the index's) finish: the log quiet for 2.5 s (at most 40 s).
last=-1
for _ in $(seq 1 80); do
    n=$(wc -l <"$E2E_TMP/fsync.log")
    [ "$n" = "$last" ] && [ "$(curl -s -m 5 "$P/healthz")" = ok ] && break
    last=$n
    sleep 2.5
done
: >"$E2E_TMP/fsync.log"

start=$(date +%s.%N)
curl -s -D "$E2E_TMP/cold.h" -o "$E2E_TMP/m" -w '%{time_total}\n' -H "Accept: $MT" \
    "$P/v2/hub/$REPO/manifests/$DIGEST" >"$E2E_TMP/cold.time" &
cold_pid=$!
sleep 0.3
hz=$(curl -s -o /dev/null -m 10 -w '%{time_total}' "$P/healthz")
wait "$cold_pid"
check "a cold manifest on a slow disk is answered without waiting for its fsyncs ($(cat "$E2E_TMP/cold.time") s)" \
    python3 -c "import sys; sys.exit(0 if float(open('$E2E_TMP/cold.time').read()) < 1.5 else 1)"
check "... with the right bytes" test "sha256:$(sha256sum <"$E2E_TMP/m" | cut -d' ' -f1)" = "$DIGEST"
if [ "sha256:$(sha256sum <"$E2E_TMP/m" | cut -d' ' -f1)" != "$DIGEST" ]; then
    echo "--- the cold answer:"; head -20 "$E2E_TMP/cold.h"; head -c 400 "$E2E_TMP/m"; echo
    echo "--- the proxy's log:"; tail -20 "$E2E_TMP/proxy.log"; echo "--- fsyncs:"; cat "$E2E_TMP/fsync.log"
fi
check "/healthz meanwhile answers at once (${hz} s; each fsync takes 2 s)" \
    python3 -c "import sys; sys.exit(0 if float('$hz') < 1.0 else 1)"
f="$E2E_TMP/data/blobs/sha256/${DIGEST:7:2}/${DIGEST:7}"
for _ in $(seq 1 150); do [ -f "$f" ] && break; sleep 0.1; done
check "the manifest lands in the store once its fsyncs are done" test -f "$f"
check "... the disk was waited on (fsync log: $(wc -l <"$E2E_TMP/fsync.log") calls)" \
    test "$(wc -l <"$E2E_TMP/fsync.log")" -ge 2
check "... never by the event loop's thread (pid $PROXY_PID)" \
    bash -c "! grep -q ' $PROXY_PID\$' '$E2E_TMP/fsync.log'"
check "a warm GET of it is served from the store" \
    test "$(curl -s -H "Accept: $MT" "$P/v2/hub/$REPO/manifests/$DIGEST" | sha256sum | cut -d' ' -f1)" = "${DIGEST:7}"
# Closing the index checkpoints it: several slow fsyncs.
rc=0
stop_pid "$PROXY_PID" 60 || rc=$?
check "a stop on the slow disk completes cleanly (exit $rc)" test "$rc" = 0
e2e_done
