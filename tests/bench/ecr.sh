# The ECR tier's figures (E1-E5), sourced by tests/bench/run.sh after figures 1-8 (or alone,
# BENCH_ONLY=ecr). Uses run.sh's helpers and servers: the seeded upstream registry (UP_URL),
# the counting fake in front of it (FAKE, FAKE_URL), test/big (BIG_DIGEST, BIG_BLOBS) and the
# raw blob B_WARM (WARM_MIB). See tests/bench/README.md, "The ECR tier".
#
#   ECR: aws_fake.py (API with SigV4, data plane with Basic tokens, S3 redirects) in front of a
#        second docker-registry, "ecrstore"; ours gets static keys in its environment
#
# Every run mirrors into its own repository_prefix, so each push-on run really uploads.

# shellcheck source=../e2e/lib_aws.sh
source "$TOP_SRCDIR/tests/e2e/lib_aws.sh"
ECR_AK=AKIDBENCHECR00000001
ECR_SK=bench-ecr-secret-not-a-secret-0123456789

say "ECR: aws_fake.py in front of a second docker-registry"
start_registry ecrstore || die "the ECR store (docker-registry) did not start"
ECR_REG=$REGISTRY_URL
start_aws_fake aws "$ECR_REG" --static-key "$ECR_AK:$ECR_SK" || die "aws_fake.py did not start"
# A port nothing listens on: the upstream of an appliance whose upstream is down.
DOWN_URL="http://127.0.0.1:$(free_port)"
# Bound on every wait for the push queue to drain: short under --smoke, so a push that never
# completes fails the smoke in a minute.
DRAIN_MAX=600
[ "$SMOKE" = 1 ] && DRAIN_MAX=60

# ecr_start NAME DATA_DIR PREFIX PUSH(true|false) UPSTREAM_URL -> EO (host:port), EO_PORT,
# EO_PID: ours with the ecr block (repository_prefix PREFIX), once it holds a data-plane token.
ecr_start() {
    local name=$1 data=$2 prefix=$3 push=$4 up=$5 port
    port=$(free_port)
    mkdir -p "$data"
    cat >"$T/$name.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$data", "min_free_space": "1GiB",
 "rules": [{"prefix": "hub", "upstream": "$up", "allow_private_redirects": true}],
 "ecr": {"region": "us-east-1", "registry_id": "123456789012", "endpoint": "$AWS_API_URL",
         "repository_prefix": "$prefix", "allow_private_redirects": true, "push": $push}}
JSON
    AWS_ACCESS_KEY_ID=$ECR_AK AWS_SECRET_ACCESS_KEY=$ECR_SK AWS_EC2_METADATA_DISABLED=true \
        start_proxy "$name" --config "$T/$name.json"
    EO_PID=$PROXY_PID EO_PORT=$port EO="127.0.0.1:$port"
    wait_up "$EO_PID" "$port" || { tail -n 20 "$T/$name.log" >&2; die "ecr-ptc-proxy ($name) did not start"; }
    for _ in $(seq 1 150); do
        [ "$(ecr_metric "$port" ecr_ptc_ecr_ready)" = 1 ] && return 0
        kill -0 "$EO_PID" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$T/$name.log" >&2
    die "ecr-ptc-proxy ($name) holds no ECR token after 15 s"
}

# ecr_metric PORT NAME{LABELS}: the value on ours' /metrics, or 0.
ecr_metric() {
    { curl -s -m 5 "http://127.0.0.1:$1/metrics" || true; } |
        awk -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'
}

# ecr_drain PORT JOBS MAX_S: until the push queue is empty and at least JOBS push jobs ended
# done (polled every 50 ms, at most MAX_S). -> DRAIN_S, seconds since the call.
ecr_drain() {
    local port=$1 jobs=$2 maxs=$3 t0 m depth ndone
    t0=$(now_ns)
    while :; do
        m=$(curl -s -m 5 "http://127.0.0.1:$port/metrics" || true)
        depth=$(awk '$1 == "ecr_ptc_ecr_queue_depth" { print $2 }' <<<"$m")
        ndone=$(awk '$1 == "ecr_ptc_ecr_push_jobs_total{result=\"done\"}" { print $2 }' <<<"$m")
        [ "${depth:-1}" = 0 ] && [ "${ndone:-0}" -ge "$jobs" ] && break
        [ $((($(now_ns) - t0) / 1000000000)) -lt "$maxs" ] ||
            die "ECR push queue: depth ${depth:-?}, ${ndone:-?} jobs done after $maxs s (want 0, >= $jobs)"
        sleep 0.05
    done
    DRAIN_S=$(secs_since "$t0")
}

