#!/bin/sh
# Runs a libFuzzer campaign on one target with clang, ASan and UBSan.
#   tests/fuzz/campaign.sh TARGET [SECONDS]     TARGET: config chunk html answer openai sse
# New inputs that grow coverage go to tests/fuzz/corpus/TARGET (commit the
# ones worth keeping: the normal test run replays them); a crash leaves
# crash-* in the current directory: add it to the corpus once fixed.
set -eu
cd "$(dirname "$0")/../.."
t=${1:?target}
secs=${2:-60}
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
openai) src="orchestrator/openai.c slo/plan.c $common"; libs="-ljansson" ;;
*) echo "unknown target $t" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086
clang $flags $inc "tests/fuzz/fuzz-$t.c" $src $libs -lm -o "$out/fuzz-$t"
mkdir -p "tests/fuzz/corpus/$t"
"$out/fuzz-$t" -max_total_time="$secs" -print_final_stats=1 "tests/fuzz/corpus/$t"
