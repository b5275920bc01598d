#!/usr/bin/env bash
# Egress through a corporate proxy: http_proxy / HTTP_PROXY carry upstream requests to a
# forward proxy (the upstream's name never resolves here: only the forward proxy knows it);
# NO_PROXY (names by suffix, IPv4 CIDR blocks) sends them direct.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

start_registry reg
seed_images "$REGISTRY_URL" "$E2E_TMP/images.json" --set small >/dev/null
fp=$(free_port)
python3 -u "$TOP_SRCDIR/tests/e2e/fwd_proxy.py" --port "$fp" --target "$REGISTRY_URL" \
    >"$E2E_TMP/fwd.out" 2>"$E2E_TMP/fwd.log" &
E2E_PIDS+=($!)
wait_port "$fp"
fwd_count() { curl -s "http://127.0.0.1:$fp/_count"; }

run_with() { # run_with NAME UPSTREAM ENV...: start the proxy with ENV, pull, stop; prints port
    local name=$1 upstream=$2 port
    shift 2
    port=$(free_port)
    cat >"$E2E_TMP/$name.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/$name-data",
 "rules": [{"prefix": "hub", "upstream": "$upstream"}]}
JSON
    env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY -u no_proxy -u NO_PROXY "$@" \
        "$PROXY_BIN" serve --config "$E2E_TMP/$name.json" >"$E2E_TMP/$name.log" 2>&1 &
    PROXY_PID=$!
    E2E_PIDS+=("$PROXY_PID")
    wait_port "$port"
    skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/hub/library/alpinetest:latest" \
        "dir:$E2E_TMP/$name-out" >"$E2E_TMP/$name.skopeo" 2>&1
}

before=$(fwd_count)
check "http_proxy: a pull from an upstream only the forward proxy can reach" \
    run_with lower "http://registry.invalid:$REGISTRY_PORT" "http_proxy=http://127.0.0.1:$fp"
stop_pid "$PROXY_PID"
check "http_proxy: the requests went through the forward proxy ($before -> $(fwd_count))" \
    test "$(fwd_count)" -gt "$before"

before=$(fwd_count)
check "HTTP_PROXY (upper case) works too" \
    run_with upper "http://registry.invalid:$REGISTRY_PORT" "HTTP_PROXY=http://127.0.0.1:$fp"
stop_pid "$PROXY_PID"
check "HTTP_PROXY: through the forward proxy ($before -> $(fwd_count))" test "$(fwd_count)" -gt "$before"

before=$(fwd_count)
check "NO_PROXY: a listed host goes direct" \
    run_with noproxy "$REGISTRY_URL" "http_proxy=http://127.0.0.1:$fp" "NO_PROXY=127.0.0.1"
stop_pid "$PROXY_PID"
check "NO_PROXY: nothing went through the forward proxy" test "$(fwd_count)" = "$before"

before=$(fwd_count)
check "NO_PROXY applies to HTTP_PROXY too" \
    run_with noproxy2 "$REGISTRY_URL" "HTTP_PROXY=http://127.0.0.1:$fp" "no_proxy=127.0.0.1"
stop_pid "$PROXY_PID"
check "NO_PROXY with HTTP_PROXY: nothing went through the forward proxy" test "$(fwd_count)" = "$before"
before=$(fwd_count)
check "NO_PROXY: a CIDR block in a list goes direct" \
    run_with cidr "$REGISTRY_URL" "http_proxy=http://127.0.0.1:$fp" "NO_PROXY=registry.example, .corp.example, 127.0.0.0/8"
stop_pid "$PROXY_PID"
check "NO_PROXY CIDR: nothing went through the forward proxy" test "$(fwd_count)" = "$before"

before=$(fwd_count)
check "NO_PROXY: a name suffix does not match a different host" \
    run_with suffix "http://registry.invalid:$REGISTRY_PORT" "http_proxy=http://127.0.0.1:$fp" "no_proxy=.other.invalid,10.0.0.0/8"
stop_pid "$PROXY_PID"
check "... so it went through the forward proxy" test "$(fwd_count)" -gt "$before"
e2e_done
