#!/usr/bin/env bash
# What a tag means never depends on the first client's Accept: tags are resolved upstream with
# every manifest type, and each client is answered by its own Accept (an index to those that
# take one, the linux/amd64 child to those that do not). A manifest's descriptor list is no
# proof that its repository holds what it lists: a blob is served under a repository only when
# it was fetched from upstream for it or upstream confirms it (HEAD). Made-up repository names
# leave no rows in the index; a manifest read through /blobs/ leaks no descriptor.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

start_registry reg
seed_images "$REGISTRY_URL" "$E2E_TMP/images.json" --set small >/dev/null
# private/a: an image only credentials may read. lax/evil: a manifest listing its blobs while
# lax/evil's own blob endpoint answers 404 (pushed, then unlinked: the spec allows dangling
# references). lax/twin: really holds the same blobs.
python3 - "$REGISTRY_URL" "$TOP_SRCDIR/tests/e2e" >"$E2E_TMP/priv.txt" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
import seed_images as s
reg = s.Registry(sys.argv[1])
img = s.Image("private-a")
s.push_single(reg, "private/a", ["latest"], img)
s.push_single(reg, "lax/evil", ["latest"], img)
s.push_single(reg, "lax/twin", ["latest"], img)
for d in img.blob_list():
    reg._req("DELETE", "/v2/lax/evil/blobs/%s" % d["digest"], ok=(202,))
print(s.sha256(img.manifest), " ".join(d["digest"] for d in img.blob_list()))
PY
read -r PRIV_MAN PRIV_BLOBS <"$E2E_TMP/priv.txt"
read -r BLOB_A _ <<<"$PRIV_BLOBS"
check "upstream itself: lax/evil's blob endpoint does not have them" test \
    "$(curl -s -o /dev/null -w '%{http_code}' "$REGISTRY_URL/v2/lax/evil/blobs/$BLOB_A")" = 404

start_fake_upstream cred "$REGISTRY_URL" --auth basic --username puller --password s3cret
CRED_PORT=$FAKE_PORT CRED_URL=$FAKE_URL
start_fake_upstream anon "$REGISTRY_URL" --auth none
ANON_PORT=$FAKE_PORT ANON_URL=$FAKE_URL
count() { FAKE_PORT=$1 fake_count "$2"; }
reset() { FAKE_PORT=$1 fake_ctl reset-counts '' >/dev/null; }

port=$(free_port)
cat >"$E2E_TMP/config.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data",
 "rules": [{"prefix": "cred", "upstream": "$CRED_URL",
            "credentials": {"username": "puller", "password": "s3cret"}},
           {"prefix": "anon", "upstream": "$ANON_URL"}]}
JSON
start_proxy proxy --config "$E2E_TMP/config.json"
wait_port "$port"
P="http://127.0.0.1:$port"
DB="$E2E_TMP/data/index.db"

info() { # info REPO FIELD: a field of images.json's record for REPO:latest
    python3 -c '
import json, sys
i = [x for x in json.load(open(sys.argv[1])) if x["repo"] == sys.argv[2]][0]
f = sys.argv[3]
if f.startswith("child:"):
    arch = f.split(":")[1]
    print([c["digest"] for c in i["children"] if c["platform"]["architecture"] == arch][0])
else:
    print(i[f])' "$E2E_TMP/images.json" "$1" "$2"
}
V2='application/vnd.docker.distribution.manifest.v2+json'
LIST='application/vnd.docker.distribution.manifest.list.v2+json'
OCI='application/vnd.oci.image.manifest.v1+json'
OCI_INDEX='application/vnd.oci.image.index.v1+json'
get() { # get URL ACCEPT...: GET with one Accept header per argument; prints "digest type"
    local url=$1 a args=()
    shift
    for a in "$@"; do args+=(-H "Accept: $a"); done
    curl -s -o "$E2E_TMP/m" -D "$E2E_TMP/mh" "${args[@]}" "$url"
    printf '%s %s\n' "$(sed -n 's/^Docker-Content-Digest: \(.*\)\r$/\1/Ip' "$E2E_TMP/mh")" \
        "$(sed -n 's/^Content-Type: \(.*\)\r$/\1/Ip' "$E2E_TMP/mh")"
}

# --- a tag's meaning, client by client -----------------------------------------------------------
LIST_D=$(info test/multi-docker digest)
AMD=$(info test/multi-docker child:amd64)
ARM=$(info test/multi-docker child:arm64)
U="$P/v2/anon/test/multi-docker/manifests/latest"
reset "$ANON_PORT"
got=$(get "$U" "$V2")
check "a client taking only Docker v2 gets the linux/amd64 child ($got)" test "$got" = "$AMD $V2"
check "... whose bytes hash to it" test "sha256:$(sha256sum <"$E2E_TMP/m" | cut -d' ' -f1)" = "$AMD"
got=$(get "$U" "$LIST" "$V2")
check "then a list-capable client gets the list, not the first client's child ($got)" \
    test "$got" = "$LIST_D $LIST"
