#!/usr/bin/env bash
# tests/e2e/aws_fake.py checked on its own, without the proxy, with curl and aws_client.py
# (a SigV4 signer written apart from the fake's verifier): SigV4 against AWS's test vectors,
# the ECR API's signatures and ops, pushes and pulls through the data plane with its ECR rules,
# the S3 redirect, IMDSv2, container credentials, STS, faults and expiries, and logs free of
# secrets. Other tests can then trust the fake.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"
source "$TOP_SRCDIR/tests/e2e/lib_aws.sh"

SUITE="$TOP_SRCDIR/tests/unit/data/aws-sig-v4-test-suite/aws-sig-v4-test-suite"
AK=AKIDSELFTEST0000
SK=selftest-secret-$RANDOM$RANDOM
CTOK=container-auth-$RANDOM$RANDOM
WIT=web-identity-$RANDOM$RANDOM

start_registry reg
start_aws_fake aws "$REGISTRY_URL" --static-key "$AK:$SK" --container-auth "$CTOK" \
    --web-identity-token "$WIT" --creds-lifetime 900
T=$E2E_TMP

# js FILE EXPR: a Python expression over the JSON in FILE (as d), printed.
js() { "$E2E_PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# api OUT OP [JSON] [aws_client api options...]: a call signed with the static key, its
# {"status","body","error_type"} in $T/OUT.
api() {
    local out=$1 op=$2 body=${3:-"{}"}
    shift 3 || shift $#
    aws_client api --endpoint "$AWS_API_URL" --key "$AK" --secret "$SK" "$@" "$op" "$body" >"$T/$out"
}
# is OUT STATUS [TYPE]: the call in $T/OUT answered STATUS (and __type TYPE).
is() {
    "$E2E_PYTHON" -c '
import json, sys
d = json.load(open(sys.argv[1]))
t = d["body"].get("__type") if isinstance(d["body"], dict) else None
sys.exit(not (str(d["status"]) == sys.argv[2] and (len(sys.argv) < 4 or t == sys.argv[3])))' "$T/$1" "${@:2}"
}
code() { curl -s -o /dev/null -m 10 -w '%{http_code}' "$@"; }

# --- SigV4: the fake's canonicalization and this client's signer against AWS's vectors ---
aws_client vector "$SUITE" get-vanilla get-vanilla-query-order-key-case get-vanilla-query-unreserved \
    get-utf8 get-header-value-trim get-header-key-duplicate get-header-value-order get-unreserved \
    get-header-value-multiline post-vanilla post-vanilla-query post-header-key-sort \
    post-header-value-case >"$T/vectors" 2>"$T/vectors.err" || true
check "sigv4 vectors: 13 checked" test "$(wc -l <"$T/vectors")" = 13
while read -r res v; do
    check "sigv4 vector $v (aws_fake canonical request, string to sign, signature; client signer)" test "$res" = ok
done <"$T/vectors"
[ ! -s "$T/vectors.err" ] || cat "$T/vectors.err" >&2

# --- ECR API: signatures ---
api tok.json GetAuthorizationToken
check "signed GetAuthorizationToken: 200" is tok.json 200
PW_B64=$(js "$T/tok.json" 'd["body"]["authorizationData"][0]["authorizationToken"]')
check "the token is base64(AWS:password)" \
    sh -c 'echo "$1" | base64 -d | grep -q "^AWS:."' _ "$PW_B64"
check "expiresAt is a JSON number about 12 h ahead" "$E2E_PYTHON" -c '
import json, sys, time
d = json.load(open(sys.argv[1]))["body"]["authorizationData"][0]
sys.exit(not (isinstance(d["expiresAt"], (int, float)) and 43100 < d["expiresAt"] - time.time() <= 43200))' "$T/tok.json"
check "proxyEndpoint is the data listener" \
    test "$(js "$T/tok.json" 'd["body"]["authorizationData"][0]["proxyEndpoint"]')" = "$AWS_DATA_URL"
api tok2.json GetAuthorizationToken
check "each GetAuthorizationToken issues a new password" \
    test "$(js "$T/tok2.json" 'd["body"]["authorizationData"][0]["authorizationToken"]')" != "$PW_B64"
aws_client api --endpoint "$AWS_API_URL" --key "$AK" --secret "wrong$SK" GetAuthorizationToken >"$T/bad.json"
check "wrong secret: 403 InvalidSignatureException" is bad.json 403 InvalidSignatureException
check "wrong secret: x-amzn-ErrorType names it" test "$(js "$T/bad.json" 'd["error_type"]')" = \
    "InvalidSignatureException:http://internal.amazon.com/coral/com.amazonaws.ecr/"
aws_client api --endpoint "$AWS_API_URL" --key AKIDUNKNOWN000000 --secret "$SK" GetAuthorizationToken >"$T/unk.json"
check "unknown key: 403 UnrecognizedClientException" is unk.json 403 UnrecognizedClientException
api skew.json GetAuthorizationToken '{}' --skew 400
check "X-Amz-Date 400 s off: 403 InvalidSignatureException" is skew.json 403 InvalidSignatureException
api reg.json GetAuthorizationToken '{}' --region eu-west-1
check "scope in another region: 403 InvalidSignatureException" is reg.json 403 InvalidSignatureException
check "unsigned POST: 403 MissingAuthenticationTokenException" sh -c '
    curl -s -m 5 -X POST -H "Content-Type: application/x-amz-json-1.1" \
        -H "X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken" -d "{}" \
        -w "%{http_code}" "$1/" | grep -q "MissingAuthenticationTokenException.*403$"' _ "$AWS_API_URL"
check "rejections counted by reason" test \
    "$(aws_count api_rejected signature)/$(aws_count api_rejected unknown_key)/$(aws_count api_rejected skew)/$(aws_count api_rejected scope)/$(aws_count api_rejected missing)" = 1/1/1/1/1
check "accepted signatures counted" test "$(aws_count sig_accepted)" = 2
api unknown-op.json DeleteEverything
check "unknown op: 400 UnknownOperationException" is unknown-op.json 400 UnknownOperationException

# --- ECR API: repositories ---
api create.json CreateRepository '{"repositoryName":"team/app","imageTagMutability":"IMMUTABLE",
  "imageScanningConfiguration":{"scanOnPush":true},"encryptionConfiguration":{"encryptionType":"KMS","kmsKey":"alias/x"},
  "tags":[{"Key":"owner","Value":"e2e"}],"registryId":"123456789012"}'
