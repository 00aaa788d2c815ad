#!/usr/bin/env python3
"""The SLO experiment: SLO-driven planning against static policies, side by
side in one run (docs/slo-experiment.md).

    python3 bench/slo/experiment.py [--duration 120] [--rate 2.0] [--seed 7]

What it does:
  * starts two LLM simulators (bench/slo/sim-normal.json and sim-slow.json:
    the same three tiers, the second with medium and large six times slower)
    and one slorag whose small/medium/large backends point at the first;
  * creates 15 tenants: three SLO profiles (quality-first, cost-capped,
    latency-critical) x five policies: "slo" (the planner decides) and the
    static tiers "extractive" (always cheapest), "small", "medium" and
    "large" (always strongest), forced with the request's "tier"; every
    tenant gets the same documents (tests/data/squad-mini.json and
    squad-heldout.json);
  * sends open-loop load (arrivals on a Poisson clock that never waits for
    answers, with a 3x burst for 5 s of every 20 s): each arrival picks a
    profile and a question and sends it to that profile's five tenants at
    once, so every policy answers the same questions at the same moments;
  * halfway, points slorag's medium and large backends at the slow
    simulator (config rewrite + SIGHUP): a backend slowdown;
  * scores every answer against the gold answers (SQuAD F1, abstention on
    unanswerable questions) and reads the SLO verdict slorag itself returns
    (decision.slo_met: quality, cost, latency, deadline); a failed request
    misses every objective;
  * prints, per profile and policy: SLO attainment (all four objectives met;
    overall, before and after the slowdown), F1, cost per query, p95 latency;
    the headline figures; and writes two SVG plots with gnuplot (the
    quality-cost plane, attainment over time) into --out (docs/) and the raw
    rows as JSON (--rows; --replot redraws from them).

Only loopback addresses are used; every loop is bounded in count and time.
"""
import argparse
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ADMIN = "slo-experiment-admin-key-0000"

PROFILES = {
    "quality": {"default": {"quality_min": 0.7, "cost_max": 0.005, "latency_p95_ms": 4000, "deadline_ms": 8000,
                            "priorities": ["quality", "latency", "cost"]},
                "budget": {"per_day": 100.0, "per_month": 0, "when_spent": "degrade"}},
    "thrifty": {"default": {"quality_min": 0.3, "cost_max": 0.0003, "latency_p95_ms": 3000, "deadline_ms": 8000,
                            "priorities": ["cost", "quality", "latency"]},
                "budget": {"per_day": 100.0, "per_month": 0, "when_spent": "degrade"}},
    "snappy": {"default": {"quality_min": 0.3, "cost_max": 0.005, "latency_p95_ms": 700, "deadline_ms": 1500,
                           "priorities": ["latency", "quality", "cost"]},
               "budget": {"per_day": 100.0, "per_month": 0, "when_spent": "degrade"}},
}
POLICIES = ["slo", "extractive", "small", "medium", "large"]
STRONGEST = "large"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(method, url, body=None, key=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if key:
        req.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except ValueError:
            return e.code, None
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        return 0, {"error": {"message": str(e)}}


def wait_up(url, what, limit_s=20):
    t0 = time.time()
    while time.time() - t0 < limit_s:
        st, _ = http("GET", url, timeout=1)
        if st == 200:
            return
        time.sleep(0.1)
    sys.exit("%s did not come up at %s" % (what, url))


# SQuAD scoring, as slorag eval does it (orchestrator/eval.c)
def normalize(s):
    s = re.sub(r"\[\d+\]", " ", s or "").lower()
    s = "".join(" " if (c in string.punctuation) else c for c in s)
    return " ".join(w for w in s.split() if w not in ("a", "an", "the"))


def f1(pred, gold):
    p, g = normalize(pred).split(), normalize(gold).split()
    common = sum(min(p.count(w), g.count(w)) for w in set(p))
    if not p or not g or common == 0:
        return float(p == g)
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)


def load_questions():
    docs, qs = [], []
    for name in ("squad-mini.json", "squad-heldout.json"):
        d = json.load(open(os.path.join(ROOT, "tests", "data", name)))
        for a, art in enumerate(d["data"]):
            for p, par in enumerate(art["paragraphs"]):
                docs.append({"id": "%s.a%d.p%d" % (name.split(".")[0], a, p), "title": art.get("title", ""),
                             "text": par["context"]})
                for qa in par["qas"]:
                    golds = [x["text"] for x in qa.get("answers", [])]
                    qs.append({"question": qa["question"], "golds": golds,
                               "impossible": bool(qa.get("is_impossible")) or not golds})
    return docs, qs


