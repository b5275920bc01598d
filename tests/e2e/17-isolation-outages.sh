#!/usr/bin/env bash
# One cache, many repositories: a digest cached for one repository is never served under
# another unless upstream confirms it there (not by the manifests route, not through a
# referrer's subject, not in the referrers fallback). And outages that are not refusals: a
# token endpoint that answers 503, or a manifest GET failing after the tag check found a new
# digest, serve the stale tag; an empty upstream body for a non-empty digest never looks
# complete to the client.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

start_registry reg
seed_images "$REGISTRY_URL" "$E2E_TMP/images.json" --set small >/dev/null
# test/private holds an image; test/attacker holds an artifact whose subject is that image
# (distribution 2.8 does not check subjects) and nothing else of it.
read -r PRIV PRIV_LAYER ART < <(python3 - "$REGISTRY_URL" "$TOP_SRCDIR/tests/e2e" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
import seed_images as s
reg = s.Registry(sys.argv[1])
img = s.Image("private-image")
s.push_single(reg, "test/private", ["latest"], img)
empty = b"{}"
reg.push_blob("test/attacker", empty)
cdesc = s.desc(s.OCI_EMPTY, empty)
art = s.jdump({"schemaVersion": 2, "mediaType": s.OCI_MANIFEST,
               "artifactType": "application/vnd.example.claim", "config": cdesc,
               "layers": [cdesc], "subject": img.descriptor()})
reg.push_manifest("test/attacker", "claim", s.OCI_MANIFEST, art)
print(s.sha256(img.manifest), img.layers[0][0]["digest"], s.sha256(art))
PY
)
start_fake_upstream fake "$REGISTRY_URL" --auth token
F_PORT=$FAKE_PORT F_URL=$FAKE_URL

port=$(free_port)
cat >"$E2E_TMP/config.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data",
 "rules": [{"prefix": "hub", "upstream": "$REGISTRY_URL"},
           {"prefix": "tok", "upstream": "$F_URL", "allow_private_redirects": true,
            "refresh_interval": "2s"}]}
JSON
# The refresh intervals below pass on the proxy's own wall clock (clock_advance), not in sleeps.
clock_start
start_proxy proxy --config "$E2E_TMP/config.json"
wait_port "$port"
P="http://127.0.0.1:$port"
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'
code_of() { curl -s -o "$E2E_TMP/body" -w '%{http_code}' -H "$ACCEPT" "$@"; }

# --- isolation -------------------------------------------------------------------------------
check "the private image pulls in its own repository" \
    test "$(code_of "$P/v2/hub/test/private/manifests/latest")" = 200
check "... and its layer" test "$(code_of "$P/v2/hub/test/private/blobs/$PRIV_LAYER")" = 200
code=$(code_of "$P/v2/hub/test/attacker/manifests/$PRIV")
check "its manifest digest under another repository: 404 from upstream, not the cache ($code)" \
    bash -c "[ $code = 404 ] && grep -q MANIFEST_UNKNOWN '$E2E_TMP/body'"
code=$(code_of "$P/v2/hub/test/attacker/manifests/$PRIV_LAYER")
check "a cached blob asked for as a manifest elsewhere: 404 ($code)" test "$code" = 404
code=$(code_of "$P/v2/hub/test/attacker/blobs/$PRIV_LAYER")
check "its layer under another repository: 404 ($code)" test "$code" = 404
check "the artifact naming the private image as subject pulls in its repository" \
    test "$(code_of "$P/v2/hub/test/attacker/manifests/claim")" = 200
code=$(code_of "$P/v2/hub/test/attacker/manifests/$PRIV")
check "a subject is not vouched for by its referrer: still 404 ($code)" test "$code" = 404
code=$(code_of "$P/v2/hub/test/attacker/blobs/$PRIV_LAYER")
check "... nor its layers ($code)" test "$code" = 404
# Referrers while upstream is out (503): what this repository pulled through the proxy, with
# the artifactType and annotations the spec requires; never another repository's artifact.
T="$P/v2/tok/test"
check "through the token-auth rule: the artifact pulls" \
    test "$(code_of "$T/attacker/manifests/claim")" = 200
check "... and the private image" test "$(code_of "$T/private/manifests/latest")" = 200
FAKE_PORT=$F_PORT fake_ctl faults '[{"match":"/referrers/","kind":"status","status":503,"count":-1}]' >/dev/null
curl -s -D "$E2E_TMP/rh" "$T/attacker/referrers/$PRIV" >"$E2E_TMP/ref-attacker"
check "referrers in the artifact's repository list it during an outage" \
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
m = [x for x in d["manifests"] if x["digest"] == sys.argv[2]]
assert len(m) == 1 and m[0]["artifactType"] == "application/vnd.example.claim", d' \
    "$E2E_TMP/ref-attacker" "$ART"
check "... marked stale" grep -qi '^Warning: 299 - "' "$E2E_TMP/rh"
curl -s -D "$E2E_TMP/rh" "$T/attacker/referrers/$PRIV?artifactType=application/vnd.other" >"$E2E_TMP/ref-f"
check "... filtered by artifactType (and saying so)" bash -c "
    grep -q '\"manifests\":\[\]' '$E2E_TMP/ref-f' && grep -qi '^OCI-Filters-Applied: artifactType' '$E2E_TMP/rh'"
