#!/usr/bin/env bash
# skopeo pulls every kind of test image through the proxy from a real docker-registry: the
# digests match the upstream's; a warm pull makes no upstream request; bad input gets its
# OCI error.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

start_registry reg
seed_images "$REGISTRY_URL" "$E2E_TMP/images.json" --set small >/dev/null
start_fake_upstream fake "$REGISTRY_URL" --auth none

port=$(free_port)
cat >"$E2E_TMP/config.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data",
 "rules": [{"prefix": "hub", "upstream": "$FAKE_URL", "mirror_for": ["docker.io"],
            "library_prefix": true, "default": true, "allow_private_redirects": true}]}
JSON
start_proxy proxy --config "$E2E_TMP/config.json"
wait_port "$port"
P="127.0.0.1:$port"

# images.json: one line "repo tag digest media_type" per image.
python3 -c '
import json, sys
for i in json.load(open(sys.argv[1])):
    print(i["repo"], i["tag"], i["digest"], i["media_type"])' "$E2E_TMP/images.json" >"$E2E_TMP/images.txt"

copy() { # copy REPO TAG DEST: skopeo copy --all through the proxy into a dir: layout, which
         # keeps the manifest's bytes as they came
    skopeo copy -q --all --preserve-digests --src-tls-verify=false "docker://$P/hub/$1:$2" "dir:$3" >"$E2E_TMP/skopeo.out" 2>&1
}
layout_digest() { # the digest of the top manifest skopeo wrote
    echo "sha256:$(sha256sum <"$1/manifest.json" | cut -d' ' -f1)"
}

# Cold pulls of every image; digests as upstream has them.
while read -r repo tag digest mt; do
    dest="$E2E_TMP/cold-${repo//\//_}-$tag"
    check "cold skopeo copy $repo:$tag" copy "$repo" "$tag" "$dest"
    check "$repo:$tag keeps upstream's digest $digest" test "$(layout_digest "$dest")" = "$digest"
    got=$(curl -s -H "Accept: $mt" "http://$P/v2/hub/$repo/manifests/$tag" | sha256sum | cut -d' ' -f1)
    check "$repo:$tag manifest bytes hash to the digest" test "sha256:$got" = "$digest"
    ct=$(curl -s -o /dev/null -w '%{content_type}' "http://$P/v2/hub/$repo/manifests/$digest")
    check "$repo:$tag Content-Type is $mt" test "$ct" = "$mt"
done <"$E2E_TMP/images.txt"

# Warm: the same pulls again make no upstream request at all (tags are fresh for 24 h).
fake_ctl reset-counts '' >/dev/null
while read -r repo tag digest mt; do
    check "warm skopeo copy $repo:$tag" copy "$repo" "$tag" "$E2E_TMP/warm-${repo//\//_}-$tag"
done <"$E2E_TMP/images.txt"
for kind in "GET blob" "HEAD blob" "GET manifest" "HEAD manifest"; do
    check "warm pulls: zero upstream '$kind' requests" test "$(fake_count "$kind")" = 0
done

