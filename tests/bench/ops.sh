# The operations figures (O1, O2), sourced by tests/bench/run.sh after the ECR tier (or alone,
# BENCH_ONLY=ops). Uses run.sh's helpers and the plain upstream docker-registry (UP_URL); ours
# reaches it directly (no counting fake: 10,000 images through the Python fake would measure
# the fake). See tests/bench/README.md, "The operations figures".
#
# O1: a sweep of OPS_IMAGES images while serving. OPS_IMAGES distinct small images (a shared
#     1 KiB layer, a config and a manifest each; bench/many:t1..tN) are pushed to the upstream
#     and pulled through ours (manifest by tag, then config, OPS_THREADS keep-alive
#     connections), plus one hot image in another repository (bench/hot). Ours stops; each run
#     starts ours on a copy of that data dir with a lifecycle policy that keeps the OPS_KEEP
#     most recently pushed images of a repository (so no sweep ran during the population, and
#     the periodic one is 600 s away). wrk GETs the hot tag's manifest for OPS_LOAD_SECS with
#     no sweep (ref), then again for OPS_LOAD_SECS with `ecr-ptc-proxy gc` started 1 s in
#     (ours).
# O2: memory while `ecr-ptc-proxy list` walks OPS_TAGS tags vs OPS_PEER_TAGS (ref). The
#     OPS_PEER_TAGS tags are pushed to the upstream (one manifest, many tags) and pulled
#     through ours. The OPS_TAGS repository gets one tag pulled through ours; the other
#     OPS_TAGS - 1 rows are INSERTED DIRECTLY into the index.db ours created, with ours
#     stopped, copying that real row (only the tag differs): pushing 100,000 tags into
#     docker-registry runs at about 190 tags/s here (about 9 minutes), far too slow.
#     The CLI's peak RSS (GNU time %M), the daemon's peak RSS (VmRSS every 20 ms, VmHWM reset)
#     and its growth over the RSS before the walk, the walk's wall time; JSON and text forms.

OPS_TIME=${OPS_TIME:-/usr/bin/time}
[ -x "$OPS_TIME" ] || die "ops: GNU time ($OPS_TIME) is needed for the CLI's peak RSS"

# ops_start NAME DATA_DIR POLICY(0|1) -> OP (host:port), OP_PID, OP_CFG. With POLICY 1 the rule
# keeps the OPS_KEEP most recently pushed images of each repository and expires the rest.
ops_start() {
    local name=$1 data=$2 policy=$3 port code life=""
    port=$(free_port)
    mkdir -p "$data"
    [ "$policy" = 1 ] && life=', "lifecycle_policy": {"rules": [{"rulePriority": 1, "description": "keep the newest",
   "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": '"$OPS_KEEP"'},
   "action": {"type": "expire"}}]}'
    OP_CFG="$T/$name.json"
    cat >"$OP_CFG" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$data", "min_free_space": "1GiB",
 "rules": [{"prefix": "hub", "upstream": "$UP_URL", "allow_private_redirects": true$life}]}
JSON
    "$PROXY_BIN" check-config --config "$OP_CFG" >/dev/null || die "ops: the config $OP_CFG is refused"
    start_proxy "$name" --config "$OP_CFG"
    OP_PID=$PROXY_PID
    OP="127.0.0.1:$port"
    wait_up "$OP_PID" "$port" || { tail -n 20 "$T/$name.log" >&2; die "ecr-ptc-proxy ($name) did not start"; }
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$OP/v2/" || true)
    [ "$code" = 200 ] || die "ecr-ptc-proxy ($name): GET /v2/ answered $code"
}

# The hot tag's load: wrk with a Lua done() that prints the percentiles and the slowest request
# (a sweep that holds the event loop shows in the max and p99.9 before it shows in p99).
cat >"$T/ops-wrk.lua" <<LUA
wrk.headers["Accept"] = "$ACCEPT"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("OPS %d %d %d %d %d %d %d %d %.3f\n",
    math.floor(latency:percentile(50)), math.floor(latency:percentile(99)),
    math.floor(latency:percentile(99.9)), math.floor(latency.max), summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout, 0, summary.duration / 1e6))
