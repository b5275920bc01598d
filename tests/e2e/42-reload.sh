#!/usr/bin/env bash
# SIGHUP reload. Under load (20 clients pulling a cached blob and a tag, a large cold fill in
# flight, 20 reloads) no request fails and every byte is right. Then: a new rule becomes
# reachable; a shorter refresh_interval takes effect; a rule's password_file is read again; a
# bad file is refused with check-config's line and the old config keeps serving; a changed
# listen address is logged as needing a restart. Without --config a reload re-applies the
# embedded default with --listen/--data-dir. The proxy exits 0.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

CLIENTS=20
RELOADS=20

start_registry reg
seed_images "$REGISTRY_URL" "$E2E_TMP/images.json" --set small >/dev/null
big=$(python3 "$TOP_SRCDIR/tests/e2e/seed_images.py" --registry "$REGISTRY_URL" \
    --blob-only-mib 16 --blob-repo library/alpinetest | tail -1)
start_fake_upstream basic "$REGISTRY_URL" --auth basic --username robot --password 'r1ght-Pass'
B_URL=$FAKE_URL B_PORT=$FAKE_PORT
start_fake_upstream up "$REGISTRY_URL" --auth token
U_URL=$FAKE_URL U_PORT=$FAKE_PORT
start_fake_upstream tok "$REGISTRY_URL" --auth token --username robot --password 't0ken-Pass'
T_URL=$FAKE_URL T_PORT=$FAKE_PORT
FAKE_URL=$U_URL FAKE_PORT=$U_PORT

