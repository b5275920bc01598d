#!/usr/bin/env bash
# The ECR tier when things go wrong, against tests/e2e/aws_fake.py:
#  - credentials from IMDSv2 (then container credentials, then web identity) and data-plane
#    tokens that expire every few seconds: renewed ahead of time, pushes never refused;
#  - ECR down while clients pull: the pulls go on, the pushes wait in the queue, survive a
#    kill -9, and complete once ECR is back;
#  - ThrottlingException on the API is retried;
#  - no secret, token, signature or presigned query in any log.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"
source "$TOP_SRCDIR/tests/e2e/lib_aws.sh"

start_registry upstream
UP_REG=$REGISTRY_URL
seed_images "$UP_REG" "$E2E_TMP/images.json" --set small >/dev/null
start_fake_upstream fake "$UP_REG" --auth none
start_registry ecrstore
ECR_REG=$REGISTRY_URL
CONTAINER_TOKEN=e2e-container-token-do-not-log
WEB_TOKEN=e2e-web-identity-token-do-not-log
start_aws_fake aws "$ECR_REG" --creds-lifetime 12 --token-lifetime 10 --expired-token-status 403 \
    --container-auth "$CONTAINER_TOKEN" --web-identity-token "$WEB_TOKEN"

P=$(free_port)
cat >"$E2E_TMP/p.json" <<JSON
{"listen": "127.0.0.1:$P", "data_dir": "$E2E_TMP/data",
 "rules": [{"prefix": "hub", "upstream": "$FAKE_URL", "library_prefix": true, "default": true,
            "allow_private_redirects": true},
           {"prefix": "mov", "upstream": "$FAKE_URL", "allow_private_redirects": true,
            "refresh_interval": "1s"}],
 "ecr": {"endpoint": "$AWS_API_URL", "allow_private_redirects": true}}
JSON

