#!/bin/sh
# Builds and runs every test suite twice: a normal build (build/) and one
# under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/), then
# prints the closing line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
sh scripts/deps.sh || exit 1
status=0
run_variant() {
    dir=$1; shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
    fi
    rm -f "$dir/meson-logs/testlog.json"
    echo "== building $dir"
    meson compile -C "$dir" >"$dir.compile.log" 2>&1 || { tail -50 "$dir.compile.log"; return 1; }
    echo "== testing $dir"
    meson test -C "$dir" --print-errorlogs --num-processes 2
}
run_variant build || status=1
run_variant build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug || status=1
rm -f build.setup.log build-asan.setup.log
echo "== summary"
python3 scripts/test-summary.py build/meson-logs/testlog.json build-asan/meson-logs/testlog.json
exit $status
