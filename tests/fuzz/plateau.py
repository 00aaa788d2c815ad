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

With --replay, the inputs the campaign had found by 25%, 50%, 75% and 100%
of it (with the corpus it started from) are then loaded into a fresh
process each, --replays times (3): the coverage inputs reproduce on their
own.  The http target runs one long-lived server whose state grows over
hundreds of thousands of inputs (its database, timers, background threads),
so the campaign's own count also holds edges no input reaches by itself;
and its threads and clocks make a few edges come and go between replays of
the same corpus.  "replay_verdict" is "plateau" when no edge of the code
under test (the harness's own functions, in tests/fuzz/, left out) that the
final corpus reaches in every replay went unreached in every replay of the
half-time corpus; the edges that did are listed.

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


def binary_of(target, root):
    if target == "http":  # built by meson, see campaign.sh
        d = "build-fuzz-http-undefined" if os.environ.get("FUZZ_SANITIZE") == "undefined" else "build-fuzz-http"
        return os.path.join(root, d, "tests", "fuzz", "fuzz-http")
    return os.path.join(root, "build-fuzz", "fuzz-" + target)


COV_FUNC = re.compile(r"^(UN)?COVERED_FUNC: hits: \d+ edges: (\d+)/(\d+) (\S+) (\S+)$")
COV_PC = re.compile(r"^\s+UNCOVERED_PC: (\S+)$")


def coverage_of(text, root):
    """libFuzzer's -print_coverage=1 report as {function: (edges, {line: uncovered edges})}, with None for
    the lines of a function not reached at all.  A function is named by its name and where it starts; an
    edge by its function and its line (the report prints edges as lines, several to a line).  The
    harness's own functions (tests/fuzz/) are left out: the plateau is judged on the code under test."""
    funcs, cur = {}, None
    skip = os.path.join(root, "tests", "fuzz") + os.sep
    for line in text.splitlines():
        m = COV_FUNC.match(line)
        if m:
            where = os.path.normpath(m.group(5))
            cur = None
            if not where.startswith(skip):
                cur = (m.group(4), os.path.relpath(where, root))
                funcs[cur] = (int(m.group(3)), {} if not m.group(1) else None)
            continue
        m = COV_PC.match(line)
        if m and cur and funcs[cur][1] is not None:
            at = os.path.relpath(os.path.normpath(m.group(1)), root)
            funcs[cur][1][at] = funcs[cur][1].get(at, 0) + 1
    return funcs


def reach(runs):
    """Over several replays of one corpus: per function reached in any of them, its total edges, the
    uncovered edges per line in the replay that reached the most there (min) and the least (max; the
    function counts as unreached unless every replay reached it)."""
    out = {}
    for f in set().union(*runs):
        seen = [r[f][1] for r in runs if f in r and r[f][1] is not None]
        if not seen:
            continue
        lines = set().union(*seen)
        every = len(seen) == len(runs)
        out[f] = (next(r[f][0] for r in runs if f in r),
                  {l: min(u.get(l, 0) for u in seen) for l in lines},
                  {l: max(u.get(l, 0) for u in seen) for l in lines} if every else None)
    return out


def counts(rc):
    """Edges reached in every replay (stable) and in any (union)."""
    stable = sum(n - sum(mx.values()) for n, _, mx in rc.values() if mx is not None)
    union = sum(n - sum(mn.values()) for n, mn, _ in rc.values())
    return stable, union


def new_edges(half, end):
    """Edges the end corpus reaches in every replay that no replay of the half-time corpus reached:
    [(function, file, line or None, edges)]."""
    out = []
    for f, (n, _, mx) in end.items():
        if mx is None:
            continue
        if f not in half:
            out.append((f[0], f[1], None, n - sum(mx.values())))
            continue
        mn_half = half[f][1]
        for l in set(mn_half) | set(mx):
            d = mn_half.get(l, 0) - mx.get(l, 0)
            if d > 0:
                out.append((f[0], f[1], l, d))
    return out


def replayed(target, root, before, start_wall, total, replays=3):
    """Coverage that inputs reproduce: at each checkpoint, the corpus as it
    was before the campaign plus the inputs the campaign had written by then,
    loaded into a fresh process (-runs=0), `replays` times.  A target whose
    server keeps state across inputs (http) counts edges in the campaign that
    no input reaches on its own; these numbers leave them out.  Its threads
    and timers also make a few edges come and go from one replay of the same
    corpus to the next, so each checkpoint reports the edges reached in every
    replay (stable) and in any (union), and the plateau is judged on edges:
    any edge the final corpus reaches in every replay that no replay of the
    half-time corpus reached is new in the second half."""
    corpus = os.path.join(root, "tests", "fuzz", "corpus", target)
    out, maps = {}, {}
    for frac in (0.25, 0.5, 0.75, 1.0):
        cut = start_wall + frac * total
        with tempfile.TemporaryDirectory() as tmp:
            n = 0
            for name in os.listdir(corpus):
                path = os.path.join(corpus, name)
                if name in before or os.path.getmtime(path) <= cut:
                    shutil.copy(path, tmp)
                    n += 1
            runs, cov = [], []
            for _ in range(replays):
                r = subprocess.run([binary_of(target, root), "-runs=0", "-timeout=30", "-print_coverage=1", tmp],
                                   cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   errors="replace")
                m = re.search(r"INITED cov: (\d+) ft: (\d+)", r.stderr)
                cov.append(int(m.group(1)) if m else None)
                runs.append(coverage_of(r.stderr, root))
            maps[frac] = reach(runs)
            stable, union = counts(maps[frac])
            out[str(frac)] = {"inputs": n, "cov": cov, "stable": stable, "union": union}
    out["new_in_second_half"] = [list(e) for e in new_edges(maps[0.5], maps[1.0])]
    return out


def run(target, seconds, root, replay=False, replays=3):
    os.makedirs(os.path.join(root, "build-fuzz"), exist_ok=True)
    log_path = os.path.join(root, "build-fuzz", target + ".log")
    points = []  # (t, execs, cov, ft)
    crash = None
    start = None
    corpus = os.path.join(root, "tests", "fuzz", "corpus", target)
    before = set(os.listdir(corpus)) if os.path.isdir(corpus) else set()
    start_wall = None
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
                    start_wall = time.time()
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
    rep = replayed(target, root, before, start_wall, total, replays) if replay else None
    return {
        "replayed": rep,
        "replay_verdict": (None if not rep else
                           "plateau" if not rep["new_in_second_half"] else "rising"),
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
    binary = binary_of(target, root)
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
    ap.add_argument("--replay", action="store_true",
                    help="afterwards, replay the inputs found by 25/50/75/100%% of the campaign (with the corpus it "
                         "started from) in a fresh process: the coverage inputs reproduce")
    ap.add_argument("--replays", type=int, default=3, help="replays of each checkpoint's corpus (default 3)")
    ap.add_argument("targets", nargs="+")
    a = ap.parse_args()
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    results = []
    for i, t in enumerate(a.targets):
        print(f"[{i + 1}/{len(a.targets)}] {t}: {a.seconds} s campaign ...", file=sys.stderr, flush=True)
        r = run(t, a.seconds, root, a.replay, a.replays)
        results.append(r)
        if "error" in r:
            print(f"  {t}: {r['error']} (see {r['log']})", flush=True)
            continue
        cps = "  ".join(f"{int(float(k) * 100)}%: cov {v['cov']} ft {v['ft']}" for k, v in r["checkpoints"].items())
        print(f"{t}: {r['execs']:,} execs in {r['seconds']} s ({r['exec_per_s']:,}/s), cov {r['cov']}, ft {r['ft']}, "
              f"last new edge at {r['last_new_edge_s']} s -> {r['verdict']}"
              + (f"; CRASH: {r['crash']}" if r["crash"] else ""), flush=True)
        print(f"  {cps}", flush=True)
        if r.get("replayed"):
            rp = "  ".join(f"{int(float(k) * 100)}%: {v['inputs']} inputs, edges {v['stable']} in every replay, "
                           f"{v['union']} in any (libFuzzer cov {'/'.join(map(str, v['cov']))})"
                           for k, v in r["replayed"].items() if k != "new_in_second_half")
            print(f"  replayed: {rp} -> {r['replay_verdict']}", flush=True)
            for fn, where, line, n in r["replayed"]["new_in_second_half"]:
                print(f"    new in the second half: {n} edge(s) in {fn} ({line or where})", flush=True)
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