end
LUA
# ops_wrk URL SECS OUT: wrk -t2 -cOPS_CONNS for SECS into OUT (run in the background by the
# caller when a sweep must start meanwhile).
ops_wrk() {
    timeout $(($2 + 90)) wrk -t2 -c"$OPS_CONNS" -d"${2}s" --timeout 60s -s "$T/ops-wrk.lua" "$1" >"$3" 2>&1
}
# ops_wrk_parse OUT -> W_RPS W_P50 W_P99 W_P999 W_MAX W_N W_NON2XX W_ERRS
ops_wrk_parse() {
    local out
    out=$(python3 "$BENCH_PY" wrk-ops "$1") || { cat "$1" >&2; die "wrk output"; }
    read -r W_RPS W_P50 W_P99 W_P999 W_MAX W_N W_NON2XX W_ERRS <<<"$out"
    [ "$W_N" -gt "$W_NON2XX" ] || die "wrk: no successful request ($W_NON2XX non-2xx of $W_N)"
}

# ---- O1. a sweep of OPS_IMAGES images while serving --------------------------------------
say "O1. populating: $OPS_IMAGES small images pushed to the upstream and pulled through ours ($OPS_THREADS connections)"
t0=$(now_ns)
python3 "$BENCH_PY" many-images "$UP_URL" bench/many "$OPS_IMAGES" "$OPS_THREADS" "$T/ops-images.txt" ||
    die "pushing $OPS_IMAGES images failed"
push_s=$(secs_since "$t0")
HOT_DIGEST=$(python3 "$BENCH_PY" many-tags "$UP_URL" bench/hot 1 1 hot) || die "pushing the hot image failed"
read -r _ OPS_LAYER OPS_LAYER_SIZE <"$T/ops-images.txt"
OPS_POP="$T/ops-pop"
ops_start ops-pop "$OPS_POP" 0
t0=$(now_ns)
python3 "$BENCH_PY" pull-many "http://$OP/v2/hub/bench/many" "$T/ops-images.txt" "$OPS_THREADS" manifest+config >/dev/null ||
    die "pulling $OPS_IMAGES images through ours failed"
pull_s=$(secs_since "$t0")
fetch "http://$OP/v2/hub/bench/many/blobs/$OPS_LAYER" "$OPS_LAYER_SIZE"
HOT_URL="http://$OP/v2/hub/bench/hot/manifests/hot000000"
check_manifest "$HOT_URL" "$HOT_DIGEST"
bench_stop "$OP_PID"
record ops_populate_push_s ours "$push_s"
record ops_populate_pull_s ours "$pull_s"
n=$(sqlite3 "$OPS_POP/index.db" "SELECT count(*) FROM tags t JOIN repositories r ON r.id = t.repo_id WHERE r.name = 'bench/many'") ||
    die "sqlite3 on the index failed"
[ "$n" = "$OPS_IMAGES" ] || die "ours' index holds $n tags of bench/many, want $OPS_IMAGES"
echo "    pushed in $push_s s, pulled through ours in $pull_s s ($n tags cached)"
rm -f "$OPS_POP/admin.sock"