# Headers of a cached blob, and Range.
read -r repo tag digest mt < <(head -1 "$E2E_TMP/images.txt")
blob=$(python3 -c '
import json, sys
i = [x for x in json.load(open(sys.argv[1])) if x["digest"] == sys.argv[2]][0]
print(i["blobs"][-1])' "$E2E_TMP/images.json" "$digest")
curl -s -D "$E2E_TMP/h" -o "$E2E_TMP/blob" "http://$P/v2/hub/$repo/blobs/$blob"
check "blob bytes hash to their digest" test "sha256:$(sha256sum <"$E2E_TMP/blob" | cut -d' ' -f1)" = "$blob"
check "blob has Docker-Content-Digest" grep -qi "^Docker-Content-Digest: $blob" "$E2E_TMP/h"
check "blob has Accept-Ranges" grep -qi '^Accept-Ranges: bytes' "$E2E_TMP/h"
size=$(stat -c %s "$E2E_TMP/blob")
curl -s -D "$E2E_TMP/h" -o "$E2E_TMP/part" -H 'Range: bytes=10-19' "http://$P/v2/hub/$repo/blobs/$blob"
check "Range answers 206" grep -q '^HTTP/1.1 206' "$E2E_TMP/h"
check "Range sends Content-Range" grep -qi "^Content-Range: bytes 10-19/$size" "$E2E_TMP/h"
check "Range sends the right 10 bytes" cmp -s "$E2E_TMP/part" <(tail -c +11 "$E2E_TMP/blob" | head -c 10)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Range: bytes=$size-" "http://$P/v2/hub/$repo/blobs/$blob")
check "an unsatisfiable Range answers 416" test "$code" = 416
curl -s -D "$E2E_TMP/h" -o /dev/null -H "Range: bytes=$size-" "http://$P/v2/hub/$repo/blobs/$blob"
check "a 416 carries one Content-Type and one API-Version header" bash -c "
    [ \$(grep -ci '^Content-Type:' '$E2E_TMP/h') = 1 ] &&
    [ \$(grep -ci '^Docker-Distribution-API-Version:' '$E2E_TMP/h') = 1 ] &&
    [ \$(grep -ci '^Content-Length:' '$E2E_TMP/h') = 1 ]"
curl -s -D "$E2E_TMP/h" -o "$E2E_TMP/part" -H 'Range: bytes=10-19' -H "If-Range: \"$blob\"" \
    "http://$P/v2/hub/$repo/blobs/$blob"
check "If-Range with the blob's ETag: 206" grep -q '^HTTP/1.1 206' "$E2E_TMP/h"
curl -s -D "$E2E_TMP/h" -o "$E2E_TMP/part" -H 'Range: bytes=10-19' \
    -H 'If-Range: "sha256:0000000000000000000000000000000000000000000000000000000000000000"' \
    "http://$P/v2/hub/$repo/blobs/$blob"
check "If-Range that does not match: 200 with the whole body (RFC 9110)" bash -c "
    grep -q '^HTTP/1.1 200' '$E2E_TMP/h' && cmp -s '$E2E_TMP/part' '$E2E_TMP/blob'"
curl -s -D "$E2E_TMP/h" -o "$E2E_TMP/part" -H 'Range: bytes=10-19' \
    -H 'If-Range: Tue, 01 Dec 2026 08:00:00 GMT' "http://$P/v2/hub/$repo/blobs/$blob"
check "If-Range with a date (no Last-Modified is sent): 200 whole" bash -c "
    grep -q '^HTTP/1.1 200' '$E2E_TMP/h' && cmp -s '$E2E_TMP/part' '$E2E_TMP/blob'"
curl -s -I -o "$E2E_TMP/h" "http://$P/v2/hub/$repo/blobs/$blob"
check "HEAD blob gives its Content-Length" grep -qi "^Content-Length: $size" "$E2E_TMP/h"
curl -s -I -o "$E2E_TMP/h" "http://$P/v2/hub/$repo/manifests/$tag"
check "HEAD manifest gives Docker-Content-Digest" grep -qi "^Docker-Content-Digest: $digest" "$E2E_TMP/h"

# A digest fetched for one repository is not served under another without upstream's word.
fake_ctl reset-counts '' >/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$P/v2/hub/test/docker-v2/blobs/$blob")
check "a blob of another repository is refused (404, got $code)" test "$code" = 404
check "... after asking upstream with a HEAD" test "$(fake_count 'HEAD blob')" = 1

# Tags list, from upstream, with the client's name.
tags=$(curl -s "http://$P/v2/hub/library/alpinetest/tags/list")
check "tags/list lists both tags ($tags)" test "$tags" = '{"name":"hub/library/alpinetest","tags":["3","latest"]}'
# docker-registry 2.8 neither sorts nor pages (distribution 3 does): the proxy takes upstream's
# whole list and applies n and last itself, as the spec's content-discovery workflow expects.
for t in b a zeta 10 2; do
    skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
        "docker://127.0.0.1:$REGISTRY_PORT/library/alpinetest:latest" \
        "docker://127.0.0.1:$REGISTRY_PORT/library/alpinetest:$t"
done
T="http://$P/v2/hub/library/alpinetest/tags/list"
tl() { curl -s -D "$E2E_TMP/th" "$T$1"; }
check "tags/list in lexical order ($(tl ''))" \
    test "$(tl '')" = '{"name":"hub/library/alpinetest","tags":["10","2","3","a","b","latest","zeta"]}'
check "n=3: the first three ($(tl '?n=3'))" \
    test "$(tl '?n=3')" = '{"name":"hub/library/alpinetest","tags":["10","2","3"]}'
check "... and a Link to the next page" \
    grep -qi '^Link: </v2/hub/library/alpinetest/tags/list?n=3&last=3>; rel="next"' "$E2E_TMP/th"
check "n=3&last=3: the next three ($(tl '?n=3&last=3'))" \
    test "$(tl '?n=3&last=3')" = '{"name":"hub/library/alpinetest","tags":["a","b","latest"]}'
check "last=latest: what sorts after it ($(tl '?last=latest'))" \
    test "$(tl '?last=latest')" = '{"name":"hub/library/alpinetest","tags":["zeta"]}'
check "... and no Link on the last page" bash -c "! grep -qi '^Link:' '$E2E_TMP/th'"
check "last= between two tags ($(tl '?last=2a&n=2'))" \
    test "$(tl '?last=2a&n=2')" = '{"name":"hub/library/alpinetest","tags":["3","a"]}'
check "n=0: an empty list ($(tl '?n=0'))" \
    test "$(tl '?n=0')" = '{"name":"hub/library/alpinetest","tags":[]}'
check "n=7 with exactly 7 tags: no Link" bash -c "curl -s -D '$E2E_TMP/th' -o /dev/null '$T?n=7' && ! grep -qi '^Link:' '$E2E_TMP/th'"
# An upstream that pages (ghcr, quay) and does not sort: every page is gathered first.
fake_ctl faults '[{"match":"^GET /v2/library/pager/tags/list\\?.*last=m","kind":"status","status":200,"count":-1,"body":{"name":"library/pager","tags":["y","c","x"]}},
                  {"match":"^GET /v2/library/pager/tags/list$","kind":"status","status":200,"count":-1,"body":{"name":"library/pager","tags":["m","b","a"]},"headers":{"Link":"</v2/library/pager/tags/list?n=3&last=m>; rel=\"next\""}}]' >/dev/null