# ecr_has PREFIX REPO TAG DIGEST: ECR's registry holds PREFIX/hub/REPO:TAG as DIGEST.
ecr_has() {
    local got
    got=$(curl -s -m 30 -H "Accept: $ACCEPT" "$ECR_REG/v2/$1/hub/$2/manifests/$3" | sha256sum | cut -d' ' -f1)
    [ "sha256:$got" = "$4" ] || die "ECR does not hold $1/hub/$2:$3 as $4 (got sha256:$got)"
}

ecr_counts() { aws_ctl counts >"$T/aws-counts.json" || die "aws_fake control failed"; }
ecr_reset() { aws_ctl reset-counts '' >/dev/null || die "aws_fake control failed"; }

# up_bytes -> UPB_X (upstream blob bytes / test/big's blob bytes), UPB_GETS, UPB_IMAGE (its
# blob bytes): from the fake's log since the last up_reset.
up_bytes() {
    local bytes
    up_save
    read -r bytes UPB_GETS UPB_IMAGE < <(python3 "$BENCH_PY" up-bytes "$T/counts.json" "$T/images.json" test/big) ||
        die "counting upstream bytes failed"
    UPB_X=$(calc "$bytes / $UPB_IMAGE")
}

# ---- E1. cold pull, push on vs push off --------------------------------------------------
# About 1 s a copy on a loaded 2-core machine scatters like figures 1 and 4: QUICK_RUNS (>= 5).
say "E1. cold skopeo copy of test/big, fresh cache and fresh ECR prefix each run (push on, push off) x $QUICK_RUNS"
for r in $(seq 1 "$QUICK_RUNS"); do
    ecr_start "ecr-on-$r" "$T/ecr-on-$r" "on$r" true "$FAKE_URL"
    settle
    skopeo_copy "$EO/hub/test/big:latest" "$BIG_DIGEST"
    record ecr_push_cold_s ours "$S_SECS"
    on=$S_SECS
    ecr_drain "$EO_PORT" 1 "$DRAIN_MAX"
    record ecr_push_drain_s ours "$DRAIN_S"
    ecr_has "on$r" test/big latest "$BIG_DIGEST"
    pushed=$(ecr_metric "$EO_PORT" ecr_ptc_ecr_pushed_bytes_total)
    [ "$pushed" -gt 0 ] || die "E1 run $r: push on, but nothing was uploaded"
    bench_stop "$EO_PID"
    rm -rf "$T/ecr-on-$r"

    ecr_start "ecr-off-$r" "$T/ecr-off-$r" "off$r" false "$FAKE_URL"
    settle
    skopeo_copy "$EO/hub/test/big:latest" "$BIG_DIGEST"
    record ecr_push_cold_s ref "$S_SECS"
    [ "$(ecr_metric "$EO_PORT" ecr_ptc_ecr_queue_depth)" = 0 ] || note ecr_push_cold_s ref "run $r: push off, yet pushes were queued"
    bench_stop "$EO_PID"
    rm -rf "$T/ecr-off-$r"
    echo "    run $r: push on $on s (queue empty $DRAIN_S s after the copy; $pushed bytes pushed), push off $S_SECS s"
done

