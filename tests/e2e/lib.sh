# Shared helpers for the end-to-end scenarios: temp dirs, free loopback ports, starting and
# stopping processes by PID. Sourced by each tests/e2e/NN-*.sh; needs PROXY_BIN and TOP_SRCDIR.
set -euo pipefail

: "${PROXY_BIN:?PROXY_BIN must name the ecr-ptc-proxy binary}"
: "${TOP_SRCDIR:?TOP_SRCDIR must name the source tree}"

E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ecr-ptc-e2e.XXXXXX")
E2E_PIDS=()
declare -A E2E_LOGS=() # PID → the log of a proxy start_proxy started
E2E_FAILS=0
E2E_PASSES=0

e2e_cleanup() {
    local pid
    for pid in "${E2E_PIDS[@]:-}"; do
        [ -n "$pid" ] || continue
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if [ "${E2E_KEEP:-0}" = 1 ]; then echo "kept $E2E_TMP"; else rm -rf "$E2E_TMP"; fi
}
trap e2e_cleanup EXIT

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT [SECONDS]: until something accepts on 127.0.0.1:PORT (bounded).
wait_port() {
    local port=$1 limit=${2:-10} i
    for i in $(seq 1 $((limit * 20))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listening on 127.0.0.1:$port after ${limit}s" >&2
    return 1
}

# start_proxy NAME ARGS...: runs the proxy in the background, logs to $E2E_TMP/NAME.log,
# sets PROXY_PID. The caller passes --listen so it knows the port. After clock_start the proxy
# runs on the test's wall clock.
start_proxy() {
    local name=$1 pre=(); shift
    if [ -n "${E2E_CLOCK:-}" ]; then
        # ASan's runtime must come first; with the shim preloaded it does not (the check is
        # only a warning about interposition, which is what the shim is for).
        pre=(env "LD_PRELOAD=$E2E_TMP/clock_shift.so${LD_PRELOAD:+:$LD_PRELOAD}"
             "CLOCK_SHIFT_FILE=$E2E_CLOCK"
             "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")
    fi
    "${pre[@]}" "$PROXY_BIN" serve "$@" >"$E2E_TMP/$name.log" 2>&1 &
    PROXY_PID=$!
    E2E_PIDS+=("$PROXY_PID")
    E2E_LOGS[$PROXY_PID]=$E2E_TMP/$name.log
}

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (default 5), then SIGKILL. Returns the
# process's exit status when it stopped in time, 124 when it had to be killed.
stop_pid() {
    local pid=$1 limit=${2:-5} i rc=124
    if ! kill -TERM "$pid" 2>/dev/null; then
        # Gone already (a crash, a sanitizer abort): its exit status, if it is a child not yet
        # waited for; 127 means it was waited for before, and that caller had its status.
        rc=0
        wait "$pid" 2>/dev/null || rc=$?
        [ $rc -ne 127 ] || rc=0
    else
        for i in $(seq 1 $((limit * 20))); do
            if ! kill -0 "$pid" 2>/dev/null; then
                rc=0
                wait "$pid" 2>/dev/null || rc=$?
                break
            fi
            sleep 0.05
        done
    fi
    if [ $rc -eq 124 ]; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    # A proxy that did not exit 0 (a sanitizer report, a hang at stop): the end of its log goes
    # to stderr, so the test's own log shows why.
    if [ $rc -ne 0 ] && [ -n "${E2E_LOGS[$pid]:-}" ]; then
        echo "stop_pid: pid $pid ended with status $rc; the end of ${E2E_LOGS[$pid]}:" >&2
        tail -30 "${E2E_LOGS[$pid]}" >&2
    fi
    return $rc
}

# clock_start: every later start_proxy preloads tests/e2e/clock_shift.c, so that the proxy's
# wall clock (time, gettimeofday, CLOCK_REALTIME; not CLOCK_MONOTONIC) runs the offset in
# seconds held by the file $E2E_CLOCK ahead of the real one: 0 until clock_advance.
clock_start() {
    "${CC:-cc}" -shared -fPIC -o "$E2E_TMP/clock_shift.so" "$TOP_SRCDIR/tests/e2e/clock_shift.c" \
        -ldl -pthread
    E2E_CLOCK=$E2E_TMP/clock
    echo 0 >"$E2E_CLOCK"
}

# clock_advance SECONDS [PROXY_URL]: moves the proxy's wall clock SECONDS (may be fractional)
# further ahead, as if that long had passed; the next call to time() in the proxy sees it.
# Given the proxy's URL, checks that its clock moved: its uptime metric jumps by SECONDS.
clock_advance() {
    local by=$1 url=${2:-} before after
    [ -z "$url" ] || before=$(proxy_uptime "$url")
    LC_ALL=C awk -v a="$(cat "$E2E_CLOCK")" -v b="$by" 'BEGIN { printf "%.3f\n", a + b }' \
        >"$E2E_CLOCK.new"
    mv -f "$E2E_CLOCK.new" "$E2E_CLOCK"
    [ -n "$url" ] || return 0
    after=$(proxy_uptime "$url")
    check "the proxy's clock moved $by s (uptime $before s -> $after s)" \
        awk -v b="$before" -v a="$after" -v by="$by" \
        'BEGIN { exit !(b != "" && a != "" && a - b >= int(by) && a - b <= int(by) + 2) }'
}

# proxy_uptime URL: the proxy's ecr_ptc_uptime_seconds, by its own wall clock.
proxy_uptime() {
    { curl -s -m 5 "$1/metrics" || true; } | sed -n 's/^ecr_ptc_uptime_seconds \([0-9]*\)$/\1/p'
}

# eventually COMMAND...: true once COMMAND succeeds, trying for up to 5 s (things the proxy
# finishes just after the client got its bytes, such as committing a fill to the store).
eventually() {
    local i
    for i in $(seq 1 100); do
        "$@" && return 0
        sleep 0.05
    done
    return 1
}

pass() { E2E_PASSES=$((E2E_PASSES + 1)); echo "ok - $*"; }
fail() { E2E_FAILS=$((E2E_FAILS + 1)); echo "FAIL - $*" >&2; }

# check DESCRIPTION COMMAND...: runs COMMAND, records pass or fail.
check() {
    local what=$1; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# e2e_done: prints the tally and exits non-zero when anything failed.
e2e_done() {
    echo "$E2E_PASSES passed, $E2E_FAILS failed"
    [ "$E2E_FAILS" -eq 0 ]
}
