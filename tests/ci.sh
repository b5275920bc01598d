#!/usr/bin/env bash
# Builds and runs every test three ways: gcc, clang with ASan+UBSan, and `make distcheck`; and
# fuzzes each parser's libFuzzer target for a bounded time (CI_FUZZ_SECONDS each, default 45).
# Each build lives in its own directory under build/; the source tree stays clean.
# Prints one closing line "N passed, N failed" summed over the runs; exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0

tally() { # tally BUILD_DIR: add the automake summary of BUILD_DIR/test-suite.log
    local log=$1/test-suite.log p f e
    [ -f "$log" ] || return 0
    p=$(sed -n 's/^# PASS: *//p' "$log" | head -1)
    f=$(sed -n 's/^# FAIL: *//p' "$log" | head -1)
    e=$(sed -n 's/^# ERROR: *//p' "$log" | head -1)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0} + ${e:-0}))
}

run() { # run NAME CONFIGURE-ARGS...: configure in build/NAME and make check
    local name=$1; shift
    echo "=== $name: configure $*"
    rm -rf "build/$name"
    mkdir -p "build/$name"
    local rc=0
    (cd "build/$name" && "$top/configure" -q "$@" && make -s -j"$jobs" && make -j"$jobs" check) || rc=$?
    tally "build/$name"
    if [ $rc -ne 0 ]; then
        echo "=== $name: FAILED"
        for f in "build/$name"/tests/*/*.log; do
            if grep -q '^:test-result: \(FAIL\|ERROR\)' "${f%.log}.trs" 2>/dev/null; then
                echo "--- $f"
                # The failed checks with the lines just before each (what the check printed to
                # stderr), then the end of the log: a tail alone can miss a failure early on.
                grep -n -B8 '^\(FAIL -\|not ok\)' "$f" | head -80 || true
                echo "--- $f: last 40 lines"
                tail -40 "$f"
            fi
        done
        failed=$((failed + 1))
    fi
}

# An in-tree build (README's run command) blocks out-of-tree ones: clean it first.
if [ -f config.status ]; then make -s distclean >/dev/null 2>&1 || true; fi
autoreconf -fi >/dev/null
# CI checks the formatting (tests/e2e/00-format.sh): clang-format must be there, not skipped.
export ECRPTC_REQUIRE_FORMAT=1
run gcc CC=gcc
run asan CC=clang --enable-sanitizers

# Fuzzing (docs/internals/fuzzing.md): every target on a copy of its seeds in build/fuzz; one pass
# or fail per target. A failure prints the sanitizer's report and the reproducer's path.
fuzz_seconds=${CI_FUZZ_SECONDS:-45}
echo "=== fuzz: configure CC=clang --enable-fuzzing; ${fuzz_seconds} s per target"
fuzz_start=$SECONDS
rm -rf build/fuzz
mkdir -p build/fuzz
if (cd build/fuzz && "$top/configure" -q CC=clang --enable-fuzzing && make -s -j"$jobs"); then
    # $jobs targets at a time (each libFuzzer process uses one core); a target's output is
    # printed when it ends.
    fuzz_one() { # fuzz_one PARSER: run it, its output to build/fuzz/PARSER.out, status in .rc
        local rc=0
        bash tests/fuzz/run.sh "$top/build/fuzz" "$1" "$fuzz_seconds" >"build/fuzz/$1.out" 2>&1 || rc=$?
        echo "$rc" >"build/fuzz/$1.rc"
    }
    parsers=()
    for dir in tests/fuzz/corpus/*/; do parsers+=("$(basename "$dir")"); done
    for ((i = 0; i < ${#parsers[@]}; i += jobs)); do
        for ((j = i; j < i + jobs && j < ${#parsers[@]}; j++)); do fuzz_one "${parsers[$j]}" & done
        wait
    done
    for name in "${parsers[@]}"; do
        cat "build/fuzz/$name.out"
        if [ "$(cat "build/fuzz/$name.rc" 2>/dev/null)" = 0 ]; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
    done
else
    echo "=== fuzz: build FAILED"
    failed=$((failed + 1))
fi
echo "=== fuzz: $((SECONDS - fuzz_start)) s"
echo "=== distcheck"
rm -rf build/dist && mkdir -p build/dist
if (cd build/dist && "$top/configure" -q && make -s -j"$jobs" distcheck >distcheck.log 2>&1); then
    passed=$((passed + 1)); echo "distcheck: ok"
else
    failed=$((failed + 1)); echo "distcheck: FAILED"; tail -60 build/dist/distcheck.log
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
