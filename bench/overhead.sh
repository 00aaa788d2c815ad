#!/bin/sh
# bench/overhead.sh - slorag's own time per query, and its throughput with
# the extractive tier, each beside the floor: a bare libmicrohttpd server
# (bench/hello-mhd.c) measured in the same run.
#
#   sh bench/overhead.sh [CHUNKS...]     default: 10000 100000
#   DURATION=10 CONNECTIONS=16 sh bench/overhead.sh 10000
#   SLORAG=/tmp/slorag-old sh bench/overhead.sh 10000     another binary (A/B runs)
#   CONFIG=FILE sh bench/overhead.sh 10000                 serve with --config FILE
#       (e.g. {"retrieval": {"text_cache_mb": 0}} to measure without the text cache)
#
# For each corpus size it builds a synthetic corpus (one chunk a document),
# ingests it into a scratch data directory, starts `slorag serve` on it and
# then:
#   1. own time: 1,000 sequential questions over one keep-alive connection;
#      from each response's timings, total_ms - retrieve_ms (everything but
#      retrieval: parsing, auth, queueing, classify, plan, the extractive
#      answer, JSON) and retrieve_ms; p50 and p99;
#   2. throughput: wrk (Debian's; installed here when missing) for
#      DURATION seconds with CONNECTIONS connections, random questions,
#      and the same against hello-mhd;
#   3. CPU per query: the slorag process's user+system CPU seconds during
#      the wrk run divided by the requests it served, and the two parts.
# PERF=FILE records the server with `perf record -g` during the wrk run
# (a frame-pointer build gives whole call stacks: meson setup build-fp
# -Dc_args=-fno-omit-frame-pointer, then SLORAG=build-fp/slorag).
# The load generator shares the 2 cores with the server: that is the
# measured condition, not a mistake.
set -eu
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
[ $# -gt 0 ] || set -- 10000 100000
if ! command -v wrk >/dev/null 2>&1; then
    echo "installing wrk (Debian package) ..." >&2
    apt-get install -y wrk >/dev/null
fi
SLORAG=${SLORAG:-build/slorag}
[ -x "$SLORAG" ] && [ -x build/bench/hello-mhd ] || make build >/dev/null
TMP=$(mktemp -d /tmp/slorag-overhead-XXXXXX)
SERVER=""
HELLO=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
    [ -n "$HELLO" ] && kill "$HELLO" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # url
    i=0
    until python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 200 ] || { echo "server did not come up: $1" >&2; exit 1; }
        sleep 0.1
    done
}

cpu_ticks() { # pid -> "utime stime" in clock ticks
    awk '{print $14, $15}' "/proc/$1/stat"
}

# the questions, shared by the python client and wrk's script
python3 - "$TMP" <<'PY'
import json, random, sys
random.seed(7)
tmp = sys.argv[1]
syll = ["ka", "lo", "mi", "ren", "to", "vas", "dri", "pel", "sun", "or", "ith", "ban", "qu", "el", "zor", "fa"]
vocab = sorted({"".join(random.choice(syll) for _ in range(random.randint(2, 4))) for _ in range(20000)})[:6000]
json.dump(vocab, open(tmp + "/vocab.json", "w"))
qs = []
for _ in range(500):
    words = random.sample(vocab, 3)
    qs.append("What is the %s of %s %s?" % tuple(words))
json.dump(qs, open(tmp + "/questions.json", "w"))
with open(tmp + "/questions.lua", "w") as f:
    f.write("local qs = {\n")
    for q in qs:
        f.write("  %s,\n" % json.dumps(json.dumps({"question": q, "collection": "bench"})))
    f.write("}\nmath.randomseed(7)\n")
    f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
    f.write("request = function()\n  wrk.body = qs[math.random(#qs)]\n  return wrk.format()\nend\n")
PY

HPORT=$(free_port)
build/bench/hello-mhd "$HPORT" >/dev/null &
HELLO=$!
wait_http "http://127.0.0.1:$HPORT/"

for CHUNKS in "$@"; do
    echo "== $CHUNKS chunks"
    python3 - "$TMP" "$CHUNKS" <<'PY'
import json, random, sys
tmp, n = sys.argv[1], int(sys.argv[2])
random.seed(n)
vocab = json.load(open(tmp + "/vocab.json"))
with open(tmp + "/corpus.jsonl", "w") as f:
    for i in range(n):
        # one paragraph of ~60 words: one chunk per document
        words = [random.choice(vocab) for _ in range(60)]
        text = " ".join(words[:20]) + ". " + " ".join(words[20:40]) + ". " + " ".join(words[40:]) + "."
        f.write(json.dumps({"id": "d%d" % i, "title": "doc %d" % i, "text": text}) + "\n")