check "a paging, unsorted upstream: all pages, sorted ($(curl -s "http://$P/v2/hub/library/pager/tags/list?n=4"))" \
    test "$(curl -s "http://$P/v2/hub/library/pager/tags/list?n=4")" = '{"name":"hub/library/pager","tags":["a","b","c","m"]}'
# Pages that overlap, a "prev" link before "next", an absolute URL on the upstream, names
# outside the tag grammar: one sorted list, each name once, bad names left out.
fake_ctl faults '[{"match":"^GET /v2/library/over/tags/list\\?.*last=b","kind":"status","status":200,"count":-1,"body":{"tags":["c","b","a\r\nX: y","d"]}},
                  {"match":"^GET /v2/library/over/tags/list$","kind":"status","status":200,"count":-1,"body":{"tags":["b","a","a",".bad","x>y"]},"headers":{"Link":"</v2/library/over/tags/list?n=1>; rel=\"prev\", <'"$FAKE_URL"'/v2/library/over/tags/list?n=3&last=b>; rel=\"next\""}}]' >/dev/null
got=$(curl -s "http://$P/v2/hub/library/over/tags/list")
check "overlapping pages, prev before next, an absolute next URL, bad names dropped ($got)" \
    test "$got" = '{"name":"hub/library/over","tags":["a","b","c","d"]}'
check "... the proxy is still up" test "$(curl -s -o /dev/null -w '%{http_code}' "http://$P/v2/")" = 200
# A next page elsewhere, or one that never ends: an error, never a list that looks complete.
fake_ctl faults '[{"match":"^GET /v2/library/away/tags/list$","kind":"status","status":200,"count":-1,"body":{"tags":["a"]},"headers":{"Link":"<http://127.0.0.1:9/v2/library/away/tags/list?last=a>; rel=\"next\""}},
                  {"match":"^GET /v2/library/loop/tags/list","kind":"status","status":200,"count":-1,"body":{"tags":["a","b"]},"headers":{"Link":"</v2/library/loop/tags/list?last=b>; rel=\"next\""}}]' >/dev/null
