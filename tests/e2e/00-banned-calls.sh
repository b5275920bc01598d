#!/usr/bin/env bash
# STYLE.md bans sprintf, strcpy, strcat, strtok, atoi and friends from the daemon's sources.
source "$TOP_SRCDIR/tests/e2e/lib.sh"

found=$(grep -nE '\b(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|atoll|gets)\s*\(' \
    "$TOP_SRCDIR"/proxy/*.c "$TOP_SRCDIR"/proxy/*.h \
    $(ls "$TOP_SRCDIR"/db/*.[ch] "$TOP_SRCDIR"/policy/*.[ch] 2>/dev/null) || true)
if [ -n "$found" ]; then
    echo "$found" >&2
    fail "no banned calls in proxy/, db/, policy/"
else
    pass "no banned calls in proxy/, db/, policy/"
fi
e2e_done
