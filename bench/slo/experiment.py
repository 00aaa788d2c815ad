#!/usr/bin/env python3
"""The SLO experiment: SLO-driven planning against static policies, side by
side in one run (docs/slo-experiment.md).

    python3 bench/slo/experiment.py [--duration 120] [--rate 2.0] [--seed 7]

What it does:
  * starts two LLM simulators (bench/slo/sim-normal.json and sim-slow.json:
    the same three tiers, every one six times slower in the second), both
    with an answer key built from the datasets below, so that the tiers are
    readers of different, known accuracy (docs/llmsim.md, Answer key);
  * calibrates slorag's priors against the normal simulator (`slorag eval
    --calibrate` on both datasets; --no-calibrate skips it) and
    starts one slorag with them;
  * creates 18 tenants: three SLO profiles (quality-first, cost-capped,
    latency-critical) x six policies: "slo" (the planner decides per query)
    and five static configurations pinned with the request's "config":
    extractive (always cheapest), small, ensemble (small x3 vote), medium,
    large (always strongest); every tenant gets the same documents
    (tests/data/squad-mini.json and squad-heldout.json);
  * sends open-loop load (arrivals on a Poisson clock that never waits for
    answers, with a 3x burst for 5 s of every 20 s): each arrival picks a
    profile and a question and sends it to that profile's six tenants at
    once, so every policy answers the same questions at the same moments;
  * halfway, points slorag's --slow tiers (default: small) at the slow
    simulator (config rewrite + SIGHUP): a backend slowdown;
  * scores every answer against the gold answers (SQuAD F1, abstention on
    unanswerable questions) and judges it on the tenant's four objectives
    (judge(): quality by the measured quality, for the answer's intent, of the configuration that
    served it, cost, latency and deadline from what the client saw; a
    failed request misses all four); slorag's own per-answer verdict is
    printed beside it;
  * prints, per profile and policy: SLO attainment (all four objectives met;
    overall, before and after the slowdown), per objective, F1, cost per
    query, p95 latency; each policy over every tenant; the headline
    figures; and writes two SVG plots with gnuplot (the quality-cost plane,
    attainment over time) into --out (docs/) and the raw rows as JSON
    (--rows; --replot redraws from them).

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
    "quality": {"default": {"quality_min": 0.85, "cost_max": 0.005, "latency_p95_ms": 4000, "deadline_ms": 8000,
                            "priorities": ["quality", "latency", "cost"]},
                "budget": {"per_day": 100.0, "per_month": 0, "when_spent": "degrade"}},
    "thrifty": {"default": {"quality_min": 0.7, "cost_max": 0.0001, "latency_p95_ms": 3000, "deadline_ms": 8000,
                            "priorities": ["cost", "quality", "latency"]},
                "budget": {"per_day": 100.0, "per_month": 0, "when_spent": "degrade"}},
    "snappy": {"default": {"quality_min": 0.85, "cost_max": 0.005, "latency_p95_ms": 700, "deadline_ms": 1500,
                           "priorities": ["latency", "quality", "cost"]},
               "budget": {"per_day": 100.0, "per_month": 0, "when_spent": "degrade"}},
}
POLICIES = ["slo", "extractive", "small", "ensemble", "medium", "large"]
DATASETS = ("squad-mini.json", "squad-heldout.json")
# the static policies: one configuration each, pinned with the request's "config"
STATIC = {"extractive": "hybrid/k5/extractive", "small": "hybrid/k5/small/t256",
          "ensemble": "hybrid/k5/small/x3/vote/t256", "medium": "hybrid/k5/medium/t256",
          "large": "hybrid/k5/large/t256"}
STRONGEST = "large"
OBJECTIVES = ("quality", "cost", "latency", "deadline")
PLOTTED = ("slo", "ensemble", "medium")  # the policies drawn over time


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
    for name in DATASETS:
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
    ap.add_argument("--slow", default="small",
                    help="the tiers whose backend turns six times slower halfway (comma-separated; "
                         "bench/slo/sim-slow.json)")
    ap.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                    help="skip `slorag eval --calibrate` (on both datasets against the simulator) and "
                         "start slorag on its built-in priors")
    ap.add_argument("--feedback", type=float, default=0.0,
                    help="share of the SLO-driven tenants' answers the client rates with their F1 "
                         "(POST /v1/feedback), as an application's users would")
    ap.add_argument("--rows", default="/tmp/slorag-slo-experiment.json", help="where every answer's row goes")
    ap.add_argument("--replot", metavar="ROWS.json", help="no run: the report and plots from a saved run")
    args = ap.parse_args()
    if args.replot:
        saved = json.load(open(args.replot))
        args.duration = saved["args"]["duration"]
        args.slow = saved["args"].get("slow", "medium,large")
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
        # the simulated tiers read as well as a model that knows the answers
        # would, erring at their configured rates (docs/llmsim.md, Answer
        # key); the scores below come from the same gold answers
        key = {"version": "v2.0", "data": []}
        for name in DATASETS:
            key["data"] += json.load(open(os.path.join(ROOT, "tests", "data", name)))["data"]
        key_path = os.path.join(tmp, "answer-key.json")
        json.dump(key, open(key_path, "w"))
        sims = {}
        for kind in ("normal", "slow"):
            port = free_port()
            cfg = json.load(open(os.path.join(ROOT, "bench", "slo", "sim-%s.json" % kind)))
            cfg["listen"] = "127.0.0.1:%d" % port
            cfg["answer_key"] = key_path
            path = os.path.join(tmp, "sim-%s.json" % kind)
            json.dump(cfg, open(path, "w"))
            procs.append(subprocess.Popen([os.path.join(ROOT, "build/tools/llmsim/slorag-llmsim"), "--config", path],
                                          stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "sim-%s.log" % kind), "w")))
            sims[kind] = port
            wait_up("http://127.0.0.1:%d/v1/models" % port, "simulator " + kind)

        sport = free_port()
        slowed_tiers = [t.strip() for t in args.slow.split(",") if t.strip()]
        prices = {"small": (0.0001, 0.0002, 8), "medium": (0.0005, 0.0015, 6), "large": (0.003, 0.015, 4)}

        def write_config(slow):
            backends = []
            for tier, (pin, pout, conc) in prices.items():
                port = sims["slow"] if slow and tier in slowed_tiers else sims["normal"]
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
            # on both datasets (the answer key is their union): 30 questions
            # left a tier's measured quality a few draws from its true one
            print("calibrating on the 52 questions of both datasets against the simulator ...", file=sys.stderr)
            r = subprocess.run([os.path.join(ROOT, "build/slorag"), "eval", "--dataset",
                                key_path, "--calibrate", priors,
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
        fb_rng = random.Random(args.seed + 1)  # only the pool's threads draw; the order varies, the share does not

        def ask(t_arr, prof, qi, pol):
            q = questions[qi]
            body = {"question": q["question"], "collection": "kb"}
            if pol != "slo":
                body["config"] = STATIC[pol]
            t0 = time.time()
            st, j = http("POST", base + "/v1/query", body, keys["%s-%s" % (prof, pol)], timeout=20)
            ms = (time.time() - t0) * 1000
            row = {"t": t_arr, "profile": prof, "policy": pol, "status": st, "ms": ms}
            if st == 200 and j:
                met = j["decision"].get("slo_met", {})
                row["server_met"] = all(met.get(k, False) for k in OBJECTIVES)
                row["cost"] = j["usage"]["cost"]
                row["plan"] = j["decision"].get("planner", {}).get("config") or ""
                row["backend"] = j["decision"].get("actual", {}).get("backend") or ""
                row["backend_wait_ms"] = j["decision"].get("actual", {}).get("backend_wait_ms", 0)
                row["intent"] = j["decision"].get("intent", "")
                row["exploring"] = bool(j["decision"].get("planner", {}).get("exploring"))
                pl = j["decision"].get("planner", {})
                row["predicted"] = pl.get("predicted", {})
                row["feasible"] = pl.get("feasible")
                row["reason"] = pl.get("reason", "")
                if q["impossible"]:
                    row["f1"] = 1.0 if j["abstained"] else 0.0
                else:
                    row["f1"] = 0.0 if j["abstained"] else max(f1(j["answer"] or "", g) for g in q["golds"])
                if pol == "slo" and args.feedback > 0 and fb_rng.random() < args.feedback:
                    http("POST", base + "/v1/feedback", {"request_id": j["request_id"], "rating": row["f1"]},
                         keys["%s-%s" % (prof, pol)], timeout=10)
            else:
                row.update(server_met=False, cost=0.0, f1=0.0, plan="error", backend="", intent="")
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
                    print("\n%.0f s: the %s backend(s) now six times slower" % (t_arr, args.slow), file=sys.stderr)
                for pol in POLICIES:
                    pool.submit(ask, t_arr, prof, qi, pol)
                if sys.stderr.isatty():
                    print("\r%d/%d arrivals, %d answers" % (i + 1, len(arrivals), len(rows)), end="", file=sys.stderr)
        print("", file=sys.stderr)

        table = report(rows, args)
        os.makedirs(args.out, exist_ok=True)
        json.dump({"args": vars(args), "rows": rows}, open(os.path.join(tmp, "rows.json"), "w"))
        shutil.copy(os.path.join(tmp, "rows.json"), args.rows)
        print("rows: %s (python3 bench/slo/experiment.py --replot %s redraws)" % (args.rows, args.rows),
              file=sys.stderr)
        plot(table, rows, args, tmp)
    finally:
        stop_all()


def served(row):
    """What answered: the planned configuration and the backend that gave
    the final answer (a fallback or an escalation changes the latter)."""
    return "%s|%s" % (row["plan"], row["backend"])


def generator(row):
    """The generator part of the planned configuration ("medium/x3/vote/t256"),
    for configurations served too rarely to be measured alone."""
    parts = row["plan"].split("/")
    for i, p in enumerate(parts):
        if p in ("extractive", "small", "medium", "large"):
            return "/".join(parts[i:]) + "|" + row["backend"]
    return row["plan"]


def judge(rows, min_n=10, by_intent=True):
    """Each answer's verdict on the four objectives, from what was measured:

    quality  - the measured quality of the configuration that served it, for
               the answer's intent (the mean F1 against the gold answers of
               every answer that configuration gave to questions of that
               intent in the run, all tenants), reaches quality_min.  When
               the configuration served fewer than min_n of that intent, the
               configuration over every intent; then its generator part
               for the intent (other retrievers' answers too); then its
               generator part.  slorag predicts
               quality per intent and plans per intent, so that is what the
               objective promises: a configuration of that expected quality
               for this kind of question, not a correct answer every time.
               by_intent=False pools the intents (the stricter reading the
               report also prints);
    cost     - the answer's cost is at most cost_max;
    latency  - the client's time is under latency_p95_ms (the share met is the
               p95 attainment);
    deadline - the client's time is under deadline_ms.
    A failed request misses all four.  Sets row["met_each"] and row["met"]."""
    def keys(r):
        if not by_intent:
            return [served(r), generator(r)]
        return [(served(r), r["intent"]), served(r), (generator(r), r["intent"]), generator(r)]
    groups = {}
    for r in rows:
        if r["status"] == 200:
            for k in keys(r):
                groups.setdefault(k, []).append(r["f1"])
    quality = {k: sum(v) / len(v) for k, v in groups.items()}
    counts = {k: len(v) for k, v in groups.items()}
    for r in rows:
        obj = PROFILES[r["profile"]]["default"]
        if r["status"] != 200:
            r["met_each"] = {k: False for k in OBJECTIVES}
        else:
            ks = keys(r)
            k = next((x for x in ks if counts.get(x, 0) >= min_n), ks[-1])
            r["quality"] = quality[k]
            r["met_each"] = {"quality": quality[k] >= obj["quality_min"],
                             "cost": r["cost"] <= obj["cost_max"] + 1e-12,
                             "latency": r["ms"] <= obj["latency_p95_ms"],
                             "deadline": r["ms"] <= obj["deadline_ms"]}
        r["met"] = all(r["met_each"].values())
    return quality, counts


def pooled_attainment(rows):
    """SLO attainment per (profile, policy) with judge(by_intent=False)."""
    copy = [dict(r) for r in rows]
    judge(copy, by_intent=False)
    att = {}
    for r in copy:
        a = att.setdefault((r["profile"], r["policy"]), [0, 0])
        a[0] += r["met"]
        a[1] += 1
    return {k: v[0] / v[1] for k, v in att.items()}


def report(rows, args):
    out = print
    quality, counts = judge(rows)
    half = args.duration / 2
    table = {}
    out("\n| profile | policy | n | SLO attained | before slowdown | after | quality | cost | latency | F1 | "
        "cost/query | p95 ms | errors | slorag's verdict |")
    out("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for prof in PROFILES:
        for pol in POLICIES:
            r = [x for x in rows if x["profile"] == prof and x["policy"] == pol]
            if not r:
                continue
            pre = [x for x in r if x["t"] < half]
            post = [x for x in r if x["t"] >= half]
            att = lambda v, key=None: (sum((x["met_each"][key] if key else x["met"]) for x in v) / len(v)
                                       if v else 0.0)
            s = {"n": len(r), "att": att(r), "pre": att(pre), "post": att(post),
                 "q": att(r, "quality"), "c": att(r, "cost"), "l": att(r, "latency"),
                 "f1": sum(x["f1"] for x in r) / len(r), "cost": sum(x["cost"] for x in r) / len(r),
                 "p95": pct([x["ms"] for x in r], 0.95), "errors": sum(x["status"] != 200 for x in r),
                 "server": sum(x.get("server_met", False) for x in r) / len(r)}
            table[(prof, pol)] = s
            out("| %s | %s | %d | %.1f%% | %.1f%% | %.1f%% | %.0f%% | %.0f%% | %.0f%% | %.3f | %.6f | %.0f | %d | "
                "%.0f%% |" % (prof, pol, s["n"], 100 * s["att"], 100 * s["pre"], 100 * s["post"], 100 * s["q"],
                              100 * s["c"], 100 * s["l"], s["f1"], s["cost"], s["p95"], s["errors"],
                              100 * s["server"]))

    out("\nMeasured quality (mean F1 against the gold answers) of each generator, all tenants:\n")
    out("| generator | backend | answers | F1 |")
    out("|---|---|---|---|")
    for k in sorted((k for k in quality if isinstance(k, str) and ("/" not in k.split("|")[0] or k.count("/") < 4)),
                    key=lambda k: -counts[k]):
        if k in {generator(r) for r in rows if r["status"] == 200} and counts[k] >= 10:
            g, b = k.split("|")
            out("| %s | %s | %d | %.3f |" % (g, b, counts[k], quality[k]))
    # A static policy is one configuration for every tenant: what a service
    # without per-query planning runs.  "Best" = the highest mean attainment
    # over the tenants (ties: the higher minimum).
    profs = list(PROFILES)
    pol_cost = {pol: sum(x["cost"] for x in rows if x["policy"] == pol) /
                max(1, sum(1 for x in rows if x["policy"] == pol)) for pol in POLICIES}
    pol_f1 = {pol: sum(x["f1"] for x in rows if x["policy"] == pol) /
              max(1, sum(1 for x in rows if x["policy"] == pol)) for pol in POLICIES}
    att = {pol: [table[(p, pol)]["att"] for p in profs if (p, pol) in table] for pol in POLICIES}
    out("\nEach policy over every tenant (a static policy is one configuration for all of them):\n")
    out("| policy | configuration | %s | lowest | mean | F1 | cost/query |" % " | ".join(profs))
    out("|---|---|%s---|---|---|---|" % ("---|" * len(profs)))
    for pol in POLICIES:
        out("| %s | %s | %s | %.1f%% | %.1f%% | %.3f | %.6f |" % (
            pol, STATIC.get(pol, "planned per query"), " | ".join("%.1f%%" % (100 * a) for a in att[pol]),
            100 * min(att[pol]), 100 * sum(att[pol]) / len(att[pol]), pol_f1[pol], pol_cost[pol]))
    rank = lambda pol: (sum(att[pol]) / len(att[pol]), min(att[pol]))
    statics = POLICIES[1:]
    best = max(statics, key=rank)
    equal = [p for p in statics if pol_cost[p] <= pol_cost["slo"] * 1.1 + 1e-12]
    best_eq = max(equal, key=rank) if equal else None
    slo_att = dict(zip(profs, att["slo"]))

    def worst(pol):
        p, a = min(zip(profs, att[pol]), key=lambda x: x[1])
        return "%s %.1f%%" % (p, 100 * a)

    out("\nHeadlines:")
    out("- SLO-driven: %s; lowest %s (after the slowdown: %s)" % (
        ", ".join("%s %.1f%%" % (p, 100 * slo_att[p]) for p in profs), worst("slo"),
        ", ".join("%s %.1f%%" % (p, 100 * table[(p, "slo")]["post"]) for p in profs)))
    out("- best static policy: %s (%s), lowest %s" % (best, STATIC[best], worst(best)))
    if best_eq:
        out("- best static policy at equal or lower average cost: %s (%s), lowest %s" % (
            best_eq, STATIC[best_eq], worst(best_eq)))
    s_, l_ = pol_cost["slo"], pol_cost[STRONGEST]
    out("- cost: SLO-driven %.6f a query, %.0f%% of always-%s (%.6f), at %.0f%% of its F1 (%.3f vs %.3f)" % (
        s_, 100 * s_ / l_ if l_ else 0, STRONGEST, l_, 100 * pol_f1["slo"] / pol_f1[STRONGEST] if pol_f1[STRONGEST] else 0,
        pol_f1["slo"], pol_f1[STRONGEST]))
    # for honesty: a static configuration hand-picked per tenant, knowing the run in advance
    picks = []
    for p in profs:
        bp = max(statics, key=lambda pol: (table[(p, pol)]["att"], -table[(p, pol)]["cost"]))
        picks.append("%s: %s %.1f%% at %.6f (SLO-driven %.1f%% at %.6f)" % (
            p, bp, 100 * table[(p, bp)]["att"], table[(p, bp)]["cost"], 100 * slo_att[p], table[(p, "slo")]["cost"]))
    out("- hand-picked per tenant with hindsight (the best static for each tenant alone): " + "; ".join(picks))
    pooled = pooled_attainment(rows)
    low = {pol: min(pooled[(p, pol)] for p in profs) for pol in POLICIES}
    best_pooled = max(statics, key=lambda pol: (sum(pooled[(p, pol)] for p in profs), low[pol]))
    out("- judged with every intent pooled (a configuration's quality over all questions): SLO-driven %s, "
        "lowest %.1f%%; best static %s, lowest %.1f%%" % (
            ", ".join("%s %.1f%%" % (p, 100 * pooled[(p, "slo")]) for p in profs), 100 * low["slo"],
            best_pooled, 100 * low[best_pooled]))
    table[("all", "total")] = {"cost": pol_cost, "f1": pol_f1, "att": att, "best": best, "best_eq": best_eq}
    return table


def plot(table, rows, args, tmp):
    if not shutil.which("gnuplot"):
        print("gnuplot not available: no plots", file=sys.stderr)
        return
    pts = os.path.join(tmp, "plane.dat")
    with open(pts, "w") as f:
        for (prof, pol), s in ((k, v) for k, v in table.items() if k[0] != "all"):
            f.write("%g %g %s-%s\n" % (s["cost"], s["f1"], prof, pol))
    ts = os.path.join(tmp, "time.dat")
    buckets = {}
    for r in rows:
        b = int(r["t"] // 10) * 10
        buckets.setdefault((r["profile"], r["policy"], b), []).append(r["met"])
    with open(ts, "w") as f:
        for prof in PROFILES:
            for pol in PLOTTED:
                for b in sorted({k[2] for k in buckets if k[0] == prof and k[1] == pol}):
                    v = buckets[(prof, pol, b)]
                    f.write("%d %g\n" % (b, 100.0 * sum(v) / len(v)))
                f.write("\n\n")
    plane = os.path.join(args.out, "slo-experiment-plane.svg")
    over = os.path.join(args.out, "slo-experiment-time.svg")
    idx, titles = 0, []
    for prof in PROFILES:
        for pol in PLOTTED:
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
set title 'SLO attainment over time (10 s buckets); %s slowed at %.0f s'
set xlabel 'seconds'
set ylabel 'requests meeting every objective (%%)'
set yrange [0:105]
set arrow from %.0f, graph 0 to %.0f, graph 1 nohead dt 2
plot %s
""" % (plane, pts, over, args.slow, args.duration / 2, args.duration / 2, args.duration / 2,
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