code=$(curl -s -o "$E2E_TMP/b" -w '%{http_code}' "http://$P/v2/hub/library/away/tags/list")
check "a next page on another origin is not followed: 502 ($code)" test "$code" = 502
fake_ctl reset-counts '' >/dev/null
code=$(curl -s -o "$E2E_TMP/b" -w '%{http_code}' "http://$P/v2/hub/library/loop/tags/list")
check "a next page that never ends: 502 ($code)" test "$code" = 502
check "... after at most 64 upstream pages ($(fake_count tags))" test "$(fake_count tags)" -le 64
check "... and the log says so" grep -q 'tags-list-incomplete' "$E2E_TMP/proxy.log"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$P/v2/hub/library/pager/tags/list?n=-1")
check "n=-1 is a bad request ($code)" test "$code" = 400
fake_ctl faults '[]' >/dev/null
code=$(curl -s -o "$E2E_TMP/b" -w '%{http_code}' "http://$P/v2/hub/library/alpinetest/manifests/.INVALID_MANIFEST_NAME")
check "GET manifests/.INVALID_MANIFEST_NAME: 404 MANIFEST_UNKNOWN ($code)" \
    bash -c "[ $code = 404 ] && grep -q MANIFEST_UNKNOWN '$E2E_TMP/b'"
code=$(curl -s -I -o /dev/null -w '%{http_code}' "http://$P/v2/hub/library/alpinetest/manifests/.INVALID_MANIFEST_NAME")
check "HEAD manifests/.INVALID_MANIFEST_NAME: 404 ($code)" test "$code" = 404

# Referrers: docker-registry 2.8 lacks the API, so the proxy has none for it either: a 404
# sends clients to the spec's fallback tag (sha256-<hex>), which the proxy serves like any tag.
code=$(curl -s -o "$E2E_TMP/b" -w '%{http_code}' "http://$P/v2/hub/library/alpinetest/referrers/$digest")
check "referrers without the API upstream: 404 ($code), so clients use the tag schema" \
    test "$code" = 404

# Routing: docker's registry-mirrors (no prefix: the default rule) and containerd's ?ns=.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$P/v2/library/alpinetest/manifests/$tag")
check "the default rule answers an un-prefixed name ($code)" test "$code" = 200
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$P/v2/alpinetest/manifests/$tag?ns=docker.io")
check "?ns=docker.io with a one-segment name gets library/ ($code)" test "$code" = 200
code=$(curl -s -o "$E2E_TMP/b" -w '%{http_code}' "http://$P/v2/x/manifests/latest?ns=quay.io")
check "an unmirrored ns is NAME_UNKNOWN ($code)" bash -c "[ $code = 404 ] && grep -q NAME_UNKNOWN '$E2E_TMP/b' && grep -q 'configured prefixes: hub' '$E2E_TMP/b'"

# A stored body streams with TCP_CORK on (full segments); the cork comes off when the response
# ends. Left on, every later answer on that keep-alive connection would wait for the kernel's
# 200 ms cork timer: ten manifests after the blob would take over 2 s instead of milliseconds.
big=$(python3 "$E2E_DIR_SELF/seed_images.py" --registry "$REGISTRY_URL" --blob-only-mib 1 \
    --blob-repo library/alpinetest --seed cork)
burl="http://$P/v2/hub/library/alpinetest/blobs/$big"
murl="http://$P/v2/hub/library/alpinetest/manifests/$digest"
curl -s -o /dev/null "$burl"
for _ in $(seq 1 100); do
    [ -f "$E2E_TMP/data/blobs/sha256/${big:7:2}/${big:7}" ] && break
    sleep 0.1
done
args=(-o /dev/null "$burl")
for _ in $(seq 1 10); do args+=(-o /dev/null "$murl"); done
curl -s -H "Accept: $mt" -w '%{http_code} %{num_connects} %{size_download} %{time_total}\n' "${args[@]}" \
    >"$E2E_TMP/cork.txt"
check "a stored 1 MiB blob, then ten manifests, on one connection" \
    awk 'NR == 1 && !($1 == 200 && $3 == 1048576) { bad = 1 } NR > 1 && !($1 == 200 && $2 == 0) { bad = 1 }
         END { exit bad || NR != 11 }' "$E2E_TMP/cork.txt"