got=$(get "$U")
check "a client naming no manifest type gets what the tag is ($got)" test "$got" = "$LIST_D $LIST"
got=$(get "$U" '*/*')
check "... as does one sending only */* ($got)" test "$got" = "$LIST_D $LIST"
got=$(get "$U" "$V2;q=0.9")
check "Accept parameters are ignored ($got)" test "$got" = "$AMD $V2"
curl -s -I -o "$E2E_TMP/mh" -H "Accept: $V2" "$U"
check "HEAD answers by the client's Accept too" grep -qi "^Docker-Content-Digest: $AMD" "$E2E_TMP/mh"
check "one tag check upstream for all of them ($(count "$ANON_PORT" 'HEAD manifest') HEAD)" \
    test "$(count "$ANON_PORT" 'HEAD manifest')" = 1
check "skopeo --all keeps the list's digest" \
    skopeo copy -q --all --preserve-digests --src-tls-verify=false \
    "docker://127.0.0.1:$port/anon/test/multi-docker:latest" "dir:$E2E_TMP/all"
check "... ($(sha256sum <"$E2E_TMP/all/manifest.json" | cut -c1-12))" \
    test "sha256:$(sha256sum <"$E2E_TMP/all/manifest.json" | cut -d' ' -f1)" = "$LIST_D"
check "an arm64 node pulls its own child" \
    skopeo --override-arch arm64 --override-variant v8 copy -q --preserve-digests \
    --src-tls-verify=false "docker://127.0.0.1:$port/anon/test/multi-docker:latest" "dir:$E2E_TMP/arm"
check "... ($(sha256sum <"$E2E_TMP/arm/manifest.json" | cut -c1-12))" \
    test "sha256:$(sha256sum <"$E2E_TMP/arm/manifest.json" | cut -d' ' -f1)" = "$ARM"

# The reverse order, on an OCI index: the first client takes an index; a later one cannot.
IDX=$(info test/multi digest)
OAMD=$(info test/multi child:amd64)
U="$P/v2/anon/test/multi/manifests/latest"
got=$(get "$U" "$OCI_INDEX" "$OCI")
check "an index-capable client first: the index ($got)" test "$got" = "$IDX $OCI_INDEX"
got=$(get "$U" "$OCI")
check "a client that cannot take an index never gets one: the amd64 child ($got)" \
    test "$got" = "$OAMD $OCI"
got=$(get "$U" "$LIST" "$V2")
check "a Docker-list client gets the child of an OCI index too ($got)" test "$got" = "$OAMD $OCI"
check "skopeo with the default platform pulls the amd64 child of the index" \
    skopeo copy -q --preserve-digests --src-tls-verify=false \
    "docker://127.0.0.1:$port/anon/test/multi:latest" "dir:$E2E_TMP/amd"
check "... ($(sha256sum <"$E2E_TMP/amd/manifest.json" | cut -c1-12))" \
    test "sha256:$(sha256sum <"$E2E_TMP/amd/manifest.json" | cut -d' ' -f1)" = "$OAMD"

# ecr_ptc_tag_checks_total counts HEADs sent, not the requests that waited on one: ten
# concurrent pulls of a tag never seen, while its (slowed) HEAD is in flight, make one check.
metric() { curl -s "$P/metrics" | sed -n "s/^$1 //p"; }
reset "$ANON_PORT"
FAKE_PORT=$ANON_PORT fake_ctl faults '[{"match":"^HEAD /v2/test/docker-v2/manifests/latest","kind":"slow","header_delay_ms":1500,"count":1}]' >/dev/null
before=$(metric ecr_ptc_tag_checks_total)
cpids=()
for i in $(seq 1 10); do
    curl -s -o /dev/null -H "Accept: $V2" "$P/v2/anon/test/docker-v2/manifests/latest" & cpids+=($!)
done
for p in "${cpids[@]}"; do wait "$p"; done
heads=$(count "$ANON_PORT" 'HEAD manifest')
after=$(metric ecr_ptc_tag_checks_total)
check "ten concurrent pulls of a new tag: one HEAD upstream ($heads)" test "$heads" = 1
check "... and tag_checks_total moved by one ($before -> $after)" test "$((after - before))" = 1
FAKE_PORT=$ANON_PORT fake_ctl faults '[]' >/dev/null

# --- a descriptor list vouches for nothing -------------------------------------------------------
U="$P/v2/cred/private/a"
check "the private image pulls with credentials" \
    test "$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $OCI" "$U/manifests/latest")" = 200
for b in $PRIV_BLOBS; do
    check "... blob ${b:7:12}" test "$(curl -s -o /dev/null -w '%{http_code}' "$U/blobs/$b")" = 200
done
check "lax/evil's manifest (listing the private blobs) pulls anonymously" \
    test "$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $OCI" \
        "$P/v2/anon/lax/evil/manifests/latest")" = 200
