#!/usr/bin/env bash
# `make check` entry for the benchmark harness: every step of tests/bench/run.sh with tiny sizes
# and one run (under a minute), so the harness cannot rot. Fails only when the harness breaks
# (a server does not start, a copy or a download fails); missed targets are printed, not failed.
# Exit 77 (SKIP) when a tool the benchmark needs is not installed.
# Under `make check` (TOP_BUILDDIR set) results.json goes to tests/bench/smoke-results.json in
# the build tree, never the source tree; run by hand, to the temp dir unless BENCH_OUT is set.
: "${TOP_SRCDIR:?TOP_SRCDIR must name the source tree}"
if [ -z "${BENCH_OUT:-}" ] && [ -n "${TOP_BUILDDIR:-}" ]; then
    BENCH_OUT="$TOP_BUILDDIR/tests/bench/smoke-results.json"
    export BENCH_OUT
fi
exec bash "$TOP_SRCDIR/tests/bench/run.sh" --smoke