check "CreateRepository: 200" is create.json 200
check "CreateRepository: ARN and URI" test "$(js "$T/create.json" 'd["body"]["repository"]["repositoryArn"] + " " + d["body"]["repository"]["repositoryUri"]')" = \
    "arn:aws:ecr:us-east-1:123456789012:repository/team/app 127.0.0.1:$AWS_DATA_PORT/team/app"
api again.json CreateRepository '{"repositoryName":"team/app"}'
check "CreateRepository again: RepositoryAlreadyExistsException" is again.json 400 RepositoryAlreadyExistsException
for bad in 'Team/App' 'a' 'team//app' 'team/app-' '_x'; do
    api badname.json CreateRepository "{\"repositoryName\":\"$bad\"}"
    check "CreateRepository '$bad': InvalidParameterException" is badname.json 400 InvalidParameterException
done
api acct.json CreateRepository '{"repositoryName":"other","registryId":"999999999999"}'
check "CreateRepository in another registryId: InvalidParameterException" is acct.json 400 InvalidParameterException
api excl.json CreateRepository '{"repositoryName":"team/excl","imageTagMutability":"IMMUTABLE_WITH_EXCLUSION",
  "imageTagMutabilityExclusionFilters":[{"filterType":"WILDCARD","filter":"latest*"}]}'
check "CreateRepository IMMUTABLE_WITH_EXCLUSION: 200" is excl.json 200
aws_ctl repos >"$T/repos.json"
check "/_ctl/repos records every field received" "$E2E_PYTHON" -c '
import json, sys
r = json.load(open(sys.argv[1]))["team/app"]
ok = (r["tags"] == [{"Key": "owner", "Value": "e2e"}] and r["imageScanningConfiguration"] == {"scanOnPush": True}
      and r["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": "alias/x"}
      and r["imageTagMutability"] == "IMMUTABLE" and r["request"]["registryId"] == "123456789012")
