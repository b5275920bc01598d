#!/usr/bin/env bash
# Lifecycle rules: the issue's example policy (keep the last 10 images tagged prod-* and
# release-*, expire untagged images pushed more than a day ago) on a repository pulled through
# skopeo over two days of the proxy's clock. `gc --dry-run` names exactly what ECR would
# expire and removes nothing; `gc` removes exactly that; the rest stays and serves; an expired
# image pulls again.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

start_registry reg
seed_images "$REGISTRY_URL" "$E2E_TMP/images.json" --set life >/dev/null
clock_start

port=$(free_port)
cat >"$E2E_TMP/config.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data",
 "rules": [{"prefix": "hub", "upstream": "$REGISTRY_URL", "allow_private_redirects": true,
            "lifecycle_policy": { "rules": [
  { "rulePriority": 1, "description": "Keep last 10 production images",
    "selection": { "tagStatus": "tagged", "tagPrefixList": ["prod-", "release-"],
                   "countType": "imageCountMoreThan", "countNumber": 10 },
    "action": { "type": "expire" } },
  { "rulePriority": 2, "description": "Delete untagged images older than 1 day",
    "selection": { "tagStatus": "untagged", "countType": "sinceImagePushed",
                   "countUnit": "days", "countNumber": 1 },
    "action": { "type": "expire" } } ] } }]}
JSON
start_proxy proxy --config "$E2E_TMP/config.json"
wait_port "$port"
P="127.0.0.1:$port"
cli() { "$PROXY_BIN" "$@" --config "$E2E_TMP/config.json"; }

digest_of() { # digest_of TAG ("" for the untagged ones: prints both)
    python3 -c '
import json, sys
for i in json.load(open(sys.argv[1])):
    if (i["tag"] or "") == sys.argv[2]: print(i["digest"])' "$E2E_TMP/images.json" "$1"
}
stored() { test -f "$E2E_TMP/data/blobs/sha256/${1:7:2}/${1:7}"; }
pull() { # pull REF (":tag" or "@digest")
    rm -rf "$E2E_TMP/pull"
    skopeo copy -q --src-tls-verify=false "docker://$P/hub/test/life$1" "dir:$E2E_TMP/pull" \
        >"$E2E_TMP/skopeo.out" 2>&1
}

U1=$(digest_of "" | sed -n 1p)
U2=$(digest_of "" | sed -n 2p)
# Day 0: the untagged U1 and the prod-only image; then prod-N and release-N an hour apart.
check "pull of untagged U1 by digest" pull "@$U1"
check "pull of prod-only" pull ":prod-only"
for n in $(seq 1 12); do
    clock_advance 3600
    check "pull of prod-$n" pull ":prod-$n"
    check "pull of release-$n" pull ":release-$n"
done
# Two days on: U2, pushed (first cached) now.
clock_advance $((2 * 86400)) "http://$P"
check "pull of untagged U2 by digest" pull "@$U2"
sleep 6 # the pull stamps' batch reaches the index

D1=$(digest_of prod-1) D2=$(digest_of prod-2) D3=$(digest_of prod-3) DO=$(digest_of prod-only)
want=$(printf '%s 1\n%s 1\n%s 2\n' "$D1" "$D2" "$U1" | sort)

check "gc --dry-run --output json" bash -c "cli() { \"\$PROXY_BIN\" \"\$@\" --config '$E2E_TMP/config.json'; }; cli gc --dry-run --output json >'$E2E_TMP/dry.json'"
got=$(python3 -c '
import json, sys
for i in json.load(open(sys.argv[1]))["images"]: print(i["digest"], i["rule_priority"])' "$E2E_TMP/dry.json" | sort)
echo "# dry run: $(tr '\n' ' ' <<<"$got")"
check "dry run: exactly prod-1 and prod-2 (rule 1) and U1 (rule 2), as ECR would" test "$got" = "$want"
check "dry run: the expired images carry their tags" \
    python3 -c '
import json, sys
d = {i["digest"]: sorted(i["tags"]) for i in json.load(open(sys.argv[1]))["images"]}
sys.exit(d[sys.argv[2]] != ["prod-1", "release-1"] or d[sys.argv[3]] != [])' "$E2E_TMP/dry.json" "$D1" "$U1"
check "dry run: bytes to free reported" \
    python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["freed"] <= 0)' "$E2E_TMP/dry.json"
check "dry run removed nothing" bash -c "test -f '$E2E_TMP/data/blobs/sha256/${D1:7:2}/${D1:7}' && test -f '$E2E_TMP/data/blobs/sha256/${U1:7:2}/${U1:7}'"
cli gc --dry-run >"$E2E_TMP/dry.txt"
check "gc --dry-run prints what would go, with bytes" grep -q "would remove hub/test/life@$D1 \[prod-1,release-1\]" "$E2E_TMP/dry.txt"

cli gc --output json >"$E2E_TMP/gc.json"
got=$(python3 -c '
import json, sys
for i in json.load(open(sys.argv[1]))["images"]: print(i["digest"], i["rule_priority"])' "$E2E_TMP/gc.json" | sort)
check "gc expired the same three" test "$got" = "$want"
for d in "$D1" "$D2" "$U1"; do
    check "expired ${d:7:12} is gone from the store" bash -c "! test -f '$E2E_TMP/data/blobs/sha256/${d:7:2}/${d:7}'"
done
for d in "$D3" "$DO" "$U2" "$(digest_of prod-12)"; do
    check "kept ${d:7:12} is still stored" stored "$d"
done
check "a second gc expires nothing more" \
    bash -c "\"\$PROXY_BIN\" gc --output json --config '$E2E_TMP/config.json' | python3 -c 'import json,sys; sys.exit(len(json.load(sys.stdin)[\"images\"]) != 0)'"
check "gc-expired logged with reason lifecycle" grep -q 'gc-expired.*reason.*lifecycle' "$E2E_TMP/proxy.log"
check "kept prod-3 still pulls" pull ":prod-3"
check "expired prod-1 pulls again" pull ":prod-1"
check "  ... with upstream's digest" \
    test "sha256:$(sha256sum <"$E2E_TMP/pull/manifest.json" | cut -d' ' -f1)" = "$D1"
metric() { curl -s "http://$P/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
check "ecr_ptc_gc_images_expired_total{reason=\"lifecycle\"} = 3" \
    test "$(metric 'ecr_ptc_gc_images_expired_total{reason="lifecycle"}')" = 3

stop_pid "$PROXY_PID" 10; rc=$?
check "the proxy stops cleanly (status $rc)" test "$rc" = 0
e2e_done
