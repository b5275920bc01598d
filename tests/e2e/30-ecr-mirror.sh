#!/usr/bin/env bash
# The private ECR tier, end to end, against tests/e2e/aws_fake.py (the ECR API with SigV4, ECR's
# registry with Basic tokens, S3 for blob GETs) in front of a real docker-registry:
#  - appliance A pulls every kind of image through the proxy; each is pushed to its namespaced
#    ECR repository with its digests unchanged, the repository created with every
#    create_repository setting, an immutable tag refused and not retried;
#  - appliance B, an empty disk and the upstream down, pulls everything from ECR;
#  - appliance C, an empty disk and the upstream up, pulls everything by digest with zero
#    upstream requests; a digest stored for another repository is confirmed by ECR;
#  - no secret, token, signature or presigned query in any log.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"
source "$TOP_SRCDIR/tests/e2e/lib_aws.sh"

AK=AKIDE2EMIRROR0000001
SK=e2e-mirror-secret-do-not-log-0123456789ab

start_registry upstream
UP_REG=$REGISTRY_URL
seed_images "$UP_REG" "$E2E_TMP/images.json" --set small >/dev/null
start_fake_upstream fake "$UP_REG" --auth token
start_registry ecrstore
ECR_REG=$REGISTRY_URL
start_aws_fake aws "$ECR_REG" --static-key "$AK:$SK"

python3 -c '
import json, sys
for i in json.load(open(sys.argv[1])):
    print(i["repo"], i["tag"], i["digest"], i["media_type"])' "$E2E_TMP/images.json" >"$E2E_TMP/images.txt"

