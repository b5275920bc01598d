#!/usr/bin/env bash
# run.sh BUILD_DIR PARSER SECONDS: fuzz one libFuzzer target of BUILD_DIR for SECONDS on a copy of
# its seed corpus (BUILD_DIR/tests/fuzz/run/PARSER/corpus: the source tree stays clean). Prints
# one summary line; on a crash, leak, timeout or broken invariant prints the report's tail and
# where the reproducer was written, and exits 1.
set -euo pipefail
build=$1 parser=$2 seconds=$3
src=$(cd "$(dirname "$0")/../.." && pwd)
bin=$build/tests/fuzz/${parser}_fuzz
work=$build/tests/fuzz/run/$parser

if ! grep -q '^#define HAVE_LIBFUZZER 1' "$build/config.h" 2>/dev/null; then
    echo "$parser: FAILED: $build is not a libFuzzer build (configure CC=clang --enable-fuzzing)"
    exit 1
fi
if [ ! -x "$bin" ] || [ ! -d "$src/tests/fuzz/corpus/$parser" ]; then
    echo "$parser: FAILED: no $bin or no tests/fuzz/corpus/$parser"
    exit 1
fi

# Inputs longer than the parser's own cap only test the cap; these keep the search near it.
case $parser in
    oci) max_len=300 ;;
    range) max_len=128 ;;
    route) max_len=2600 ;;     # ROUTE_URI_MAX 2048
    challenge) max_len=3000 ;; # realm and scope take 1 KiB each
    *) max_len=16384 ;;        # JSON documents
esac
args=(-max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1 -artifact_prefix="$work/")
if [ -f "$src/tests/fuzz/dict/$parser.dict" ]; then args+=(-dict="$src/tests/fuzz/dict/$parser.dict"); fi

rm -rf "$work"
mkdir -p "$work/corpus"
cp "$src/tests/fuzz/corpus/$parser"/* "$work/corpus/"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
start=$SECONDS
rc=0
# stdin from /dev/null: a generated password_file of /dev/stdin must not wait for a terminal.
"$bin" "${args[@]}" "$work/corpus" </dev/null >"$work/fuzz.log" 2>&1 || rc=$?
elapsed=$((SECONDS - start))

last=$(grep -E '^#[0-9]+' "$work/fuzz.log" | tail -1 || true)
cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\) .*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log")
eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/fuzz.log")
summary="cov ${cov:-?} ft ${ft:-?} corpus ${corp:-?}, ${runs:-?} runs, ${eps:-?} exec/s, ${elapsed} s"
if [ "$rc" -eq 0 ]; then
    echo "$parser: ok ($summary)"
    exit 0
fi
echo "$parser: FAILED (exit $rc; $summary); log $work/fuzz.log"
grep -E -A25 '^==[0-9]+==(ERROR|WARNING)|runtime error|invariant failed|ALARM|out-of-memory' \
    "$work/fuzz.log" | head -60 || tail -40 "$work/fuzz.log"
ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null | sed 's/^/reproducer: /' || true
exit 1
