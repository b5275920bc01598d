# Upstream helpers for the end-to-end scenarios: a real docker-registry (CNCF distribution 2.8)
# on loopback, the fault-injecting front tests/e2e/fake_upstream.py, and seeding. Source AFTER
# tests/e2e/lib.sh (uses E2E_TMP, E2E_PIDS, free_port, wait_port, TOP_SRCDIR).
#
#   start_registry NAME                      -> REGISTRY_PORT REGISTRY_PID REGISTRY_URL
#   start_fake_upstream NAME BACKEND_URL [fake_upstream.py args...]
#                                            -> FAKE_PORT FAKE_CDN_PORT FAKE_PID FAKE_URL
#   fake_ctl PATH [JSON]                     GET (or POST JSON) http://127.0.0.1:$FAKE_PORT/_ctl/PATH
#   fake_count KIND                          prints counts.by_kind[KIND]
#   seed_images REGISTRY_URL OUT [args...]   runs seed_images.py --registry URL --out OUT args...
#
# Every process started here is appended to E2E_PIDS, so lib.sh's EXIT trap stops it by PID.
# A refused upstream is simulated by stopping the fake: stop_pid "$FAKE_PID".

E2E_REGISTRY_BIN=${E2E_REGISTRY_BIN:-/usr/bin/docker-registry}
E2E_DIR_SELF="${TOP_SRCDIR}/tests/e2e"

# start_registry NAME: docker-registry on 127.0.0.1:<free port>, storage in $E2E_TMP/NAME/storage,
# config $E2E_TMP/NAME/config.yml, log $E2E_TMP/NAME.log. Waits until GET /v2/ answers 200
# (at most 15 s). Sets REGISTRY_PORT, REGISTRY_PID, REGISTRY_URL.
start_registry() {
    local name=$1 dir port i code
    dir="$E2E_TMP/$name"
    mkdir -p "$dir/storage"
    port=$(free_port)
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: e2e-not-a-secret
  headers:
    X-Content-Type-Options: [nosniff]
EOF
    # distribution reads REGISTRY_* variables as config overrides: start it without any.
    (
        for v in $(compgen -e | grep '^REGISTRY_' || true); do unset "$v"; done
        exec "$E2E_REGISTRY_BIN" serve "$dir/config.yml"
    ) >"$E2E_TMP/$name.log" 2>&1 </dev/null &
    REGISTRY_PID=$!
    E2E_PIDS+=("$REGISTRY_PID")
    REGISTRY_PORT=$port
    REGISTRY_URL="http://127.0.0.1:$port"
    if ! wait_port "$port" 15; then
        echo "docker-registry $name did not start; log:" >&2
        tail -n 20 "$E2E_TMP/$name.log" >&2
        return 1
    fi
    for i in $(seq 1 100); do
        code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$REGISTRY_URL/v2/" || true)
        [ "$code" = 200 ] && return 0
        kill -0 "$REGISTRY_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "docker-registry $name: GET /v2/ never answered 200 (last $code); log:" >&2
    tail -n 20 "$E2E_TMP/$name.log" >&2
    return 1
}

# start_fake_upstream NAME BACKEND_URL [ARGS...]: tests/e2e/fake_upstream.py in front of
# BACKEND_URL on two free ports (registry API and CDN), stdout $E2E_TMP/NAME.out, stderr (one
# line per request) $E2E_TMP/NAME.log. ARGS go to fake_upstream.py: --auth token|basic|none,
# --redirect-blobs, --token-expires N, --username U --password P. Waits for its "ready" line
# (at most 15 s). Sets FAKE_PORT, FAKE_CDN_PORT, FAKE_PID, FAKE_URL.
start_fake_upstream() {
    local name=$1 backend=$2 i
    shift 2
    FAKE_PORT=$(free_port)
    FAKE_CDN_PORT=$(free_port)
    for i in $(seq 1 20); do
        [ "$FAKE_CDN_PORT" != "$FAKE_PORT" ] && break
        FAKE_CDN_PORT=$(free_port)
    done
    python3 -u "$E2E_DIR_SELF/fake_upstream.py" --port "$FAKE_PORT" --cdn-port "$FAKE_CDN_PORT" \
        --backend "$backend" "$@" >"$E2E_TMP/$name.out" 2>"$E2E_TMP/$name.log" </dev/null &
    FAKE_PID=$!
    E2E_PIDS+=("$FAKE_PID")
    FAKE_URL="http://127.0.0.1:$FAKE_PORT"
    for i in $(seq 1 300); do
        if grep -qx ready "$E2E_TMP/$name.out" 2>/dev/null; then
            wait_port "$FAKE_PORT" 5 && wait_port "$FAKE_CDN_PORT" 5 && return 0
            break
        fi
        kill -0 "$FAKE_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "fake upstream $name did not become ready; log:" >&2
    tail -n 20 "$E2E_TMP/$name.log" >&2
    return 1
}

# fake_ctl PATH [JSON]: the fake's control API. PATH is relative to /_ctl/ ("counts",
# "faults", "reset-counts", "revoke-tokens"; a leading "/_ctl/" is accepted too). With JSON
# (may be '') it POSTs it, else GETs. Prints the body; fails on a non-2xx answer. Talks to
# FAKE_CTL_PORT when set, else FAKE_PORT.
#   fake_ctl faults '[{"match":"^GET /v2/.*/blobs/","kind":"status","status":503,"count":2}]'
#   fake_ctl faults '[]'        # clear
#   fake_ctl counts | jq '.by_kind["GET blob"]'
#   fake_ctl reset-counts ''
fake_ctl() {
    local path=${1#/}
    path=${path#_ctl/}
    local url="http://127.0.0.1:${FAKE_CTL_PORT:-$FAKE_PORT}/_ctl/$path"
    if [ $# -ge 2 ]; then
        curl -sS -f -m 10 -X POST -H 'Content-Type: application/json' --data-binary "${2:-[]}" "$url"
    else
        curl -sS -f -m 10 "$url"
    fi
}

# fake_count KIND: one of the fake's by_kind counters ("GET blob", "HEAD manifest", "token",
# "cdn", "cdn_rejected_auth", "tags", "other", ...). Prints 0 for an unknown kind.
fake_count() {
    fake_ctl counts | python3 -c 'import json,sys; print(json.load(sys.stdin)["by_kind"].get(sys.argv[1], 0))' "$1"
}

# seed_images REGISTRY_URL OUT [ARGS...]: pushes the generated test images (see seed_images.py).
seed_images() {
    local url=$1 out=$2
    shift 2
    python3 "$E2E_DIR_SELF/seed_images.py" --registry "$url" --out "$out" "$@"
}