# config NAME PORT UPSTREAM_URL [PUSH]: a proxy configuration with the full ecr block.
config() {
    cat >"$E2E_TMP/$1.json" <<JSON
{"listen": "127.0.0.1:$2", "data_dir": "$E2E_TMP/$1-data",
 "rules": [{"prefix": "hub", "upstream": "$3", "mirror_for": ["docker.io"],
            "library_prefix": true, "default": true, "allow_private_redirects": true},
           {"prefix": "private", "upstream": "$3", "allow_private_redirects": true,
            "ecr": false}],
 "ecr": {"region": "us-east-1", "registry_id": "123456789012", "endpoint": "$AWS_API_URL",
         "repository_prefix": "cache", "allow_private_redirects": true, "push": ${4:-true},
         "create_repository": {
           "image_tag_mutability": "IMMUTABLE_WITH_EXCLUSION",
           "image_tag_mutability_exclusion_filters": ["latest"],
           "scan_on_push": true,
           "encryption": {"type": "KMS", "kms_key": "arn:aws:kms:us-east-1:123456789012:key/e2e"},
           "tags": {"owner": "platform", "cost-center": "e2e"},
           "lifecycle_policy": {"rules": [{"rulePriority": 1, "description": "untagged 1d",
             "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                           "countUnit": "days", "countNumber": 1},
             "action": {"type": "expire"}}]},
           "repository_policy": {"Version": "2012-10-17", "Statement": [{"Sid": "pull",
             "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
             "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]}}}}
JSON
}

# start NAME PORT [LOG]: the proxy with static keys in its environment (the chain's first
# source), logging to LOG.log (default NAME.log).
start() {
    AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_EC2_METADATA_DISABLED=true \
        start_proxy "${3:-$1}" --config "$E2E_TMP/$1.json"
    wait_port "$2"
}

metric() { # metric PORT NAME{LABELS}: the value, or 0
    { curl -s -m 5 "http://127.0.0.1:$1/metrics" || true; } |
        awk -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'
}

wait_metric() { # wait_metric PORT NAME OP VALUE SECONDS
    local i
    for i in $(seq 1 $(($5 * 10))); do
        if awk -v a="$(metric "$1" "$2")" -v b="$4" "BEGIN { exit !(a $3 b) }"; then return 0; fi
        sleep 0.1
    done
    echo "$2 is $(metric "$1" "$2"), want $3 $4 after $5 s" >&2
    return 1
}

metric_is() { # metric_is PORT NAME OP VALUE [LOG]: now; on failure the value, and LOG's warnings
    local v
    v=$(metric "$1" "$2")
    if awk -v a="$v" -v b="$4" "BEGIN { exit !(a $3 b) }"; then return 0; fi
    echo "$2 is $v, want $3 $4" >&2
    if [ -n "${5:-}" ]; then grep -v ' info ' "$5" | tail -20 >&2 || true; fi
    return 1
}

copy() { # copy PORT REF DEST
    skopeo copy -q --all --preserve-digests --src-tls-verify=false "docker://127.0.0.1:$1/hub/$2" \
        "dir:$3" >"$E2E_TMP/skopeo.out" 2>&1 || { cat "$E2E_TMP/skopeo.out" >&2; return 1; }
}
layout_digest() { echo "sha256:$(sha256sum <"$1/manifest.json" | cut -d' ' -f1)"; }

# ---- appliance A: pulls, and the pushes behind them ------------------------------------------
PA=$(free_port)
config a "$PA" "$FAKE_URL"
start a "$PA"
check "A: the tier gets a data-plane token" wait_metric "$PA" ecr_ptc_ecr_ready == 1 10

while read -r repo tag digest mt; do
    check "A: cold pull of $repo:$tag" copy "$PA" "$repo:$tag" "$E2E_TMP/a-${repo//\//_}-$tag"
done <"$E2E_TMP/images.txt"
# The artifact's subject, pulled in the artifact's repository: the alpine image's blobs are then
# in ECR's mirror of test/artifact too (C's cross-repository confirmation below).
read -r alpine_digest alpine_cfg < <(python3 -c '
import json, sys
i = [x for x in json.load(open(sys.argv[1])) if x["repo"] == "library/alpinetest"][0]
print(i["digest"], i["config"]["digest"])' "$E2E_TMP/images.json")
check "A: pull of the artifact's subject by digest" copy "$PA" "test/artifact@$alpine_digest" "$E2E_TMP/a-subject"
# A name OCI allows and ECR does not ("__"), and a rule left out of the tier: pulled, not
# mirrored.
skopeo copy -q --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
    "docker://${UP_REG#http://}/test/docker-v2:latest" "docker://${UP_REG#http://}/test/odd__name:latest"
check "A: pull of test/odd__name (no valid ECR name)" copy "$PA" test/odd__name:latest "$E2E_TMP/a-odd"
check "A: the name ECR cannot hold is counted" metric_is "$PA" ecr_ptc_ecr_unmirrorable_total '==' 1 "$E2E_TMP/a.log"
check "A: and logged" grep -q 'ecr-name-unmirrorable.*test/odd__name' "$E2E_TMP/a.log"
skopeo copy -q --all --preserve-digests --src-tls-verify=false "docker://127.0.0.1:$PA/private/test/multi:latest" \
    "dir:$E2E_TMP/a-private" >/dev/null 2>&1
check "A: pull through the rule with \"ecr\": false" test -s "$E2E_TMP/a-private/manifest.json"
check "A: the push queue drains" wait_metric "$PA" ecr_ptc_ecr_queue_depth == 0 60
check "A: blobs were pushed" wait_metric "$PA" 'ecr_ptc_ecr_pushes_total{kind="blob",result="pushed"}' '>' 0 1
check "A: no push failed" metric_is "$PA" 'ecr_ptc_ecr_push_jobs_total{result="retried"}' '==' 0 "$E2E_TMP/a.log"

# Every image is in ECR under cache/hub/<upstream name>, by tag, with upstream's digest, and
# whole: skopeo copies it straight out of the registry behind the fake, verifying every blob.
while read -r repo tag digest mt; do
    got=$(curl -s -H "Accept: $mt" "$ECR_REG/v2/cache/hub/$repo/manifests/$tag" | sha256sum | cut -d' ' -f1)
    check "ECR holds cache/hub/$repo:$tag as $digest" test "sha256:$got" = "$digest"
    check "ECR's cache/hub/$repo:$tag is complete (skopeo copy from it)" \
        skopeo copy -q --all --preserve-digests --src-tls-verify=false \
        "docker://${ECR_REG#http://}/cache/hub/$repo:$tag" "dir:$E2E_TMP/ecr-${repo//\//_}-$tag"
done <"$E2E_TMP/images.txt"

# The repositories were created with every setting, and their policies set.
aws_ctl repos >"$E2E_TMP/repos.json"
check "each repository was created with every create_repository setting" python3 - "$E2E_TMP/repos.json" "$E2E_TMP/a.json" <<'PY'
import json, sys
repos = json.load(open(sys.argv[1]))
if isinstance(repos, dict):
    repos = repos.get("repositories", list(repos.values()))
want = json.load(open(sys.argv[2]))["ecr"]["create_repository"]
names = sorted(r.get("repositoryName") or r.get("name") for r in repos)
# Only hub's images: not test/odd__name (ECR cannot hold it), nothing of the rule "private".
assert names == sorted({"cache/hub/" + l.split()[0] for l in open(sys.argv[1].replace("repos.json", "images.txt"))}), names
for r in repos:
    c = r.get("create") or r.get("request") or r
    assert c["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION", c
    assert c["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "latest"}], c
    assert c["imageScanningConfiguration"] == {"scanOnPush": True}, c
    assert c["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": want["encryption"]["kms_key"]}, c
    assert sorted((t["Key"], t["Value"]) for t in c["tags"]) == sorted(want["tags"].items()), c
    assert c.get("registryId") == "123456789012", c
    lp = r.get("lifecyclePolicyText") or r.get("lifecycle_policy")
    assert json.loads(lp) == want["lifecycle_policy"], lp
    rp = r.get("policyText") or r.get("repository_policy")
    assert json.loads(rp) == want["repository_policy"], rp
PY
check "S3 never saw an Authorization header" test "$(aws_count s3_rejected_auth)" = 0
check "every API call was signed correctly" test "$(aws_ctl counts | python3 -c '
import json, sys; print(sum(json.load(sys.stdin).get("api_rejected", {}).values()))')" = 0
check "no chunked upload was tried (one monolithic PUT per blob)" test "$(aws_count data "PATCH upload")" = 0
# Two tags of one image (alpinetest:latest and :3), queued together: one job per repository at
# a time, so their blobs are never uploaded side by side.
open_max=$(aws_ctl counts | python3 -c '
import json, sys; print(max(json.load(sys.stdin)["uploads_open_max"].values() or [0]))')
check "one push at a time per repository (most uploads open at once in one: $open_max)" \
    test "$open_max" = 1

# An immutable tag that moves upstream is refused by ECR: counted, not retried.
skopeo copy -q --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
    "docker://${UP_REG#http://}/test/docker-v2:latest" "docker://${UP_REG#http://}/library/alpinetest:3"
check "the proxy stops cleanly (exit 0: no sanitizer report)" stop_pid "$PROXY_PID"
python3 - "$E2E_TMP/a.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["refresh_interval"] = "1s"
json.dump(c, open(sys.argv[1], "w"))
PY
start a "$PA" a-restart
sleep 1.1
check "A: alpinetest:3 pulled again after it moved upstream" copy "$PA" alpinetest:3 "$E2E_TMP/a-moved"
check "A: the moved immutable tag is refused by ECR" wait_metric "$PA" 'ecr_ptc_ecr_pushes_total{kind="tag",result="refused"}' == 1 30
check "A: and not retried (the queue drains)" wait_metric "$PA" ecr_ptc_ecr_queue_depth == 0 30
moved=$(layout_digest "$E2E_TMP/a-moved")
got=$(curl -s -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "$ECR_REG/v2/cache/hub/library/alpinetest/manifests/3" | sha256sum | cut -d' ' -f1)
check "ECR's immutable alpinetest:3 still holds the first digest" test "sha256:$got" != "$moved"
check "the proxy stops cleanly (exit 0: no sanitizer report)" stop_pid "$PROXY_PID"

# ---- appliance A2: empty disk, push on, upstream up: what ECR has is not pushed again --------
PA2=$(free_port)
config a2 "$PA2" "$FAKE_URL"
start a2 "$PA2"
check "A2: the tier gets a data-plane token" wait_metric "$PA2" ecr_ptc_ecr_ready == 1 10
check "A2: pull of alpinetest:latest (OCI)" copy "$PA2" library/alpinetest:latest "$E2E_TMP/a2-alpine"
check "A2: pull of docker-v2:latest (Docker schema 2)" copy "$PA2" test/docker-v2:latest "$E2E_TMP/a2-d2"
check "A2: the queue drains" wait_metric "$PA2" ecr_ptc_ecr_queue_depth == 0 30
check "A2: the tags were found in ECR already" metric_is "$PA2" 'ecr_ptc_ecr_pushes_total{kind="tag",result="present"}' '==' 2 "$E2E_TMP/a2.log"
check "A2: no manifest was PUT again" metric_is "$PA2" 'ecr_ptc_ecr_pushes_total{kind="manifest",result="pushed"}' '==' 0 "$E2E_TMP/a2.log"
check "A2: no blob was uploaded again" metric_is "$PA2" 'ecr_ptc_ecr_pushes_total{kind="blob",result="pushed"}' '==' 0 "$E2E_TMP/a2.log"
check "A2: no push was retried" metric_is "$PA2" 'ecr_ptc_ecr_push_jobs_total{result="retried"}' '==' 0 "$E2E_TMP/a2.log"
check "the proxy stops cleanly (exit 0: no sanitizer report)" stop_pid "$PROXY_PID"

# ---- appliance B: empty disk, upstream down: everything from ECR -----------------------------
stop_pid "$FAKE_PID"
PB=$(free_port)
config b "$PB" "$FAKE_URL"
start b "$PB"
check "B: the tier gets a data-plane token" wait_metric "$PB" ecr_ptc_ecr_ready == 1 10
cp "$E2E_TMP/images.txt" "$E2E_TMP/images-b.txt"
while read -r repo tag digest mt; do
    dest="$E2E_TMP/b-${repo//\//_}-$tag"
    check "B: pull of $repo:$tag with the upstream down" copy "$PB" "$repo:$tag" "$dest"
    check "B: $repo:$tag keeps its digest $digest" test "$(layout_digest "$dest")" = "$digest"
done <"$E2E_TMP/images-b.txt"
curl -s -D "$E2E_TMP/bh" -o /dev/null -H 'Accept: application/vnd.oci.image.index.v1+json' \
    "http://127.0.0.1:$PB/v2/hub/test/multi/manifests/latest"
check "B: a tag from ECR carries the stale Warning" grep -qi '^Warning: 299' "$E2E_TMP/bh"
check "B: no content came from the upstream" metric_is "$PB" 'ecr_ptc_content_bytes_total{from="upstream"}' '==' 0 "$E2E_TMP/b.log"
check "B: content came from ECR" metric_is "$PB" 'ecr_ptc_content_bytes_total{from="ecr"}' '>' 0 "$E2E_TMP/b.log"
check "B: tags were served from ECR" metric_is "$PB" ecr_ptc_ecr_stale_served_total '>' 0 "$E2E_TMP/b.log"
check "B: nothing read from ECR is pushed back" metric_is "$PB" 'ecr_ptc_ecr_pushes_total{kind="blob",result="pushed"}' '==' 0 "$E2E_TMP/b.log"
check "B: blob GETs went to S3" test "$(aws_count s3)" -gt 0
check "B: S3 never saw an Authorization header" test "$(aws_count s3_rejected_auth)" = 0
check "the proxy stops cleanly (exit 0: no sanitizer report)" stop_pid "$PROXY_PID"

# ---- appliance C: empty disk, upstream up: digests never go upstream --------------------------
start_fake_upstream fake2 "$UP_REG" --auth token
PC=$(free_port)
config c "$PC" "$FAKE_URL" false
start c "$PC"
check "C: the tier gets a data-plane token" wait_metric "$PC" ecr_ptc_ecr_ready == 1 10
while read -r repo tag digest mt; do
    dest="$E2E_TMP/c-${repo//\//_}-$tag"
    check "C: pull of $repo@$digest" copy "$PC" "$repo@$digest" "$dest"
    check "C: $repo@$digest is byte-exact" test "$(layout_digest "$dest")" = "$digest"
done <"$E2E_TMP/images-b.txt"
for kind in "GET blob" "HEAD blob" "GET manifest" "HEAD manifest" token; do
    check "C: zero upstream '$kind' requests for pulls by digest" test "$(fake_count "$kind")" = 0
done
# alpinetest's config blob, stored here for library/alpinetest, asked for under test/artifact
# (A pulled the same image there as the artifact's subject): ECR's mirror of test/artifact
# confirms it.
cfgblob=$alpine_cfg
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PC/v2/hub/test/artifact/blobs/$cfgblob")
check "C: a blob stored for another repository is served once ECR confirms it ($code)" test "$code" = 200
check "C: ECR answered the confirmation" metric_is "$PC" ecr_ptc_ecr_confirmations_total '>=' 1 "$E2E_TMP/c.log"
check "C: upstream was not asked to confirm" test "$(fake_count "HEAD blob")" = 0
check "C: push off: nothing queued" metric_is "$PC" ecr_ptc_ecr_queue_depth '==' 0 "$E2E_TMP/c.log"
check "the proxy stops cleanly (exit 0: no sanitizer report)" stop_pid "$PROXY_PID"

# ---- no secret anywhere ---------------------------------------------------------------------
for log in "$E2E_TMP"/a.log "$E2E_TMP"/a-restart.log "$E2E_TMP"/a2.log "$E2E_TMP"/b.log "$E2E_TMP"/c.log "$E2E_TMP"/aws.log; do
    check "$(basename "$log"): no secret key, signature, token or presigned query" bash -c "
        ! grep -E -q -- '$SK|X-Amz-Signature|X-Amz-Credential|Signature=|authorizationToken|QVdTO|Basic [A-Za-z0-9+/=]{8,}|Authorization:' '$log'"
done

e2e_done