# repo, tag digest, media type and first layer of alpinetest:latest
read -r repo mdigest mtype layer < <(python3 -c '
import json, sys
for i in json.load(open(sys.argv[1])):
    if i["repo"].endswith("alpinetest") and i["tag"] == "latest":
        print(i["repo"], i["digest"], i["media_type"], i["layers"][0]["digest"])
        break' "$E2E_TMP/images.json")

clock_start
port=$(free_port)
port2=$(free_port)
P="http://127.0.0.1:$port"
CFG=$E2E_TMP/config.json
printf 'wr0ng-Pass\n' >"$E2E_TMP/secret"
printf 't0ken-Pass\n' >"$E2E_TMP/tsecret"

# config_json REFRESH [EXTRA] [LISTEN_PORT]: the config; EXTRA=1 adds the rule "extra".
config_json() {
    local extra=""
    [ "${2:-0}" = 1 ] && extra=", {\"prefix\": \"extra\", \"upstream\": \"$U_URL\", \"allow_private_redirects\": true}"
    cat <<JSON
{"listen": "127.0.0.1:${3:-$port}", "data_dir": "$E2E_TMP/data", "refresh_interval": "$1",
 "rules": [
  {"prefix": "hub", "upstream": "$U_URL", "allow_private_redirects": true},
  {"prefix": "basic", "upstream": "$B_URL", "allow_private_redirects": true,
   "credentials": {"username": "robot", "password_file": "$E2E_TMP/secret"}},
  {"prefix": "tok", "upstream": "$T_URL", "allow_private_redirects": true,
   "credentials": {"username": "robot", "password_file": "$E2E_TMP/tsecret"}}$extra]}
JSON
}
# put_config ARGS...: replaces the file atomically (as an editor or a config manager does).
put_config() {
    config_json "$@" >"$CFG.new"
    mv -f "$CFG.new" "$CFG"
}
reloads() { # reload outcomes logged so far
    grep -c -E ' (config-reloaded|config-reload-failed) ' "$E2E_TMP/proxy.log" || true
}
# hup: SIGHUP, then wait (at most 5 s) until the proxy logged its outcome.
hup() {
    local before i
    before=$(reloads)
    kill -HUP "$PROXY_PID"
    for i in $(seq 1 100); do
        [ "$(reloads)" -gt "$before" ] && return 0
        sleep 0.05
    done
    echo "no reload outcome logged after SIGHUP" >&2
    return 1
}
metric() { # metric 'NAME{LABELS}': its value on /metrics
    curl -s -m 5 "$P/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}
tag_digest() { # tag_digest PREFIX: sha256 of the tag's manifest body through the proxy
    echo "sha256:$(curl -s -m 10 -H "Accept: $mtype" "$P/v2/$1/$repo/manifests/latest" | sha256sum | cut -d' ' -f1)"
}
code_of() { curl -s -o /dev/null -m 10 -w '%{http_code}' -H "Accept: $mtype" "$1" || true; }

put_config 1h
start_proxy proxy --config "$CFG"
wait_port "$port"

# Warm: the tag and the layer are cached.
check "warm: the tag through the proxy" test "$(tag_digest hub)" = "$mdigest"
check "warm: the layer through the proxy" \
    test "sha256:$(curl -s -m 10 "$P/v2/hub/$repo/blobs/$layer" | sha256sum | cut -d' ' -f1)" = "$layer"

# ---- under load -----------------------------------------------------------------------------
# client N: rounds of (cached blob, tag manifest) until $E2E_TMP/stop exists, at most 400.
client() {
    local n=0 bad=0 sum r
    for r in $(seq 1 400); do
        [ -e "$E2E_TMP/stop" ] && break
        sum=$(curl -s -m 10 "$P/v2/hub/$repo/blobs/$layer" | sha256sum | cut -d' ' -f1)
        [ "sha256:$sum" = "$layer" ] || bad=$((bad + 1))
        sum=$(curl -s -m 10 -H "Accept: $mtype" "$P/v2/hub/$repo/manifests/latest" | sha256sum | cut -d' ' -f1)
        [ "sha256:$sum" = "$mdigest" ] || bad=$((bad + 1))
        n=$((n + 2))
    done
    echo "$n $bad" >"$E2E_TMP/client.$1"
}

# The large blob's body comes slowly (16 MiB in 64 KiB chunks, 80 ms apart: ~20 s), so the
# fill outlasts the reloads.
fake_ctl faults "[{\"match\":\"^GET /v2/.*/blobs/$big\",\"kind\":\"slow\",\"delay_ms\":80,\"count\":-1}]" >/dev/null
bigpids=()
for i in 1 2; do
    (curl -s -m 60 "$P/v2/hub/$repo/blobs/$big" | sha256sum | cut -d' ' -f1 >"$E2E_TMP/big.$i") &
    bigpids+=($!)
done
for _ in $(seq 1 100); do
    [ -n "$(ls -A "$E2E_TMP/data/tmp" 2>/dev/null)" ] && break
    sleep 0.05
done
check "the large fill is in flight before the reloads" test -n "$(ls -A "$E2E_TMP/data/tmp")"
cpids=()
for i in $(seq 1 "$CLIENTS"); do
    client "$i" &
    cpids+=($!)
done
sleep 0.3
ok_hups=0
hup_start=$(date +%s%N)
for i in $(seq 1 "$RELOADS"); do
    # Alternate two valid files: the rules, their origins and refresh_interval swap each time.
    if [ $((i % 2)) = 1 ]; then put_config 2h; else put_config 1h; fi
    hup && ok_hups=$((ok_hups + 1))
done
echo "$RELOADS reloads in $(( ($(date +%s%N) - hup_start) / 1000000 )) ms"
fill_inflight=0
kill -0 "${bigpids[0]}" 2>/dev/null && fill_inflight=1
touch "$E2E_TMP/stop"
for p in "${cpids[@]}"; do wait "$p" || true; done
for p in "${bigpids[@]}"; do wait "$p" || true; done
fake_ctl faults '[]' >/dev/null

total=0 bad=0
for i in $(seq 1 "$CLIENTS"); do
    read -r n b <"$E2E_TMP/client.$i" || { n=0; b=1; }
    total=$((total + n))
    bad=$((bad + b))
done
echo "under load: $total requests by $CLIENTS clients, $ok_hups reloads"
check "every reload was applied ($ok_hups of $RELOADS logged)" test "$ok_hups" = "$RELOADS"
check "the clients ran throughout ($total requests)" test "$total" -ge $((CLIENTS * 4))
check "no request failed or got wrong bytes ($bad)" test "$bad" = 0
check "the large fill was still in flight after the last reload" test "$fill_inflight" = 1
for i in 1 2; do
    check "large fill client $i got the right bytes" test "sha256:$(cat "$E2E_TMP/big.$i")" = "$big"
done
check "the fill was committed" eventually test -f "$E2E_TMP/data/blobs/sha256/${big:7:2}/${big:7}"
check "reloads_total{ok} is $RELOADS" test "$(metric 'ecr_ptc_config_reloads_total{result="ok"}')" = "$RELOADS"
check "no reload failed" test "$(metric 'ecr_ptc_config_reloads_total{result="failed"}')" = 0
check "a reload logs what changed" grep -q ' config-reloaded config=.* changed="rules refresh_interval"' "$E2E_TMP/proxy.log"

# ---- a new rule -------------------------------------------------------------------------------
check "before: prefix extra is unknown (404)" test "$(code_of "$P/v2/extra/$repo/manifests/latest")" = 404
put_config 1h 1
hup
check "after a reload adding it, prefix extra serves the tag" test "$(tag_digest extra)" = "$mdigest"

# ---- refresh_interval -------------------------------------------------------------------------
fake_ctl reset-counts '' >/dev/null
clock_advance 120 "$P"
check "refresh_interval 1h: the tag is fresh" test "$(tag_digest hub)" = "$mdigest"
check "... no HEAD upstream" test "$(fake_count 'HEAD manifest')" = 0
put_config 60s 1
hup
check "refresh_interval 60s after a reload: the tag is right" test "$(tag_digest hub)" = "$mdigest"
check "... and was checked upstream (one HEAD)" test "$(fake_count 'HEAD manifest')" = 1

# ---- credentials --------------------------------------------------------------------------------
check "password_file with the wrong password: 401" \
    test "$(code_of "$P/v2/basic/$repo/manifests/latest")" = 401
printf 'r1ght-Pass\n' >"$E2E_TMP/secret"
hup
check "after the file changed and a reload: the tag through basic" test "$(tag_digest basic)" = "$mdigest"
basic_ok=$(FAKE_PORT=$B_PORT fake_ctl counts | python3 -c '
import json, sys
r = json.load(sys.stdin)["requests"]
print(sum(1 for e in r if e["kind"].endswith("manifest") and e["auth_ok"] is True),
      sum(1 for e in r if e["kind"].endswith("manifest") and e["auth_ok"] is False))')
check "the upstream refused the old password, then accepted the new one ($basic_ok)" \
    bash -c "[ '${basic_ok% *}' -ge 1 ] && [ '${basic_ok#* }' -ge 1 ]"
# A bearer token got with the old password is not used after the password changed: the next
# request in the same repository asks for a token with the new one. Here the new one is
# wrong, so the operator sees it now, not when the old token expires.
tok_requests() { # tok_requests: "<token requests accepted> <refused>" at the token realm
    FAKE_PORT=$T_PORT fake_ctl counts | python3 -c '
import json, sys
r = [e for e in json.load(sys.stdin)["requests"] if e["kind"] == "token"]
print(sum(1 for e in r if e["auth_ok"] is True), sum(1 for e in r if e["auth_ok"] is False))'
}
check "a token realm with credentials: the tag through tok" \
    test "$(code_of "$P/v2/tok/$repo/manifests/latest")" = 200
check "... with one token, got with the password" test "$(tok_requests)" = "1 0"
printf 'wr0ng-Pass\n' >"$E2E_TMP/tsecret"
hup
code=$(code_of "$P/v2/tok/$repo/manifests/3")
check "after a reload to a wrong password the old token is not used ($code)" test "$code" != 200
check "... a token was asked for with the new password, and refused" test "$(tok_requests)" = "1 1"
printf 't0ken-Pass\n' >"$E2E_TMP/tsecret"
hup
check "the right password again: the tag through tok" \
    test "$(code_of "$P/v2/tok/$repo/manifests/3")" = 200
check "no password in the proxy's log" bash -c "! grep -q -e r1ght -e wr0ng -e t0ken '$E2E_TMP/proxy.log'"

# ---- a bad file -------------------------------------------------------------------------------
# Written in place, not renamed: the reload reads what is there.
cat >"$CFG" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data",
 "rules": [{"prefix": "hub", "upstream": "nope"}]}
JSON
set +e
want=$("$PROXY_BIN" check-config --config "$CFG" 2>&1)
set -e
check "check-config names the problem ($want)" grep -qF 'rules[0].upstream: not a URL' <<<"$want"
hup
check "the reload is refused with check-config's line" \
    grep -qF "config-reload-failed error=\"$want\"" "$E2E_TMP/proxy.log"
check "exactly one failure line" test "$(grep -c ' config-reload-failed ' "$E2E_TMP/proxy.log")" = 1
check "the old config keeps serving: extra" test "$(tag_digest extra)" = "$mdigest"
check "the old config keeps serving: basic" test "$(tag_digest basic)" = "$mdigest"
check "reloads_total{failed} is 1" test "$(metric 'ecr_ptc_config_reloads_total{result="failed"}')" = 1

# ---- listen: a restart ------------------------------------------------------------------------
put_config 60s 1 "$port2"
hup
check "a changed listen logs that a restart is needed" \
    grep -qF "config-reload-restart-needed detail=\"listen: a change needs a restart; keeping 127.0.0.1:$port\"" "$E2E_TMP/proxy.log"
check "the old address keeps serving" test "$(tag_digest hub)" = "$mdigest"
check "nothing listens on the new address" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$port2) 2>/dev/null"

check "the proxy did not restart (one listening line)" test "$(grep -c ' listening ' "$E2E_TMP/proxy.log")" = 1
set +e
stop_pid "$PROXY_PID" 10; rc=$?
set -e
check "the proxy exits 0 after the reloads (rc=$rc)" test "$rc" = 0
check "no sanitizer report" bash -c "! grep -q -e AddressSanitizer -e LeakSanitizer -e 'runtime error' '$E2E_TMP/proxy.log'"

# ---- without --config -------------------------------------------------------------------------
port3=$(free_port)
start_proxy dflt --listen "127.0.0.1:$port3" --data-dir "$E2E_TMP/data3"
wait_port "$port3"
kill -HUP "$PROXY_PID"
check "without --config a reload re-applies the default" \
    eventually grep -q ' config-reloaded config="(embedded default)" rules=2 changed=nothing' "$E2E_TMP/dflt.log"
check "... saying so" grep -q ' config-reload-default ' "$E2E_TMP/dflt.log"
check "... with --listen and --data-dir kept (no restart line)" \
    bash -c "! grep -q restart-needed '$E2E_TMP/dflt.log'"
set +e
stop_pid "$PROXY_PID" 10; rc=$?
set -e
check "that proxy exits 0 too (rc=$rc)" test "$rc" = 0

check "the systemd unit reloads with SIGHUP" \
    grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$TOP_SRCDIR/deploy/systemd/ecr-ptc-proxy.service.in"
e2e_done
