#!/usr/bin/env bash
# Upstream faults and the tag rule: resets, corruption and truncation never reach the store;
# 5xx and 429 are retried; a tag is re-checked only after its interval, by HEAD; stale tags
# are served when upstream fails; tokens are reused; CDN redirects lose Authorization;
# redirects to private addresses are refused without allow_private_redirects.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

start_registry reg
seed_images "$REGISTRY_URL" "$E2E_TMP/images.json" --set small >/dev/null
blob=$(python3 "$TOP_SRCDIR/tests/e2e/seed_images.py" --registry "$REGISTRY_URL" \
    --blob-only-mib 4 --blob-repo test/faults | tail -1)
cdnblob=$(python3 "$TOP_SRCDIR/tests/e2e/seed_images.py" --registry "$REGISTRY_URL" \
    --blob-only-mib 1 --blob-repo test/faults --seed 11 | tail -1)
strictblob=$(python3 "$TOP_SRCDIR/tests/e2e/seed_images.py" --registry "$REGISTRY_URL" \
    --blob-only-mib 1 --blob-repo test/faults --seed 12 | tail -1)
start_fake_upstream fake "$REGISTRY_URL" --auth token
A_PORT=$FAKE_PORT A_URL=$FAKE_URL A_PID=$FAKE_PID
start_fake_upstream cdn "$REGISTRY_URL" --auth token --redirect-blobs
B_PORT=$FAKE_PORT B_URL=$FAKE_URL
start_fake_upstream cdn2 "$REGISTRY_URL" --auth none --redirect-blobs
C_PORT=$FAKE_PORT C_URL=$FAKE_URL

port=$(free_port)
cat >"$E2E_TMP/config.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data", "refresh_interval": "6s",
 "rules": [
  {"prefix": "hub", "upstream": "$A_URL", "allow_private_redirects": true},
  {"prefix": "cdn", "upstream": "$B_URL", "allow_private_redirects": true},
  {"prefix": "strict", "upstream": "$C_URL"},
  {"prefix": "strictauth", "upstream": "$B_URL"}]}
JSON
# The refresh intervals below pass on the proxy's own wall clock (clock_advance), not in sleeps.
clock_start
start_proxy proxy --config "$E2E_TMP/config.json"
wait_port "$port"
P="http://127.0.0.1:$port"
A() { FAKE_PORT=$A_PORT fake_ctl "$@"; }
B() { FAKE_PORT=$B_PORT fake_ctl "$@"; }
count() { # count PORT KIND [STATUS]: requests of KIND (with STATUS) a fake answered
    FAKE_PORT=$1 fake_ctl counts | python3 -c '
import json, sys
kind, status = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
print(sum(1 for r in json.load(sys.stdin)["requests"]
          if r["kind"] == kind and (status is None or str(r["status"]) == status)))' "${@:2}"
}
stored() { test -f "$E2E_TMP/data/blobs/sha256/${1:7:2}/${1:7}"; }
tmp_empty() { test -z "$(ls -A "$E2E_TMP/data/tmp")"; }
burl="$P/v2/hub/test/faults/blobs/$blob"

# --- broken bodies never reach the store ---------------------------------------------------
for fault in '{"kind":"reset","after_bytes":1048576}' '{"kind":"corrupt","offset":3000000}' \
             '{"kind":"truncate","after_bytes":2097152}'; do
    kind=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["kind"])' "$fault")
    A faults "[$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(match="^GET /v2/.*/blobs/", count=1); print(json.dumps(d))' "$fault")]" >/dev/null
    set +e
    curl -s --max-time 30 -o "$E2E_TMP/got" "$burl"; rc=$?
    set -e
    check "$kind: the client's transfer fails (curl exit $rc)" test "$rc" != 0
    check "$kind: the client never holds the complete body" \
        test "$(stat -c %s "$E2E_TMP/got" 2>/dev/null || echo 0)" -lt $((4 * 1048576))
    check "$kind: nothing entered the store" bash -c "! test -f '$E2E_TMP/data/blobs/sha256/${blob:7:2}/${blob:7}'"
    check "$kind: no temp file is left" tmp_empty
    check "$kind: the log says why" grep -qE "fill-(failed|digest-mismatch) digest=$blob" "$E2E_TMP/proxy.log"
done
A faults '[]' >/dev/null
check "after the faults the blob pulls and verifies" \
    test "sha256:$(curl -s "$burl" | sha256sum | cut -d' ' -f1)" = "$blob"
