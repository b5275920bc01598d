#!/usr/bin/env bash
# The benchmark: ecr-ptc-proxy ("ours") against CNCF distribution in proxy mode ("peer", the
# pull-through cache most teams run), nginx serving the same files from disk ("the limit") and
# the upstream registry itself ("direct"), all on loopback. Prints one table (median of the
# runs, min-max) and writes results.json. See tests/bench/README.md.
#
#   PROXY_BIN=build/dev/ecr-ptc-proxy TOP_SRCDIR=$PWD bash tests/bench/run.sh [--smoke]
#
# --smoke (or BENCH_SMOKE=1): every step with tiny sizes, one run, for `make check`.
# Environment: BENCH_RUNS (default 3; smoke 1), BENCH_OUT (results.json path; default
# tests/bench/results.json, smoke: under the temp dir), BENCH_KEEP=1 keeps the temp dir,
# BENCH_ONLY=ecr runs only the ECR tier's figures (tests/bench/ecr.sh, E1-E5; results default
# to tests/bench/results-ecr.json, so the full results.json is never replaced by a part),
# BENCH_ONLY=ops only the operations figures (tests/bench/ops.sh, O1-O2: a sweep while serving,
# memory of `list`; results default to tests/bench/results-ops.json).
#
# Exit status: 0 when every step ran (targets missed or not), 1 when the harness broke (a server
# did not start, a copy or a download failed), 2 bad usage or missing tools (77 with --smoke:
# automake's SKIP).
#
# Topology (every process on 127.0.0.1, started here and stopped by PID):
#
#   upstream: docker-registry (plain) <── fake_upstream.py --auth none (counts requests)
#                                              ^                  ^
#                               ours: ecr-ptc-proxy      peer: docker-registry proxy mode
#   limit: nginx serving hard links of ours' stored blob files + a 2 KiB file
#
# The ECR tier's figures (tests/bench/ecr.sh, run after figures 1-8) add aws_fake.py (ECR's
# API, data plane and S3) in front of a second docker-registry.
set -euo pipefail

SMOKE=${BENCH_SMOKE:-0}
for arg in "$@"; do
    case $arg in
    --smoke) SMOKE=1 ;;
    -h | --help)
        sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: run.sh [--smoke]" >&2
        exit 2
        ;;
    esac
done
MISSING_EXIT=2
[ "$SMOKE" = 1 ] && MISSING_EXIT=77
ONLY=${BENCH_ONLY:-}
case $ONLY in
"" | ecr | ops) ;;
*)
    echo "bench: BENCH_ONLY=$ONLY: the values are ecr and ops" >&2
    exit 2
    ;;
esac

: "${PROXY_BIN:?PROXY_BIN must name the ecr-ptc-proxy binary}"
: "${TOP_SRCDIR:?TOP_SRCDIR must name the source tree}"
NGINX_BIN=${BENCH_NGINX:-/usr/sbin/nginx}
missing=()
for tool in curl python3 skopeo wrk hey ab sqlite3 "$NGINX_BIN" "${E2E_REGISTRY_BIN:-/usr/bin/docker-registry}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ -x "$PROXY_BIN" ] || missing+=("$PROXY_BIN")
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: missing: ${missing[*]} (deploy/debian-setup.sh installs them)" >&2
    exit "$MISSING_EXIT"
fi

BENCH_DIR="$TOP_SRCDIR/tests/bench"
BENCH_PY="$BENCH_DIR/bench.py"
E2E_KEEP=${BENCH_KEEP:-0}
# shellcheck source=../e2e/lib.sh
source "$TOP_SRCDIR/tests/e2e/lib.sh"
# shellcheck source=../e2e/lib_registry.sh
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"
T=$E2E_TMP
# A run takes a quarter of an hour: measure a copy, so that rebuilding the tree meanwhile
# cannot swap the binary under it (a server started later would not start, or be another).
cp "$PROXY_BIN" "$T/ecr-ptc-proxy" || { echo "bench: cannot copy $PROXY_BIN" >&2; exit 1; }
PROXY_BIN=$T/ecr-ptc-proxy

# ---- sizes -------------------------------------------------------------------------------
if [ "$SMOKE" = 1 ]; then
    RUNS=${BENCH_RUNS:-1}
    BIG_MIB=1 WARM_MIB=16 TTFB_MIB=8 HERD_MIB=8 HERD_N=50 RSS_MIB=4 RSS_N=50 RSS_SECS=3
    RSS_RATE=256K TAGS_N=1000 LOAD_SECS=1 NEED_GIB=1 PACE_N=10
    OPS_IMAGES=200 OPS_KEEP=100 OPS_TAGS=2000 OPS_PEER_TAGS=100 OPS_LOAD_SECS=3
    QUICK_RUNS=$RUNS
    OUT=${BENCH_OUT:-$T/results.json}
    MODE=smoke
else
    RUNS=${BENCH_RUNS:-3}
    BIG_MIB=20 WARM_MIB=1024 TTFB_MIB=512 HERD_MIB=256 HERD_N=50 RSS_MIB=64 RSS_N=1000 RSS_SECS=12
    RSS_RATE=256K TAGS_N=100000 LOAD_SECS=5 NEED_GIB=12 PACE_N=40
    OPS_IMAGES=10000 OPS_KEEP=5000 OPS_TAGS=100000 OPS_PEER_TAGS=1000 OPS_LOAD_SECS=10
    [ "$ONLY" = ops ] && NEED_GIB=2
    # Figures 1 and 4 cost a few seconds a run and scatter more: at least 5 runs.
    QUICK_RUNS=$((RUNS > 5 ? RUNS : 5))
    OUT=${BENCH_OUT:-$BENCH_DIR/results${ONLY:+-$ONLY}.json}
    MODE=full
fi
# O1-O2: keep-alive connections of the populating clients; wrk connections on the hot tag.
OPS_THREADS=8 OPS_CONNS=16
ACCEPT="application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"
RESULTS="$T/results.tsv"
: >"$RESULTS"
T_START=$(date +%s)