reset "$ANON_PORT"
code=$(curl -s -o "$E2E_TMP/b" -w '%{http_code}' "$P/v2/anon/lax/evil/blobs/$BLOB_A")
check "its blob is not served from the cache on the manifest's word: 404 ($code)" \
    bash -c "[ $code = 404 ] && grep -q BLOB_UNKNOWN '$E2E_TMP/b'"
check "... upstream was asked, with one HEAD ($(count "$ANON_PORT" 'HEAD blob'))" \
    test "$(count "$ANON_PORT" 'HEAD blob')" = 1
check "... and no GET" test "$(count "$ANON_PORT" 'GET blob')" = 0
code=$(curl -s -o /dev/null -w '%{http_code}' "$P/v2/anon/lax/evil/blobs/$BLOB_A")
check "asked again: still 404 ($code)" test "$code" = 404
check "not on the word of the credentialed rule either (same repo there: $(curl -s -o /dev/null \
    -w '%{http_code}' -H "Accept: $OCI" "$P/v2/cred/lax/evil/manifests/latest"))" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "$P/v2/cred/lax/evil/blobs/$BLOB_A")" = 404
check "a HEAD of it is 404 too" \
    test "$(curl -s -I -o /dev/null -w '%{http_code}' "$P/v2/anon/lax/evil/blobs/$BLOB_A")" = 404

# A repository that really holds the blob: confirmed once, then served from the store.
curl -s -o /dev/null -H "Accept: $OCI" "$P/v2/anon/lax/twin/manifests/latest"
reset "$ANON_PORT"
curl -s -o "$E2E_TMP/twin" "$P/v2/anon/lax/twin/blobs/$BLOB_A"
check "a repository upstream confirms gets the stored blob" \
    test "sha256:$(sha256sum <"$E2E_TMP/twin" | cut -d' ' -f1)" = "$BLOB_A"
check "... after one HEAD ($(count "$ANON_PORT" 'HEAD blob')) and no GET ($(count "$ANON_PORT" 'GET blob'))" \
    test "$(count "$ANON_PORT" 'HEAD blob'):$(count "$ANON_PORT" 'GET blob')" = "1:0"
curl -s -o /dev/null "$P/v2/anon/lax/twin/blobs/$BLOB_A"
check "... and the next time with none" test "$(count "$ANON_PORT" 'HEAD blob')" = 1
check "metrics count the confirmations" \
    bash -c "curl -s '$P/metrics' | grep -Eq '^ecr_ptc_upstream_confirmations_total [1-9]'"

# What the rule costs on ordinary pulls: cold and warm, the extra upstream HEADs.
reset "$ANON_PORT"
skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/anon/test/docker-v2:latest" \
    "dir:$E2E_TMP/cold" && cold=$(count "$ANON_PORT" 'HEAD blob')
reset "$ANON_PORT"
skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/anon/test/docker-v2:latest" \
    "dir:$E2E_TMP/warm" && warm=$(count "$ANON_PORT" 'HEAD blob')
check "extra upstream HEADs: cold pull $cold, warm pull $warm" test "$cold:$warm" = "0:0"

# --- the index keeps only what upstream confirmed -------------------------------------------------
for i in $(seq 1 10); do
    curl -s -o /dev/null "$P/v2/anon/nosuch/probe$i/manifests/latest"
    curl -s -o /dev/null "$P/v2/anon/nosuch/probe$i/blobs/$BLOB_A"
    curl -s -o /dev/null "$P/v2/anon/nosuch/probe$i/tags/list"
done
check "made-up repositories leave no rows ($(sqlite3 "$DB" "SELECT count(*) FROM repositories WHERE name LIKE 'nosuch/%'"))" \
    test "$(sqlite3 "$DB" "SELECT count(*) FROM repositories WHERE name LIKE 'nosuch/%'")" = 0
check "... while a confirmed one has its row" \
    test "$(sqlite3 "$DB" "SELECT count(*) FROM repositories WHERE name = 'lax/twin'")" = 1

# --- a manifest read through /blobs/ -------------------------------------------------------------
# Each stored manifest read through /blobs/ once opened a descriptor it never closed, and
# entered the manifest in the blobs table.
MANS="$PRIV_MAN@lax/twin $LIST_D@test/multi-docker $AMD@test/multi-docker $ARM@test/multi-docker"
MANS="$MANS $IDX@test/multi $OAMD@test/multi"
fds() { ls "/proc/$PROXY_PID/fd" | wc -l; }
before=$(fds)
for i in 1 2 3; do
    for m in $MANS; do curl -s -o /dev/null "$P/v2/anon/${m#*@}/blobs/${m%@*}"; done
done
after=$(fds)
check "stored manifests read through /blobs/ leak no descriptor ($before -> $after fds)" \
    test "$after" -le "$before"
check "... and do not enter the blobs table" \
    test "$(sqlite3 "$DB" "SELECT count(*) FROM blobs JOIN manifests USING (digest)")" = 0
e2e_done