check "the ten manifests after the blob took under 1 s in all ($(awk 'NR > 1 { t += $4 } END { print t }' "$E2E_TMP/cork.txt") s)" \
    awk 'NR > 1 { t += $4 } END { exit !(t < 1.0) }' "$E2E_TMP/cork.txt"

# Bad input: the right OCI error, and nothing reaches upstream.
fake_ctl reset-counts '' >/dev/null
bad() { # bad PATH STATUS CODE
    local code
    code=$(curl -s --path-as-is -o "$E2E_TMP/b" -w '%{http_code}' "http://$P$1")
    check "$1 answers $2 $3 (got $code $(head -c 120 "$E2E_TMP/b"))" \
        bash -c "[ '$code' = '$2' ] && grep -q '\"code\":\"$3\"' '$E2E_TMP/b'"
}
bad "/v2/hub/Library/x/manifests/latest" 400 NAME_INVALID
bad "/v2/hub/a%2Fb/manifests/latest" 400 NAME_INVALID
bad "/v2/hub/a/../b/manifests/latest" 400 NAME_INVALID
bad "/v2/hub//a/manifests/latest" 400 NAME_INVALID
bad "/v2/hub/a%00b/manifests/latest" 400 NAME_INVALID
bad "/v2/hub/$(printf 'a%.0s' $(seq 1 300))/manifests/latest" 400 NAME_INVALID
bad "/v2/hub/a/blobs/sha256:1234" 400 DIGEST_INVALID
bad "/v2/hub/a/blobs/latest" 400 DIGEST_INVALID
bad "/v2/hub/a/manifests/sha256:XYZ" 404 MANIFEST_UNKNOWN
bad "/v2/hub/a/manifests/-bad-tag" 404 MANIFEST_UNKNOWN
bad "/v2/hub/a/manifests/.INVALID_MANIFEST_NAME" 404 MANIFEST_UNKNOWN
bad "/v2/hub/a/blobs/uploads/" 404 NOT_FOUND
check "bad input never reached upstream" test "$(fake_ctl counts | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["requests"]))')" = 0
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$P/v2/hub/library/nosuch/manifests/latest")
check "an unknown repository upstream is 404 ($code)" test "$code" = 404
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$P/v2/hub/library/alpinetest/blobs/sha256:$(printf '0%.0s' $(seq 1 64))")
check "an unknown blob is 404 ($code)" test "$code" = 404

# /metrics: Prometheus text with the cache's story.
curl -s "http://$P/metrics" >"$E2E_TMP/metrics"
check "/metrics counts blob hits" grep -qE '^ecr_ptc_cache_hits_total\{kind="blob"\} [1-9]' "$E2E_TMP/metrics"
check "/metrics counts bytes served from the store" grep -qE '^ecr_ptc_bytes_served_total\{from="store"\} [1-9]' "$E2E_TMP/metrics"
check "/metrics counts upstream bytes" grep -qE '^ecr_ptc_upstream_bytes_total [1-9]' "$E2E_TMP/metrics"
check "/metrics counts fills" grep -qE '^ecr_ptc_fills_total\{state="completed"\} [1-9]' "$E2E_TMP/metrics"
check "/metrics counts fresh tag hits" grep -qE '^ecr_ptc_tag_fresh_total [1-9]' "$E2E_TMP/metrics"
check "/metrics counts error answers" grep -qE '^ecr_ptc_error_responses_total [1-9]' "$E2E_TMP/metrics"

stop_pid "$PROXY_PID"
check "pulls stamped last_pulled_at on the tags (batched, flushed at stop)" \
    test "$(sqlite3 "$E2E_TMP/data/index.db" 'SELECT count(*) FROM tags WHERE last_pulled_at > 0')" -ge 6
check "every stored blob is in the index" test "$(sqlite3 "$E2E_TMP/data/index.db" 'SELECT count(*) FROM blobs')" -ge 10
check "the index passes PRAGMA integrity_check" test "$(sqlite3 "$E2E_TMP/data/index.db" 'PRAGMA integrity_check')" = ok
e2e_done
