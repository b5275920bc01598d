#!/usr/bin/env bash
# Connection limits: at the descriptor limit the proxy neither spins nor floods its log and still
# answers /healthz; accept errors pause accepting (one log line per episode); slowloris clients
# are cut at header_timeout while others are served; max_connections_per_client refuses the
# excess; a download the client aborts is logged with the status it was sent.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

TCK=$(getconf CLK_TCK)
cat >"$E2E_TMP/conns.py" <<'PY'
# conns.py PORT MODE N ARG: client connections for the limits scenario (bounded in time).
#   idle N SECS   open N connections that send nothing, hold them SECS, print how many connected
#   slow N SECS [GAP]  N connections (opened GAP s apart, default 0.05) sending a request line
#                 and headers at 1 byte/s; prints, for each, the seconds until the proxy closed
#                 it (or -1 if still open after SECS)
#   held N SECS   open N connections 50 ms apart; after 1 s print how many the proxy closed
import socket, sys, time
port, mode, n, secs = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
gap = float(sys.argv[5]) if len(sys.argv) > 5 else 0.05
def connect(timeout=1.0):
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect(("127.0.0.1", port))
        return s
    except OSError:
        s.close()
        return None
if mode == "idle":
    socks = [s for s in (connect(0.3) for _ in range(n)) if s]
    print(len(socks), flush=True)
    time.sleep(secs)
elif mode == "slow":
    msg = b"GET /v2/ HTTP/1.1\r\nHost: x\r\nUser-Agent: " + b"s" * 200
    t0 = time.monotonic()
    socks = []
    for _ in range(n):
        s = connect()
        s.setblocking(False)
        s.send(msg[:1])
        socks.append([s, 1, None])
        time.sleep(gap)
    while time.monotonic() - t0 < secs and any(c[2] is None for c in socks):
        for c in socks:
            if c[2] is not None:
                continue
            try:
                if c[0].recv(4096) == b"":
                    c[2] = time.monotonic() - t0
                    continue
            except BlockingIOError:
                pass
            except OSError:
                c[2] = time.monotonic() - t0
                continue
            try:
                c[0].send(msg[c[1]:c[1] + 1])
                c[1] += 1
            except BlockingIOError:
                pass
            except OSError:
                c[2] = time.monotonic() - t0
        time.sleep(1.0)
    print(" ".join("%.1f" % c[2] if c[2] is not None else "-1" for c in socks), flush=True)
elif mode == "held":
    socks = []
    for _ in range(n):
        socks.append(connect())
        time.sleep(0.05)
    time.sleep(1.0)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    print(closed, flush=True)
    time.sleep(secs)
PY
conns() { python3 "$E2E_TMP/conns.py" "$@"; }

# cpu_ticks PID: utime + stime of PID so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# metric_of PORT NAME: the value of metric NAME (labels included), "missing" when absent.
metric_of() {
    local v
    v=$(curl -s -m 5 "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}')
    echo "${v:-missing}"
}
# at_least VALUE N: VALUE is a number >= N.
at_least() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ]; }
healthz_ms() {
    local t0 code
    t0=$(date +%s%N)
    code=$(curl -s -o /dev/null -m "$2" -w '%{http_code}' "http://127.0.0.1:$1/healthz" || true)
    [ "$code" = 200 ] || { echo 999999; return; }
    echo $(( ($(date +%s%N) - t0) / 1000000 ))
}
# start_limited NAME NOFILE CONFIG: the proxy under an fd limit (prlimit execs: same PID).
start_limited() {
    prlimit --nofile="$2:$2" "$PROXY_BIN" serve --config "$3" >"$E2E_TMP/$1.log" 2>&1 &
    PROXY_PID=$!
    E2E_PIDS+=("$PROXY_PID")
}
# flood_checks NAME PORT PID: CPU and log growth while 200 idle connections press on 128 fds.
flood_checks() {
    local name=$1 port=$2 pid=$3 log0 log1 c0 c1 pct hz
    conns "$port" idle 200 8 >"$E2E_TMP/$name.idle" &
    local idle_pid=$!
    E2E_PIDS+=("$idle_pid")
    sleep 2
    log0=$(stat -c %s "$E2E_TMP/$name.log")
    c0=$(cpu_ticks "$pid")
    sleep 3
    c1=$(cpu_ticks "$pid")
    log1=$(stat -c %s "$E2E_TMP/$name.log")
    pct=$(( (c1 - c0) * 100 / (3 * TCK) ))
    hz=$(healthz_ms "$port" 10)
    check "$name: CPU stays low under 200 connections on 128 fds (${pct}% of a core)" test "$pct" -le 20
    check "$name: the log grows by little in 3 s ($((log1 - log0)) bytes)" test $((log1 - log0)) -lt 20000
    check "$name: /healthz is answered during the flood (${hz} ms)" test "$hz" -lt "$4"
    stop_pid "$idle_pid" || true
}