say "O1. manifest GET of a fresh tag, $OPS_CONNS connections: ${OPS_LOAD_SECS}s without a sweep, then ${OPS_LOAD_SECS}s with \`gc\` expiring $((OPS_IMAGES - OPS_KEEP)) of $OPS_IMAGES images (fresh copy of the cache each run) x $RUNS"
for r in $(seq 1 "$RUNS"); do
    data="$T/ops-gc-$r"
    rm -rf "$data"
    cp -a "$OPS_POP" "$data" || die "copying the populated data dir failed"
    ops_start "ops-gc-$r" "$data" 1
    url="http://$OP/v2/hub/bench/hot/manifests/hot000000"
    check_manifest "$url" "$HOT_DIGEST"
    ops_wrk "$url" 1 "$T/ops-wrk-warm.out" || die "wrk warm-up failed"

    ops_wrk "$url" "$OPS_LOAD_SECS" "$T/ops-wrk-base.out" || { cat "$T/ops-wrk-base.out" >&2; die "wrk failed"; }
    ops_wrk_parse "$T/ops-wrk-base.out"
    record ops_gc_p50_ms ref "$W_P50"
    record ops_gc_p99_ms ref "$W_P99"
    record ops_gc_p999_ms ref "$W_P999"
    record ops_gc_max_ms ref "$W_MAX"
    record ops_gc_rps ref "$W_RPS"
    base="p50 $W_P50 ms, p99 $W_P99 ms, p99.9 $W_P999 ms, max $W_MAX ms, $W_RPS req/s"
    [ "$W_NON2XX" = 0 ] && [ "$W_ERRS" = 0 ] || note ops_gc_p99_ms ref "run $r: wrk: $W_NON2XX non-2xx, $W_ERRS socket errors of $W_N"

    ops_wrk "$url" "$OPS_LOAD_SECS" "$T/ops-wrk-gc.out" &
    wrk_pid=$!
    E2E_PIDS+=("$wrk_pid")
    t_load=$(now_ns)
    sleep 1
    t0=$(now_ns)
    timeout 600 "$PROXY_BIN" gc --config "$OP_CFG" --output json >"$T/ops-gc-$r.out" 2>"$T/ops-gc-$r.err" ||
        { cat "$T/ops-gc-$r.err" >&2; die "ecr-ptc-proxy gc failed"; }
    gc_s=$(secs_since "$t0")
    gc_end=$(secs_since "$t_load")
    wait "$wrk_pid" || { cat "$T/ops-wrk-gc.out" >&2; die "wrk during the sweep failed"; }
    bench_forget "$wrk_pid"
    ops_wrk_parse "$T/ops-wrk-gc.out"
    record ops_gc_p50_ms ours "$W_P50"
    record ops_gc_p99_ms ours "$W_P99"
    record ops_gc_p999_ms ours "$W_P999"
    record ops_gc_max_ms ours "$W_MAX"
    record ops_gc_rps ours "$W_RPS"
    [ "$W_NON2XX" = 0 ] && [ "$W_ERRS" = 0 ] || note ops_gc_p99_ms ours "run $r: wrk: $W_NON2XX non-2xx, $W_ERRS socket errors of $W_N"
    awk -v e="$gc_end" -v w="$OPS_LOAD_SECS" 'BEGIN { exit !(e < w) }' ||
        note ops_gc_s ours "run $r: the sweep ended ${gc_end}s after the load started, past its ${OPS_LOAD_SECS}s window"

    read -r images files freed < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(len(d["images"]), d["files"], d["freed"])' "$T/ops-gc-$r.out") || die "the gc answer is not what it should be"
    usec=""
    for _ in $(seq 1 50); do
        usec=$(sed -n 's/.* gc-done .*usec=\([0-9]*\).*/\1/p' "$T/ops-gc-$r.log" | tail -n 1)
        [ -n "$usec" ] && break
        sleep 0.1
    done
    [ -n "$usec" ] || die "no gc-done line with usec= in ours' log"
    record ops_gc_s ours "$gc_s"
    record ops_gc_daemon_s ours "$(calc "$usec / 1e6")"
    record ops_gc_images ours "$images"
    record ops_gc_files ours "$files"
    record ops_gc_freed_kib ours "$(calc "$freed / 1024")"
    [ "$images" = $((OPS_IMAGES - OPS_KEEP)) ] ||
        note ops_gc_images ours "run $r: $images images expired, want $((OPS_IMAGES - OPS_KEEP))"
    check_manifest "$url" "$HOT_DIGEST"
    bench_stop "$OP_PID"
    left=$(sqlite3 "$data/index.db" "SELECT count(*) FROM tags t JOIN repositories r ON r.id = t.repo_id WHERE r.name = 'bench/many'") ||
        die "sqlite3 on the index failed"
    [ "$left" = "$OPS_KEEP" ] || note ops_gc_images ours "run $r: $left tags of bench/many left after the sweep, want $OPS_KEEP"
    rm -rf "$data"
    echo "    run $r: without a sweep $base"
    echo "    run $r: with the sweep   p50 $W_P50 ms, p99 $W_P99 ms, p99.9 $W_P999 ms, max $W_MAX ms, $W_RPS req/s; gc $gc_s s (daemon $usec us): $images images, $files files, $freed bytes; $left tags left"
