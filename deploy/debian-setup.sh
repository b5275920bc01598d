#!/bin/sh
# Installs every Debian 12 package that ecr-ptc-proxy's build, tests and benchmarks need.
# Idempotent: installs only what is missing. Run as root (or through sudo).
set -eu

pkgs="build-essential autoconf automake libtool pkg-config make gcc clang
libevent-dev libssl-dev libjansson-dev libsqlite3-dev libcurl4-openssl-dev libcriterion-dev
libclang-rt-14-dev clang-format
curl ca-certificates openssl python3 sqlite3 jq git
docker-registry skopeo containerd umoci chromium
nginx wrk hey apache2-utils systemd time"

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "debian-setup: all packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo "$0" "$@"
    fi
    echo "debian-setup: missing packages:$missing; run this script as root" >&2
    exit 1
fi

echo "debian-setup: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# Package post-install scripts must not start services on a build or CI machine.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d.ecr-ptc-proxy
chmod +x /usr/sbin/policy-rc.d.ecr-ptc-proxy
if [ ! -e /usr/sbin/policy-rc.d ]; then
    cp /usr/sbin/policy-rc.d.ecr-ptc-proxy /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
rm -f /usr/sbin/policy-rc.d.ecr-ptc-proxy
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
echo "debian-setup: done"
