#!/usr/bin/env bash
# The admin socket and its commands against a running daemon: list (repositories, a
# repository's tags, JSON, pages), rewrite of the issue's examples, warm of a multi-arch index
# fetching each platform's content from upstream exactly once, refresh making exactly one
# upstream HEAD, gc, the socket's mode, a daemon that is not running, bad usage. Upstream is
# docker-registry behind tests/e2e/fake_upstream.py, which counts the proxy's requests.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

start_registry registry
if ! seed_images "$REGISTRY_URL" "$E2E_TMP/images.json" --set small >"$E2E_TMP/seed.log" 2>&1; then
    echo "seeding failed:" >&2
    tail -n 20 "$E2E_TMP/seed.log" >&2
    exit 1
fi
start_fake_upstream fake "$REGISTRY_URL" --auth token

# jq-less JSON: py EXPR reads JSON on stdin as `d`, prints EXPR.
py() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
img() { python3 -c "import json,sys; d=[e for e in json.load(open('$E2E_TMP/images.json')) if e['repo']=='$1' and e['tag']=='$2'][0]; print($3)"; }

port=$(free_port)
sock="$E2E_TMP/data/admin.sock"
cat >"$E2E_TMP/proxy.json" <<EOF2
{
  "listen": "127.0.0.1:$port",
  "data_dir": "$E2E_TMP/data",
  "rules": [
    { "prefix": "docker-hub", "upstream": "$FAKE_URL", "mirror_for": ["docker.io"],
      "library_prefix": true, "default": true, "allow_private_redirects": true },
    { "prefix": "ecr-public", "upstream": "$FAKE_URL", "mirror_for": ["public.ecr.aws"],
      "allow_private_redirects": true }
  ]
}
EOF2
start_proxy proxy --config "$E2E_TMP/proxy.json"
wait_port "$port"
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.05; done
cli() { "$PROXY_BIN" "$@" --config "$E2E_TMP/proxy.json"; }
adm() { curl -sS -m 10 --unix-socket "$sock" "$@"; }

# --- the socket ---------------------------------------------------------------------------
check "the admin socket exists" test -S "$sock"
check "the admin socket's mode is 0600" test "$(stat -c %a "$sock")" = 600
check "GET /admin/v1/info names the bound port" \
    test "$(adm http://x/admin/v1/info | py 'd["port"]')" = "$port"
check "an unknown admin path is a 404 with {\"error\"}" \
    test "$(adm -o "$E2E_TMP/err.json" -w '%{http_code}' http://x/admin/v1/nope)" = 404
check "  ... whose body is {\"error\": ...}" \
    test -n "$(py 'd["error"]' <"$E2E_TMP/err.json")"
check "POST /admin/v1/info is a 405" \
    test "$(adm -o /dev/null -w '%{http_code}' -X POST http://x/admin/v1/info)" = 405
check "GET /admin/v1/refresh is a 405" \
    test "$(adm -o /dev/null -w '%{http_code}' 'http://x/admin/v1/refresh?image=nginx')" = 405

# --- rewrite ------------------------------------------------------------------------------
D64=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
check "rewrite nginx" test "$(cli rewrite nginx)" = "127.0.0.1:$port/docker-hub/library/nginx:latest"
check "rewrite docker.io/library/nginx:1.27" \
    test "$(cli rewrite docker.io/library/nginx:1.27)" = "127.0.0.1:$port/docker-hub/library/nginx:1.27"
check "rewrite public.ecr.aws/aws-observability/aws-for-fluent-bit:2.23.3 --proxy PROXY" \
    test "$(cli rewrite public.ecr.aws/aws-observability/aws-for-fluent-bit:2.23.3 --proxy PROXY)" \
    = "PROXY/ecr-public/aws-observability/aws-for-fluent-bit:2.23.3"
check "rewrite an @sha256 digest" \
    test "$(cli rewrite "nginx@sha256:$D64" --proxy p.example:5000)" = "p.example:5000/docker-hub/library/nginx@sha256:$D64"
check "rewrite --output json" \
    test "$(cli rewrite public.ecr.aws/x/y:1 --output json | py 'd["proxy_path"]+" "+d["reference"]+" "+d["rule"]')" \
    = "ecr-public/x/y 1 ecr-public"
rc=0; cli rewrite quay.io/coreos/etcd:3 >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
check "rewrite of a host no rule mirrors: exit 1 naming the host" \
    test "$rc" = 1 -a "$(grep -c 'quay.io' "$E2E_TMP/err")" = 1

