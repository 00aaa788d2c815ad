#!/bin/sh
# Runs a libFuzzer campaign on one target with clang, ASan and UBSan.
#   tests/fuzz/campaign.sh TARGET [SECONDS]     TARGET: config chunk html answer openai sse http
# New inputs that grow coverage go to tests/fuzz/corpus/TARGET (commit the
# ones worth keeping: the normal test run replays them); a crash leaves
# crash-* in the current directory: add it to the corpus once fixed.
# Extra arguments after SECONDS go to libFuzzer (e.g. -merge=1 DIR...).
#
# The http target runs the whole server in-process, C++ FAISS shim and
# all, so it is built by meson in its own clang build directory
# (build-fuzz-http/, -Dfuzzing=true: every C file instrumented for
# libFuzzer, ASan and UBSan), not by the one-line compile below.
# Each input there is a whole connection to a running server, and ASan
# halves the rate; for long campaigns FUZZ_SANITIZE=undefined builds it
# with UBSan alone (in build-fuzz-http-undefined/), and
# FUZZ_HTTP_QUIET_MS=1 shortens the harness's wait for the end of an
# exchange (5 ms by default).  The corpus found is the same corpus: replay
# it under ASan afterwards (the normal test run does, in build-asan).
set -eu
cd "$(dirname "$0")/../.."
t=${1:?target}
secs=${2:-60}
shift $(($# < 2 ? $# : 2))
if [ "$t" = http ]; then
    san=${FUZZ_SANITIZE:-address,undefined}
    case "$san" in
    address,undefined) dir=build-fuzz-http ;;
    undefined) dir=build-fuzz-http-undefined ;;
    *) echo "FUZZ_SANITIZE: address,undefined or undefined, not $san" >&2; exit 2 ;;
    esac
    if [ ! -f "$dir/build.ninja" ]; then
        CC=clang CXX=clang++ meson setup "$dir" -Dfuzzing=true -Db_sanitize="$san" -Db_lundef=false \
            -Dbuildtype=debugoptimized >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; exit 1; }
        rm -f "$dir.setup.log"
    fi
    meson compile -C "$dir" tests/fuzz/fuzz-http
    mkdir -p tests/fuzz/corpus/http
    # -timeout: an input runs for at most a few seconds (fuzz-http.c aborts
    # at 10 s); leaks are checked at exit, after the server's teardown
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0" \
        "$dir/tests/fuzz/fuzz-http" -max_total_time="$secs" -timeout=30 -print_final_stats=1 \
        -dict=tests/fuzz/http.dict "$@" tests/fuzz/corpus/http
    exit
fi
out=build-fuzz
mkdir -p "$out"
inc="-Icommon -Iconfig -Iretrieval -Islo -Iagents -Iorchestrator"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -DSLORAG_VERSION=\"fuzz\""
common="common/arena.c common/buf.c common/err.c common/log.c common/text.c common/util.c"
case "$t" in
config) src="config/config.c $common"; libs="-ljansson" ;;
chunk) src="retrieval/chunk.c $common"; libs="" ;;
html) src="retrieval/html.c $common"; libs="" ;;
answer) src="agents/llm.c $common"; libs="" ;;
sse) src="agents/sse.c $common"; libs="-ljansson" ;;
openai) src="orchestrator/openai.c slo/plan.c slo/space.c $common"; libs="-ljansson" ;;
*) echo "unknown target $t" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086
clang $flags $inc "tests/fuzz/fuzz-$t.c" $src $libs -lm -o "$out/fuzz-$t"
mkdir -p "tests/fuzz/corpus/$t"
# a target's dictionary (tests/fuzz/TARGET.dict), when it has one
dict=""
[ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
# shellcheck disable=SC2086
"$out/fuzz-$t" -max_total_time="$secs" -print_final_stats=1 $dict "$@" "tests/fuzz/corpus/$t"
