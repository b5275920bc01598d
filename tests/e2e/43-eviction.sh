#!/usr/bin/env bash
# The byte budget: with cache_size 150MiB, skopeo pulls 8 images of 40 MiB (twice the budget
# and more) through the proxy: every pull succeeds with upstream's digests, the store stays
# within the budget (plus the blob being committed), the most recently pulled images stay,
# an evicted image pulls again. Then a sweep runs while 20 clients follow a slow fill and 20
# read a stored blob the sweep removes: every one of the 40 gets every byte. Last, layers
# larger than the whole budget are served and not kept, and the pull succeeds.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

MIB=1048576
BUDGET=$((150 * MIB))
N=8

start_registry reg
seed_images "$REGISTRY_URL" "$E2E_TMP/images.json" --set evict --many $N --many-mib 40 >/dev/null
start_fake_upstream slow "$REGISTRY_URL" --auth none

port=$(free_port)
cat >"$E2E_TMP/config.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data", "cache_size": "150MiB",
 "min_free_space": "1MiB",
 "rules": [{"prefix": "hub", "upstream": "$REGISTRY_URL", "allow_private_redirects": true},
           {"prefix": "slow", "upstream": "$FAKE_URL", "allow_private_redirects": true}]}
JSON
start_proxy proxy --config "$E2E_TMP/config.json"
wait_port "$port"
P="127.0.0.1:$port"

