#!/bin/sh
# Runs every unit test program under valgrind's memcheck (errors and
# definite leaks fail), after `make`.  Slower than ASan; run on demand:
#   make valgrind
set -u
cd "$(dirname "$0")/.."
# the environment tests/meson.build gives them (datasets, documents)
SLORAG_SOURCE_ROOT=$(pwd)
SLORAG_TEST_DOCS=$(pwd)/tests/data/docs
export SLORAG_SOURCE_ROOT SLORAG_TEST_DOCS
status=0
for t in build/tests/test-*; do
    case "$t" in *.p) continue ;; esac
    name=$(basename "$t")
    [ -f "tests/unit/${name}.c" ] || continue
    if CMOCKA_MESSAGE_OUTPUT=TAP valgrind -q --error-exitcode=9 --leak-check=full --errors-for-leak-kinds=definite \
        --suppressions=tests/valgrind.supp "$t" >"build/$name.valgrind.log" 2>&1; then
        echo "ok: $name"
    else
        echo "FAILED: $name (see build/$name.valgrind.log)"
        status=1
    fi
done
exit $status
