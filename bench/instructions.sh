#!/bin/sh
# bench/instructions.sh - instructions a query, counted by callgrind: a
# measure of the server's own work that does not move with the neighbours
# on a shared machine (wall-clock CPU does, by ±25% here).
#
#   sh bench/instructions.sh [BINARY...]      default: build/slorag
#
# Builds the synthetic 10k-chunk corpus of bench/overhead.sh (one chunk a
# document, three-word questions), and for each binary: ingests it, starts
# `serve` under callgrind with instrumentation off, waits for the lexical
# index, sends 20 warm-up questions, switches instrumentation on, sends 300
# questions one after the other, and prints the instructions they took
# (every thread, user space) divided by 300.  Needs valgrind (Debian's;
# installed here when missing).  About a minute a binary.
# KEEP=DIR keeps callgrind's files there (DIR/BINARY-NAME.cg.PID), for
# callgrind_annotate.
set -eu
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- build/slorag
if ! command -v valgrind >/dev/null 2>&1; then
    echo "installing valgrind (Debian package) ..." >&2
    apt-get install -y valgrind >/dev/null
fi
TMP=$(mktemp -d /tmp/slorag-instr-XXXXXX)
S=""
cleanup() { [ -n "$S" ] && kill "$S" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM
python3 - "$TMP" <<'PY'
import json, random, sys
tmp = sys.argv[1]
random.seed(7)
syll = ["ka", "lo", "mi", "ren", "to", "vas", "dri", "pel", "sun", "or", "ith", "ban", "qu", "el", "zor", "fa"]
vocab = sorted({"".join(random.choice(syll) for _ in range(random.randint(2, 4))) for _ in range(20000)})[:6000]
qs = ["What is the %s of %s %s?" % tuple(random.sample(vocab, 3)) for _ in range(500)]
json.dump(qs, open(tmp + "/questions.json", "w"))
random.seed(10000)
with open(tmp + "/corpus.jsonl", "w") as f:
    for i in range(10000):
        w = [random.choice(vocab) for _ in range(60)]
        text = " ".join(w[:20]) + ". " + " ".join(w[20:40]) + ". " + " ".join(w[40:]) + "."
        f.write(json.dumps({"id": "d%d" % i, "title": "doc %d" % i, "text": text}) + "\n")
PY
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
for BIN in "$@"; do
    rm -rf "$TMP/data" "$TMP"/cg.out.*
    "$BIN" ingest --data "$TMP/data" --collection bench "$TMP/corpus.jsonl" </dev/null >/dev/null 2>&1
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$TMP/cg.out.%p" \
        "$BIN" serve --data "$TMP/data" --listen "127.0.0.1:$PORT" >/dev/null 2>"$TMP/cg.log" &
    S=$!
    python3 - "$TMP" "$PORT" "$S" <<'PY'
import json, subprocess, sys, time, urllib.request
tmp, port, pid = sys.argv[1], sys.argv[2], sys.argv[3]
base = "http://127.0.0.1:%s" % port
t0 = time.time()
while True:
    try:
        d = json.load(urllib.request.urlopen(base + "/v1/collections", timeout=5))
        if all(c.get("lexical", {}).get("ready") for c in d["collections"]):
            break
    except OSError:
        pass
    if time.time() - t0 > 300:
        sys.exit("the server did not get ready")
    time.sleep(0.5)
qs = json.load(open(tmp + "/questions.json"))
def ask(i):
    body = json.dumps({"question": qs[i % len(qs)], "collection": "bench"}).encode()
    r = urllib.request.Request(base + "/v1/query", data=body, headers={"Content-Type": "application/json"})
    urllib.request.urlopen(r, timeout=60).read()
for i in range(20):
    ask(i)
subprocess.run(["callgrind_control", "-i", "on", pid], stdout=subprocess.DEVNULL, check=True)
for i in range(300):
    ask(i + 50)
    if sys.stderr.isatty() and i % 30 == 29:
        print("\r%d/300 questions" % (i + 1), end="", file=sys.stderr)
subprocess.run(["callgrind_control", "-i", "off", pid], stdout=subprocess.DEVNULL, check=True)
subprocess.run(["callgrind_control", "-d", pid], stdout=subprocess.DEVNULL, check=True)
if sys.stderr.isatty():
    print("", file=sys.stderr)
PY
    kill "$S"
    wait "$S" 2>/dev/null || true
    S=""
    if [ -n "${KEEP:-}" ]; then
        mkdir -p "$KEEP"
        for f in "$TMP"/cg.out.*; do cp "$f" "$KEEP/$(basename "$BIN").cg.${f##*.}"; done
    fi
    IR=$(cat "$TMP"/cg.out.* | awk '/^(summary|totals):/ {s += $2} END {print s}')
    echo "$BIN: $((IR / 300)) instructions a query (300 sequential queries, 10k chunks, user space, every thread)"
done