def pct(v, p):
    if not v:
        return 0.0
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(math.ceil(p * len(v))) - 1))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    ap.add_argument("--rate", type=float, default=2.0, help="arrivals per second outside bursts")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs"), help="where the plots and JSON go")
    ap.add_argument("--calibrate", action="store_true",
                    help="first run `slorag eval --calibrate` on tests/data/squad-mini.json against the simulator "
                         "and start slorag with those priors")
    ap.add_argument("--rows", default="/tmp/slorag-slo-experiment.json", help="where every answer's row goes")
    ap.add_argument("--replot", metavar="ROWS.json", help="no run: the report and plots from a saved run")
    args = ap.parse_args()
    if args.replot:
        saved = json.load(open(args.replot))
        args.duration = saved["args"]["duration"]
        tmp = tempfile.mkdtemp(prefix="slorag-slo-")
        os.makedirs(args.out, exist_ok=True)
        plot(report(saved["rows"], args), saved["rows"], args, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        return
    for exe in ("build/slorag", "build/tools/llmsim/slorag-llmsim"):
        if not os.access(os.path.join(ROOT, exe), os.X_OK):
            sys.exit("build first: make build (%s missing)" % exe)
    if not shutil.which("gnuplot"):
        print("installing gnuplot (Debian package) ...", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "gnuplot-nox"], stdout=subprocess.DEVNULL, check=False)

    tmp = tempfile.mkdtemp(prefix="slorag-slo-")
    procs = []

    def stop_all():
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)

    try:
        sims = {}
        for kind in ("normal", "slow"):
            port = free_port()
            cfg = json.load(open(os.path.join(ROOT, "bench", "slo", "sim-%s.json" % kind)))
            cfg["listen"] = "127.0.0.1:%d" % port
            path = os.path.join(tmp, "sim-%s.json" % kind)
            json.dump(cfg, open(path, "w"))
            procs.append(subprocess.Popen([os.path.join(ROOT, "build/tools/llmsim/slorag-llmsim"), "--config", path],
                                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "sim-%s.log" % kind), "w")))
            sims[kind] = port
            wait_up("http://127.0.0.1:%d/v1/models" % port, "simulator " + kind)

        sport = free_port()
        prices = {"small": (0.0001, 0.0002, 8), "medium": (0.0005, 0.0015, 6), "large": (0.003, 0.015, 4)}

        def write_config(slow):
            backends = []
            for tier, (pin, pout, conc) in prices.items():
                port = sims["slow"] if slow and tier != "small" else sims["normal"]
                backends.append({"name": "sim-" + tier, "tier": tier, "url": "http://127.0.0.1:%d" % port,
                                 "model": tier, "price_in_per_1k": pin, "price_out_per_1k": pout,
                                 "max_concurrency": conc, "timeout_ms": 20000})
            query = {"max_tokens": 128, "deadline_ms": 8000}
            if priors:
                query["calibration"] = priors
            cfg = {"listen": "127.0.0.1:%d" % sport, "data_dir": os.path.join(tmp, "data"), "admin_key": ADMIN,
                   "server": {"workers": 2, "queue_max": 512}, "query": query, "backends": backends}
            json.dump(cfg, open(os.path.join(tmp, "slorag.json"), "w"))

        priors = None
        write_config(False)
        if args.calibrate:
            priors = os.path.join(tmp, "priors.json")
            print("calibrating on tests/data/squad-mini.json against the simulator ...", file=sys.stderr)
            r = subprocess.run([os.path.join(ROOT, "build/slorag"), "eval", "--dataset",
                                os.path.join(ROOT, "tests/data/squad-mini.json"), "--calibrate", priors,
                                "--config", os.path.join(tmp, "slorag.json")], stdout=subprocess.PIPE, text=True)
            if r.returncode != 0:
                sys.exit("calibration failed")
            print(r.stdout, file=sys.stderr)
            write_config(False)
        slog = open(os.path.join(tmp, "slorag.log"), "w")
        sl = subprocess.Popen([os.path.join(ROOT, "build/slorag"), "serve", "--config", os.path.join(tmp, "slorag.json")],
                              stdout=subprocess.DEVNULL, stderr=slog)
        procs.append(sl)
        base = "http://127.0.0.1:%d" % sport
        wait_up(base + "/healthz", "slorag")

        docs, questions = load_questions()
        keys = {}
        for prof, profile in PROFILES.items():
            for pol in POLICIES:
                tid = "%s-%s" % (prof, pol)
                st, j = http("POST", base + "/v1/admin/tenants", {"id": tid}, ADMIN)
                if st != 201:
                    sys.exit("creating tenant %s: %s %s" % (tid, st, j))
                keys[tid] = j["api_key"]
                st, j = http("PUT", base + "/v1/admin/tenants/%s/profile" % tid, profile, ADMIN)
                if st != 200:
                    sys.exit("profile %s: %s %s" % (tid, st, j))
                st, j = http("POST", base + "/v1/collections/kb/documents", docs, keys[tid])
                if st != 201:
                    sys.exit("documents for %s: %s %s" % (tid, st, j))
        print("%d tenants, %d documents each, %d questions; %.0f s of open-loop load at %.1f arrivals/s "
              "(x3 bursts), slowdown at %.0f s" % (len(keys), len(docs), len(questions), args.duration, args.rate,
                                                   args.duration / 2), file=sys.stderr)

        # the arrival schedule: Poisson, 3x for 5 s of every 20 s
        rng = random.Random(args.seed)
        arrivals, t = [], 0.0
        while True:
            rate = args.rate * (3 if (t % 20) < 5 else 1)
            t += rng.expovariate(rate)
            if t >= args.duration:
                break
            arrivals.append((t, rng.choice(list(PROFILES)), rng.randrange(len(questions))))

        rows, lock = [], threading.Lock()

        def ask(t_arr, prof, qi, pol):
            q = questions[qi]
            body = {"question": q["question"], "collection": "kb"}
            if pol != "slo":
                body["tier"] = pol
            t0 = time.time()
            st, j = http("POST", base + "/v1/query", body, keys["%s-%s" % (prof, pol)], timeout=20)
            ms = (time.time() - t0) * 1000
            row = {"t": t_arr, "profile": prof, "policy": pol, "status": st, "ms": ms}
            if st == 200 and j:
                met = j["decision"].get("slo_met", {})
                row["met"] = all(met.get(k, False) for k in ("quality", "cost", "latency", "deadline"))
                row["met_each"] = {k: bool(met.get(k)) for k in ("quality", "cost", "latency", "deadline")}
                row["cost"] = j["usage"]["cost"]
                row["plan"] = j["decision"].get("planner", {}).get("config", "")
                if q["impossible"]:
                    row["f1"] = 1.0 if j["abstained"] else 0.0
                else:
                    row["f1"] = 0.0 if j["abstained"] else max(f1(j["answer"] or "", g) for g in q["golds"])
            else:
                row.update(met=False, met_each={}, cost=0.0, f1=0.0, plan="error")
            with lock:
                rows.append(row)

        slowed = False
        start = time.time()
        with ThreadPoolExecutor(max_workers=128) as pool:
            for i, (t_arr, prof, qi) in enumerate(arrivals):
                delay = start + t_arr - time.time()
                if delay > 0:
                    time.sleep(delay)
                if not slowed and t_arr >= args.duration / 2:
                    write_config(True)
                    sl.send_signal(signal.SIGHUP)
                    slowed = True
                    print("\n%.0f s: medium and large backends now six times slower" % t_arr, file=sys.stderr)
                for pol in POLICIES:
                    pool.submit(ask, t_arr, prof, qi, pol)
                if sys.stderr.isatty():
                    print("\r%d/%d arrivals, %d answers" % (i + 1, len(arrivals), len(rows)), end="", file=sys.stderr)
        print("", file=sys.stderr)

        report(rows, args)
        os.makedirs(args.out, exist_ok=True)
        json.dump({"args": vars(args), "rows": rows}, open(os.path.join(tmp, "rows.json"), "w"))
        shutil.copy(os.path.join(tmp, "rows.json"), args.rows)
        print("rows: %s (python3 bench/slo/experiment.py --replot %s redraws)" % (args.rows, args.rows),
              file=sys.stderr)
        plot(report(rows, args, quiet=True), rows, args, tmp)
    finally:
        stop_all()


