#!/usr/bin/env bash
# Replays every seed of tests/fuzz/corpus/<parser>/ through its fuzz target, once: the
# standalone driver in a build without libFuzzer, the libFuzzer binary (given files, it runs
# each once) in one with. One line per parser; fails on any crash or broken invariant.
source "$TOP_SRCDIR/tests/e2e/lib.sh"

for dir in "$TOP_SRCDIR"/tests/fuzz/corpus/*/; do
    parser=$(basename "$dir")
    bin=$TOP_BUILDDIR/tests/fuzz/${parser}_fuzz
    files=("$dir"*)
    if [ ! -x "$bin" ]; then
        fail "replay $parser: no $bin"
    elif "$bin" "${files[@]}" </dev/null >"$E2E_TMP/$parser.log" 2>&1; then
        pass "replay $parser (${#files[@]} seeds)"
    else
        tail -30 "$E2E_TMP/$parser.log" >&2
        fail "replay $parser (${#files[@]} seeds)"
    fi
done
e2e_done
