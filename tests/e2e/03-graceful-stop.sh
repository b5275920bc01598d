#!/usr/bin/env bash
# SIGTERM: the proxy stops accepting, finishes what is in flight, and exits 0 within a second.
source "$TOP_SRCDIR/tests/e2e/lib.sh"

port=$(free_port)
start_proxy proxy --listen "127.0.0.1:$port" --data-dir "$E2E_TMP/data"
wait_port "$port"
curl -s -o /dev/null "http://127.0.0.1:$port/v2/"

# An idle keep-alive connection must not hold the stop back.
exec 5<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n' >&5

start=$(date +%s%N)
set +e
stop_pid "$PROXY_PID" 1; rc=$?
set -e
ms=$(( ($(date +%s%N) - start) / 1000000 ))
exec 5>&-
check "SIGTERM exits 0 (rc=$rc)" test "$rc" = 0
check "SIGTERM stops within a second (${ms} ms)" test "$ms" -lt 1000
check "the log says stopping then stopped" bash -c "grep -q ' stopping ' '$E2E_TMP/proxy.log' && grep -q ' stopped' '$E2E_TMP/proxy.log'"
check "nothing listens after the stop" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null"

# SIGINT behaves the same.
port=$(free_port)
start_proxy proxy2 --listen "127.0.0.1:$port" --data-dir "$E2E_TMP/data"
wait_port "$port"
kill -INT "$PROXY_PID"
for _ in $(seq 1 20); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.05; done
set +e
wait "$PROXY_PID"; rc=$?
set -e
check "SIGINT exits 0 within a second (rc=$rc)" test "$rc" = 0

# A port already in use: a clear error and a non-zero exit, not a hang.
port=$(free_port)
start_proxy holder --listen "127.0.0.1:$port" --data-dir "$E2E_TMP/data"
wait_port "$port"
set +e
timeout 5 "$PROXY_BIN" serve --listen "127.0.0.1:$port" --data-dir "$E2E_TMP/data" 2>"$E2E_TMP/err"; rc=$?
set -e
check "a busy port exits 1" test "$rc" = 1
check "a busy port says cannot listen" grep -q 'cannot listen on' "$E2E_TMP/err"
stop_pid "$PROXY_PID"
e2e_done