# ---- small helpers -----------------------------------------------------------------------
say() { echo "[$(date +%T) +$(($(date +%s) - T_START))s] $*"; }
die() {
    echo "bench: HARNESS ERROR: $*" >&2
    exit 1
}
record() { printf 'value\t%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }
note() {
    printf 'note\t%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"
    echo "    note [$1 $2]: $3"
}
now_ns() { date +%s%N; }
# settle: before a cold measurement, write back what earlier steps left dirty, so that nobody's
# first write waits behind someone else's writeback (at most 120 s).
settle() { timeout 120 sync || true; }
secs_since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.4f", (b - a) / 1e9 }'; }
calc() { awk "BEGIN { printf \"%.4f\", $1 }"; }

# bench_forget PID...: drop PIDs that have been waited for from E2E_PIDS, so the EXIT trap
# never signals a recycled PID.
bench_forget() {
    local keep=() p
    local -A drop=()
    for p in "$@"; do drop[$p]=1; done
    for p in "${E2E_PIDS[@]}"; do
        [ -n "${drop[$p]:-}" ] || keep+=("$p")
    done
    E2E_PIDS=("${keep[@]}")
}
bench_stop() { # PID: SIGTERM, at most 10 s, then SIGKILL (lib.sh's stop_pid)
    stop_pid "$1" 10 || true
    bench_forget "$1"
}

# The fake's request log.
up_reset() { fake_ctl reset-counts '' >/dev/null || die "fake upstream control failed"; }
# up_quiet: until the upstream has answered no request for 1 s (at most 30 s): a peer that went
# upstream for every request may still be working through them, and must not eat the CPU of
# the next measurement.
up_quiet() {
    local i last=-1 n
    for i in $(seq 1 30); do
        n=$(fake_ctl counts | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["requests"]))') || return 0
        [ "$n" = "$last" ] && return 0
        last=$n
        sleep 1
    done
}
up_save() { fake_ctl counts >"$T/counts.json" || die "fake upstream control failed"; }
up_total() { # -> UP_TOTAL: upstream requests of any kind since the last reset
    up_save
    UP_TOTAL=$(python3 "$BENCH_PY" upstream-total "$T/counts.json") || die "counting failed"
}
up_fetches() { # DIGEST... -> UP_FETCH (one count per digest, in order), UP_FETCH_SUM
    local line
    up_save
    UP_FETCH=()
    UP_FETCH_SUM=0
    while read -r _ line; do
        UP_FETCH+=("$line")
        UP_FETCH_SUM=$((UP_FETCH_SUM + line))
    done < <(python3 "$BENCH_PY" fetches "$T/counts.json" "$@")
    [ ${#UP_FETCH[@]} = $# ] || die "counting fetches failed"
}

# fetch URL SIZE: one GET to /dev/null, checked for 200 and SIZE bytes.
# Sets F_TOTAL (s), F_TTFB (s), F_SPEED (bytes/s).
fetch() {
    local url=$1 size=$2 out code got
    out=$(curl -s -o /dev/null --max-time 900 \
        -w '%{http_code} %{size_download} %{time_total} %{time_starttransfer} %{speed_download}' \
        "$url") || die "GET $url: curl failed ($out)"
    read -r code got F_TOTAL F_TTFB F_SPEED <<<"$out"
    [ "$code" = 200 ] && [ "$got" = "$size" ] ||
        die "GET $url: status $code, $got bytes (want 200, $size)"
}

# skopeo_copy HOST:PORT/REPO:TAG DIGEST: skopeo copy to a fresh dir: layout, timed (S_SECS);
# the copied manifest must hash to DIGEST. SKOPEO_SRC_CREDS=USER:PW sends credentials (else
# none); SKOPEO_ID=x names the destination and output files, for copies running side by side.
skopeo_copy() {
    local src=$1 want=$2 dest="$T/skopeo-dest${SKOPEO_ID:-}" out="$T/skopeo${SKOPEO_ID:-}.out" t0 got
    local creds=(--src-no-creds)
    [ -z "${SKOPEO_SRC_CREDS:-}" ] || creds=(--src-creds "$SKOPEO_SRC_CREDS")
    rm -rf "$dest"
    t0=$(now_ns)
    timeout 600 skopeo copy -q --preserve-digests --src-tls-verify=false "${creds[@]}" \
        "docker://$src" "dir:$dest" >"$out" 2>&1 || {
        cat "$out" >&2
        die "skopeo copy docker://$src failed"
    }
    S_SECS=$(secs_since "$t0")
    got="sha256:$(sha256sum <"$dest/manifest.json" | cut -d' ' -f1)"
    [ "$got" = "$want" ] || die "skopeo copy $src: manifest $got, want $want"
    [ "$(find "$dest" -type f | wc -l)" -ge 7 ] || die "skopeo copy $src: blobs missing"
    rm -rf "$dest"
}

# ---- the servers -------------------------------------------------------------------------

# wait_up PID PORT: until 127.0.0.1:PORT accepts (at most 15 s); fails at once if PID exits.
wait_up() {
    local pid=$1 port=$2 i
    for i in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { echo "process $pid exited" >&2; return 1; }
        sleep 0.05
    done
    echo "nothing listening on 127.0.0.1:$port after 15 s" >&2
    return 1
}

# ours_start NAME DATA_DIR -> OURS (host:port), OURS_PID. Log $T/NAME.log.
ours_start() {
    local name=$1 data=$2 port code
    port=$(free_port)
    mkdir -p "$data"
    cat >"$T/$name.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$data", "min_free_space": "1GiB",
 "rules": [{"prefix": "hub", "upstream": "$FAKE_URL", "allow_private_redirects": true}]}
JSON
    start_proxy "$name" --config "$T/$name.json"
    OURS_PID=$PROXY_PID
    OURS="127.0.0.1:$port"
    wait_up "$OURS_PID" "$port" || { tail -n 20 "$T/$name.log" >&2; die "ecr-ptc-proxy ($name) did not start"; }
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$OURS/v2/" || true)
    [ "$code" = 200 ] || die "ecr-ptc-proxy ($name): GET /v2/ answered $code"
}

# peer_start NAME STORAGE -> PEER (host:port), PEER_PID: docker-registry with proxy.remoteurl
# = the fake, its own filesystem storage, Debian's default cache (inmemory blob descriptors);
# log level info with the access log off: one log line per request, like ours.
peer_start() {
    local name=$1 storage=$2 port i code=
    port=$(free_port)
    mkdir -p "$storage"
    cat >"$T/$name.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $storage
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: bench-not-a-secret
  headers:
    X-Content-Type-Options: [nosniff]
proxy:
  remoteurl: $FAKE_URL
EOF
    (
        for v in $(compgen -e | grep '^REGISTRY_' || true); do unset "$v"; done
        exec "$E2E_REGISTRY_BIN" serve "$T/$name.yml"
    ) >"$T/$name.log" 2>&1 </dev/null &
    PEER_PID=$!
    E2E_PIDS+=("$PEER_PID")
    PEER="127.0.0.1:$port"
    wait_up "$PEER_PID" "$port" || { tail -n 20 "$T/$name.log" >&2; die "peer ($name) did not start"; }
    for i in $(seq 1 100); do
        code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$PEER/v2/" || true)
        [ "$code" = 200 ] && return 0
        sleep 0.05
    done
    die "peer ($name): GET /v2/ answered $code"
}

# peer_wait STORAGE DIGEST...: the peer copies a blob into its storage in the background after
# (or while) serving it; wait (at most 300 s) until every DIGEST is there, so that its
# upstream fetches are over before they are counted or the next figure starts.
peer_wait() {
    local storage=$1 d i missing
    shift
    for i in $(seq 1 3000); do
        missing=0
        for d in "$@"; do
            [ -f "$storage/docker/registry/v2/blobs/sha256/${d:7:2}/${d:7}/data" ] || missing=1
        done
        [ $missing = 0 ] && return 0
        kill -0 "$PEER_PID" 2>/dev/null || die "peer died; see its log"
        sleep 0.1
    done
    die "peer did not store $* within 300 s"
}
# ours_wait DATA DIGEST...: until ours has committed every DIGEST to its store (at most 300 s).
ours_wait() {
    local data=$1 d i missing
    shift
    for i in $(seq 1 3000); do
        missing=0
        for d in "$@"; do [ -f "$data/blobs/sha256/${d:7:2}/${d:7}" ] || missing=1; done
        [ $missing = 0 ] && return 0
        sleep 0.1
    done
    die "ours did not store $* within 300 s"
}

# nginx_start: nginx in the foreground (daemon off) with its prefix, pid file and logs in
# $T/nginx; serves $T/nginx/html (blobs/<hex> and manifest-2k). -> NGINX (host:port), NGINX_PID
nginx_start() {
    local dir="$T/nginx" port user_line=""
    mkdir -p "$dir/html/blobs" "$dir/tmp"
    port=$(free_port)
    # Workers of an nginx started as root drop to "nobody", who cannot read the temp dir.
    [ "$(id -u)" = 0 ] && user_line="user root;"
    cat >"$dir/nginx.conf" <<EOF
$user_line
daemon off;
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$port;
        root $dir/html;
        location = /manifest-2k { default_type application/vnd.oci.image.manifest.v1+json; }
    }
}
EOF
    "$NGINX_BIN" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" >"$T/nginx.log" 2>&1 </dev/null &
    NGINX_PID=$!
    E2E_PIDS+=("$NGINX_PID")
    NGINX="127.0.0.1:$port"
    wait_up "$NGINX_PID" "$port" || { cat "$T/nginx.log" "$dir/error.log" >&2 || true; die "nginx did not start"; }
}