curl -s -o "$E2E_TMP/ref-private" -w '%{http_code}' "$T/private/referrers/$PRIV" >"$E2E_TMP/code"
check "referrers in the subject's repository do not list another repository's artifact" \
    bash -c "[ \"\$(cat '$E2E_TMP/code')\" = 200 ] && grep -q '\"manifests\":\[\]' '$E2E_TMP/ref-private'"
FAKE_PORT=$F_PORT fake_ctl faults '[]' >/dev/null
code=$(code_of "$T/attacker/referrers/$PRIV")
check "upstream back, without the API: 404 ($code)" test "$code" = 404
check "the private image still serves from the cache in its own repository by digest" \
    test "$(code_of "$P/v2/hub/test/private/manifests/$PRIV")" = 200

check "a fresh tag again is answered from memory (metrics)" bash -c "
    curl -s -o /dev/null -H '$ACCEPT' '$P/v2/hub/test/private/manifests/latest' &&
    curl -s '$P/metrics' | grep -Eq '^ecr_ptc_memory_hits_total\{map=\"manifests\"\} [1-9]' &&
    curl -s '$P/metrics' | grep -Eq '^ecr_ptc_memory_bytes\{map=\"tags\"\} [1-9]'"

# --- outages that are not refusals ------------------------------------------------------------
tagurl="$P/v2/tok/library/alpinetest/manifests/latest"
old=$(curl -s -o /dev/null -D - -H "$ACCEPT" "$tagurl" | sed -n 's/^Docker-Content-Digest: \(.*\)\r$/\1/Ip')
check "a tag through the token-auth upstream caches ($old)" test -n "$old"
clock_advance 2.2 "$P"
FAKE_PORT=$F_PORT fake_ctl revoke-tokens '' >/dev/null
FAKE_PORT=$F_PORT fake_ctl faults '[{"match":"^GET /token","kind":"status","status":503,"count":-1}]' >/dev/null
curl -s -D "$E2E_TMP/h" -o /dev/null -H "$ACCEPT" "$tagurl"
check "token endpoint 503 on the re-check: still 200 from cache" grep -q '^HTTP/1.1 200' "$E2E_TMP/h"
check "... with a Warning header" grep -qi '^Warning: 299 - "' "$E2E_TMP/h"
check "... and the log names the token endpoint" \
    grep -q 'serve-stale .*upstream_status=503.*token endpoint' "$E2E_TMP/proxy.log"
FAKE_PORT=$F_PORT fake_ctl faults '[]' >/dev/null

# The tag moves; the HEAD sees the new digest; the GET of the new manifest fails.
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
    "docker://127.0.0.1:$REGISTRY_PORT/test/docker-v2:latest" \
    "docker://127.0.0.1:$REGISTRY_PORT/library/alpinetest:latest"
clock_advance 2.2 "$P"
FAKE_PORT=$F_PORT fake_ctl reset-counts '' >/dev/null
FAKE_PORT=$F_PORT fake_ctl faults '[{"match":"^GET /v2/.*/manifests/sha256:","kind":"status","status":503,"count":-1}]' >/dev/null
curl -s -D "$E2E_TMP/h" -o /dev/null -H "$ACCEPT" "$tagurl"
check "new digest upstream but its GET fails: the cached one, 200" grep -q '^HTTP/1.1 200' "$E2E_TMP/h"
check "... the old digest" grep -qi "^Docker-Content-Digest: $old" "$E2E_TMP/h"
check "... with a Warning header" grep -qi '^Warning: 299 - "' "$E2E_TMP/h"
check "... after the HEAD saw the new one ($(FAKE_PORT=$F_PORT fake_count 'HEAD manifest') HEAD)" \
    test "$(FAKE_PORT=$F_PORT fake_count 'HEAD manifest')" -ge 1
FAKE_PORT=$F_PORT fake_ctl faults '[]' >/dev/null
new=$(curl -s -o /dev/null -D - -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "$tagurl" | sed -n 's/^Docker-Content-Digest: \(.*\)\r$/\1/Ip')
check "once upstream recovers the new digest is served ($new)" test -n "$new" -a "$new" != "$old"

# --- an empty body is not a complete blob -----------------------------------------------------
LAYER=$(python3 -c '
import json, sys
print([i for i in json.load(open(sys.argv[1])) if i["repo"] == "library/alpinetest"][0]["layers"][0]["digest"])' "$E2E_TMP/images.json")
FAKE_PORT=$F_PORT fake_ctl faults '[{"match":"^GET /v2/.*/blobs/","kind":"status","status":200,"count":-1,"body":"","headers":{"Content-Type":"application/octet-stream"}}]' >/dev/null
set +e
curl -s -o "$E2E_TMP/empty" -w '%{http_code}' --max-time 20 "$P/v2/tok/library/alpinetest/blobs/$LAYER" >"$E2E_TMP/code"
rc=$?
set -e
check "an empty upstream body for a non-empty digest is an error, not a 200 (curl $rc, $(cat "$E2E_TMP/code"))" \
    bash -c "[ \"\$(cat '$E2E_TMP/code')\" = 502 ]"
check "... and the log says why" grep -q "fill-.*digest=$LAYER" "$E2E_TMP/proxy.log"
check "... and nothing entered the store" \
    bash -c "! test -f '$E2E_TMP/data/blobs/sha256/${LAYER:7:2}/${LAYER:7}'"
FAKE_PORT=$F_PORT fake_ctl faults '[]' >/dev/null
e2e_done
