# AWS helpers for the end-to-end scenarios: tests/e2e/aws_fake.py (ECR API, ECR's registry, S3,
# IMDSv2, container credentials, STS in one process, in front of a docker-registry) and the
# stdlib client tests/e2e/aws_client.py. Source AFTER tests/e2e/lib.sh and lib_registry.sh
# (uses E2E_TMP, E2E_PIDS, wait_port, E2E_DIR_SELF).
#
#   start_aws_fake NAME BACKEND_URL [aws_fake.py args...]
#        -> AWS_FAKE_PID AWS_PORTS_FILE
#           AWS_API_PORT AWS_DATA_PORT AWS_S3_PORT AWS_IMDS_PORT AWS_CONTAINER_PORT AWS_STS_PORT
#           AWS_API_URL  AWS_DATA_URL  AWS_S3_URL  AWS_IMDS_URL  AWS_CONTAINER_URL  AWS_STS_URL
#           (http://127.0.0.1:PORT, no trailing slash)
#   aws_ctl PATH [JSON]          GET (or POST JSON) $AWS_API_URL/_ctl/PATH
#   aws_count KEY [SUBKEY]       prints counts[KEY] (or counts[KEY][SUBKEY]); 0 when absent
#   aws_client ARGS...           python3 tests/e2e/aws_client.py ARGS...
#   E2E_PYTHON                   the python3 interpreter's path (exported), for tests' own calls
#
# Every process started here is appended to E2E_PIDS, so lib.sh's EXIT trap stops it by PID; a
# test may stop it earlier with stop_pid "$AWS_FAKE_PID". The fake's listeners are chosen by
# the fake itself (port 0) and read back from its ports file, so they never race free_port.

E2E_DIR_SELF=${E2E_DIR_SELF:-"${TOP_SRCDIR}/tests/e2e"}
# The interpreter itself, resolved once: a wrapper such as pyenv's shim costs ~0.2 s a call.
E2E_PYTHON=${E2E_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
export E2E_PYTHON

# start_aws_fake NAME BACKEND_URL [ARGS...]: aws_fake.py in front of BACKEND_URL (a
# docker-registry from start_registry), stdout $E2E_TMP/NAME.out, stderr (one line per
# request, no secrets) $E2E_TMP/NAME.log, ports in $E2E_TMP/NAME.ports.json. ARGS go to
# aws_fake.py (--static-key AK:SK, --region, --account, --token-lifetime, --creds-lifetime,
# --container-auth, --web-identity-token, --min-part-bytes, --expired-token-status, fixed
# --*-port ...; see its docstring). Waits for "ready" (at most 15 s).
start_aws_fake() {
    local name=$1 backend=$2 i l var
    shift 2
    AWS_PORTS_FILE="$E2E_TMP/$name.ports.json"
    rm -f "$AWS_PORTS_FILE"
    "$E2E_PYTHON" -u "$E2E_DIR_SELF/aws_fake.py" --backend "$backend" --ports-file "$AWS_PORTS_FILE" "$@" \
        >"$E2E_TMP/$name.out" 2>"$E2E_TMP/$name.log" </dev/null &
    AWS_FAKE_PID=$!
    E2E_PIDS+=("$AWS_FAKE_PID")
    for i in $(seq 1 300); do
        if grep -qx ready "$E2E_TMP/$name.out" 2>/dev/null; then
            for l in api data s3 imds container sts; do
                var=$(echo "$l" | tr '[:lower:]' '[:upper:]')
                printf -v "AWS_${var}_PORT" '%s' \
                    "$("$E2E_PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
                        "$AWS_PORTS_FILE" "$l")"
                eval "AWS_${var}_URL=http://127.0.0.1:\$AWS_${var}_PORT"
                eval "wait_port \"\$AWS_${var}_PORT\" 5" || return 1
            done
            return 0
        fi
        kill -0 "$AWS_FAKE_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "aws fake $name did not become ready; log:" >&2
    tail -n 20 "$E2E_TMP/$name.log" >&2
    return 1
}

# aws_ctl PATH [JSON]: the fake's control API ("counts", "reset-counts", "repos", "faults",
# "expire-tokens", "expire-credentials", "health"; a leading "/_ctl/" is accepted). With JSON
# (may be '') it POSTs it, else GETs. Prints the body; fails on a non-2xx answer.
#   aws_ctl faults '[{"listener":"api","match":"GetAuthorizationToken","kind":"throttle","count":2}]'
#   aws_ctl faults '[]'          # clear
#   aws_ctl expire-tokens ''
aws_ctl() {
    local path=${1#/}
    path=${path#_ctl/}
    local url="$AWS_API_URL/_ctl/$path"
    if [ $# -ge 2 ]; then
        curl -sS -f -m 10 -X POST -H 'Content-Type: application/json' --data-binary "${2:-[]}" "$url"
    else
        curl -sS -f -m 10 "$url"
    fi
}

# aws_count KEY [SUBKEY]: one of the fake's counters, e.g. aws_count patch_rejected,
# aws_count data "GET blob", aws_count api GetAuthorizationToken, aws_count api_rejected
# signature, aws_count container unauthorized. Prints 0 for an unknown key.
aws_count() {
    aws_ctl counts | "$E2E_PYTHON" -c '
import json, sys
v = json.load(sys.stdin).get(sys.argv[1], 0)
if len(sys.argv) > 2:
    v = v.get(sys.argv[2], 0) if isinstance(v, dict) else 0
print(len(v) if isinstance(v, list) else v)' "$@"
}

# aws_client ARGS...: tests/e2e/aws_client.py (SigV4-signed ECR calls, image pushes, SigV4
# test-suite vectors; see its docstring).
aws_client() {
    "$E2E_PYTHON" "$E2E_DIR_SELF/aws_client.py" "$@"
}