# --- warm: a multi-arch index, every platform, each digest from upstream once ------------
fake_ctl reset-counts '' >/dev/null
want_blobs=$(img test/multi latest 'len({b["digest"] for c in d["children"] for b in [c["config"]]+c["layers"]})')
rc=0; cli warm docker.io/test/multi:latest >"$E2E_TMP/warm.out" 2>"$E2E_TMP/warm.err" || rc=$?
check "warm of the multi-arch index exits 0" test "$rc" = 0
check "warm in a pipe shows no progress (stderr empty)" test ! -s "$E2E_TMP/warm.err"
check "warm's summary line: 3 manifests, $want_blobs blobs" \
    grep -q "warmed 1 image: 3 manifests, $want_blobs blobs" "$E2E_TMP/warm.out"
check "upstream: one GET per blob of every platform ($want_blobs)" \
    test "$(fake_count 'GET blob')" = "$want_blobs"
check "upstream: the index and both children, each GET once" \
    test "$(fake_count 'GET manifest')" = 3
check "upstream: no path asked twice" test "$(fake_ctl counts | py \
    'max([sum(1 for r in d["requests"] if r["path"]==p and r["method"]=="GET") for p in {r["path"] for r in d["requests"] if r["method"]=="GET"}] or [1])')" = 1
for c in 0 1; do
    dg=$(img test/multi latest "d['children'][$c]['layers'][0]['digest']")
    check "child $c's layer is in the store" test -f "$E2E_TMP/data/blobs/sha256/${dg:7:2}/${dg:7}"
done
fake_ctl reset-counts '' >/dev/null
cli warm docker.io/test/multi:latest --output json >"$E2E_TMP/warm2.json"
check "warm again: nothing from upstream" test "$(fake_count 'GET blob')" = 0 -a "$(fake_count 'GET manifest')" = 0
check "warm --output json parses" test "$(py 'd["failed"]' <"$E2E_TMP/warm2.json")" = 0

# --platform and --file: only the arm64 child of the Docker list
fake_ctl reset-counts '' >/dev/null
printf '# images to warm\n\n  docker.io/test/multi-docker   # the Docker list\n' >"$E2E_TMP/list.txt"
want_arm=$(img test/multi-docker latest 'len({b["digest"] for c in d["children"] if c["platform"]["architecture"]=="arm64" for b in [c["config"]]+c["layers"]})')
rc=0; cli warm --file "$E2E_TMP/list.txt" --platform linux/arm64 --output json >"$E2E_TMP/warm3.json" || rc=$?
check "warm --file --platform linux/arm64 exits 0" test "$rc" = 0
check "  ... fetched the list and the arm64 child only" test "$(fake_count 'GET manifest')" = 2
check "  ... and the arm64 child's $want_arm blobs" test "$(fake_count 'GET blob')" = "$want_arm"
check "  ... its JSON names the platform" \
    test "$(py 'd["images"][0]["platforms"][0]' <"$E2E_TMP/warm3.json")" = linux/arm64/v8

# --- list ----------------------------------------------------------------------------------
cli list >"$E2E_TMP/list.out"
check "list shows the warmed repositories" grep -q '^docker-hub/test/multi  *1$' "$E2E_TMP/list.out"
check "list --output json parses, with both repositories" \
    test "$(cli list --output json | py '" ".join(sorted(r["path"] for r in d))')" = \
    "docker-hub/test/multi docker-hub/test/multi-docker"
mdig=$(img test/multi latest 'd["digest"]')
cli list docker-hub/test/multi >"$E2E_TMP/tags.out"
check "list REPO shows the tag and its digest" grep -q "^latest  *${mdig:0:19} " "$E2E_TMP/tags.out"
cli list docker.io/test/multi --output json >"$E2E_TMP/tags.json"
check "list IMAGE --output json: the digest" test "$(py 'd[0]["digest"]' <"$E2E_TMP/tags.json")" = "$mdig"
want_bytes=$(img test/multi latest 'd["size"]+sum({b["digest"]: b["size"] for c in d["children"] for b in [c]+[c["config"]]+c["layers"]}.values())')
check "  ... the image's size: index + children + configs + layers ($want_bytes)" \
    test "$(py 'd[0]["bytes"]' <"$E2E_TMP/tags.json")" = "$want_bytes"
check "  ... fresh until = checked_at + 24h" \
    test "$(py 'd[0]["fresh_until"]-d[0]["checked_at"]' <"$E2E_TMP/tags.json")" = 86400
check "  ... last pulled is set" test "$(py 'd[0]["last_pulled_at"] > 0' <"$E2E_TMP/tags.json")" = True
# Pages: the daemon answers a bounded page and a cursor.
p1=$(adm 'http://x/admin/v1/repositories?limit=1')
check "a page of one repository has a next cursor" \
    test "$(echo "$p1" | py 'len(d["repositories"]) == 1 and d["next"] is not None')" = True
p2=$(adm "http://x/admin/v1/repositories?limit=1&after=$(echo "$p1" | py 'd["next"]')")
check "the next page is the other repository" \
    test "$(echo "$p1" | py 'd["repositories"][0]["path"]') $(echo "$p2" | py 'd["repositories"][0]["path"]')" \
    = "docker-hub/test/multi docker-hub/test/multi-docker"