# The store's size on disk: every file under blobs/, in bytes.
store_bytes() {
    find "$E2E_TMP/data/blobs" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'
}
stored() { # stored DIGEST: its file is in the store
    test -f "$E2E_TMP/data/blobs/sha256/${1:7:2}/${1:7}"
}
metric() { curl -s "http://$P/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# A sampler records the store's size every 0.1 s while the pulls run (bounded: 10 minutes).
( for _ in $(seq 1 6000); do store_bytes; sleep 0.1; done ) >"$E2E_TMP/samples" 2>/dev/null &
SAMPLER=$!
E2E_PIDS+=("$SAMPLER")

python3 -c '
import json, sys
for i in json.load(open(sys.argv[1])):
    print(i["repo"], i["digest"], " ".join(i["blobs"]))' "$E2E_TMP/images.json" >"$E2E_TMP/images.txt"
largest=$(python3 -c '
import json, sys
print(max(s for i in json.load(open(sys.argv[1])) for s in i["blob_sizes"].values()))' "$E2E_TMP/images.json")

copy() { # copy RULE REPO DEST
    rm -rf "$3"
    skopeo copy -q --preserve-digests --src-tls-verify=false "docker://$P/$1/$2:latest" "dir:$3" \
        >"$E2E_TMP/skopeo.out" 2>&1
}
layout_digest() { echo "sha256:$(sha256sum <"$1/manifest.json" | cut -d' ' -f1)"; }

i=0
while read -r repo digest blobs; do
    i=$((i + 1))
    check "pull $i ($repo) succeeds" copy hub "$repo" "$E2E_TMP/pull"
    check "pull $i keeps upstream's digest" test "$(layout_digest "$E2E_TMP/pull")" = "$digest"
    ok=1
    for b in $blobs; do
        test "sha256:$(sha256sum <"$E2E_TMP/pull/${b#sha256:}" | cut -d' ' -f1)" = "$b" || ok=0
    done
    check "pull $i: every layer verifies" test $ok = 1
    sleep 1 # a pull stamp per second: the order the budget follows
done <"$E2E_TMP/images.txt"
kill "$SAMPLER" 2>/dev/null || true
max=$(sort -n "$E2E_TMP/samples" | tail -1)
echo "# store: at most $max bytes on disk while pulling $((N * 40)) MiB (budget $BUDGET, largest blob $largest)"
check "the store stayed within the budget plus one blob ($max <= $BUDGET + $largest)" \
    test "$max" -le $((BUDGET + largest))
check "the store is within the budget now ($(store_bytes))" test "$(store_bytes)" -le $BUDGET
check "ecr_ptc_cache_bytes within the budget" test "$(metric ecr_ptc_cache_bytes)" -le $BUDGET
check "ecr_ptc_cache_bytes is what is on disk" test "$(metric ecr_ptc_cache_bytes)" = "$(store_bytes)"
check "images were expired by the budget" \
    test "$(metric 'ecr_ptc_gc_images_expired_total{reason="budget"}')" -ge 4
check "nothing had to be served without keeping it" \
    test "$(metric 'ecr_ptc_fills_total{state="not_kept"}')" = 0

# The three most recently pulled images (3 x 40 MiB fit) are all still stored; the first is not.
tail -3 "$E2E_TMP/images.txt" >"$E2E_TMP/recent.txt"
while read -r repo digest blobs; do
    ok=1
    for b in $digest $blobs; do stored "$b" || ok=0; done
    check "recently pulled $repo is still stored" test $ok = 1
done <"$E2E_TMP/recent.txt"
read -r first_repo first_digest first_blobs < <(head -1 "$E2E_TMP/images.txt")
check "the least recently pulled ($first_repo) was evicted" bash -c "! test -f '$E2E_TMP/data/blobs/sha256/${first_digest:7:2}/${first_digest:7}'"
check "gc-expired logged with reason budget" grep -q 'gc-expired.*reason.*budget' "$E2E_TMP/proxy.log"

# Re-pulling an evicted image works and verifies.
check "re-pull of evicted $first_repo succeeds" copy hub "$first_repo" "$E2E_TMP/again"
check "re-pull keeps upstream's digest" test "$(layout_digest "$E2E_TMP/again")" = "$first_digest"
for b in $first_blobs; do
    check "re-pulled layer ${b:7:12} verifies" \
        test "sha256:$(sha256sum <"$E2E_TMP/again/${b#sha256:}" | cut -d' ' -f1)" = "$b"
done
check "the store is within the budget after the re-pull" test "$(store_bytes)" -le $BUDGET

# ---- a sweep while 20 clients follow a fill and 20 read a stored blob ----
# The stored blob: a layer of the most recently pulled image, then made the least recently
# pulled by pulling others, so the sweep that the next commits run removes it.
read -r last_repo last_digest last_blobs < <(tail -1 "$E2E_TMP/recent.txt")
S=$(echo "$last_blobs" | awk '{print $2}')
S_size=$(python3 -c '
import json, sys
for i in json.load(open(sys.argv[1])):
    if sys.argv[2] in i["blob_sizes"]: print(i["blob_sizes"][sys.argv[2]]); break' "$E2E_TMP/images.json" "$S")
check "blob S is stored before the sweep" stored "$S"
# The fill: a layer of an evicted image through the slow upstream, 64 KiB every 25 ms.
read -r fill_repo fill_digest fill_blobs < <(sed -n 2p "$E2E_TMP/images.txt")
F=$(echo "$fill_blobs" | awk '{print $2}')
F_size=$(python3 -c '
import json, sys
for i in json.load(open(sys.argv[1])):
    if sys.argv[2] in i["blob_sizes"]: print(i["blob_sizes"][sys.argv[2]]); break' "$E2E_TMP/images.json" "$F")
check "blob F is not stored (it was evicted)" bash -c "! test -f '$E2E_TMP/data/blobs/sha256/${F:7:2}/${F:7}'"
fake_ctl faults '[{"match": "^GET /v2/.*/blobs/'"$F"'", "kind": "slow", "delay_ms": 25}]' >/dev/null

pids=()
for k in $(seq 1 20); do
    curl -s -f -m 120 -o "$E2E_TMP/f$k" "http://$P/v2/slow/$fill_repo/blobs/$F" &
    pids+=($!)
done
# The readers of S take about 10 s each (2 MB/s), so the sweep lands while they read.
for k in $(seq 1 20); do
    curl -s -f -m 120 --limit-rate 2M -o "$E2E_TMP/s$k" "http://$P/v2/hub/$last_repo/blobs/$S" &
    pids+=($!)
done
sleep 1
# Three more pulls (120 MiB) make the image holding S the least recently pulled: it goes.
for repo in $(sed -n '3,5p' "$E2E_TMP/images.txt" | awk '{print $1}'); do
    check "pull of $repo during the transfers succeeds" copy hub "$repo" "$E2E_TMP/during"
    sleep 1
done
check "S was swept" bash -c "! test -f '$E2E_TMP/data/blobs/sha256/${S:7:2}/${S:7}'"
reading=0
for p in "${pids[@]:20}"; do kill -0 "$p" 2>/dev/null && reading=$((reading + 1)); done
check "... while its readers were still reading it ($reading of 20)" test $reading -gt 0
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
check "all 40 transfers ended well ($failed failed)" test $failed = 0
good_f=0; good_s=0
for k in $(seq 1 20); do
    [ "sha256:$(sha256sum <"$E2E_TMP/f$k" | cut -d' ' -f1)" = "$F" ] && good_f=$((good_f + 1))
    [ "sha256:$(sha256sum <"$E2E_TMP/s$k" | cut -d' ' -f1)" = "$S" ] && good_s=$((good_s + 1))
done
check "20 of 20 followers of the fill got F's $F_size bytes ($good_f)" test $good_f = 20
check "20 of 20 readers of the swept S got its $S_size bytes ($good_s)" test $good_s = 20
check "the fill was fetched upstream once" test "$(fake_count "GET blob")" = 1
check "the store is within the budget after all" test "$(store_bytes)" -le $BUDGET

stop_pid "$PROXY_PID" 10; rc=$?
check "the proxy stops cleanly (status $rc)" test "$rc" = 0

# ---- nothing can be freed: a 10MiB budget and 20 MiB layers ----
# Every layer is bigger than the whole budget: each is streamed to skopeo, verified, and not
# kept. The pull succeeds all the same.
port2=$(free_port)
cat >"$E2E_TMP/small.json" <<JSON
{"listen": "127.0.0.1:$port2", "data_dir": "$E2E_TMP/small", "cache_size": "10MiB",
 "min_free_space": "1MiB",
 "rules": [{"prefix": "hub", "upstream": "$REGISTRY_URL", "allow_private_redirects": true}]}
JSON
start_proxy small --config "$E2E_TMP/small.json"
wait_port "$port2"
P=127.0.0.1:$port2
check "a pull with layers larger than the budget succeeds" copy hub "$first_repo" "$E2E_TMP/small-pull"
check "  ... with upstream's digest" test "$(layout_digest "$E2E_TMP/small-pull")" = "$first_digest"
ok=1
for b in $first_blobs; do
    test "sha256:$(sha256sum <"$E2E_TMP/small-pull/${b#sha256:}" | cut -d' ' -f1)" = "$b" || ok=0
done
check "  ... and every layer verifies" test $ok = 1
check "the two layers were served and not kept" \
    test "$(metric 'ecr_ptc_fills_total{state="not_kept"}')" = 2
check "fill-not-kept logged" grep -q 'fill-not-kept' "$E2E_TMP/small.log"
check "the store holds no more than the budget" \
    test "$(find "$E2E_TMP/small/blobs" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')" -le $((10 * MIB))
check "a second pull succeeds too (fetched again: nothing was kept)" copy hub "$first_repo" "$E2E_TMP/small-pull2"
stop_pid "$PROXY_PID" 10; rc=$?
check "the small proxy stops cleanly (status $rc)" test "$rc" = 0
e2e_done
