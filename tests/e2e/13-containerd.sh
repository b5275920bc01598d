#!/usr/bin/env bash
# containerd as an EKS node: the proxy is a hosts.toml mirror for docker.io. A real containerd
# 1.6 (its own root, state and socket under E2E_TMP) pulls through the proxy with ctr, which
# sends unchanged Docker Hub names plus ?ns=docker.io. Upstream is docker-registry behind
# fake_upstream.py with token auth, so the proxy's upstream requests can be counted.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

CONTAINERD_BIN=${E2E_CONTAINERD_BIN:-/usr/bin/containerd}
CTR_BIN=${E2E_CTR_BIN:-/usr/bin/ctr}

# --- upstream: registry + seeded images + the counting, token-auth front ------------------
start_registry registry
if ! seed_images "$REGISTRY_URL" "$E2E_TMP/images.json" --set small >"$E2E_TMP/seed.log" 2>&1; then
    echo "seeding failed:" >&2
    tail -n 20 "$E2E_TMP/seed.log" >&2
    exit 1
fi
start_fake_upstream fake "$REGISTRY_URL" --auth token

# digest REPO TAG: the seeded digest from images.json
digest() {
    python3 -c '
import json, sys
for e in json.load(open(sys.argv[1])):
    if e["repo"] == sys.argv[2] and e["tag"] == sys.argv[3]:
        print(e["digest"]); break
else:
    sys.exit("no %s:%s in images.json" % (sys.argv[2], sys.argv[3]))
' "$E2E_TMP/images.json" "$1" "$2"
}

# --- the proxy ------------------------------------------------------------------------------
port=$(free_port)
cat >"$E2E_TMP/proxy.json" <<EOF
{
  "listen": "127.0.0.1:$port",
  "data_dir": "$E2E_TMP/data",
  "rules": [
    { "prefix": "docker-hub", "upstream": "$FAKE_URL", "mirror_for": ["docker.io"],
      "library_prefix": true, "default": true, "allow_private_redirects": true }
  ]
}
EOF
start_proxy proxy --config "$E2E_TMP/proxy.json"
wait_port "$port"
base="http://127.0.0.1:$port"

# --- containerd -----------------------------------------------------------------------------
# Short paths: the gRPC socket path must fit in sun_path (108 bytes).
cdir="$E2E_TMP/ctd"
mkdir -p "$cdir"
sock="$cdir/c.sock"
cat >"$cdir/config.toml" <<EOF
version = 2
root = "$cdir/root"
state = "$cdir/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  level = "debug"
[plugins."io.containerd.internal.v1.opt"]
  path = "$cdir/opt"
EOF
"$CONTAINERD_BIN" --config "$cdir/config.toml" >"$E2E_TMP/containerd.log" 2>&1 </dev/null &
CONTAINERD_PID=$!
E2E_PIDS+=("$CONTAINERD_PID")
for _ in $(seq 1 200); do
    [ -S "$sock" ] && break
    kill -0 "$CONTAINERD_PID" 2>/dev/null || break
    sleep 0.05
done
if ! [ -S "$sock" ]; then
    echo "containerd did not create $sock; log:" >&2
    tail -n 30 "$E2E_TMP/containerd.log" >&2
    exit 1
fi

ctr() { timeout 20 "$CTR_BIN" --address "$sock" --namespace e2e "$@"; }

# --- hosts.toml: the proxy as the docker.io mirror -----------------------------------------
mkdir -p "$E2E_TMP/certs.d/docker.io"
cat >"$E2E_TMP/certs.d/docker.io/hosts.toml" <<EOF
server = "https://registry-1.docker.io"

[host."http://127.0.0.1:$port"]
  capabilities = ["pull", "resolve"]
EOF

pull() { # pull HOSTS_DIR REF [ctr pull args...]
    local hosts=$1 ref=$2
    shift 2
    ctr images pull --snapshotter native --hosts-dir "$hosts" "$@" "$ref"
}

# image_digest REF: the target digest ctr images ls shows for REF
image_digest() {
    ctr images ls | awk -v r="$1" '$1 == r { print $3 }'
}

# unpacked REF: ctr images check says REF is complete and unpacked in the native snapshotter
unpacked() {
    ctr images check --snapshotter native | awk -v r="$1" '
        $1 == r { found = 1; if ($4 == "complete" && $NF == "true") ok = 1 }
        END { exit !(found && ok) }'
}

# fake_requests PYTHON-EXPR: prints the fake's recorded requests (method path) for which EXPR
# (over r, one entry of counts.requests) is true, one per line.
fake_requests() {
    fake_ctl counts | python3 -c '
import json, sys
for r in json.load(sys.stdin)["requests"]:
    if eval(sys.argv[1]):
        print(r["method"], r["path"] + ("?" + r["query"] if r.get("query") else ""), r["status"])
' "$1"
}