done
rm -rf "$OPS_POP"

# ---- O2. memory while `list` walks OPS_TAGS tags versus OPS_PEER_TAGS ------------------------
say "O2. populating: $OPS_PEER_TAGS tags pushed and pulled through ours; $OPS_TAGS tags: one pulled, the rest inserted into the index directly"
OPS_TD="$T/ops-tags"
PEER_TAG_DIGEST=$(python3 "$BENCH_PY" many-tags "$UP_URL" bench/tags-peer "$OPS_PEER_TAGS" "$OPS_THREADS" tag) ||
    die "pushing $OPS_PEER_TAGS tags failed"
BIG_TAG_DIGEST=$(python3 "$BENCH_PY" many-tags "$UP_URL" bench/tags-many 1 1 tag) || die "pushing the tagged image failed"
awk -v n="$OPS_PEER_TAGS" -v d="$PEER_TAG_DIGEST" 'BEGIN { for (i = 0; i < n; i++) printf "tag%06d %s\n", i, d }' >"$T/ops-tags-peer.txt"
ops_start ops-tags "$OPS_TD" 0
t0=$(now_ns)
python3 "$BENCH_PY" pull-many "http://$OP/v2/hub/bench/tags-peer" "$T/ops-tags-peer.txt" "$OPS_THREADS" manifest >/dev/null ||
    die "pulling $OPS_PEER_TAGS tags through ours failed"
tpull_s=$(secs_since "$t0")
check_manifest "http://$OP/v2/hub/bench/tags-many/manifests/tag000000" "$BIG_TAG_DIGEST"
bench_stop "$OP_PID"
record ops_tags_pull_per_s ours "$(calc "$OPS_PEER_TAGS / $tpull_s")"
cols=$(sqlite3 "$OPS_TD/index.db" "SELECT group_concat(CASE name WHEN 'tag' THEN printf('printf(''tag%%06d'', seq.i)') ELSE 't.' || name END, ', ') FROM pragma_table_info('tags')") ||
    die "sqlite3 on the index failed"
t0=$(now_ns)
sqlite3 "$OPS_TD/index.db" <<SQL || die "inserting $OPS_TAGS tags failed"
BEGIN;
WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $OPS_TAGS - 1)
INSERT INTO tags SELECT $cols
  FROM seq, tags t JOIN repositories r ON r.id = t.repo_id
 WHERE r.rule = 'hub' AND r.name = 'bench/tags-many' AND t.tag = 'tag000000';
COMMIT;
SQL
ins_s=$(secs_since "$t0")
for repo in tags-many tags-peer; do
    n=$(sqlite3 "$OPS_TD/index.db" "SELECT count(*) FROM tags t JOIN repositories r ON r.id = t.repo_id WHERE r.name = 'bench/$repo'")
    want=$OPS_TAGS
    [ $repo = tags-peer ] && want=$OPS_PEER_TAGS
    [ "$n" = "$want" ] || die "the index holds $n tags of bench/$repo, want $want"