# ---- load generators ---------------------------------------------------------------------

# check_manifest URL WANT_DIGEST|SIZE: one GET with the Accept header, 200 and the right body.
check_manifest() {
    local url=$1 want=$2 got
    curl -s -f -m 10 -H "Accept: $ACCEPT" -o "$T/m.body" "$url" || die "GET $url failed"
    if [ "${want#sha256:}" != "$want" ]; then
        got="sha256:$(sha256sum <"$T/m.body" | cut -d' ' -f1)"
    else
        got=$(stat -c %s "$T/m.body")
    fi
    [ "$got" = "$want" ] || die "GET $url: body $got, want $want"
}

# wrk_run FIG WHO URL CONNS: wrk for LOAD_SECS with the manifest Accept header. Records
# FIG_rps, FIG_p99_ms (CONNS 64) or FIG_p50_ms/FIG_p99_ms (CONNS 1).
wrk_run() {
    local fig=$1 who=$2 url=$3 conns=$4 threads=2 out rps p50 p99 non2xx errs n
    [ "$conns" -lt 2 ] && threads=1
    timeout $((LOAD_SECS + 60)) wrk -t"$threads" -c"$conns" -d"${LOAD_SECS}s" --timeout 10s --latency \
        -H "Accept: $ACCEPT" "$url" >"$T/wrk.out" 2>&1 || { cat "$T/wrk.out" >&2; die "wrk $url failed"; }
    out=$(python3 "$BENCH_PY" wrk "$T/wrk.out") || { cat "$T/wrk.out" >&2; die "wrk output"; }
    read -r rps p50 p99 non2xx errs n <<<"$out"
    [ "$n" -gt "$non2xx" ] || die "wrk $url: no successful request ($non2xx non-2xx of $n)"
    if [ "$conns" -lt 2 ]; then
        record "${fig}_p50_ms" "$who" "$p50"
    else
        record "${fig}_rps" "$who" "$rps"
    fi
    record "${fig}_p99_ms" "$who" "$p99"
    [ "$non2xx" = 0 ] && [ "$errs" = 0 ] || note "$fig" "$who" "wrk: $non2xx non-2xx, $errs socket errors of $n requests"
    echo "    $who: $rps req/s, p50 $p50 ms, p99 $p99 ms ($n requests)"
}

# hey_run FIG WHO URL: HEAD with hey, 64 workers for LOAD_SECS. Records FIG_rps, FIG_p99_ms.
hey_run() {
    local fig=$1 who=$2 url=$3 out rps p99 ok bad errs
    timeout $((LOAD_SECS + 60)) hey -z "${LOAD_SECS}s" -c 64 -t 10 -m HEAD -H "Accept: $ACCEPT" "$url" \
        >"$T/hey.out" 2>&1 || { cat "$T/hey.out" >&2; die "hey $url failed"; }
    out=$(python3 "$BENCH_PY" hey "$T/hey.out") || { cat "$T/hey.out" >&2; die "hey output"; }
    read -r rps p99 ok bad errs <<<"$out"
    [ "$ok" -gt 0 ] || die "hey $url: no successful request"
    record "${fig}_rps" "$who" "$rps"
    record "${fig}_p99_ms" "$who" "$p99"
    [ "$bad" = 0 ] && [ "$errs" = 0 ] || note "$fig" "$who" "hey: $bad non-2xx, $errs errors, $ok ok"
    echo "    $who: $rps req/s, p99 $p99 ms ($ok ok)"
}