sys.exit(not ok)' "$T/repos.json"
api desc.json DescribeRepositories '{"repositoryNames":["team/app"]}'
check "DescribeRepositories: the repository" test \
    "$(js "$T/desc.json" 'd["body"]["repositories"][0]["imageTagMutability"]')" = IMMUTABLE
api desc404.json DescribeRepositories '{"repositoryNames":["nope"]}'
check "DescribeRepositories unknown: RepositoryNotFoundException" is desc404.json 400 RepositoryNotFoundException
api lc-bad.json PutLifecyclePolicy '{"repositoryName":"team/app","lifecyclePolicyText":"{not json"}'
check "PutLifecyclePolicy with non-JSON text: InvalidParameterException" is lc-bad.json 400 InvalidParameterException
api lc-obj.json PutLifecyclePolicy '{"repositoryName":"team/app","lifecyclePolicyText":{"rules":[]}}'
check "PutLifecyclePolicy with an object, not a string: InvalidParameterException" is lc-obj.json 400 InvalidParameterException
LC='{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"untagged\",\"countType\":\"sinceImagePushed\",\"countUnit\":\"days\",\"countNumber\":1},\"action\":{\"type\":\"expire\"}}]}'
api lc.json PutLifecyclePolicy "{\"repositoryName\":\"team/app\",\"lifecyclePolicyText\":\"$LC\"}"
check "PutLifecyclePolicy: 200" is lc.json 200
api pol.json SetRepositoryPolicy '{"repositoryName":"team/app","policyText":"{\"Version\":\"2012-10-17\",\"Statement\":[]}"}'
check "SetRepositoryPolicy: 200" is pol.json 200
api pol404.json SetRepositoryPolicy '{"repositoryName":"nope","policyText":"{}"}'
check "SetRepositoryPolicy unknown repo: RepositoryNotFoundException" is pol404.json 400 RepositoryNotFoundException
aws_ctl repos >"$T/repos.json"
check "/_ctl/repos holds the lifecycle and repository policy texts" "$E2E_PYTHON" -c '
import json, sys
r = json.load(open(sys.argv[1]))["team/app"]
sys.exit(not (json.loads(r["lifecyclePolicyText"])["rules"][0]["rulePriority"] == 1
              and json.loads(r["policyText"])["Version"] == "2012-10-17"))' "$T/repos.json"

# --- data plane ---
BASIC="Basic $PW_B64"
check "GET /v2/ without auth: 401" test "$(code "$AWS_DATA_URL/v2/")" = 401
check "GET /v2/ without auth: ECR's Basic challenge" sh -c '
    curl -s -D - -o /dev/null -m 5 "$1/v2/" | tr -d "\r" | grep -qx "WWW-Authenticate: Basic realm=\"https://127.0.0.1:$2/\",service=\"ecr.amazonaws.com\""' _ "$AWS_DATA_URL" "$AWS_DATA_PORT"
check "GET /v2/ with the token: 200" test "$(code -H "Authorization: $BASIC" "$AWS_DATA_URL/v2/")" = 200
check "a wrong password: 401" test "$(code -H "Authorization: Basic $(printf AWS:nope | base64)" "$AWS_DATA_URL/v2/team/app/tags/list")" = 401
check "push without auth: 401 UNAUTHORIZED" sh -c '
    curl -s -m 5 -X POST "$1/v2/team/app/blobs/uploads/" | grep -q UNAUTHORIZED' _ "$AWS_DATA_URL"
check "push to a repository never created: 404 NAME_UNKNOWN" sh -c '
    curl -s -m 5 -X POST -H "Authorization: $2" -w "%{http_code}" "$1/v2/not/created/blobs/uploads/" | grep -q "NAME_UNKNOWN.*404$"' _ "$AWS_DATA_URL" "$BASIC"
check "pull from a repository never created: 404 NAME_UNKNOWN" sh -c '
    curl -s -m 5 -H "Authorization: $2" -w "%{http_code}" "$1/v2/not/created/manifests/latest" | grep -q "NAME_UNKNOWN.*404$"' _ "$AWS_DATA_URL" "$BASIC"