# proxy_lines_since N: the proxy's request log lines after line N
proxy_lines_since() { tail -n +"$(($1 + 1))" "$E2E_TMP/proxy.log" | grep ' request ' || true; }

# --- 1. docker.io/alpinetest:latest: ctr sends the one-segment name, the rule adds library/ --
want=$(digest library/alpinetest latest)
fake_ctl reset-counts '' >/dev/null
mark=$(wc -l <"$E2E_TMP/proxy.log")
if pull "$E2E_TMP/certs.d" docker.io/alpinetest:latest >"$E2E_TMP/pull1.out" 2>&1; then
    pass "ctr pulls docker.io/alpinetest:latest through the hosts.toml mirror"
else
    fail "ctr pulls docker.io/alpinetest:latest through the hosts.toml mirror"
    tail -n 20 "$E2E_TMP/pull1.out" >&2
fi
got=$(image_digest docker.io/alpinetest:latest)
check "ctr images ls shows the seeded digest of library/alpinetest:latest ($got)" test "$got" = "$want"
check "the image is complete and unpacked in the native snapshotter" unpacked docker.io/alpinetest:latest
nsnap=$(ctr snapshots --snapshotter native ls | grep -c ' Committed' || true)
check "the native snapshotter holds one committed snapshot per layer ($nsnap)" test "$nsnap" = 2

proxy_lines_since "$mark" >"$E2E_TMP/pull1.proxy"
check "containerd resolved the tag with HEAD /v2/alpinetest/manifests/latest?ns=docker.io" \
    grep -q 'method=HEAD uri="/v2/alpinetest/manifests/latest?ns=docker.io" status=200' "$E2E_TMP/pull1.proxy"
check "every request containerd sent carried ?ns=docker.io" \
    bash -c '! grep -v "ns=docker.io" "$0" | grep -q .' "$E2E_TMP/pull1.proxy"
check "after the HEAD containerd fetched everything by digest" python3 -c '
import re, sys
uris = re.findall(r"method=(\w+) uri=\"([^\"]*)\"", open(sys.argv[1]).read())
assert uris and uris[0] == ("HEAD", "/v2/alpinetest/manifests/latest?ns=docker.io"), uris
rest = uris[1:]
assert rest and all("/sha256:" in u for _, u in rest), rest
assert any(m == "GET" and "/manifests/sha256:" in u for m, u in rest), rest
assert sum(1 for m, u in rest if m == "GET" and "/blobs/sha256:" in u) == 3, rest
' "$E2E_TMP/pull1.proxy"

fake_requests 'True' >"$E2E_TMP/pull1.fake"
check "upstream saw HEAD /v2/library/alpinetest/manifests/latest (library/ added)" \
    grep -q '^HEAD /v2/library/alpinetest/manifests/latest 200$' "$E2E_TMP/pull1.fake"
check "upstream was asked for a token (token auth exercised)" test "$(fake_count token)" -ge 1
check "upstream saw no GET of a manifest by tag" \
    bash -c '! grep -E "^GET /v2/.*/manifests/[^s]" "$0"' "$E2E_TMP/pull1.fake"
check "upstream saw 3 blob GETs, each once" test "$(fake_count 'GET blob')" = 3
check "the proxy did not forward ?ns= upstream" bash -c '! grep -q "ns=" "$0"' "$E2E_TMP/pull1.fake"

# --- 2. again after ctr images rm: served from the cache, no upstream GETs ----------------
ctr images rm --sync docker.io/alpinetest:latest >/dev/null
ncontent=$(ctr content ls -q | wc -l)
check "containerd garbage-collected the content after images rm --sync ($ncontent left)" \
    test "$ncontent" = 0
fake_ctl reset-counts '' >/dev/null
mark=$(wc -l <"$E2E_TMP/proxy.log")
if pull "$E2E_TMP/certs.d" docker.io/alpinetest:latest >"$E2E_TMP/pull2.out" 2>&1; then
    pass "second ctr pull of docker.io/alpinetest:latest succeeds"
else
    fail "second ctr pull of docker.io/alpinetest:latest succeeds"
    tail -n 20 "$E2E_TMP/pull2.out" >&2
fi
got=$(image_digest docker.io/alpinetest:latest)
check "second pull: same digest ($got)" test "$got" = "$want"
check "second pull: unpacked again" unpacked docker.io/alpinetest:latest
nblob=$(proxy_lines_since "$mark" | grep -c 'method=GET uri="/v2/alpinetest/blobs/sha256:.* status=200' || true)
check "second pull: containerd fetched the 3 blobs from the proxy again ($nblob)" test "$nblob" = 3
fake_requests 'True' >"$E2E_TMP/pull2.fake"
check "second pull: zero upstream blob GETs" test "$(fake_count 'GET blob')" = 0
check "second pull: zero upstream manifest GETs" test "$(fake_count 'GET manifest')" = 0
check "second pull: no upstream HEAD either (the tag is fresh)" test "$(fake_count 'HEAD manifest')" = 0

