#!/bin/sh
# Installs the Debian packages slorag needs to build, test and run.
# Idempotent: installs only what is missing, and says what it installs.
set -eu

PKGS="gcc g++ make meson ninja-build pkg-config python3 git ca-certificates
libmicrohttpd-dev libsqlite3-dev libcurl4-openssl-dev libjansson-dev
libcmocka-dev libstemmer-dev libfaiss-dev libopenblas-dev liblapack-dev
libsodium-dev prometheus chromium curl"

# the integration tests drive slorag with the official openai npm client
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

echo "deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    else
        echo "deps: not root and no sudo; run as root: apt-get install -y$missing" >&2
        exit 1
    fi
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
echo "deps: done"