# ab_run FIG WHO URL: HEAD with ApacheBench (-k -i), 64 connections for LOAD_SECS: one C
# thread, so the client takes less of the 2 cores than hey's goroutines. Records FIG_rps,
# FIG_p99_ms (ab prints whole milliseconds).
ab_run() {
    local fig=$1 who=$2 url=$3 out rps p99 n failed non2xx
    timeout $((LOAD_SECS + 60)) ab -q -k -i -c 64 -t "$LOAD_SECS" -n 100000000 -s 10 -H "Accept: $ACCEPT" "$url" \
        >"$T/ab.out" 2>&1 || { cat "$T/ab.out" >&2; die "ab $url failed"; }
    out=$(python3 "$BENCH_PY" ab "$T/ab.out") || { cat "$T/ab.out" >&2; die "ab output"; }
    read -r rps p99 n failed non2xx <<<"$out"
    [ "$n" -gt "$non2xx" ] || die "ab $url: no successful request"
    record "${fig}_rps" "$who" "$rps"
    record "${fig}_p99_ms" "$who" "$p99"
    [ "$failed" = 0 ] && [ "$non2xx" = 0 ] || note "$fig" "$who" "ab: $failed failed, $non2xx non-2xx of $n"
    echo "    $who (ab): $rps req/s, p99 $p99 ms ($n requests)"
}