done
echo "    $OPS_PEER_TAGS tags pulled through ours in $tpull_s s ($(calc "$OPS_PEER_TAGS / $tpull_s") tags/s); $((OPS_TAGS - 1)) rows inserted in $ins_s s"
rm -f "$OPS_TD/admin.sock"

say "O2. ecr-ptc-proxy list of $OPS_TAGS tags vs $OPS_PEER_TAGS (JSON to /dev/null, then text), a fresh daemon for each: CLI and daemon peak RSS, wall time x $RUNS"
for r in $(seq 1 "$RUNS"); do
    order="ours ref"
    [ $((r % 2)) = 0 ] && order="ref ours"
    for who in $order; do
        # A fresh daemon: the RSS before the walk is its own, not what an earlier walk left.
        ops_start "ops-list-$who-$r" "$OPS_TD" 0
        curl -s -o /dev/null -m 5 "http://$OP/v2/" || true
        sleep 0.2
        if [ $who = ours ]; then repo=hub/bench/tags-many want=$OPS_TAGS; else repo=hub/bench/tags-peer want=$OPS_PEER_TAGS; fi
        # JSON to /dev/null: the measured walk.
        before=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$OP_PID/status") && [ -n "$before" ] ||
            die "ours' /proc status is unreadable"
        sampler_start "$OP_PID"
        t0=$(now_ns)
        timeout 600 "$OPS_TIME" -f %M -o "$T/ops-time.out" "$PROXY_BIN" list "$repo" --config "$OP_CFG" --output json \
            >/dev/null 2>"$T/ops-list.err" || { cat "$T/ops-list.err" >&2; die "ecr-ptc-proxy list $repo failed"; }
        list_s=$(secs_since "$t0")
        sampler_stop
        cli_kib=$(tail -n 1 "$T/ops-time.out")
        record ops_list_cli_rss_mib "$who" "$(calc "$cli_kib / 1024")"
        record ops_list_daemon_rss_mib "$who" "$SAMPLE_PEAK_MIB"
        record ops_list_daemon_growth_mib "$who" "$(calc "$SAMPLE_PEAK_MIB - $before / 1024")"
        record ops_list_s "$who" "$list_s"
        record ops_list_tags_per_s "$who" "$(calc "$want / $list_s")"
        j="json $list_s s, CLI $(calc "$cli_kib / 1024") MiB, daemon $SAMPLE_PEAK_MIB MiB (before $(calc "$before / 1024"))"
        # Text: the table a person reads; its rows are counted.
        sampler_start "$OP_PID"
        t0=$(now_ns)
        timeout 600 "$OPS_TIME" -f %M -o "$T/ops-time.out" "$PROXY_BIN" list "$repo" --config "$OP_CFG" \
            >"$T/ops-list.txt" 2>"$T/ops-list.err" || { cat "$T/ops-list.err" >&2; die "ecr-ptc-proxy list $repo failed"; }
        text_s=$(secs_since "$t0")
        sampler_stop
        cli_kib=$(tail -n 1 "$T/ops-time.out")
        rows=$(grep -c '^tag[0-9]' "$T/ops-list.txt" || true)
        [ "$rows" = "$want" ] || die "ecr-ptc-proxy list $repo printed $rows tags, want $want"
        record ops_list_text_cli_rss_mib "$who" "$(calc "$cli_kib / 1024")"
        record ops_list_text_daemon_rss_mib "$who" "$SAMPLE_PEAK_MIB"
        record ops_list_text_s "$who" "$text_s"
        echo "    run $r, $want tags: $j; text $text_s s, CLI $(calc "$cli_kib / 1024") MiB, daemon $SAMPLE_PEAK_MIB MiB"
        bench_stop "$OP_PID"
        rm -f "$OPS_TD/admin.sock"
    done
done
rm -rf "$OPS_TD" "$T/ops-list.txt"
