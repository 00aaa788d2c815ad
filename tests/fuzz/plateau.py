#!/usr/bin/env python3
"""Runs fuzz campaigns and reports whether coverage reached a plateau.

    python3 tests/fuzz/plateau.py [--seconds 600] TARGET [TARGET ...]

Each target runs through tests/fuzz/campaign.sh (clang, libFuzzer, ASan,
UBSan), one after the other. libFuzzer's status lines carry executions and
coverage but no time, so this script stamps each line as it arrives and
prints, per target, coverage (edges) and features at 10%, 25%, 50%, 75% and
100% of the run, when the last new edge was found, and the final figures.
A target whose last new edge came in the first half of its run, with the
second half adding none, is reported as "plateau"; otherwise "rising".
The raw logs go to build-fuzz/TARGET.log.

With --merge, each corpus is then minimised with libFuzzer's -merge=1:
inputs named by their hash (the fuzzer's own) that add no coverage are
removed; hand-named seeds and regressions are always kept.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import sys
import time

STATUS = re.compile(r"^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+)")
CRASH = re.compile(r"(ERROR: AddressSanitizer|ERROR: libFuzzer|runtime error:|==\d+==ERROR)")


def run(target, seconds, root):
    os.makedirs(os.path.join(root, "build-fuzz"), exist_ok=True)
    log_path = os.path.join(root, "build-fuzz", target + ".log")
    points = []  # (t, execs, cov, ft)
    crash = None
    start = None
    with open(log_path, "w") as log:
        p = subprocess.Popen(["sh", "tests/fuzz/campaign.sh", target, str(seconds)], cwd=root,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        for line in p.stdout:
            log.write(line)
            m = STATUS.match(line)
            if m:
                now = time.monotonic()
                if start is None:  # the first status line ends the build
                    start = now
                points.append((now - start, int(m.group(1)), int(m.group(3)), int(m.group(4))))
            elif CRASH.search(line) and not crash:
                crash = line.strip()
        rc = p.wait()
    if not points:
        return {"target": target, "error": "no status lines (build failed?)", "log": log_path, "rc": rc}
    total = points[-1][0] or 1.0

    def at(frac):
        best = points[0]
        for pt in points:
            if pt[0] <= frac * total:
                best = pt
        return {"t": round(best[0], 1), "execs": best[1], "cov": best[2], "ft": best[3]}

    last_new_edge = points[0][0]
    for prev, cur in zip(points, points[1:]):
        if cur[2] > prev[2]:
            last_new_edge = cur[0]
    half = at(0.5)
    return {
        "target": target,
        "rc": rc,
        "crash": crash,
        "seconds": round(total, 1),
        "execs": points[-1][1],
        "exec_per_s": round(points[-1][1] / total),
        "cov": points[-1][2],
        "ft": points[-1][3],
        "checkpoints": {str(f): at(f) for f in (0.1, 0.25, 0.5, 0.75, 1.0)},
        "last_new_edge_s": round(last_new_edge, 1),
        "verdict": "plateau" if half["cov"] == points[-1][2] else "rising",
        "log": log_path,
    }


HASH_NAME = re.compile(r"^[0-9a-f]{40}$")


def merge(target, root):
    corpus = os.path.join(root, "tests", "fuzz", "corpus", target)
    binary = os.path.join(root, "build-fuzz", "fuzz-" + target)
    if target == "http":  # built by meson, see campaign.sh
        d = "build-fuzz-http-undefined" if os.environ.get("FUZZ_SANITIZE") == "undefined" else "build-fuzz-http"
        binary = os.path.join(root, d, "tests", "fuzz", "fuzz-http")
    before = len(os.listdir(corpus))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([binary, "-merge=1", tmp, corpus], cwd=root, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        keep = set(os.listdir(tmp))
        for name in os.listdir(corpus):
            if HASH_NAME.match(name) and name not in keep:
                os.remove(os.path.join(corpus, name))
        for name in keep:
            if not os.path.exists(os.path.join(corpus, name)):
                shutil.copy(os.path.join(tmp, name), os.path.join(corpus, name))
    return before, len(os.listdir(corpus))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=600)
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--merge", action="store_true", help="minimise each corpus afterwards")
    ap.add_argument("targets", nargs="+")
    a = ap.parse_args()
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    results = []
    for i, t in enumerate(a.targets):
        print(f"[{i + 1}/{len(a.targets)}] {t}: {a.seconds} s campaign ...", file=sys.stderr, flush=True)
        r = run(t, a.seconds, root)
        results.append(r)
        if "error" in r:
            print(f"  {t}: {r['error']} (see {r['log']})", flush=True)
            continue
        cps = "  ".join(f"{int(float(k) * 100)}%: cov {v['cov']} ft {v['ft']}" for k, v in r["checkpoints"].items())
        print(f"{t}: {r['execs']:,} execs in {r['seconds']} s ({r['exec_per_s']:,}/s), cov {r['cov']}, ft {r['ft']}, "
              f"last new edge at {r['last_new_edge_s']} s -> {r['verdict']}"
              + (f"; CRASH: {r['crash']}" if r["crash"] else ""), flush=True)
        print(f"  {cps}", flush=True)
        if a.merge:
            before, after = merge(t, root)
            r["corpus_before"], r["corpus_after"] = before, after
            print(f"  corpus minimised: {before} -> {after} inputs", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    bad = [r for r in results if r.get("crash") or "error" in r]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