check "push team/app:v1 with the token" sh -c '"$E2E_PYTHON" "$1" push --registry "$2" --auth "$3" --repo team/app --tag v1 --seed one >"$4"' \
    _ "$E2E_DIR_SELF/aws_client.py" "$AWS_DATA_URL" "$BASIC" "$T/push1.json"
MD=$(js "$T/push1.json" 'd["manifest"]')
LD=$(js "$T/push1.json" 'd["layer"]')
OCI=application/vnd.oci.image.manifest.v1+json
curl -s -m 5 -H "Authorization: $BASIC" -H "Accept: $OCI" "$AWS_DATA_URL/v2/team/app/manifests/v1" >"$T/m1"
check "GET manifest: its bytes hash to the pushed digest" test "sha256:$(sha256sum <"$T/m1" | cut -d' ' -f1)" = "$MD"
check "HEAD manifest: Docker-Content-Digest relayed" sh -c '
    curl -s -I -m 5 -H "Authorization: $2" -H "Accept: $3" "$1/v2/team/app/manifests/v1" | tr -d "\r" | grep -qix "Docker-Content-Digest: $4"' \
    _ "$AWS_DATA_URL" "$BASIC" "$OCI" "$MD"
check "IMMUTABLE: the same manifest again under v1 is accepted" sh -c '"$E2E_PYTHON" "$1" push --registry "$2" --auth "$3" --repo team/app --tag v1 --seed one >/dev/null' \
    _ "$E2E_DIR_SELF/aws_client.py" "$AWS_DATA_URL" "$BASIC"
aws_client push --registry "$AWS_DATA_URL" --auth "$BASIC" --repo team/app --tag v1 --seed two >"$T/push2.json" 2>/dev/null || true
check "IMMUTABLE: another manifest under v1 is refused with TAG_INVALID" test "$(js "$T/push2.json" 'd.get("code")')" = TAG_INVALID
check "IMMUTABLE: a new tag is accepted" sh -c '"$E2E_PYTHON" "$1" push --registry "$2" --auth "$3" --repo team/app --tag v2 --seed two >/dev/null' \
    _ "$E2E_DIR_SELF/aws_client.py" "$AWS_DATA_URL" "$BASIC"
check "IMMUTABLE_WITH_EXCLUSION: an excluded tag (latest*) can move" sh -c '
    "$E2E_PYTHON" "$1" push --registry "$2" --auth "$3" --repo team/excl --tag latest-x --seed a >/dev/null &&
    "$E2E_PYTHON" "$1" push --registry "$2" --auth "$3" --repo team/excl --tag latest-x --seed b >/dev/null' \
    _ "$E2E_DIR_SELF/aws_client.py" "$AWS_DATA_URL" "$BASIC"
aws_client push --registry "$AWS_DATA_URL" --auth "$BASIC" --repo team/excl --tag v1 --seed a >/dev/null
aws_client push --registry "$AWS_DATA_URL" --auth "$BASIC" --repo team/excl --tag v1 --seed b >"$T/push3.json" 2>/dev/null || true
check "IMMUTABLE_WITH_EXCLUSION: any other tag is immutable" test "$(js "$T/push3.json" 'd.get("code")')" = TAG_INVALID
check "tag_invalid counted" test "$(aws_count tag_invalid)" = 2
aws_client chunked --registry "$AWS_DATA_URL" --auth "$BASIC" --repo team/app --parts 1000,2000 >"$T/ch1.json"
check "a PATCH after a part under 5 MiB: 400 BLOB_UPLOAD_INVALID" test \
    "$(js "$T/ch1.json" 'd["statuses"][-1], d["codes"][-1]')" = "(400, 'BLOB_UPLOAD_INVALID')"