# --- 3. override_path: the host URL names the rule's prefix ---------------------------------
mkdir -p "$E2E_TMP/certs.o/docker.io"
cat >"$E2E_TMP/certs.o/docker.io/hosts.toml" <<EOF2
server = "https://registry-1.docker.io"

[host."http://127.0.0.1:$port/v2/docker-hub"]
  capabilities = ["pull", "resolve"]
  override_path = true
EOF2
# Same content as :latest: remove that first so containerd fetches the blobs through this host.
ctr images rm --sync docker.io/alpinetest:latest >/dev/null
want=$(digest library/alpinetest 3)
fake_ctl reset-counts '' >/dev/null
mark=$(wc -l <"$E2E_TMP/proxy.log")
if pull "$E2E_TMP/certs.o" docker.io/library/alpinetest:3 >"$E2E_TMP/pull3.out" 2>&1; then
    pass "ctr pulls docker.io/library/alpinetest:3 through an override_path host"
else
    fail "ctr pulls docker.io/library/alpinetest:3 through an override_path host"
    tail -n 20 "$E2E_TMP/pull3.out" >&2
fi
got=$(image_digest docker.io/library/alpinetest:3)
check "override_path: the seeded digest of library/alpinetest:3 ($got)" test "$got" = "$want"
check "override_path: unpacked" unpacked docker.io/library/alpinetest:3
check "override_path: containerd asked /v2/docker-hub/library/alpinetest/manifests/3?ns=docker.io" \
    bash -c 'tail -n +"$(($1 + 1))" "$0" | grep -q "uri=\"/v2/docker-hub/library/alpinetest/manifests/3?ns=docker.io\" status=200"' \
    "$E2E_TMP/proxy.log" "$mark"
nblob=$(proxy_lines_since "$mark" | grep -c 'method=GET uri="/v2/docker-hub/library/alpinetest/blobs/sha256:[0-9a-f]*?ns=docker.io" status=200' || true)
check "override_path: the 3 blobs came through /v2/docker-hub/library/alpinetest/blobs/ ($nblob)" \
    test "$nblob" = 3
check "override_path: the same cache, zero upstream blob GETs" test "$(fake_count 'GET blob')" = 0

# --- 4. a multi-arch index, one platform --------------------------------------------------
want=$(digest test/multi latest)
mark=$(wc -l <"$E2E_TMP/proxy.log")
if pull "$E2E_TMP/certs.d" docker.io/test/multi:latest --platform linux/amd64 >"$E2E_TMP/pull4.out" 2>&1; then
    pass "ctr pulls the index docker.io/test/multi:latest for linux/amd64"
else
    fail "ctr pulls the index docker.io/test/multi:latest for linux/amd64"
    tail -n 20 "$E2E_TMP/pull4.out" >&2
fi
got=$(image_digest docker.io/test/multi:latest)
check "multi: ctr images ls shows the index digest ($got)" test "$got" = "$want"
check "multi: ctr images ls lists both platforms" \
    bash -c '"$0" --address "$1" --namespace e2e images ls | grep "^docker.io/test/multi:latest " | grep -q "linux/amd64,linux/arm64"' \
    "$CTR_BIN" "$sock"
amd64=$(python3 -c '
import json, sys
for e in json.load(open(sys.argv[1])):
    if e["repo"] == "test/multi" and e["tag"] == "latest":
        for c in e["children"]:
            if c["platform"]["architecture"] == "amd64": print(c["digest"])
' "$E2E_TMP/images.json")
check "multi: containerd fetched the linux/amd64 child by digest ($amd64)" \
    bash -c 'tail -n +"$(($1 + 1))" "$0" | grep -q "method=GET uri=\"/v2/test/multi/manifests/$2?ns=docker.io\" status=200"' \
    "$E2E_TMP/proxy.log" "$mark" "$amd64"
check "multi: unpacked for linux/amd64" unpacked docker.io/test/multi:latest

# --- containerd stops cleanly -------------------------------------------------------------
set +e
stop_pid "$CONTAINERD_PID" 10; rc=$?
set -e
check "containerd stops on SIGTERM (rc $rc)" test "$rc" != 124
check "the proxy logged no error" bash -c '! grep -E " (error|crit|fatal) " "$0"' "$E2E_TMP/proxy.log"
e2e_done