def report(rows, args, quiet=False):
    out = (lambda *a, **k: None) if quiet else print
    if True:
        half = args.duration / 2
        table = {}
        out("\n| profile | policy | n | SLO attained | before slowdown | after | F1 | cost/query | p95 ms | errors |")
        out("|---|---|---|---|---|---|---|---|---|---|")
        for prof in PROFILES:
            for pol in POLICIES:
                r = [x for x in rows if x["profile"] == prof and x["policy"] == pol]
                if not r:
                    continue
                pre = [x for x in r if x["t"] < half]
                post = [x for x in r if x["t"] >= half]
                att = lambda v: sum(x["met"] for x in v) / len(v) if v else 0.0
                s = {"n": len(r), "att": att(r), "pre": att(pre), "post": att(post),
                     "f1": sum(x["f1"] for x in r) / len(r), "cost": sum(x["cost"] for x in r) / len(r),
                     "p95": pct([x["ms"] for x in r], 0.95), "errors": sum(x["status"] != 200 for x in r)}
                table[(prof, pol)] = s
                out("| %s | %s | %d | %.1f%% | %.1f%% | %.1f%% | %.3f | %.6f | %.0f | %d |" % (
                    prof, pol, s["n"], 100 * s["att"], 100 * s["pre"], 100 * s["post"], s["f1"], s["cost"],
                    s["p95"], s["errors"]))

        out("\nHeadlines:")
        for prof in PROFILES:
            slo = table[(prof, "slo")]
            statics = [(pol, table[(prof, pol)]) for pol in POLICIES[1:]]
            best = max(statics, key=lambda x: x[1]["att"])
            equal = [x for x in statics if x[1]["cost"] <= slo["cost"] * 1.1 + 1e-12]
            best_eq = max(equal, key=lambda x: x[1]["att"]) if equal else None
            strong = table[(prof, STRONGEST)]
            out("- %s: SLO-driven %.1f%% attainment (after the slowdown %.1f%%); best static %s %.1f%% (after %.1f%%)%s;"
                  " cost %.0f%% of always-%s at %.0f%% of its F1" % (
                      prof, 100 * slo["att"], 100 * slo["post"], best[0], 100 * best[1]["att"], 100 * best[1]["post"],
                      ("; best static at equal or lower cost: %s %.1f%%" % (best_eq[0], 100 * best_eq[1]["att"]))
                      if best_eq else "",
                      100 * slo["cost"] / strong["cost"] if strong["cost"] else 0, STRONGEST,
                      100 * slo["f1"] / strong["f1"] if strong["f1"] else 0))

        return table