metric() {
    { curl -s -m 5 "http://127.0.0.1:$P/metrics" || true; } |
        awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'
}
wait_metric() { # NAME OP VALUE SECONDS
    local i
    for i in $(seq 1 $(($4 * 10))); do
        if awk -v a="$(metric "$1")" -v b="$3" "BEGIN { exit !(a $2 b) }"; then return 0; fi
        sleep 0.1
    done
    echo "$1 is $(metric "$1"), want $2 $3 after $4 s" >&2
    return 1
}
pull() { # pull REF [PREFIX]
    skopeo copy -q --all --preserve-digests --src-tls-verify=false "docker://127.0.0.1:$P/${2:-hub}/$1" \
        "dir:$E2E_TMP/pull-$RANDOM" >"$E2E_TMP/skopeo.out" 2>&1 || { cat "$E2E_TMP/skopeo.out" >&2; return 1; }
}
in_ecr() { # in_ecr REPO TAG DIGEST [PREFIX]: ECR's registry has PREFIX/REPO:TAG as DIGEST
    local got
    got=$(curl -s -H 'Accept: application/vnd.oci.image.index.v1+json' \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
        "$ECR_REG/v2/${4:-hub}/$1/manifests/$2" | sha256sum | cut -d' ' -f1)
    [ "sha256:$got" = "$3" ]
}
digest_of() { python3 -c '
import json, sys
print([x for x in json.load(open(sys.argv[1])) if x["repo"] == sys.argv[2]][0]["digest"])' "$E2E_TMP/images.json" "$1"; }

# The proxy's environment: the chain must find IMDSv2 on loopback (region too).
imds_env=(AWS_EC2_METADATA_SERVICE_ENDPOINT="$AWS_IMDS_URL")

# start_with VAR=VALUE...: the proxy with these AWS variables and no others of the chain's.
CONFIG=$E2E_TMP/p.json
start_with() {
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
        -u AWS_REGION -u AWS_DEFAULT_REGION -u AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
        -u AWS_CONTAINER_CREDENTIALS_FULL_URI -u AWS_WEB_IDENTITY_TOKEN_FILE -u AWS_ROLE_ARN \
        HOME="$E2E_TMP" "$@" "$PROXY_BIN" serve --config "$CONFIG" >>"$E2E_TMP/p.log" 2>&1 &
    PROXY_PID=$!
    E2E_PIDS+=("$PROXY_PID")
    wait_port "$P"
}

# ---- IMDSv2 credentials and tokens expiring mid-run --------------------------------------
start_with "${imds_env[@]}"
check "IMDSv2: the region and credentials are found, a token is held" wait_metric ecr_ptc_ecr_ready == 1 15
check "IMDSv2: a session token was asked for with PUT" test "$(aws_count imds_v1_refused)" = 0
check "pull of alpinetest:latest" pull library/alpinetest:latest
check "alpinetest is pushed" wait_metric ecr_ptc_ecr_queue_depth == 0 30
check "ECR has hub/library/alpinetest:latest" in_ecr library/alpinetest latest "$(digest_of library/alpinetest)"
# Credentials live 12 s and tokens 10 s: past both, pushes go on with renewed ones.
sleep 14
check "pull of docker-v2 after credentials and token expired" pull test/docker-v2:latest
check "docker-v2 is pushed with renewed credentials" wait_metric ecr_ptc_ecr_queue_depth == 0 30
check "ECR has hub/test/docker-v2:latest" in_ecr test/docker-v2 latest "$(digest_of test/docker-v2)"
check "credentials were renewed" test "$(metric ecr_ptc_aws_credential_refreshes_total)" -ge 2
check "tokens were renewed" test "$(metric ecr_ptc_ecr_token_refreshes_total)" -ge 2
check "no call was refused for expired credentials" test "$(aws_count api_rejected ExpiredTokenException)" = 0
check "no push was retried" test "$(metric 'ecr_ptc_ecr_push_jobs_total{result="retried"}')" = 0

# ECR expires every token it issued (as after a key rotation): the next push is refused with
# ECR's 403, the token is renewed at once, and the retry goes through. First the proxy gets a
# long-lived token (its next renewal), so that no scheduled renewal races the refusal.
issued=$(aws_count tokens_issued)
aws_ctl token-lifetime '{"seconds": 300}' >/dev/null
for _ in $(seq 1 150); do
    [ "$(aws_count tokens_issued)" -gt "$issued" ] && break
    sleep 0.1
done
check "the proxy renewed its token (now one of 300 s)" test "$(aws_count tokens_issued)" -gt "$issued"
aws_ctl token-lifetime '{"seconds": 10}' >/dev/null
refreshes=$(metric ecr_ptc_ecr_token_refreshes_total)
aws_ctl expire-tokens '' >/dev/null
check "pull of alpinetest:3 after ECR expired the token" pull library/alpinetest:3
check "alpinetest:3 is pushed after a renewal" wait_metric ecr_ptc_ecr_queue_depth == 0 30
check "ECR has hub/library/alpinetest:3" in_ecr library/alpinetest 3 "$(digest_of library/alpinetest)"
check "ECR did refuse an expired token" test "$(aws_count data_expired)" -ge 1
check "the refusal renewed the token at once (ecr-unauthorized)" grep -q 'ecr-unauthorized' "$E2E_TMP/p.log"
check "and a new token came" test "$(metric ecr_ptc_ecr_token_refreshes_total)" -gt "$refreshes"

# ---- ECR down while clients pull; kill -9; back ---------------------------------------------
aws_ctl faults '[{"listener":"api","match":".","kind":"down","count":-1},
                 {"listener":"data","match":".","kind":"down","count":-1}]' >/dev/null
check "ECR down: multi pulls fine" pull test/multi:latest
check "ECR down: multi-docker pulls fine" pull test/multi-docker:latest
check "ECR down: the pushes wait in the queue" wait_metric ecr_ptc_ecr_queue_depth '>=' 2 10
check "ECR down: a push attempt failed and was put back" wait_metric 'ecr_ptc_ecr_push_jobs_total{result="retried"}' '>=' 1 15
# A tag that moves while its first push waits: the older row must not move ECR's tag back.
upcopy() { skopeo copy -q --all --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
    "docker://${UP_REG#http://}/$1" "docker://${UP_REG#http://}/$2"; }
upcopy test/docker-v2:latest test/moving:latest
check "ECR down: pull of mov/test/moving:latest" pull test/moving:latest mov
upcopy library/alpinetest:latest test/moving:latest
sleep 1.2
check "ECR down: pull of mov/test/moving:latest after it moved upstream" pull test/moving:latest mov
check "ECR down: both of its pushes wait" wait_metric ecr_ptc_ecr_queue_depth '>=' 4 10
# ECR answers again, but every blob upload hangs: kill -9 with a push in flight (its row taken).
applied=$(aws_count faults_applied data)
aws_ctl faults '[{"listener":"data","match":"PUT /v2/.*/blobs/uploads/","kind":"hang","seconds":30,"count":-1}]' >/dev/null
for _ in $(seq 1 400); do
    [ "$(aws_count faults_applied data)" -gt "$applied" ] && break
    sleep 0.1
