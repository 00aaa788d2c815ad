#!/bin/sh
# The dashboard in a real browser, as a test: starts slorag on an ephemeral
# loopback port with a temporary data directory, makes some traffic, then
# runs tests/browser/run.sh (headless Chromium via playwright-core) against
# /dashboard: the page must show the numbers /v1/stats reports.
# Exit 77 (meson: skipped) only when playwright-core cannot be installed
# because the npm registry is unreachable.
set -u
bin=${SLORAG_BIN:?}
root=${SLORAG_SOURCE_ROOT:?}
dir=$(mktemp -d /tmp/slorag-browser-XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

"$bin" serve --data "$dir" --listen 127.0.0.1:0 >"$dir/out" 2>"$dir/log" &
pid=$!
i=0
while ! grep -q "http://127.0.0.1:" "$dir/out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -gt 100 ] && { echo "slorag did not start"; cat "$dir/log"; exit 1; }
    sleep 0.1
done
port=$(sed -n 's#.*http://127\.0\.0\.1:\([0-9][0-9]*\).*#\1#p' "$dir/out" | head -n 1)
base="http://127.0.0.1:$port"
curl -sf "$base/v1/collections/kb/documents" -H 'Content-Type: application/json' \
    -d '[{"id": "h", "text": "The harbour office opens at seven in the morning. Ferries leave every two hours."}]' >/dev/null ||
    { echo "upload failed"; exit 1; }
for q in "When does the harbour office open?" "How often do ferries leave?" "Why is the sky green?"; do
    curl -sf "$base/v1/query" -H 'Content-Type: application/json' \
        -d "{\"question\": \"$q\", \"collection\": \"kb\"}" >/dev/null || { echo "query failed"; exit 1; }
done

sh "$root/tests/browser/run.sh" "$base/dashboard" "$dir/dashboard.png"
rc=$?
if [ $rc -eq 2 ] && [ -f "$root/tests/browser/npm-install.log" ] &&
    ! [ -d "$root/tests/browser/node_modules/playwright-core" ]; then
    echo "skipped: playwright-core could not be installed (npm registry unreachable)"
    exit 77
fi
[ $rc -eq 0 ] || exit $rc
[ -s "$dir/dashboard.png" ] || { echo "no screenshot"; exit 1; }
echo "browser check passed; screenshot $(wc -c <"$dir/dashboard.png") bytes"