# --- 1. 128 descriptors, max_connections derived from them: idle connections are evicted. ----
port=$(free_port)
cat >"$E2E_TMP/fd.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data-fd", "header_timeout": "2s",
 "max_connections_per_client": 0, "rules": [{"prefix": "a", "upstream": "http://127.0.0.1:9"}]}
JSON
start_limited fd 128 "$E2E_TMP/fd.json"
FD_PID=$PROXY_PID
wait_port "$port"
check "default max_connections from RLIMIT_NOFILE 128: (128 - 64) / 4 = 16" \
    test "$(metric_of "$port" ecr_ptc_connections_max)" = 16
flood_checks fd "$port" "$FD_PID" 2000
check "fd: idle connections were evicted to admit new ones" \
    at_least "$(metric_of "$port" ecr_ptc_connections_evicted_total)" 1
stop_pid "$FD_PID" || true

# --- 2. max_connections above what 128 fds carry: EMFILE pauses accepting, with backoff. -----
port=$(free_port)
cat >"$E2E_TMP/emfile.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data-emfile", "header_timeout": "2s",
 "max_connections": 1000, "max_connections_per_client": 0,
 "rules": [{"prefix": "a", "upstream": "http://127.0.0.1:9"}]}
JSON
start_limited emfile 128 "$E2E_TMP/emfile.json"
EM_PID=$PROXY_PID
wait_port "$port"
check "a max_connections the fd limit cannot carry is warned about" \
    grep -q 'max-connections-above-fd-limit max_connections=1000 rlimit_nofile=128' "$E2E_TMP/emfile.log"
flood_checks emfile "$port" "$EM_PID" 15000
check "emfile: metrics count the pauses" \
    at_least "$(metric_of "$port" 'ecr_ptc_accept_paused_total{reason="emfile"}')" 1
eventually grep -q 'accept-resumed reason=emfile' "$E2E_TMP/emfile.log" || sleep 1
check "emfile: one accept-paused line for the episode ($(grep -c 'accept-paused reason=emfile' "$E2E_TMP/emfile.log"))" \
    test "$(grep -c 'accept-paused reason=emfile error="Too many open files"' "$E2E_TMP/emfile.log")" = 1
check "emfile: one accept-resumed line when it ended" \
    test "$(grep -c 'accept-resumed reason=emfile' "$E2E_TMP/emfile.log")" = 1
check "emfile: libevent's per-accept error line is gone" \
    bash -c "! grep -q 'Error from accept' '$E2E_TMP/emfile.log'"
stop_pid "$EM_PID" || true

# --- 3. slowloris, max_connections, keep-alive, an aborted download. ------------------------
start_registry reg
blob=$(python3 "$TOP_SRCDIR/tests/e2e/seed_images.py" --registry "$REGISTRY_URL" \
    --blob-only-mib 16 --blob-repo test/big | tail -1)
port=$(free_port)
cat >"$E2E_TMP/main.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data", "header_timeout": "2s",
 "max_connections": 40, "max_connections_per_client": 0,
 "rules": [{"prefix": "hub", "upstream": "$REGISTRY_URL"}]}
JSON
start_proxy main --config "$E2E_TMP/main.json"
MAIN_PID=$PROXY_PID
wait_port "$port"
P="http://127.0.0.1:$port"