# ---- E2. read-through from ECR with the upstream down vs a direct pull from ECR ----------
say "E2. cold skopeo copy of test/big read through ECR (prefix on1), upstream down, vs skopeo straight from the fake's data plane x $RUNS"
read -r ECR_PW < <(aws_client api --endpoint "$AWS_API_URL" --key "$ECR_AK" --secret "$ECR_SK" \
    --region us-east-1 GetAuthorizationToken '{}' | python3 -c '
import base64, json, sys
r = json.load(sys.stdin)
tok = r["body"]["authorizationData"][0]["authorizationToken"]
print(base64.b64decode(tok).decode().partition(":")[2])') || die "GetAuthorizationToken failed"
[ -n "$ECR_PW" ] || die "GetAuthorizationToken gave no password"
for r in $(seq 1 "$RUNS"); do
    ecr_start "ecr-read-$r" "$T/ecr-read-$r" on1 true "$DOWN_URL"
    settle
    skopeo_copy "$EO/hub/test/big:latest" "$BIG_DIGEST"
    record ecr_read_s ours "$S_SECS"
    o=$S_SECS
    from_ecr=$(ecr_metric "$EO_PORT" 'ecr_ptc_content_bytes_total{from="ecr"}')
    from_up=$(ecr_metric "$EO_PORT" 'ecr_ptc_content_bytes_total{from="upstream"}')
    [ "$from_ecr" -gt 0 ] && [ "$from_up" = 0 ] || die "E2 run $r: $from_ecr bytes from ECR, $from_up from the upstream (want > 0, 0)"
    record ecr_read_mib ours "$(calc "$from_ecr / 1048576")"
    # The tag's part: with the upstream refusing, its HEAD is retried before ECR's tag is served.
    tag_ms=$(sed -n 's|.* uri=/v2/hub/test/big/manifests/latest status=200 ms=\([0-9.]*\) .*|\1|p' "$T/ecr-read-$r.log" | head -n 1)
    [ -z "$tag_ms" ] || record ecr_read_tag_ms ours "$tag_ms"
    bench_stop "$EO_PID"
    rm -rf "$T/ecr-read-$r"
    settle
    SKOPEO_SRC_CREDS="AWS:$ECR_PW" skopeo_copy "127.0.0.1:$AWS_DATA_PORT/on1/hub/test/big:latest" "$BIG_DIGEST"
    record ecr_read_s ref "$S_SECS"
    echo "    run $r: read-through $o s ($from_ecr bytes from ECR; the tag's GET ${tag_ms:-?} ms), direct from ECR $S_SECS s"
done
ecr_counts
[ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["s3_rejected_auth"])' "$T/aws-counts.json")" = 0 ] ||
    note ecr_read_s all "S3 refused requests that carried Authorization"

# ---- E3. RSS while pushing a big layer ---------------------------------------------------
say "E3. peak RSS of ours pulling and pushing an image whose one layer is $WARM_MIB MiB x $RUNS"
# Its own repository: aws_fake.py splits a repository name ending in "/blobs" (bench/blobs) at
# that component, so pushes into <prefix>/hub/bench/blobs would fail there.
HREPO=bench/huge
read -r HUGE_DIGEST HUGE_CFG HUGE_CFG_SIZE < <(python3 "$BENCH_PY" push-image "$UP_URL" "$HREPO" latest "$B_WARM" "$S_WARM" "$BREPO") ||
    die "pushing the $WARM_MIB MiB image failed"
for r in $(seq 1 "$RUNS"); do
    ecr_start "ecr-rss-$r" "$T/ecr-rss-$r" "rss$r" true "$FAKE_URL"
    settle
    ecr_reset
    sampler_start "$EO_PID"
    t0=$(now_ns)
    check_manifest "http://$EO/v2/hub/$HREPO/manifests/latest" "$HUGE_DIGEST"
    fetch "http://$EO/v2/hub/$HREPO/blobs/$HUGE_CFG" "$HUGE_CFG_SIZE"
    fetch "http://$EO/v2/hub/$HREPO/blobs/$B_WARM" "$S_WARM"
    pull_s=$(secs_since "$t0")
    ecr_drain "$EO_PORT" 1 "$DRAIN_MAX"
    sampler_stop
    record ecr_push_rss_mib ours "$SAMPLE_PEAK_MIB"
    record ecr_push_rss_anon_mib ours "$SAMPLE_ANON_MIB"
    record ecr_push_big_drain_s ours "$DRAIN_S"
    ecr_has "rss$r" "$HREPO" latest "$HUGE_DIGEST"
    ecr_counts
    read -r puts patches posts completed ubytes < <(python3 "$BENCH_PY" ecr-uploads "$T/aws-counts.json")
    [ "$completed" -gt 0 ] || die "E3 run $r: no upload completed"
    record ecr_push_upload_reqs ours "$(calc "($puts + $patches) / $completed")"
    [ "$patches" = 0 ] || note ecr_push_upload_reqs ours "run $r: $patches chunked PATCHes"
    [ "$ubytes" -ge "$S_WARM" ] || note ecr_push_upload_reqs ours "run $r: $ubytes bytes uploaded, less than the $S_WARM-byte layer"
    bench_stop "$EO_PID"
    rm -rf "$T/ecr-rss-$r"
    echo "    run $r: peak RSS $SAMPLE_PEAK_MIB MiB (anon $SAMPLE_ANON_MIB, file $SAMPLE_FILE_MIB); pull $pull_s s, queue empty $DRAIN_S s later; uploads: $posts POST, $puts PUT, $patches PATCH, $completed completed, $ubytes bytes"
done

# ---- E4. manifest PUT pace ---------------------------------------------------------------
say "E4. $PACE_N distinct small images pulled through ours (8 at a time), push on: manifest PUTs per second at ECR x $RUNS"
python3 "$BENCH_PY" tiny-images "$UP_URL" bench/pace "$PACE_N" pace "$T/pace.txt" || die "pushing the small images failed"
for r in $(seq 1 "$RUNS"); do
    ecr_start "ecr-pace-$r" "$T/ecr-pace-$r" "pace$r" true "$FAKE_URL"
    settle
    ecr_reset
    t0=$(now_ns)
    python3 "$BENCH_PY" pull-images "http://$EO/v2/hub/bench/pace" "$T/pace.txt" 8 >/dev/null ||
        die "E4 run $r: pulling the small images through ours failed"
    pull_s=$(secs_since "$t0")
    ecr_drain "$EO_PORT" "$PACE_N" "$DRAIN_MAX"
    ecr_counts
    read -r n max1 mean span < <(python3 "$BENCH_PY" put-rate "$T/aws-counts.json")
    [ "$n" -ge "$PACE_N" ] || die "E4 run $r: $n manifest PUTs for $PACE_N images"
    record ecr_put_max_1s ours "$max1"
    record ecr_put_mean_rate ours "$mean"
    bench_stop "$EO_PID"
    rm -rf "$T/ecr-pace-$r"
    echo "    run $r: pulls $pull_s s; $n manifest PUTs over $span s: busiest second $max1, mean $mean/s; queue empty $DRAIN_S s after the pulls"
done

# ---- E5. two appliances, one cold image --------------------------------------------------
say "E5. two appliances (own disks, one ECR, one upstream) pull test/big: at the same instant, then one after the other's push x $RUNS"
for r in $(seq 1 "$RUNS"); do
    ecr_start "ecr-twoa-$r" "$T/ecr-twoa-$r" "two$r" true "$FAKE_URL"
    A=$EO A_PORT=$EO_PORT A_PID=$EO_PID
    ecr_start "ecr-twob-$r" "$T/ecr-twob-$r" "two$r" true "$FAKE_URL"
    B=$EO B_PORT=$EO_PORT B_PID=$EO_PID
    settle
    up_reset
    ecr_reset
    (SKOPEO_ID=-a skopeo_copy "$A/hub/test/big:latest" "$BIG_DIGEST") &
    pa=$!
    (SKOPEO_ID=-b skopeo_copy "$B/hub/test/big:latest" "$BIG_DIGEST") &
    pb=$!
    E2E_PIDS+=("$pa" "$pb")
    ok=1
    wait "$pa" || ok=0
    wait "$pb" || ok=0
    bench_forget "$pa" "$pb"
    [ $ok = 1 ] || die "E5 run $r: a simultaneous copy failed"
    up_bytes
    record ecr_two_once_x ours "$UPB_X"
    record ecr_two_once_gets ours "$UPB_GETS"
    once="$UPB_X x ($UPB_GETS blob GETs)"
    ecr_drain "$A_PORT" 1 "$DRAIN_MAX"
    ecr_drain "$B_PORT" 1 "$DRAIN_MAX"
    ecr_counts
    read -r _ _ _ _ ubytes < <(python3 "$BENCH_PY" ecr-uploads "$T/aws-counts.json")
    record ecr_two_once_pushed_x ours "$(calc "$ubytes / $UPB_IMAGE")"
    bench_stop "$A_PID"
    bench_stop "$B_PID"
    rm -rf "$T/ecr-twoa-$r" "$T/ecr-twob-$r"

    ecr_start "ecr-seqa-$r" "$T/ecr-seqa-$r" "seq$r" true "$FAKE_URL"
    settle
    skopeo_copy "$EO/hub/test/big:latest" "$BIG_DIGEST"
    ecr_drain "$EO_PORT" 1 "$DRAIN_MAX"
    bench_stop "$EO_PID"
    rm -rf "$T/ecr-seqa-$r"
    ecr_start "ecr-seqb-$r" "$T/ecr-seqb-$r" "seq$r" true "$FAKE_URL"
    settle
    up_reset
    skopeo_copy "$EO/hub/test/big:latest" "$BIG_DIGEST"
    up_bytes
    record ecr_two_after_x ours "$UPB_X"
    record ecr_two_after_gets ours "$UPB_GETS"
    bench_stop "$EO_PID"
    rm -rf "$T/ecr-seqb-$r"
    echo "    run $r: at once, upstream sent $once, ECR received $(calc "$ubytes / $UPB_IMAGE") x the image in uploads; after the first's push, the second made upstream send $UPB_X x ($UPB_GETS blob GETs)"
done