check "... and is stored" eventually stored "$blob"

# --- 503s and 429 are retried while nothing was sent ---------------------------------------
read -r repo tag digest mt < <(python3 -c '
import json, sys
for i in json.load(open(sys.argv[1])):
    if i["repo"] == "test/docker-v2": print(i["repo"], i["tag"], i["digest"], i["media_type"])' "$E2E_TMP/images.json")
layer=$(python3 -c '
import json, sys
print([i for i in json.load(open(sys.argv[1])) if i["repo"] == "test/docker-v2"][0]["blobs"][-1])' "$E2E_TMP/images.json")
A reset-counts '' >/dev/null
A faults '[{"match":"^GET /v2/.*/blobs/","kind":"status","status":503,"count":2}]' >/dev/null
check "two 503s then success" test "sha256:$(curl -s "$P/v2/hub/$repo/blobs/$layer" | sha256sum | cut -d' ' -f1)" = "$layer"
check "... took three upstream GETs" test "$(count "$A_PORT" 'GET blob' 503)/$(count "$A_PORT" 'GET blob' 200)" = "2/1"
layer2=$(python3 -c '
import json, sys
print([i for i in json.load(open(sys.argv[1])) if i["repo"] == "test/docker-v2"][0]["blobs"][0])' "$E2E_TMP/images.json")
A faults '[{"match":"^GET /v2/.*/blobs/","kind":"status","status":429,"retry_after":"1","count":1}]' >/dev/null
t0=$(date +%s%N)
check "a 429 with Retry-After: 1 then success" test "sha256:$(curl -s "$P/v2/hub/$repo/blobs/$layer2" | sha256sum | cut -d' ' -f1)" = "$layer2"
waited=$(( ($(date +%s%N) - t0) / 1000000 ))
check "... waited for Retry-After (${waited} ms)" test "$waited" -ge 900
A faults '[]' >/dev/null

# --- the tag rule ----------------------------------------------------------------------------
tagurl="$P/v2/hub/library/alpinetest/manifests/latest"
old=$(curl -s -o /dev/null -D - "$tagurl" | sed -n 's/^Docker-Content-Digest: \(.*\)\r$/\1/Ip')
A reset-counts '' >/dev/null
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
    "docker://127.0.0.1:$REGISTRY_PORT/test/docker-v2:latest" \
    "docker://127.0.0.1:$REGISTRY_PORT/library/alpinetest:latest"
new=$(curl -s -o /dev/null -D - -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://127.0.0.1:$REGISTRY_PORT/v2/library/alpinetest/manifests/latest" |
    sed -n 's/^Docker-Content-Digest: \(.*\)\r$/\1/Ip')
check "the tag moved upstream ($old -> $new)" test -n "$new" -a "$old" != "$new"
got=$(curl -s -o /dev/null -D - "$tagurl" | sed -n 's/^Docker-Content-Digest: \(.*\)\r$/\1/Ip')
check "before the interval the old digest is served" test "$got" = "$old"
check "... without asking upstream" test "$(count "$A_PORT" 'HEAD manifest')" = 0
clock_advance 6.2 "$P"
got=$(curl -s -o /dev/null -D - "$tagurl" | sed -n 's/^Docker-Content-Digest: \(.*\)\r$/\1/Ip')
check "after the interval the new digest is served" test "$got" = "$new"
check "... checked by one HEAD ($(count "$A_PORT" 'HEAD manifest' 200))" test "$(count "$A_PORT" 'HEAD manifest' 200)" = 1
check "... and one GET of the new manifest" test "$(count "$A_PORT" 'GET manifest' 200)" = 1
A reset-counts '' >/dev/null
curl -s -o /dev/null "$tagurl"
check "a fresh tag again asks nothing" test "$(count "$A_PORT" 'HEAD manifest')" = 0
check "the moved tag pulls whole" \
    skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/hub/library/alpinetest:latest" "dir:$E2E_TMP/moved"

# A 429 on the HEAD: the stale digest is served, with a Warning, and no GET is made.
clock_advance 6.2 "$P"
A reset-counts '' >/dev/null
A faults '[{"match":"^HEAD /v2/.*/manifests/","kind":"status","status":429,"count":-1}]' >/dev/null
curl -s -D "$E2E_TMP/h" -o /dev/null "$tagurl"
check "429 on HEAD: still 200 from cache" grep -q '^HTTP/1.1 200' "$E2E_TMP/h"
check "429 on HEAD: the cached digest" grep -qi "^Docker-Content-Digest: $new" "$E2E_TMP/h"
check "429 on HEAD: a Warning header" grep -qi '^Warning: 299 - "' "$E2E_TMP/h"
check "429 on HEAD: no GET upstream" test "$(count "$A_PORT" 'GET manifest')" = 0
check "429 on HEAD: a log line" grep -q 'serve-stale .*upstream_status=429' "$E2E_TMP/proxy.log"
A faults '[]' >/dev/null

# Upstream down: cached tags still pull, tags/list answers from the index.
stop_pid "$A_PID"
clock_advance 6.2 "$P"
check "upstream down: skopeo still pulls the cached tag" \
    skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/hub/library/alpinetest:latest" "dir:$E2E_TMP/down"
check "... with its digest" test "sha256:$(sha256sum <"$E2E_TMP/down/manifest.json" | cut -d' ' -f1)" = "$new"
code=$(curl -s -o /dev/null -w '%{http_code}' "$P/v2/hub/library/alpinetest/manifests/never-seen")
check "upstream down: an uncached tag is an upstream error ($code)" test "$code" = 502
curl -s -D "$E2E_TMP/h" -o "$E2E_TMP/b" "$P/v2/hub/library/alpinetest/tags/list?n=1"
check "upstream down: tags/list from the index ($(cat "$E2E_TMP/b"))" \
    grep -q '{"name":"hub/library/alpinetest","tags":\["latest"\]}' "$E2E_TMP/b"
check "... and no Link: nothing follows" bash -c "! grep -qi '^Link:' '$E2E_TMP/h'"
check "pull by digest never needs upstream" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "$P/v2/hub/library/alpinetest/manifests/$new")" = 200

# --- a manifest over 4 MiB is refused, as registries do ----------------------------------
python3 -c '
import json
big = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "annotations": {"pad": "x" * (5 * 1024 * 1024)}})
print(json.dumps([{"match": "^GET /v2/.*/manifests/", "kind": "status", "status": 200, "count": 1,
                   "body": big,
                   "headers": {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}}]))' >"$E2E_TMP/bigfault.json"
