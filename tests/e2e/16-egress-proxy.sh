#!/usr/bin/env bash
# Egress through a corporate proxy: http_proxy / HTTP_PROXY carry upstream requests to a
# forward proxy (the upstream's name never resolves here: only the forward proxy knows it);
# NO_PROXY (names by suffix, IPv4 CIDR blocks) sends them direct; https_proxy carries an https
# upstream (a TLS docker-registry trusted through rules[].ca_file) through a CONNECT tunnel.
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

# https through the forward proxy: a CONNECT tunnel to a docker-registry serving TLS with a
# certificate of our own, trusted through rules[].ca_file. libcurl hands the tunnel's
# "200 Connection established" to the header callback too; it must not pass for the
# registry's answer (a cold blob's HEAD would then have no Content-Length).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=registry.invalid \
    -addext subjectAltName=DNS:registry.invalid \
    -keyout "$E2E_TMP/tls.key" -out "$E2E_TMP/tls.pem" >"$E2E_TMP/openssl.log" 2>&1
tp=$(free_port)
sed -e "s|^  addr: .*|  addr: 127.0.0.1:$tp\n  tls:\n    certificate: $E2E_TMP/tls.pem\n    key: $E2E_TMP/tls.key|" \
    "$E2E_TMP/reg/config.yml" >"$E2E_TMP/reg-tls.yml"
(
    for v in $(compgen -e | grep '^REGISTRY_' || true); do unset "$v"; done
    exec "$E2E_REGISTRY_BIN" serve "$E2E_TMP/reg-tls.yml"
) >"$E2E_TMP/reg-tls.log" 2>&1 </dev/null &
E2E_PIDS+=($!)
wait_port "$tp"
fp2=$(free_port)
python3 -u "$TOP_SRCDIR/tests/e2e/fwd_proxy.py" --port "$fp2" --target "https://127.0.0.1:$tp" \
    >"$E2E_TMP/fwd2.out" 2>"$E2E_TMP/fwd2.log" &
E2E_PIDS+=($!)
wait_port "$fp2"
read -r layer size < <(python3 -c '
import json, sys
i = [x for x in json.load(open(sys.argv[1])) if x["repo"] == "library/alpinetest" and x["tag"] == "latest"][0]
print(i["layers"][0]["digest"], i["layers"][0]["size"])' "$E2E_TMP/images.json")
tls_proxy() { # tls_proxy NAME RULE_EXTRA: start the proxy for the TLS upstream; sets P2
    local port
    port=$(free_port)
    cat >"$E2E_TMP/$1.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/$1-data",
 "rules": [{"prefix": "hub", "upstream": "https://registry.invalid:$tp"$2}]}
JSON
    env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY -u no_proxy -u NO_PROXY \
        "https_proxy=http://127.0.0.1:$fp2" "$PROXY_BIN" serve --config "$E2E_TMP/$1.json" \
        >"$E2E_TMP/$1.log" 2>&1 &
    PROXY_PID=$!
    E2E_PIDS+=("$PROXY_PID")
    wait_port "$port"
    P2="127.0.0.1:$port"
}
tls_proxy tls ", \"ca_file\": \"$E2E_TMP/tls.pem\""
# The first exchange on the tunnel is the one that follows the CONNECT: a cold blob GET.
got=$(curl -s -D "$E2E_TMP/tls-get.txt" "http://$P2/v2/hub/library/alpinetest/blobs/$layer" | sha256sum | cut -d' ' -f1)
check "https via CONNECT: a cold blob's bytes hash to its digest" test "sha256:$got" = "$layer"
check "https via CONNECT: the cold blob streams with upstream's Content-Length $size, not chunked" \
    grep -qix "content-length: $size" <(tr -d '\r' <"$E2E_TMP/tls-get.txt")
check "https via CONNECT: skopeo pulls through the tunnel" \
    skopeo copy -q --src-tls-verify=false "docker://$P2/hub/library/alpinetest:latest" "dir:$E2E_TMP/tls-out"
check "https via CONNECT: the requests went through the tunnel ($(curl -s "http://127.0.0.1:$fp2/_count"))" \
    test "$(curl -s "http://127.0.0.1:$fp2/_count")" -gt 0
stop_pid "$PROXY_PID"
tls_proxy tls-noca ""
code=$(curl -s -o "$E2E_TMP/tls-noca.body" -w '%{http_code}' "http://$P2/v2/hub/library/alpinetest/manifests/latest")
check "without ca_file the registry's own certificate is refused ($code)" \
    bash -c "[ '$code' -ge 500 ] && ! grep -q schemaVersion '$E2E_TMP/tls-noca.body'"
stop_pid "$PROXY_PID"
e2e_done