done
check "a blob upload is in flight when the proxy is killed" test "$(aws_count faults_applied data)" -gt "$applied"
kill -KILL "$PROXY_PID"
wait "$PROXY_PID" 2>/dev/null || true
start_with "${imds_env[@]}"
check "after kill -9 the queue is still there" wait_metric ecr_ptc_ecr_queue_depth '>=' 2 10
aws_ctl faults '[]' >/dev/null
check "ECR back: the queue drains" wait_metric ecr_ptc_ecr_queue_depth == 0 60
check "ECR has hub/test/multi:latest" in_ecr test/multi latest "$(digest_of test/multi)"
check "ECR has hub/test/multi-docker:latest" in_ecr test/multi-docker latest "$(digest_of test/multi-docker)"
check "ECR's multi is complete" skopeo copy -q --all --src-tls-verify=false \
    "docker://${ECR_REG#http://}/hub/test/multi:latest" "dir:$E2E_TMP/ecr-multi"
check "ECR's moving tag is where the tag is here, not where it was" \
    in_ecr test/moving latest "$(digest_of library/alpinetest)" mov
check "the older row saw the tag had moved (ecr-push-tag-moved)" grep -q 'ecr-push-tag-moved.*mov/test/moving' "$E2E_TMP/p.log"
check "the first digest of the moving tag was pushed by digest" \
    curl -sf -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "$ECR_REG/v2/mov/test/moving/manifests/$(digest_of test/docker-v2)"
check "the proxy stops cleanly (exit 0: no sanitizer report)" stop_pid "$PROXY_PID"

# ---- container credentials, throttling ------------------------------------------------------
echo "$CONTAINER_TOKEN" >"$E2E_TMP/container-token"
aws_ctl faults '[{"listener":"api","match":"DescribeRepositories","kind":"throttle","count":2}]' >/dev/null
start_with AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
    AWS_CONTAINER_CREDENTIALS_FULL_URI="$AWS_CONTAINER_URL/v2/credentials/e2e" \
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$E2E_TMP/container-token"
check "container credentials: a token is held" wait_metric ecr_ptc_ecr_ready == 1 15
check "pull of the artifact" pull test/artifact:sig
check "the artifact is pushed through two ThrottlingExceptions" wait_metric ecr_ptc_ecr_queue_depth == 0 30
check "the API did answer ThrottlingException twice" test "$(aws_ctl counts | python3 -c '
import json, sys
v = json.load(sys.stdin).get("api_throttled", 0)
print(sum(v.values()) if isinstance(v, dict) else v)')" -ge 2
check "ECR has hub/test/artifact:sig" in_ecr test/artifact sig "$(digest_of test/artifact)"
check "the container endpoint was asked with its token" test "$(aws_count container ok)" -ge 1
check "the container endpoint never refused the proxy" test "$(aws_count container unauthorized)" = 0
check "the proxy stops cleanly (exit 0: no sanitizer report)" stop_pid "$PROXY_PID"

# ---- web identity (IRSA) --------------------------------------------------------------------
echo "$WEB_TOKEN" >"$E2E_TMP/web-token"
stop_pid "$FAKE_PID"   # the upstream down too: what is pulled now comes from ECR, to an empty disk
sed "s|$E2E_TMP/data|$E2E_TMP/data-irsa|" "$E2E_TMP/p.json" >"$E2E_TMP/p-irsa.json"
CONFIG=$E2E_TMP/p-irsa.json
start_with AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
    AWS_WEB_IDENTITY_TOKEN_FILE="$E2E_TMP/web-token" \
    AWS_ROLE_ARN=arn:aws:iam::123456789012:role/ecr-ptc-proxy AWS_ENDPOINT_URL_STS="$AWS_STS_URL"
check "web identity: a token is held" wait_metric ecr_ptc_ecr_ready == 1 15
check "STS was asked" test "$(aws_count sts ok)" -ge 1
check "web identity, upstream down: multi comes from ECR" pull test/multi:latest
check "the proxy stops cleanly (exit 0: no sanitizer report)" stop_pid "$PROXY_PID"

for log in "$E2E_TMP"/p.log "$E2E_TMP"/aws.log; do
    check "$(basename "$log"): no token, secret, signature or presigned query" bash -c "
        ! grep -E -q -- '$CONTAINER_TOKEN|$WEB_TOKEN|X-Amz-Signature|X-Amz-Credential|Signature=|authorizationToken|QVdTO|Basic [A-Za-z0-9+/=]{8,}|Authorization:|SecretAccessKey' '$log'"
done

e2e_done