curl -sS -f -o /dev/null -X POST -H 'Content-Type: application/json' \
    --data-binary "@$E2E_TMP/bigfault.json" "http://127.0.0.1:$B_PORT/_ctl/faults"
code=$(curl -s -o "$E2E_TMP/b" -w '%{http_code}' "$P/v2/cdn/library/alpinetest/manifests/sha256:$(printf 'ab%.0s' $(seq 1 32))")
check "a 5 MiB manifest is refused: $code MANIFEST_INVALID" \
    bash -c "[ $code = 413 ] && grep -q MANIFEST_INVALID '$E2E_TMP/b'"
B faults '[]' >/dev/null

# --- redirects -----------------------------------------------------------------------------
B reset-counts '' >/dev/null
cdnurl="$P/v2/cdn/test/faults/blobs/$cdnblob"
check "a blob through the CDN redirect verifies" test "sha256:$(curl -s "$cdnurl" | sha256sum | cut -d' ' -f1)" = "$cdnblob"
check "... the CDN served it ($(count "$B_PORT" cdn))" test "$(count "$B_PORT" cdn)" -ge 1
check "... no Authorization reached the CDN" test "$(count "$B_PORT" cdn_rejected_auth)" = 0
check "... one token for the scope" test "$(count "$B_PORT" token)" = 1
code=$(curl -s -o "$E2E_TMP/b" -w '%{http_code}' "$P/v2/strict/test/faults/blobs/$strictblob")
check "a redirect to 127.0.0.1 without allow_private_redirects is refused ($code)" test "$code" = 502
check "... the CDN was never contacted" test "$(count "$C_PORT" cdn)" = 0
check "... and the log names the refusal" grep -q 'redirect to a non-https URL' "$E2E_TMP/proxy.log"
B reset-counts '' >/dev/null
code=$(curl -s -o "$E2E_TMP/b" -w '%{http_code}' "$P/v2/strictauth/test/faults/blobs/$strictblob")
check "a token realm on 127.0.0.1 without allow_private_redirects is refused ($code)" \
    bash -c "[ $code = 401 ] && grep -q UNAUTHORIZED '$E2E_TMP/b'"
check "... the realm was never contacted" test "$(count "$B_PORT" token)" = 0
check "... and the log says why" grep -q 'token-realm-refused' "$E2E_TMP/proxy.log"
e2e_done