check "patch_rejected counted" test "$(aws_count patch_rejected)" = 1
aws_client chunked --registry "$AWS_DATA_URL" --auth "$BASIC" --repo team/app --parts 5242880,100 >"$T/ch2.json"
check "parts of 5 MiB and a small last one: 201" test "$(js "$T/ch2.json" 'd["statuses"]')" = "[202, 202, 202, 201]"
aws_client chunked --registry "$AWS_DATA_URL" --auth "$BASIC" --repo team/app --parts 3000 >"$T/ch3.json"
check "a single small PATCH (the last part) then PUT: 201" test "$(js "$T/ch3.json" 'd["statuses"]')" = "[202, 202, 201]"
check "uploads_completed counted (2 blobs x 8 pushes, 2 chunked)" test "$(aws_count uploads_completed)" = 18
check "bytes_uploaded counts the upload bodies" "$E2E_PYTHON" -c '
import json, sys, urllib.request
c = json.load(urllib.request.urlopen(sys.argv[1] + "/_ctl/counts"))
sys.exit(not (c["bytes_uploaded"] >= 5242880 + 100 + 3000 + 1000))' "$AWS_API_URL"

# --- blobs: HEAD here, GET redirected to S3 ---
curl -s -I -m 5 -H "Authorization: $BASIC" "$AWS_DATA_URL/v2/team/app/blobs/$LD" | tr -d '\r' >"$T/head"
check "HEAD blob: 200 with Content-Length and Docker-Content-Digest" sh -c '
    head -1 "$1" | grep -q " 200" && grep -qix "Content-Length: $2" "$1" && grep -qix "Docker-Content-Digest: $3" "$1"' \
    _ "$T/head" "$(js "$T/push1.json" 'd["layer_size"]')" "$LD"
curl -s -o /dev/null -m 5 -w '%{http_code} %{redirect_url}\n' -H "Authorization: $BASIC" \
    "$AWS_DATA_URL/v2/team/app/blobs/$LD" >"$T/redir"
read -r RCODE S3URL <"$T/redir"
check "GET blob: 307" test "$RCODE" = 307
check "GET blob: Location on the S3 listener, presigned" sh -c 'case "$1" in "$2"/*"$3"\?*X-Amz-Algorithm=AWS4-HMAC-SHA256*X-Amz-Credential=*X-Amz-Signature=*name=team%2Fapp*) exit 0;; esac; exit 1' \
    _ "$S3URL" "$AWS_S3_URL" "$LD"
check "GET blob of an unknown digest: 404 BLOB_UNKNOWN" sh -c '
    curl -s -m 5 -H "Authorization: $2" "$1/v2/team/app/blobs/sha256:$(printf %064d 0)" | grep -q BLOB_UNKNOWN' _ "$AWS_DATA_URL" "$BASIC"
check "S3 with an Authorization header: 400 InvalidArgument" sh -c '
    curl -s -m 5 -H "Authorization: $2" -w "%{http_code}" "$1" | grep -q "<Code>InvalidArgument</Code>.*400$"' _ "$S3URL" "$BASIC"
check "s3_rejected_auth counted" test "$(aws_count s3_rejected_auth)" = 1
check "S3 without Authorization: the blob's bytes" test \
    "sha256:$(curl -s -m 5 "$S3URL" | sha256sum | cut -d' ' -f1)" = "$LD"
check "S3 Range: 206 and the bytes asked for" sh -c '
    test "$(curl -s -m 5 -r 10-19 -w " %{http_code}" "$1" | wc -c)" = 14 && test "$(curl -s -o /dev/null -r 10-19 -w "%{http_code}" "$1")" = 206' _ "$S3URL"
check "S3 without the signature: 403" test "$(code "${S3URL%%\?*}?name=team%2Fapp")" = 403
check "S3 with a signature it never issued: 403" test "$(code "$(echo "$S3URL" | sed 's/X-Amz-Signature=[0-9a-f]*/X-Amz-Signature=00ff/')")" = 403
check "s3 served and s3_bytes counted" test "$(aws_count s3)/$(aws_count s3_bytes)" = "3/$(( $(js "$T/push1.json" 'd["layer_size"]') + 20 ))"
check "curl follows the redirect without Authorization to S3" test \
    "sha256:$(curl -s -L -m 5 -H "Authorization: $BASIC" "$AWS_DATA_URL/v2/team/app/blobs/$LD" | sha256sum | cut -d' ' -f1)" = "$LD"