# sampler_start PID / sampler_stop -> SAMPLE_PEAK_MIB, SAMPLE_FDS, SAMPLE_ANON_MIB,
# SAMPLE_FILE_MIB: peak RSS of PID (VmHWM reset first, plus VmRSS every 20 ms) while something
# runs; the largest RssAnon (heap) and RssFile (mmapped files) seen in the samples.
sampler_start() {
    rm -f "$T/sample.stop" "$T/sample.json"
    python3 "$BENCH_PY" sample "$1" "$T/sample.json" "$T/sample.stop" 900 &
    SAMPLER_PID=$!
    E2E_PIDS+=("$SAMPLER_PID")
    sleep 0.1
}
sampler_stop() {
    touch "$T/sample.stop"
    wait "$SAMPLER_PID" || die "the memory sampler failed"
    bench_forget "$SAMPLER_PID"
    [ -s "$T/sample.json" ] || die "the memory sampler wrote nothing"
    read -r SAMPLE_PEAK_MIB SAMPLE_FDS SAMPLE_ANON_MIB SAMPLE_FILE_MIB < <(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print("%.1f %d %.1f %.1f" % (s["peak_kib"] / 1024.0, s["max_fds"], s["max_anon_kib"] / 1024.0,
                             s["max_file_kib"] / 1024.0))' "$T/sample.json")
}

# many_gets N URL MAX_TIME [CURL_ARGS...]: N concurrent curls of URL to /dev/null, each bounded
# by MAX_TIME. -> MANY_OK (answers with status 200 that got SIZE_WANT bytes, or, with
# --limit-rate, any bytes), MANY_WALL (s)
many_gets() {
    local n=$1 url=$2 maxt=$3 dir="$T/many" i p t0 pids=()
    shift 3
    rm -rf "$dir"
    mkdir -p "$dir"
    t0=$(now_ns)
    for i in $(seq 1 "$n"); do
        curl -s -o /dev/null --max-time "$maxt" -w '%{http_code} %{size_download}\n' "$@" "$url" \
            >"$dir/$i" 2>/dev/null &
        pids+=($!)
    done
    E2E_PIDS+=("${pids[@]}")
    for p in "${pids[@]}"; do wait "$p" || true; done
    MANY_WALL=$(secs_since "$t0")
    bench_forget "${pids[@]}"
    MANY_OK=$(cat "$dir"/* | awk -v want="$SIZE_WANT" '$1 == 200 && (want == "" || $2 == want)' | wc -l)
}

# ---- the report --------------------------------------------------------------------------
# bench_report: the run's metadata, the table and results.json; exits 0.
bench_report() {
    say "done measuring; report"
    python3 - "$T/meta.json" <<PY || die "writing the run's metadata failed"
import json, os, platform, subprocess, sys, time
def sh(*cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (p.stdout + p.stderr).strip().splitlines()[0] if (p.stdout + p.stderr).strip() else ""
    except Exception as e:
        return "?"
cpu = "?"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip()
        break
mem = 0
for line in open("/proc/meminfo"):
    if line.startswith("MemTotal:"):
        mem = round(int(line.split()[1]) / 1048576, 1)
meta = {
    "mode": "$MODE",
    "only": "$ONLY",
    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "machine": {"nproc": os.cpu_count(), "cpu_model": cpu, "kernel": platform.release(),
                "mem_gib": mem, "nofile": "$(ulimit -n)"},
    "params": {"runs": $RUNS, "big_mib": $BIG_MIB, "warm_mib": $WARM_MIB, "ttfb_mib": $TTFB_MIB,
               "herd_mib": $HERD_MIB, "herd_n": $HERD_N, "rss_mib": $RSS_MIB, "rss_n": $RSS_N,
               "rss_rate": "$RSS_RATE", "rss_secs": $RSS_SECS, "tags_n": $TAGS_N,
               "load_secs": $LOAD_SECS, "pace_n": $PACE_N, "ops_images": $OPS_IMAGES,
               "ops_keep": $OPS_KEEP, "ops_expire": $((OPS_IMAGES - OPS_KEEP)), "ops_tags": $OPS_TAGS,
               "ops_peer_tags": $OPS_PEER_TAGS, "ops_load_secs": $OPS_LOAD_SECS, "ops_conns": $OPS_CONNS,
               "duration_s": $(($(date +%s) - T_START))},
    "ours": sh("$PROXY_BIN", "--version"),
    "peer": "docker-registry (CNCF distribution) proxy mode: " + sh("${E2E_REGISTRY_BIN}", "--version"),
    "limit": sh("$NGINX_BIN", "-v"),
    "tools": {"curl": sh("curl", "--version"), "skopeo": sh("skopeo", "--version"),
              "wrk": sh("wrk", "--version")},
}
json.dump(meta, open(sys.argv[1], "w"), indent=2)
PY
    mkdir -p "$(dirname "$OUT")"
    python3 "$BENCH_PY" report "$RESULTS" "$T/meta.json" "$OUT" || die "the report failed"
    echo
    echo "results: $OUT (took $(($(date +%s) - T_START)) s)"
    exit 0
}

# ---- set up the upstream -----------------------------------------------------------------
avail_gib=$(df -Pk "$T" | awk 'NR == 2 { printf "%d", $4 / 1048576 }')
say "mode $MODE${ONLY:+ (only $ONLY)}, $RUNS run(s) per figure; temp dir $T ($avail_gib GiB free)"
[ "$avail_gib" -ge "$NEED_GIB" ] || die "need $NEED_GIB GiB free under $T, have $avail_gib"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if [ "$ONLY" = ops ]; then
    say "upstream: docker-registry (ops.sh pushes its own images)"
else
    say "upstream: docker-registry, seeded (test/big = 5 x $BIG_MIB MiB; blobs of $WARM_MIB, $TTFB_MIB, $HERD_MIB, $RSS_MIB MiB)"
fi
start_registry upstream || die "the upstream docker-registry did not start"
UP="127.0.0.1:$REGISTRY_PORT"
UP_URL=$REGISTRY_URL
if [ "$ONLY" = ops ]; then
    source "$BENCH_DIR/ops.sh"
    bench_report
fi
seed_images "$REGISTRY_URL" "$T/images.json" --set big --big-mib "$BIG_MIB" >/dev/null || die "seeding failed"
read -r BIG_DIGEST < <(python3 -c '
import json, sys
i = [x for x in json.load(open(sys.argv[1])) if x["repo"] == "test/big"][0]
print(i["digest"])' "$T/images.json")
mapfile -t BIG_BLOBS < <(python3 -c '
import json, sys
i = [x for x in json.load(open(sys.argv[1])) if x["repo"] == "test/big"][0]
print("\n".join(i["blobs"]))' "$T/images.json")
[ ${#BIG_BLOBS[@]} = 6 ] || die "test/big should have 6 blobs, has ${#BIG_BLOBS[@]}"
BREPO=bench/blobs
push() { python3 "$BENCH_PY" push-blob "$REGISTRY_URL" "$BREPO" "$1" "$2" || die "pushing a $1 MiB blob failed"; }
UP_URL=$REGISTRY_URL
B_WARM=$(push "$WARM_MIB" warm)
if [ "$ONLY" != ecr ]; then
    B_TTFB=$(push "$TTFB_MIB" ttfb)
    B_HERD=$(push "$HERD_MIB" herd)
    B_RSS=$(push "$RSS_MIB" rss)
fi
S_WARM=$((WARM_MIB << 20)) S_TTFB=$((TTFB_MIB << 20)) S_HERD=$((HERD_MIB << 20)) S_RSS=$((RSS_MIB << 20))
start_fake_upstream fake "$REGISTRY_URL" --auth none || die "the fake upstream did not start"
FAKE="127.0.0.1:$FAKE_PORT"

if [ "$ONLY" = ecr ]; then
    source "$BENCH_DIR/ecr.sh"
    bench_report
fi

ours_url() { echo "http://$OURS/v2/hub/$1"; }
peer_url() { echo "http://$PEER/v2/$1"; }

# ---- the warm caches: ours (W) and the peer (PW) -----------------------------------------
say "warming ours and the peer (test/big, the $WARM_MIB MiB and $RSS_MIB MiB blobs)"
W_DATA="$T/ours-warm"
PW_DATA="$T/peer-warm"
ours_start ours-warm "$W_DATA"
W=$OURS W_PID=$OURS_PID
peer_start peer-warm "$PW_DATA"
PW=$PEER PW_PID=$PEER_PID
skopeo_copy "$W/hub/test/big:latest" "$BIG_DIGEST"
skopeo_copy "$PW/test/big:latest" "$BIG_DIGEST"
OURS=$W PEER=$PW
fetch "$(ours_url "$BREPO/blobs/$B_WARM")" "$S_WARM"
fetch "$(ours_url "$BREPO/blobs/$B_RSS")" "$S_RSS"
fetch "$(peer_url "$BREPO/blobs/$B_WARM")" "$S_WARM"
fetch "$(peer_url "$BREPO/blobs/$B_RSS")" "$S_RSS"
ours_wait "$W_DATA" "${BIG_BLOBS[@]}" "$B_WARM" "$B_RSS"
peer_wait "$PW_DATA" "${BIG_BLOBS[@]}" "$B_WARM" "$B_RSS"

nginx_start
ln "$W_DATA/blobs/sha256/${B_WARM:7:2}/${B_WARM:7}" "$T/nginx/html/blobs/${B_WARM:7}" 2>/dev/null ||
    cp "$W_DATA/blobs/sha256/${B_WARM:7:2}/${B_WARM:7}" "$T/nginx/html/blobs/${B_WARM:7}"
head -c 2048 /dev/zero | tr '\0' 'x' >"$T/nginx/html/manifest-2k"
NG_BLOB="http://$NGINX/blobs/${B_WARM:7}"
NG_MANIFEST="http://$NGINX/manifest-2k"

# ---- 1. warm single-stream blob GET ------------------------------------------------------
say "1. warm GET of the $WARM_MIB MiB blob, single stream (ours, peer, nginx) x $QUICK_RUNS"
for r in $(seq 1 "$QUICK_RUNS"); do
    up_reset
    fetch "http://$W/v2/hub/$BREPO/blobs/$B_WARM" "$S_WARM"
    record warm_blob_mbps ours "$(calc "$F_SPEED / 1e6")"
    o_speed=$F_SPEED
    up_total
    [ "$UP_TOTAL" = 0 ] || note warm_blob_mbps ours "run $r: $UP_TOTAL upstream requests for a cached blob"
    up_reset
    fetch "http://$PW/v2/$BREPO/blobs/$B_WARM" "$S_WARM"
    record warm_blob_mbps peer "$(calc "$F_SPEED / 1e6")"
    p_speed=$F_SPEED
    up_total
    [ "$UP_TOTAL" = 0 ] || note warm_blob_mbps peer "run $r: $UP_TOTAL upstream requests for a cached blob"
    fetch "$NG_BLOB" "$S_WARM"
    record warm_blob_mbps ref "$(calc "$F_SPEED / 1e6")"
    echo "    run $r: ours $(calc "$o_speed / 1e6"), peer $(calc "$p_speed / 1e6"), nginx $(calc "$F_SPEED / 1e6") MB/s"
done

# ---- 2. warm skopeo copy -----------------------------------------------------------------
say "2. warm skopeo copy of test/big (ours, peer, direct from the registry) x $RUNS"
for r in $(seq 1 "$RUNS"); do
    up_reset
    skopeo_copy "$W/hub/test/big:latest" "$BIG_DIGEST"
    record warm_pull_s ours "$S_SECS"
    o=$S_SECS
    up_total
    record warm_pull_upstream ours "$UP_TOTAL"
    o_up=$UP_TOTAL
    up_reset
    skopeo_copy "$PW/test/big:latest" "$BIG_DIGEST"
    record warm_pull_s peer "$S_SECS"
    p=$S_SECS
    up_total
    record warm_pull_upstream peer "$UP_TOTAL"
    if [ "$UP_TOTAL" != 0 ]; then
        note warm_pull_upstream peer "run $r: $(python3 -c '
import json, sys, collections
c = collections.Counter(r["method"] + " " + r["kind"].split()[-1] for r in json.load(open(sys.argv[1]))["requests"])
print(", ".join("%d %s" % (n, k) for k, n in sorted(c.items())))' "$T/counts.json")"
    fi
    skopeo_copy "$UP/test/big:latest" "$BIG_DIGEST"
    record warm_pull_s ref "$S_SECS"
    echo "    run $r: ours $o s ($o_up upstream req), peer $p s ($UP_TOTAL upstream req), direct $S_SECS s"
done

# ---- 5. manifest GET and HEAD by fresh tag -----------------------------------------------
say "5. manifest GET (wrk) and HEAD (hey; ab for ours and nginx) by fresh tag, 64 connections, ${LOAD_SECS}s each (ours, peer, nginx 2 KiB) x $RUNS"
M_OURS="http://$W/v2/hub/test/big/manifests/latest"
M_PEER="http://$PW/v2/test/big/manifests/latest"
check_manifest "$M_OURS" "$BIG_DIGEST"
check_manifest "$M_PEER" "$BIG_DIGEST"
check_manifest "$NG_MANIFEST" 2048
for r in $(seq 1 "$RUNS"); do
    up_reset
    wrk_run mget ours "$M_OURS" 64
    up_total
    [ "$UP_TOTAL" = 0 ] || note mget_rps ours "run $r: $UP_TOTAL upstream requests during the GETs of a fresh tag"
    up_reset
    wrk_run mget peer "$M_PEER" 64
    up_quiet
    up_total
    note mget_rps peer "run $r: $UP_TOTAL upstream requests during the GETs"
    wrk_run mget ref "$NG_MANIFEST" 64
    up_reset
    hey_run mhead ours "$M_OURS"
    up_total
    [ "$UP_TOTAL" = 0 ] || note mhead_rps ours "run $r: $UP_TOTAL upstream requests during the HEADs of a fresh tag"
    up_reset
    hey_run mhead peer "$M_PEER"
    up_quiet
    up_total
    note mhead_rps peer "run $r: $UP_TOTAL upstream requests during the HEADs"
    hey_run mhead ref "$NG_MANIFEST"
    up_reset
    ab_run mhead_ab ours "$M_OURS"
    up_total
    [ "$UP_TOTAL" = 0 ] || note mhead_ab_rps ours "run $r: $UP_TOTAL upstream requests during the HEADs of a fresh tag"
    ab_run mhead_ab ref "$NG_MANIFEST"
done

# ---- 7a. peak RSS during many concurrent downloads of a cached blob ----------------------
say "7. peak RSS during $RSS_N concurrent GETs (--limit-rate $RSS_RATE, ${RSS_SECS}s each) of the cached $RSS_MIB MiB blob (ours, peer) x $RUNS"
SIZE_WANT=""
for r in $(seq 1 "$RUNS"); do
    for who in ours peer; do
        if [ $who = ours ]; then pid=$W_PID url="http://$W/v2/hub/$BREPO/blobs/$B_RSS"; else
            pid=$PW_PID url="http://$PW/v2/$BREPO/blobs/$B_RSS"; fi
        sampler_start "$pid"
        many_gets "$RSS_N" "$url" "$RSS_SECS" --limit-rate "$RSS_RATE"
        sampler_stop
        [ "$MANY_OK" -gt 0 ] || die "no download of $url started"
        record rss_conc_mib "$who" "$SAMPLE_PEAK_MIB"
        record rss_conc_fds "$who" "$SAMPLE_FDS"
        record rss_conc_anon_mib "$who" "$SAMPLE_ANON_MIB"
        record rss_conc_file_mib "$who" "$SAMPLE_FILE_MIB"
        [ "$MANY_OK" = "$RSS_N" ] || note rss_conc_mib "$who" "run $r: only $MANY_OK of $RSS_N downloads got 200"
        echo "    run $r $who: peak RSS $SAMPLE_PEAK_MIB MiB (RssAnon $SAMPLE_ANON_MIB, RssFile $SAMPLE_FILE_MIB), up to $SAMPLE_FDS open fds, $MANY_OK/$RSS_N answered 200"
    done
done

# ---- 3. cold skopeo copy -----------------------------------------------------------------
say "3. cold skopeo copy of test/big, fresh cache each run (ours, peer, direct via the fake) x $RUNS"
for r in $(seq 1 "$RUNS"); do
    ours_start "ours-cold-$r" "$T/ours-cold-$r"
    settle
    up_reset
    skopeo_copy "$OURS/hub/test/big:latest" "$BIG_DIGEST"
    record cold_pull_s ours "$S_SECS"
    o=$S_SECS
    up_fetches "${BIG_BLOBS[@]}"
    for n in "${UP_FETCH[@]}"; do record cold_pull_fetches ours "$n"; done
    o_f="${UP_FETCH[*]}"
    up_total
    record cold_pull_upstream ours "$UP_TOTAL"
    bench_stop "$OURS_PID"
    rm -rf "$T/ours-cold-$r"

    peer_start "peer-cold-$r" "$T/peer-cold-$r"
    settle
    up_reset
    skopeo_copy "$PEER/test/big:latest" "$BIG_DIGEST"
    record cold_pull_s peer "$S_SECS"
    p=$S_SECS
    peer_wait "$T/peer-cold-$r" "${BIG_BLOBS[@]}"
    up_fetches "${BIG_BLOBS[@]}"
    for n in "${UP_FETCH[@]}"; do record cold_pull_fetches peer "$n"; done
    up_total
    record cold_pull_upstream peer "$UP_TOTAL"
    bench_stop "$PEER_PID"
    rm -rf "$T/peer-cold-$r"

    settle
    skopeo_copy "$FAKE/test/big:latest" "$BIG_DIGEST"
    record cold_pull_s ref "$S_SECS"
    d=$S_SECS
    skopeo_copy "$UP/test/big:latest" "$BIG_DIGEST"
    record cold_pull_registry_s ref "$S_SECS"
    echo "    run $r: ours $o s (GETs per blob: $o_f), peer $p s (GETs per blob: ${UP_FETCH[*]}), direct via fake $d s, registry $S_SECS s"
done

# ---- 4. cold TTFB ------------------------------------------------------------------------
say "4. time to first byte of the cold $TTFB_MIB MiB blob (ours, peer, direct via the fake) x $QUICK_RUNS"
for r in $(seq 1 "$QUICK_RUNS"); do
    ours_start "ours-ttfb-$r" "$T/ours-ttfb-$r"
    settle
    fetch "$(ours_url "$BREPO/blobs/$B_TTFB")" "$S_TTFB"
    record ttfb_ms ours "$(calc "$F_TTFB * 1000")"
    record cold_blob_s ours "$F_TOTAL"
    o=$F_TTFB
    bench_stop "$OURS_PID"
    rm -rf "$T/ours-ttfb-$r"
    peer_start "peer-ttfb-$r" "$T/peer-ttfb-$r"
    settle
    fetch "$(peer_url "$BREPO/blobs/$B_TTFB")" "$S_TTFB"
    record ttfb_ms peer "$(calc "$F_TTFB * 1000")"
    record cold_blob_s peer "$F_TOTAL"
    p=$F_TTFB
    peer_wait "$T/peer-ttfb-$r" "$B_TTFB"
    bench_stop "$PEER_PID"
    rm -rf "$T/peer-ttfb-$r"
    settle
    fetch "http://$FAKE/v2/$BREPO/blobs/$B_TTFB" "$S_TTFB"
    record ttfb_ms ref "$(calc "$F_TTFB * 1000")"
    record cold_blob_s ref "$F_TOTAL"
    d=$F_TTFB
    fetch "http://$UP/v2/$BREPO/blobs/$B_TTFB" "$S_TTFB"
    record ttfb_registry_ms ref "$(calc "$F_TTFB * 1000")"
    echo "    run $r: TTFB ours $(calc "$o * 1000") ms, peer $(calc "$p * 1000") ms, direct via fake $(calc "$d * 1000") ms, registry $(calc "$F_TTFB * 1000") ms"
done

# ---- 6. herd -----------------------------------------------------------------------------
say "6. herd: $HERD_N concurrent cold GETs of the $HERD_MIB MiB blob, and one cold GET alone (ours, peer) x $RUNS"
SIZE_WANT=$S_HERD
for r in $(seq 1 "$RUNS"); do
    for who in ours peer; do
        if [ $who = ours ]; then
            ours_start "ours-single-$r" "$T/ours-single-$r"
            settle
            fetch "$(ours_url "$BREPO/blobs/$B_HERD")" "$S_HERD"
            bench_stop "$OURS_PID"
            rm -rf "$T/ours-single-$r"
            single=$F_TOTAL
            ours_start "ours-herd-$r" "$T/ours-herd-$r"
            settle
            up_reset
            many_gets "$HERD_N" "$(ours_url "$BREPO/blobs/$B_HERD")" 900
            up_fetches "$B_HERD"
            cold_ok=$MANY_OK cold_wall=$MANY_WALL
            # The same herd again, now warm: what delivering HERD_N copies costs by itself.
            many_gets "$HERD_N" "$(ours_url "$BREPO/blobs/$B_HERD")" 900
            warm_wall=$MANY_WALL
            bench_stop "$OURS_PID"
            # nginx gets a link to the stored file, for the same herd from disk (the limit).
            ng_herd="$T/nginx/html/blobs/${B_HERD:7}"
            [ -f "$ng_herd" ] || ln "$T/ours-herd-$r/blobs/sha256/${B_HERD:7:2}/${B_HERD:7}" "$ng_herd" ||
                cp "$T/ours-herd-$r/blobs/sha256/${B_HERD:7:2}/${B_HERD:7}" "$ng_herd"
            rm -rf "$T/ours-herd-$r"
        else
            peer_start "peer-single-$r" "$T/peer-single-$r"
            settle
            fetch "$(peer_url "$BREPO/blobs/$B_HERD")" "$S_HERD"
            single=$F_TOTAL
            peer_wait "$T/peer-single-$r" "$B_HERD"
            bench_stop "$PEER_PID"
            rm -rf "$T/peer-single-$r"
            peer_start "peer-herd-$r" "$T/peer-herd-$r"
            settle
            up_reset
            many_gets "$HERD_N" "$(peer_url "$BREPO/blobs/$B_HERD")" 900
            peer_wait "$T/peer-herd-$r" "$B_HERD"
            up_fetches "$B_HERD"
            cold_ok=$MANY_OK cold_wall=$MANY_WALL
            many_gets "$HERD_N" "$(peer_url "$BREPO/blobs/$B_HERD")" 900
            warm_wall=$MANY_WALL
            bench_stop "$PEER_PID"
            rm -rf "$T/peer-herd-$r"
        fi
        [ "$cold_ok" -gt 0 ] || die "herd ($who): no client got the blob"
        [ "$cold_ok" = "$HERD_N" ] || note herd_wall_s "$who" "run $r: only $cold_ok of $HERD_N clients got all $S_HERD bytes"
        [ "$MANY_OK" = "$HERD_N" ] || note herd_warm_wall_s "$who" "run $r: only $MANY_OK of $HERD_N warm clients got all $S_HERD bytes"
        record single_cold_s "$who" "$single"
        record herd_wall_s "$who" "$cold_wall"
        record herd_warm_wall_s "$who" "$warm_wall"
        if [ $who = ours ]; then record herd_wall_s ref "$single"; fi
        record herd_fetches "$who" "$UP_FETCH_SUM"
        echo "    run $r $who: one cold GET $single s; cold herd $cold_wall s, $UP_FETCH_SUM upstream GETs, $cold_ok/$HERD_N complete; the same herd warm $warm_wall s"
    done
    settle
    fetch "http://$FAKE/v2/$BREPO/blobs/$B_HERD" "$S_HERD"
    record single_cold_s ref "$F_TOTAL"
    # The machine's limit for the delivery alone: nginx sends the same herd from the page cache.
    many_gets "$HERD_N" "http://$NGINX/blobs/${B_HERD:7}" 900
    [ "$MANY_OK" = "$HERD_N" ] || note herd_warm_wall_s ref "run $r: only $MANY_OK of $HERD_N nginx clients got all $S_HERD bytes"
    record herd_warm_wall_s ref "$MANY_WALL"
    echo "    run $r nginx: the same herd from disk $MANY_WALL s"
done
SIZE_WANT=""

# ---- 7b. peak RSS during one cold pull ---------------------------------------------------
say "7. peak RSS during one cold GET of $RSS_MIB MiB then of $WARM_MIB MiB (ours, peer) x $RUNS"
for r in $(seq 1 "$RUNS"); do
    ours_start "ours-rss-$r" "$T/ours-rss-$r"
    settle
    sampler_start "$OURS_PID"
    fetch "$(ours_url "$BREPO/blobs/$B_RSS")" "$S_RSS"
    sampler_stop
    record rss_cold_small_mib ours "$SAMPLE_PEAK_MIB"
    small=$SAMPLE_PEAK_MIB small_split="anon $SAMPLE_ANON_MIB, file $SAMPLE_FILE_MIB"
    sampler_start "$OURS_PID"
    fetch "$(ours_url "$BREPO/blobs/$B_WARM")" "$S_WARM"
    sampler_stop
    record rss_cold_big_mib ours "$SAMPLE_PEAK_MIB"
    record rss_cold_big_mib ref "$small"
    record rss_cold_big_anon_mib ours "$SAMPLE_ANON_MIB"
    record rss_cold_big_file_mib ours "$SAMPLE_FILE_MIB"
    bench_stop "$OURS_PID"
    rm -rf "$T/ours-rss-$r"
    echo "    run $r ours: $small MiB ($RSS_MIB MiB blob; $small_split), $SAMPLE_PEAK_MIB MiB ($WARM_MIB MiB blob; anon $SAMPLE_ANON_MIB, file $SAMPLE_FILE_MIB)"
    peer_start "peer-rss-$r" "$T/peer-rss-$r"
    settle
    sampler_start "$PEER_PID"
    fetch "$(peer_url "$BREPO/blobs/$B_RSS")" "$S_RSS"
    peer_wait "$T/peer-rss-$r" "$B_RSS"
    sampler_stop
    record rss_cold_small_mib peer "$SAMPLE_PEAK_MIB"
    small=$SAMPLE_PEAK_MIB small_split="anon $SAMPLE_ANON_MIB, file $SAMPLE_FILE_MIB"
    sampler_start "$PEER_PID"
    fetch "$(peer_url "$BREPO/blobs/$B_WARM")" "$S_WARM"
    peer_wait "$T/peer-rss-$r" "$B_WARM"
    sampler_stop
    record rss_cold_big_mib peer "$SAMPLE_PEAK_MIB"
    record rss_cold_big_anon_mib peer "$SAMPLE_ANON_MIB"
    record rss_cold_big_file_mib peer "$SAMPLE_FILE_MIB"
    bench_stop "$PEER_PID"
    rm -rf "$T/peer-rss-$r"
    echo "    run $r peer: $small MiB ($RSS_MIB MiB blob; $small_split), $SAMPLE_PEAK_MIB MiB ($WARM_MIB MiB blob; anon $SAMPLE_ANON_MIB, file $SAMPLE_FILE_MIB)"
done

# ---- 8. tag lookup with TAGS_N tags versus 10 --------------------------------------------
say "8. manifest GET by tag with $TAGS_N tags in the index versus 10, 1 connection, ${LOAD_SECS}s (ours) x $RUNS"
bench_stop "$W_PID"
bench_stop "$PW_PID"
# set_tags N: the warm index gets tags bench-000000.. (N of them) on test/big, fresh (checked
# now), pointing at test/big:latest's manifest; every other bench- tag is removed.
set_tags() {
    local now
    now=$(date +%s)
    sqlite3 "$W_DATA/index.db" <<SQL || die "sqlite3 on the index failed"
PRAGMA foreign_keys = ON;
BEGIN;
DELETE FROM tags WHERE tag LIKE 'bench-%';
WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < $1 - 1)
INSERT INTO tags (repo_id, tag, digest, media_type, checked_at, changed_at, last_pulled_at)
SELECT t.repo_id, printf('bench-%06d', seq.i), t.digest, t.media_type, $now, $now, 0
  FROM seq, tags t JOIN repositories r ON r.id = t.repo_id
 WHERE r.rule = 'hub' AND r.name = 'test/big' AND t.tag = 'latest';
COMMIT;
SQL
    TAGS_TOTAL=$(sqlite3 "$W_DATA/index.db" "SELECT count(*) FROM tags") || die "sqlite3 count failed"
}
for r in $(seq 1 "$RUNS"); do
    for n in 10 "$TAGS_N"; do
        set_tags "$n"
        [ "$TAGS_TOTAL" -ge "$n" ] || die "the index has $TAGS_TOTAL tags after adding $n"
        ours_start "ours-tags-$n-$r" "$W_DATA"
        url="http://$OURS/v2/hub/test/big/manifests/bench-000007"
        check_manifest "$url" "$BIG_DIGEST"
        up_reset
        who=ours
        [ "$n" = 10 ] && who=ref
        echo "    run $r, $TAGS_TOTAL tags in the index:"
        wrk_run tag "$who" "$url" 1
        up_total
        [ "$UP_TOTAL" = 0 ] || note tag_p50_ms "$who" "run $r: $UP_TOTAL upstream requests for a fresh tag"
        bench_stop "$OURS_PID"
    done
done

source "$BENCH_DIR/ecr.sh"
source "$BENCH_DIR/ops.sh"
bench_report