rc=0; cli list docker.io/library/never >/dev/null 2>"$E2E_TMP/err" || rc=$?
check "list of a repository not cached: exit 1" test "$rc" = 1

# --- refresh: exactly one upstream HEAD ----------------------------------------------------
fake_ctl reset-counts '' >/dev/null
rc=0; out=$(cli refresh docker.io/test/multi:latest) || rc=$?
check "refresh exits 0 and says unchanged" test "$rc" = 0 -a "$out" = "docker-hub/test/multi:latest: unchanged $mdig"
check "refresh made exactly one upstream HEAD" test "$(fake_count 'HEAD manifest')" = 1
check "  ... and no upstream GET" test "$(fake_count 'GET manifest')" = 0 -a "$(fake_count 'GET blob')" = 0
fake_ctl reset-counts '' >/dev/null
curl -s -o /dev/null -H 'Accept: application/vnd.oci.image.index.v1+json' \
    "http://127.0.0.1:$port/v2/docker-hub/test/multi/manifests/latest"
check "after refresh the tag is fresh again: a pull asks upstream nothing" \
    test "$(fake_count 'HEAD manifest')" = 0
adig=$(img library/alpinetest 3 'd["digest"]')
check "refresh --output json of a tag not cached yet" \
    test "$(cli refresh alpinetest:3 --output json | py 'str(d["old_digest"])+" "+d["new_digest"]')" = "None $adig"

# --- usage and a daemon that is not running -----------------------------------------------
rc=0; "$PROXY_BIN" list --admin-socket "$E2E_TMP/none.sock" >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
check "no daemon: exit 1" test "$rc" = 1
check "no daemon: one clear line" test "$(wc -l <"$E2E_TMP/err")" = 1 -a \
    "$(grep -c "cannot reach the admin socket $E2E_TMP/none.sock" "$E2E_TMP/err")" = 1
for bad in "refresh" "list a b" "rewrite" "gc extra" "warm" "list --output yaml" \
    "list --dry-run" "warm x --platform linux"; do
    rc=0; $PROXY_BIN $bad --config "$E2E_TMP/proxy.json" >/dev/null 2>&1 || rc=$?
    check "bad usage \"$bad\": exit 2" test "$rc" = 2
done

# --- gc: the byte budget now; a dry run removes nothing ------------------------------------
# The same daemon with a budget below what it holds (no sweep runs at start; its timer is 10
# minutes away): the plan, then the sweep.
stop_pid "$PROXY_PID"
python3 - "$E2E_TMP/proxy.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["cache_size"] = "40KiB"
json.dump(c, open(sys.argv[1], "w"))
PY
start_proxy proxy-gc --config "$E2E_TMP/proxy.json"
wait_port "$port"
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.05; done
nfiles() { find "$E2E_TMP/data/blobs" -type f | wc -l; }
files0=$(nfiles)
rc=0; cli gc --dry-run >"$E2E_TMP/gc-dry.out" || rc=$?
check "gc --dry-run exits 0" test "$rc" = 0
check "  ... prints what would go, with bytes" grep -q '^would remove docker-hub/.*@sha256:.*(byte budget)$' "$E2E_TMP/gc-dry.out"
check "  ... and what it would free" grep -q '^would free [0-9.]* [KMG]*i*B in [1-9][0-9]* image' "$E2E_TMP/gc-dry.out"
plan=$(cli gc --dry-run --output json)
check "gc --dry-run --output json: images planned, bytes" \
    test "$(echo "$plan" | py 'd["dry_run"] and len(d["images"]) > 0 and d["freed"] > 0')" = True
check "  ... and nothing was removed" test "$(nfiles)" = "$files0"
done_json=$(cli gc --output json)
check "gc frees what the dry run planned" \
    test "$(echo "$done_json" | py 'd["freed"]')" = "$(echo "$plan" | py 'd["freed"]')"
check "  ... the cache now fits the budget" test "$(echo "$done_json" | py 'd["used_after"] <= 40960')" = True
check "  ... files went from the store" test "$(nfiles)" -lt "$files0"
check "  ... and from the listings" test "$(cli list --output json | py 'sum(r["tags"] for r in d)')" -lt 3

# --- stop: the socket goes; a path that is not a socket is refused ---------------------------
stop_pid "$PROXY_PID"
check "the socket is removed at stop" test ! -e "$sock"
: >"$sock"
start_proxy proxy2 --config "$E2E_TMP/proxy.json"
rc=0; for _ in $(seq 1 100); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.05; done
wait "$PROXY_PID" 2>/dev/null || rc=$?
check "a regular file at the socket's path: the daemon refuses to start" test "$rc" != 0
check "  ... saying so" grep -q "exists and is not a socket" "$E2E_TMP/proxy2.log"
rm -f "$sock"
e2e_done