check "keep-alive: curl reuses one connection for two requests" sh -c '
    curl -sv -m 5 -o /dev/null -o /dev/null -H "Authorization: $2" "$1/v2/" "$1/v2/team/app/tags/list" 2>&1 | grep -qi "re-using existing connection"' \
    _ "$AWS_DATA_URL" "$BASIC"

# --- IMDSv2 ---
ROLE_URL="$AWS_IMDS_URL/latest/meta-data/iam/security-credentials/"
check "IMDSv1 (no token): 401" test "$(code "$ROLE_URL")" = 401
check "imds_v1_refused counted" test "$(aws_count imds_v1_refused)" = 1
check "token PUT without a TTL: 400" test "$(code -X PUT "$AWS_IMDS_URL/latest/api/token")" = 400
check "token PUT with TTL 21601: 400" test "$(code -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 21601' "$AWS_IMDS_URL/latest/api/token")" = 400
ITOK=$(curl -s -m 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$AWS_IMDS_URL/latest/api/token")
check "an unknown token: 401" test "$(code -H 'X-aws-ec2-metadata-token: nope' "$ROLE_URL")" = 401
check "the role name" test "$(curl -s -m 5 -H "X-aws-ec2-metadata-token: $ITOK" "$ROLE_URL")" = ecr-ptc-proxy-role
check "placement/region" test "$(curl -s -m 5 -H "X-aws-ec2-metadata-token: $ITOK" "$AWS_IMDS_URL/latest/meta-data/placement/region")" = us-east-1
curl -s -m 5 -H "X-aws-ec2-metadata-token: $ITOK" "$AWS_IMDS_URL/latest/dynamic/instance-identity/document" >"$T/iid.json"
check "instance identity document: region and accountId" test "$(js "$T/iid.json" 'd["region"] + d["accountId"]')" = us-east-1123456789012
curl -s -m 5 -H "X-aws-ec2-metadata-token: $ITOK" "${ROLE_URL}ecr-ptc-proxy-role" >"$T/imds.json"
check "IMDS credentials: Code Success, ASIA key, Z expiry" "$E2E_PYTHON" -c '
import json, re, sys
d = json.load(open(sys.argv[1]))
sys.exit(not (d["Code"] == "Success" and d["Type"] == "AWS-HMAC" and d["AccessKeyId"].startswith("ASIA")
              and d["Token"] and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", d["Expiration"])))' "$T/imds.json"
read -r IAK ISK ITK < <(aws_client creds-json "$T/imds.json")
aws_client api --endpoint "$AWS_API_URL" --key "$IAK" --secret "$ISK" --token "$ITK" DescribeRepositories >"$T/imds-call.json"
check "IMDS credentials sign an API call" is imds-call.json 200
aws_client api --endpoint "$AWS_API_URL" --key "$IAK" --secret "$ISK" DescribeRepositories >"$T/imds-notok.json"
check "IMDS credentials without their session token: UnrecognizedClientException" is imds-notok.json 403 UnrecognizedClientException
aws_client api --endpoint "$AWS_API_URL" --key "$IAK" --secret "$ISK" --token "$ITK" --no-sign-token DescribeRepositories >"$T/imds-unsigned.json"
check "session token sent but not signed: InvalidSignatureException" is imds-unsigned.json 403 InvalidSignatureException
check "another role: 404" test "$(code -H "X-aws-ec2-metadata-token: $ITOK" "${ROLE_URL}other")" = 404

# --- container credentials ---
check "container endpoint without its Authorization: 401" test "$(code "$AWS_CONTAINER_URL/v2/credentials/x")" = 401
check "container endpoint with a wrong Authorization: 401" test "$(code -H "Authorization: x$CTOK" "$AWS_CONTAINER_URL/v2/credentials/x")" = 401
curl -s -m 5 -H "Authorization: $CTOK" "$AWS_CONTAINER_URL/v2/credentials/x" >"$T/ctr.json"
check "container credentials: RoleArn and keys" test "$(js "$T/ctr.json" 'd["RoleArn"] + " " + str(bool(d["Token"] and d["SecretAccessKey"]))')" = "arn:aws:iam::123456789012:role/x True"
check "container counts: 1 ok, 2 unauthorized, by path" test \
    "$(aws_count container ok)/$(aws_count container unauthorized)/$(aws_count container_paths /v2/credentials/x)" = 1/2/3
read -r CAK CSK CTK < <(aws_client creds-json "$T/ctr.json")
aws_client api --endpoint "$AWS_API_URL" --key "$CAK" --secret "$CSK" --token "$CTK" GetAuthorizationToken >"$T/ctr-call.json"
check "container credentials sign an API call" is ctr-call.json 200

# --- STS ---
ROLE_ARN=arn:aws:iam::123456789012:role/irsa
curl -s -m 5 -w '\n%{http_code}' --data-urlencode Action=AssumeRoleWithWebIdentity --data-urlencode Version=2011-06-15 \
    --data-urlencode "RoleArn=$ROLE_ARN" --data-urlencode RoleSessionName=s1 --data-urlencode "WebIdentityToken=x$WIT" \
    "$AWS_STS_URL/" >"$T/sts-bad"
check "STS with a wrong web identity token: 400 InvalidIdentityToken" sh -c '
    tail -1 "$1" | grep -qx 400 && grep -q "<Type>Sender</Type>" "$1" && grep -q "<Code>InvalidIdentityToken</Code>" "$1"' _ "$T/sts-bad"
curl -s -m 5 --data-urlencode Action=AssumeRoleWithWebIdentity --data-urlencode Version=2011-06-15 \
    --data-urlencode "RoleArn=$ROLE_ARN" --data-urlencode RoleSessionName=s2 --data-urlencode "WebIdentityToken=$WIT" \
    "$AWS_STS_URL/" >"$T/sts.xml"
check "STS AssumeRoleWithWebIdentity: the real XML shape" "$E2E_PYTHON" -c '
import sys, xml.etree.ElementTree as ET
ns = {"s": "https://sts.amazonaws.com/doc/2011-06-15/"}
r = ET.parse(sys.argv[1]).getroot()
ok = (r.tag == "{%s}AssumeRoleWithWebIdentityResponse" % ns["s"]
      and r.find("s:AssumeRoleWithWebIdentityResult/s:Credentials/s:Expiration", ns).text.endswith("Z")
      and r.find("s:AssumeRoleWithWebIdentityResult/s:AssumedRoleUser/s:Arn", ns).text.endswith("/irsa/s2")
      and r.find("s:ResponseMetadata/s:RequestId", ns).text)
sys.exit(not ok)' "$T/sts.xml"
read -r SAK SSK STK < <(aws_client sts-creds "$T/sts.xml")
aws_client api --endpoint "$AWS_API_URL" --key "$SAK" --secret "$SSK" --token "$STK" GetAuthorizationToken >"$T/sts-call.json"
check "STS credentials sign an API call" is sts-call.json 200
check "STS in the query-string form" sh -c '
    curl -s -m 5 "$1/?Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=$2&RoleSessionName=s3&WebIdentityToken=$3" | grep -q "<SessionToken>"' \
    _ "$AWS_STS_URL" "$ROLE_ARN" "$WIT"
aws_ctl counts >"$T/counts.json"
check "STS counts and the RoleArn/RoleSessionName received" test \
    "$(js "$T/counts.json" 'd["sts"]["ok"], d["sts"]["rejected"], [c["RoleSessionName"] for c in d["sts_calls"]], d["sts_calls"][1]["RoleArn"]')" = \
    "(2, 1, ['s1', 's2', 's3'], '$ROLE_ARN')"
check "credentials_issued: imds 1, container 1, sts 2" test "$(js "$T/counts.json" 'd["credentials_issued"]')" = 4

# --- expiries ---
aws_ctl expire-credentials '' >/dev/null
aws_client api --endpoint "$AWS_API_URL" --key "$IAK" --secret "$ISK" --token "$ITK" DescribeRepositories >"$T/expired.json"
check "expire-credentials: the IMDS credentials get ExpiredTokenException" is expired.json 403 ExpiredTokenException
api static.json DescribeRepositories
check "expire-credentials: the static key still works" is static.json 200
aws_ctl expire-tokens '' >/dev/null
check "expire-tokens: the data plane answers 401" test "$(code -H "Authorization: $BASIC" "$AWS_DATA_URL/v2/team/app/tags/list")" = 401
check "data_expired counted" test "$(aws_count data_expired)" = 1
api tok3.json GetAuthorizationToken
check "a new token works again" test "$(code -H "Authorization: Basic $(js "$T/tok3.json" 'd["body"]["authorizationData"][0]["authorizationToken"]')" "$AWS_DATA_URL/v2/team/app/tags/list")" = 200

# --- faults ---
aws_ctl faults '[{"listener":"api","match":"GetAuthorizationToken","kind":"throttle","count":2}]' >/dev/null
api th1.json GetAuthorizationToken
api thd.json DescribeRepositories
api th2.json GetAuthorizationToken
api th3.json GetAuthorizationToken
check "throttle fault: two ThrottlingException (400), then 200" sh -c '
    test "$("$E2E_PYTHON" -c "import json,sys; print([json.load(open(f))[\"status\"] for f in sys.argv[1:]])" "$@")" = "[400, 400, 200]"' \
    _ "$T/th1.json" "$T/th2.json" "$T/th3.json"
check "throttle fault: ThrottlingException type" is th1.json 400 ThrottlingException
check "api_throttled counted" test "$(aws_count api_throttled GetAuthorizationToken)" = 2
check "a throttle fault on one op leaves the others alone" is thd.json 200
aws_ctl faults '[{"listener":"s3","kind":"down","count":-1}]' >/dev/null
check "down fault: S3 answers 503 to everything" test "$(code "$S3URL")/$(code "$AWS_S3_URL/x")" = 503/503
check "GET /_ctl/faults shows what is left" test "$(aws_ctl faults | "$E2E_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)[0]["count"])')" = -1
aws_ctl faults '[]' >/dev/null
check "faults cleared: S3 serves again" test "$(code "$S3URL")" = 200
aws_ctl faults '[{"listener":"data","match":"^GET /v2/.*/tags/","kind":"status","status":500,"count":1}]' >/dev/null
TOK3="Basic $(js "$T/tok3.json" 'd["body"]["authorizationData"][0]["authorizationToken"]')"
check "status fault on data: 500, then normal" test \
    "$(code -H "Authorization: $TOK3" "$AWS_DATA_URL/v2/team/app/tags/list")/$(code -H "Authorization: $TOK3" "$AWS_DATA_URL/v2/team/app/tags/list")" = 500/200
aws_ctl faults '[{"listener":"imds","kind":"close","count":1}]' >/dev/null
check "close fault: no answer" test "$(code -H "X-aws-ec2-metadata-token: $ITOK" "$ROLE_URL")" = 000

# --- counts, reset, logs ---
aws_ctl counts >"$T/counts.json"
check "requests lists every listener" test "$(js "$T/counts.json" 'sorted({r["listener"] for r in d["requests"]})')" = \
    "['api', 'container', 'data', 'imds', 's3', 'sts']"
check "requests carry no query strings" "$E2E_PYTHON" -c '
import json, sys
sys.exit(any("?" in r["path"] for r in json.load(open(sys.argv[1]))["requests"]))' "$T/counts.json"
aws_ctl reset-counts '' >/dev/null
check "reset-counts zeroes the counters" test "$(aws_count requests)/$(aws_count uploads_completed)/$(aws_count data 'GET blob')" = 0/0/0
check "the log has one line per request" test "$(wc -l <"$T/aws.log")" -gt 100
check "the log holds no secret, token, password or signature" sh -c '
    ! grep -qF -e "$2" -e "$3" -e "$4" -e "$5" -e "$6" -e "$7" -e "$8" -e "X-Amz-Signature" -e "AWS4-HMAC" -e "Basic " "$1"' \
    _ "$T/aws.log" "$SK" "$PW_B64" "$ITK" "$ISK" "$CTOK" "$WIT" "$ITOK"
check "the fake still runs" kill -0 "$AWS_FAKE_PID"

e2e_done