PY
    rm -rf "$TMP/data"
    "$SLORAG" ingest --data "$TMP/data" --collection bench "$TMP/corpus.jsonl" </dev/null 2>&1 | tail -1
    PORT=$(free_port)
    # shellcheck disable=SC2086
    "$SLORAG" serve ${CONFIG:+--config "$CONFIG"} --data "$TMP/data" --listen "127.0.0.1:$PORT" >/dev/null 2>"$TMP/serve.log" &
    SERVER=$!
    wait_http "http://127.0.0.1:$PORT/healthz"
    # the in-memory lexical index is built in the background after start
    # (FTS5 answers meanwhile): measure the steady state
    python3 - "$PORT" <<'PY'
import json, sys, time, urllib.request
t0 = time.time()
while True:
    d = json.load(urllib.request.urlopen("http://127.0.0.1:%s/v1/collections" % sys.argv[1], timeout=5))
    if all(c.get("lexical", {}).get("ready") for c in d["collections"]):
        break
    if time.time() - t0 > 300:
        sys.exit("the lexical index was not ready after 300 s")
    time.sleep(0.1)
print("lexical index ready %.1f s after the server answered" % (time.time() - t0))
PY

    python3 - "$TMP" "$PORT" "$HPORT" <<'PY'
import http.client, json, sys, time
tmp, port, hport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
qs = json.load(open(tmp + "/questions.json"))
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(p * len(v))) - 1))]
c = http.client.HTTPConnection("127.0.0.1", port)
own, ret, wall = [], [], []
for i in range(1000):
    body = json.dumps({"question": qs[i % len(qs)], "collection": "bench"})
    t0 = time.perf_counter()
    c.request("POST", "/v1/query", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    d = json.loads(r.read())
    wall.append((time.perf_counter() - t0) * 1000)
    if r.status != 200:
        sys.exit("query failed: %s" % d)
    t = d["timings"]
    ret.append(t["retrieve_ms"])
    own.append(t["total_ms"] - t["retrieve_ms"])
h = http.client.HTTPConnection("127.0.0.1", hport)
hw = []
for i in range(1000):
    t0 = time.perf_counter()
    h.request("POST", "/v1/query", "{}", {"Content-Type": "application/json"})
    h.getresponse().read()
    hw.append((time.perf_counter() - t0) * 1000)
print("own time (total - retrieval): p50 %.3f ms, p99 %.3f ms" % (pct(own, .5), pct(own, .99)))
print("retrieval:                    p50 %.3f ms, p99 %.3f ms" % (pct(ret, .5), pct(ret, .99)))
print("client round trip: slorag p50 %.3f ms, p99 %.3f ms | hello-mhd p50 %.3f ms, p99 %.3f ms" %
      (pct(wall, .5), pct(wall, .99), pct(hw, .5), pct(hw, .99)))
PY

    T0=$(cpu_ticks "$SERVER")
    PERFPID=""
    if [ -n "${PERF:-}" ]; then
        perf record -g -q -o "$PERF" -p "$SERVER" -- sleep "$DURATION" 2>/dev/null &
        PERFPID=$!
    fi
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$TMP/questions.lua" "http://127.0.0.1:$PORT/v1/query" >"$TMP/wrk.out"
    T1=$(cpu_ticks "$SERVER")
    [ -z "$PERFPID" ] || wait "$PERFPID" || true
    wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$TMP/questions.lua" "http://127.0.0.1:$HPORT/v1/query" >"$TMP/wrk-hello.out"
    python3 - "$TMP" "$T0" "$T1" "$(getconf CLK_TCK)" "$DURATION" <<'PY'
import re, sys
tmp, hz, dur = sys.argv[1], int(sys.argv[4]), float(sys.argv[5])
(u0, s0), (u1, s1) = [[int(x) for x in a.split()] for a in sys.argv[2:4]]
def read(p):
    s = open(p).read()
    req = int(re.search(r"(\d+) requests in", s).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", s).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", s)
    lat = re.search(r"Latency\s+([\d.]+\w+)", s).group(1)
    return req, rps, int(bad.group(1)) if bad else 0, lat
req, rps, bad, lat = read(tmp + "/wrk.out")
hreq, hrps, _, hlat = read(tmp + "/wrk-hello.out")
cpu = (u1 + s1 - u0 - s0) / hz
served = max(req - bad, 1)
print("throughput: slorag %.0f queries/s (%d non-2xx, mean latency %s) | hello-mhd %.0f requests/s (mean %s) | ratio %.2f"
      % (rps, bad, lat, hrps, hlat, rps / hrps if hrps else 0))
print("CPU per query: %.3f ms (%.2f CPU s for %d queries; user %.3f ms, system %.3f ms)"
      % (cpu * 1000 / served, cpu, req - bad, (u1 - u0) * 1000 / hz / served, (s1 - s0) * 1000 / hz / served))
PY
    python3 - "$PORT" <<'PY'
import re, sys, urllib.request
m = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode()
def g(name):
    x = re.search(r"^%s (\S+)$" % name, m, re.M)
    return float(x.group(1)) if x else None
h, mi = g("slorag_text_cache_hits"), g("slorag_text_cache_misses")
if h is not None and mi is not None and h + mi > 0:
    print("text cache: %.1f%% of returned passages from memory (%d hits, %d misses, whole run)" % (100 * h / (h + mi), h, mi))
PY
    kill "$SERVER"
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
done
