#!/usr/bin/env bash
# Every C source and header (base/, proxy/, db/, policy/, tests/unit/, tests/fuzz/) is as
# clang-format (the checked-in .clang-format) would write it; `make format` rewrites them.
source "$TOP_SRCDIR/tests/e2e/lib.sh"

cf=$(command -v clang-format || command -v clang-format-14 || true)
if [ -z "$cf" ]; then
    # tests/ci.sh requires it (the setup script installs it); a tarball build may lack it.
    if [ "${ECRPTC_REQUIRE_FORMAT:-0}" = 1 ]; then
        fail "clang-format is installed (deploy/debian-setup.sh installs it)"
        e2e_done
    fi
    echo "SKIP: no clang-format" >&2
    exit 77
fi
mapfile -t files < <(cd "$TOP_SRCDIR" && find base proxy db policy tests/unit tests/fuzz \
    -maxdepth 2 -type f \( -name '*.c' -o -name '*.h' \) -not -path 'tests/fuzz/corpus/*' | sort)
bad=()
for f in "${files[@]}"; do
    if ! (cd "$TOP_SRCDIR" && "$cf" --style=file --dry-run --Werror "$f" >/dev/null 2>&1); then
        bad+=("$f")
    fi
done
if [ "${#files[@]}" -eq 0 ]; then
    fail "found no sources to check"
elif [ "${#bad[@]}" -eq 0 ]; then
    pass "all ${#files[@]} sources are clang-formatted"
else
    printf 'not formatted (run make format): %s\n' "${bad[@]}" >&2
    fail "${#bad[@]} of ${#files[@]} sources differ from clang-format"
fi
e2e_done