def plot(table, rows, args, tmp):
    if not shutil.which("gnuplot"):
        print("gnuplot not available: no plots", file=sys.stderr)
        return
    pts = os.path.join(tmp, "plane.dat")
    with open(pts, "w") as f:
        for (prof, pol), s in table.items():
            f.write("%g %g %s-%s\n" % (s["cost"], s["f1"], prof, pol))
    ts = os.path.join(tmp, "time.dat")
    buckets = {}
    for r in rows:
        b = int(r["t"] // 10) * 10
        buckets.setdefault((r["profile"], r["policy"], b), []).append(r["met"])
    with open(ts, "w") as f:
        for prof in PROFILES:
            for pol in ("slo", "medium", "large"):
                for b in sorted({k[2] for k in buckets if k[0] == prof and k[1] == pol}):
                    v = buckets[(prof, pol, b)]
                    f.write("%d %g\n" % (b, 100.0 * sum(v) / len(v)))
                f.write("\n\n")
    plane = os.path.join(args.out, "slo-experiment-plane.svg")
    over = os.path.join(args.out, "slo-experiment-time.svg")
    idx, titles = 0, []
    for prof in PROFILES:
        for pol in ("slo", "medium", "large"):
            titles.append("index %d with linespoints title '%s %s'" % (idx, prof, pol))
            idx += 1
    script = """
set terminal svg size 1000,520 font 'sans,11'
set key outside right top
set output '%s'
set title 'Quality-cost plane: each profile x policy (F1 vs gold answers)'
set xlabel 'cost per query'
set ylabel 'F1'
set logscale x
set grid
plot '%s' using ($1 > 0 ? $1 : 1e-7):2:3 with labels point pt 7 offset char 1,0.5 notitle
set output '%s'
unset logscale x
set title 'SLO attainment over time (10 s buckets); medium and large slowed at %.0f s'
set xlabel 'seconds'
set ylabel 'requests meeting every objective (%%)'
set yrange [0:105]
set arrow from %.0f, graph 0 to %.0f, graph 1 nohead dt 2
plot %s
""" % (plane, pts, over, args.duration / 2, args.duration / 2, args.duration / 2,
       ", ".join("'%s' %s" % (ts, t) for t in titles))
    sp = os.path.join(tmp, "plot.gp")
    open(sp, "w").write(script)
    r = subprocess.run(["gnuplot", sp], stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        print("gnuplot failed: %s" % r.stderr, file=sys.stderr)
    else:
        print("\nplots: %s, %s" % (plane, over), file=sys.stderr)


if __name__ == "__main__":
    main()
