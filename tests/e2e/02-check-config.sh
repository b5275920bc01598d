#!/usr/bin/env bash
# check-config: good files exit 0; each bad file prints one line naming its key path, exit 2.
source "$TOP_SRCDIR/tests/e2e/lib.sh"

dir="$TOP_SRCDIR/tests/e2e/bad-configs"
unset ECR_PTC_TEST_UNSET_VAR

while IFS=$'\t' read -r file want; do
    set +e
    "$PROXY_BIN" check-config --config "$dir/$file" >"$E2E_TMP/out" 2>"$E2E_TMP/err"
    rc=$?
    set -e
    check "$file: exit status 2" test "$rc" = 2
    check "$file: exactly one line" test "$(wc -l <"$E2E_TMP/err")" = 1
    check "$file: names the key ($want)" grep -qF -- "$want" "$E2E_TMP/err"
    check "$file: line starts with the file name" grep -q "^$dir/$file: " "$E2E_TMP/err"
    check "$file: nothing on stdout" test ! -s "$E2E_TMP/out"
    check "$file: no secret in the message" bash -c "! grep -q hunter2 '$E2E_TMP/err'"
done <"$dir/expect.tsv"

# serve refuses a bad config the same way, exit 2, before binding anything.
set +e
"$PROXY_BIN" serve --config "$dir/bad-upstream.json" >/dev/null 2>"$E2E_TMP/err"; rc=$?
set -e
check "serve with a bad config exits 2" test "$rc" = 2
check "serve with a bad config names the key" grep -qF 'rules[1].upstream: not a URL' "$E2E_TMP/err"

# Several problems in one file: one line each.
cat >"$E2E_TMP/many.json" <<'JSON'
{"listen": "x", "bogus": 1, "rules": [{"prefix": "a", "upstream": "nope"}]}
JSON
set +e
"$PROXY_BIN" check-config --config "$E2E_TMP/many.json" 2>"$E2E_TMP/err"; rc=$?
set -e
check "three problems: exit 2" test "$rc" = 2
check "three problems: three lines" test "$(wc -l <"$E2E_TMP/err")" = 3

# A missing file.
set +e
"$PROXY_BIN" check-config --config "$E2E_TMP/nope.json" 2>"$E2E_TMP/err"; rc=$?
set -e
check "a missing file exits 2" test "$rc" = 2
check "a missing file says cannot open" grep -q 'cannot open' "$E2E_TMP/err"

# Good files: the shipped example and DESIGN.md's example with a credential from the env.
check "the shipped example config is valid" \
    "$PROXY_BIN" check-config --config "$TOP_SRCDIR/deploy/config/config.example.json"
cat >"$E2E_TMP/design.json" <<'JSON'
{
  "listen": "127.0.0.1:5000",
  "data_dir": "/var/lib/ecr-ptc-proxy",
  "refresh_interval": "24h",
  "stale_if_error": "7d",
  "rules": [
    { "prefix": "ecr-public", "upstream": "https://public.ecr.aws",
      "mirror_for": ["public.ecr.aws"] },
    { "prefix": "docker-hub", "upstream": "https://registry-1.docker.io",
      "mirror_for": ["docker.io", "registry-1.docker.io"], "library_prefix": true,
      "default": true,
      "credentials": { "username": "me", "password_env": "DOCKERHUB_TOKEN" } }
  ]
}
JSON
check "DESIGN.md's example is valid with its env var set" \
    env DOCKERHUB_TOKEN=t0ken "$PROXY_BIN" check-config --config "$E2E_TMP/design.json"
check "check-config prints the token nowhere" bash -c \
    "DOCKERHUB_TOKEN=t0ken '$PROXY_BIN' check-config --config '$E2E_TMP/design.json' 2>&1 | grep -vq t0ken"

# The ECR tier's block as the Terraform module writes it, and the shortest one.
cat >"$E2E_TMP/ecr.json" <<'JSON'
{
  "ecr": {
    "region": "us-east-1",
    "registry_id": "123456789012",
    "endpoint": "https://api.ecr.us-east-1.amazonaws.com",
    "repository_prefix": "",
    "allow_private_redirects": false,
    "push": true,
    "create_repository": {
      "image_tag_mutability": "IMMUTABLE_WITH_EXCLUSION",
      "image_tag_mutability_exclusion_filters": ["latest", "dev-*"],
      "scan_on_push": true,
      "encryption": { "type": "KMS", "kms_key": "arn:aws:kms:us-east-1:123456789012:key/k" },
      "tags": { "owner": "platform" },
      "lifecycle_policy": { "rules": [ { "rulePriority": 1, "description": "untagged",
        "selection": { "tagStatus": "untagged", "countType": "sinceImagePushed",
                       "countUnit": "days", "countNumber": 14 },
        "action": { "type": "expire" } } ] },
      "repository_policy": { "Version": "2012-10-17", "Statement": [] }
    }
  },
  "rules": [
    { "prefix": "docker-hub", "upstream": "https://registry-1.docker.io", "default": true },
    { "prefix": "odd__name", "upstream": "https://quay.io", "ecr": false }
  ]
}
JSON
check "the ECR block of the contract is valid" \
    "$PROXY_BIN" check-config --config "$E2E_TMP/ecr.json"
echo '{"ecr": {}, "rules": [{"prefix": "a", "upstream": "https://a.io"}]}' >"$E2E_TMP/ecr-min.json"
check "\"ecr\": {} is valid" "$PROXY_BIN" check-config --config "$E2E_TMP/ecr-min.json"

# The operations keys (#12), a rule's lifecycle policy as Terraform's jsonencode() writes it.
cat >"$E2E_TMP/ops.json" <<'JSON'
{
  "cache_size": "200GiB",
  "admin_socket": "/run/ecr-ptc-proxy/admin.sock",
  "egress_price_per_gb": 0.045,
  "lifecycle_policy": { "rules": [
    { "rulePriority": 1, "description": "untagged after a day",
      "selection": { "tagStatus": "untagged", "countType": "sinceImagePushed",
                     "countUnit": "days", "countNumber": 1 },
      "action": { "type": "expire" } },
    { "rulePriority": 2, "description": "the last 10 releases",
      "selection": { "tagStatus": "tagged", "tagPatternList": ["v*"],
                     "countType": "imageCountMoreThan", "countNumber": 10 },
      "action": { "type": "expire" } },
    { "rulePriority": 3, "description": "not pulled for 30 days",
      "selection": { "tagStatus": "any", "countType": "sinceImagePulled",
                     "countUnit": "days", "countNumber": 30 },
      "action": { "type": "expire" } } ] },
  "rules": [
    { "prefix": "docker-hub", "upstream": "https://registry-1.docker.io", "default": true,
      "lifecycle_policy": "{\"rules\":[{\"rulePriority\":1,\"selection\":{\"tagStatus\":\"any\",\"countType\":\"imageCountMoreThan\",\"countNumber\":100},\"action\":{\"type\":\"expire\"}}]}" }
  ]
}
JSON
check "the operations keys and lifecycle policies are valid" \
    "$PROXY_BIN" check-config --config "$E2E_TMP/ops.json"
e2e_done