conns "$port" slow 30 8 >"$E2E_TMP/slow30" &
SLOW_PID=$!
E2E_PIDS+=("$SLOW_PID")
sleep 1
hz=$(healthz_ms "$port" 5)
check "while 30 slowloris connections trickle, /healthz answers at once (${hz} ms)" test "$hz" -lt 500
wait "$SLOW_PID" || true
closed=$(cat "$E2E_TMP/slow30")
echo "slowloris close times (s): $closed"
check "all 30 slowloris connections are closed by the 2 s header deadline" \
    awk -v l="$closed" 'BEGIN { n = split(l, a, " "); if (n != 30) exit 1;
        for (i = 1; i <= n; i++) if (a[i] < 1.5 || a[i] > 5) exit 1; exit 0 }'
check "metrics count the header timeouts" \
    at_least "$(metric_of "$port" ecr_ptc_header_timeouts_total)" 30

# 40 slowloris connections fill max_connections with nothing idle: accepting pauses, once.
conns "$port" slow 40 8 0.01 >"$E2E_TMP/slow40" &
SLOW_PID=$!
E2E_PIDS+=("$SLOW_PID")
sleep 1
hz=$(healthz_ms "$port" 10)
check "at max_connections, /healthz waits in the backlog until the header deadline frees a slot (${hz} ms)" \
    bash -c "[ '$hz' -ge 400 ] && [ '$hz' -lt 5000 ]"
wait "$SLOW_PID" || true
check "at max_connections with nothing idle: one accept-paused line" \
    test "$(grep -c 'accept-paused reason=max_connections' "$E2E_TMP/main.log")" = 1
check "... metrics count the pause" \
    at_least "$(metric_of "$port" 'ecr_ptc_accept_paused_total{reason="max_connections"}')" 1
eventually grep -q 'accept-resumed reason=max_connections' "$E2E_TMP/main.log" || sleep 1
check "... and one accept-resumed line" \
    test "$(grep -c 'accept-resumed reason=max_connections' "$E2E_TMP/main.log")" = 1

# An idle keep-alive connection between requests keeps the idle timeout, not header_timeout.
check "a keep-alive connection idle for 3 s (header_timeout 2 s) serves its next request" \
    python3 - "$port" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
def get():
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while b"\r\n\r\nok" not in buf:
        c = s.recv(4096)
        if not c:
            return False
        buf += c
    return buf.startswith(b"HTTP/1.1 200")
ok = get()
time.sleep(3)
sys.exit(0 if ok and get() else 1)
PY

# A download the client aborts after the first MiB: logged with the 200 it was sent.
check "the 16 MiB blob fills the cache" \
    test "sha256:$(curl -s "$P/v2/hub/test/big/blobs/$blob" | sha256sum | cut -d' ' -f1)" = "$blob"
python3 - "$port" "/v2/hub/test/big/blobs/$blob" <<'PY'
import socket, struct, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % sys.argv[2]).encode())
got = 0
while got < (1 << 20):
    c = s.recv(65536)
    if not c:
        break
    got += len(c)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
PY
gone_line() { grep "blobs/$blob status=[0-9]* ms=[0-9.]* outcome=client-gone" "$E2E_TMP/main.log"; }
eventually gone_line >/dev/null || true
check "an aborted download is logged with the status it was sent: $(gone_line | grep -o 'status=[0-9]*')" \
    bash -c "grep -q 'blobs/$blob status=200 ms=[0-9.]* outcome=client-gone' '$E2E_TMP/main.log'"
stop_pid "$MAIN_PID" || true

# --- 4. max_connections_per_client. ----------------------------------------------------------
port=$(free_port)
cat >"$E2E_TMP/per.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data-per", "max_connections_per_client": 4,
 "rules": [{"prefix": "a", "upstream": "http://127.0.0.1:9"}]}
JSON
start_proxy per --config "$E2E_TMP/per.json"
PER_PID=$PROXY_PID
wait_port "$port"
check "6 connections from one address with max_connections_per_client 4: 2 are closed" \
    test "$(conns "$port" held 6 0)" = 2
check "... counted in the metrics" \
    at_least "$(metric_of "$port" 'ecr_ptc_connections_refused_total{reason="per_client"}')" 2
check "... and logged" grep -q 'connection-refused reason=per_client client=127.0.0.1' "$E2E_TMP/per.log"
stop_pid "$PER_PID" || true
e2e_done
