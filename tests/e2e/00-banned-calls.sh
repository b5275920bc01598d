#!/usr/bin/env bash
# STYLE.md bans sprintf, strcpy, strcat, strtok, atoi and friends from the daemon's sources:
# every .c and .h under base/, proxy/, db/ and policy/, subfolders included. The thread-safe
# gmtime_r and localtime_r stay allowed: the pattern wants '(' right after the banned name.
source "$TOP_SRCDIR/tests/e2e/lib.sh"

banned='sprintf|vsprintf|strcpy|strcat|strncpy|strncat|strtok|atoi|atol|atoll|gets|gmtime|localtime'
dirs=()
for d in base proxy db policy; do
    if [ -d "$TOP_SRCDIR/$d" ]; then dirs+=("$TOP_SRCDIR/$d"); fi
done
nfiles=$(find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' \) | wc -l)
found=$(find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' \) -print0 |
    xargs -0 grep -nHE "\\b($banned)\\s*\\(" || true)
if [ "$nfiles" -eq 0 ]; then
    fail "found no sources under proxy/, db/, policy/"
elif [ -n "$found" ]; then
    echo "$found" >&2
    fail "no banned calls in proxy/, db/, policy/ ($nfiles files)"
else
    pass "no banned calls in proxy/, db/, policy/ ($nfiles files)"
fi
e2e_done
