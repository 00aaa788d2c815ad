#!/bin/sh
# run.sh - the dashboard browser check.
#
#   tests/browser/run.sh 'http://127.0.0.1:8080/dashboard?key=KEY' out.png
#
# Installs playwright-core into tests/browser/node_modules on first use
# (never saved, no lockfile) and drives Debian's /usr/bin/chromium with it
# (apt-get install chromium); playwright's own browser downloads are never
# used.  Exit 0 when the page matches /v1/stats, 1 with the mismatches
# otherwise, 2 on a usage or setup error.
set -eu

PLAYWRIGHT_VERSION=1.64.1   # drives Chromium 156, the version Debian 12 ships
here=$(cd "$(dirname "$0")" && pwd)

if [ $# -ne 2 ]; then
    echo "usage: $0 DASHBOARD_URL OUT.png   (DASHBOARD_URL may carry ?key=KEY)" >&2
    exit 2
fi
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export CHROMIUM
if [ ! -x "$CHROMIUM" ]; then
    echo "run.sh: $CHROMIUM is missing: apt-get install -y chromium" >&2
    exit 2
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "run.sh: node and npm are needed: apt-get install -y nodejs npm" >&2
    exit 2
fi

installed=$(node -p "try { require('$here/node_modules/playwright-core/package.json').version } catch (e) { '' }" 2>/dev/null || true)
if [ "$installed" != "$PLAYWRIGHT_VERSION" ]; then
    echo "run.sh: installing playwright-core@$PLAYWRIGHT_VERSION into tests/browser/node_modules"
    if ! (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 300 npm install --no-save --no-package-lock \
            --no-audit --no-fund "playwright-core@$PLAYWRIGHT_VERSION" >npm-install.log 2>&1); then
        echo "run.sh: npm install failed; see tests/browser/npm-install.log:" >&2
        tail -20 "$here/npm-install.log" >&2
        exit 2
    fi
fi

exec node "$here/check.mjs" "$1" "$2"
