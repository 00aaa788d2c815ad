#!/usr/bin/env python3
"""standin.py - a stand-in for slorag's /dashboard and /v1/stats.

Serves the dashboard page exactly as slorag embeds it (assembled by
orchestrator/dashboard/gen_asset.py on every request, with its
Content-Security-Policy header) and a /v1/stats answer that is either canned or proxied:

    standin.py --port 8099 --fixture sample          # a few busy tenants
    standin.py --port 8099 --fixture many            # 40 tenants
    standin.py --port 8099 --fixture empty           # no traffic yet
    standin.py --port 8099 --fixture tenant          # as a tenant key sees it
    standin.py --port 8099 --stats my-stats.json     # a saved /v1/stats body
    standin.py --port 8099 --upstream http://127.0.0.1:8080   # a live slorag
    ... --key SECRET    answer 401 to /v1/stats without "Authorization: Bearer SECRET"

Canned answers are shifted so that their newest minute is the current one.
It listens on 127.0.0.1 only. Standard library only; for tests and for
working on the page before the server routes exist.
"""

import argparse
import http.server
import json
import os
import random
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DASH = os.path.join(HERE, "..", "..", "orchestrator", "dashboard")
sys.path.insert(0, DASH)
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
import gen_asset  # noqa: E402  (the same assembly as the build)


def _timeline(rng, now, minutes, qpm, p50, p95, cost_per_q, slo_miss, objectives, gaps=0.0):
    points = []
    start = now - now % 60 - (minutes - 1) * 60
    for i in range(minutes):
        if rng.random() < gaps:
            continue
        q = max(1, int(rng.gauss(qpm, qpm * 0.3)))
        total = q * objectives
        burst = 4.0 if rng.random() < 0.12 else 1.0  # now and then a bad minute
        met = total - min(total, int(round(total * slo_miss * burst * rng.uniform(0.3, 1.3))))
        points.append({"t": start + i * 60, "queries": q,
                       "p50_ms": round(p50 * rng.uniform(0.8, 1.25), 1),
                       "p95_ms": round(p95 * rng.uniform(0.75, 1.4), 1),
                       "cost": round(q * cost_per_q * rng.uniform(0.8, 1.2), 5),
                       "slo_met": met, "slo_total": total})
    return points


def _tenant(rng, now, name, queries, slo, p, cost_total, budget, plans, decisions, intents, outcomes,
            timeline):
    return {"tenant": name, "queries": queries, "outcomes": outcomes, "intents": intents, "slo": slo,
            "latency_ms": {"p50": p[0], "p95": p[1], "p99": p[2]},
            "cost": {"total": cost_total, "per_query": round(cost_total / queries, 6) if queries else 0.0},
            **({"budget": budget} if budget is not None else {}),
            "plans": plans, "decisions": decisions, "timeline": timeline}


def _slo(**objectives):
    return {k: {"met": v[0], "missed": v[1], "target": 0.95} for k, v in objectives.items()}


BACKENDS = [
    {"name": "sim-small", "tier": "small", "breaker": "closed", "in_flight": 1, "queued": 0,
     "max_concurrency": 8, "calls": 3012, "failures": 12, "retries": 9, "latency_ewma_ms": 310.0,
     "retired": False},
    {"name": "sim-medium", "tier": "medium", "breaker": "half_open", "in_flight": 1, "queued": 2,
     "max_concurrency": 4, "calls": 1210, "failures": 85, "retries": 40, "latency_ewma_ms": 1140.0,
     "retired": False},
    {"name": "sim-large", "tier": "large", "breaker": "open", "in_flight": 0, "queued": 0,
     "max_concurrency": 2, "calls": 240, "failures": 31, "retries": 18, "latency_ewma_ms": 2650.0,
     "retired": False},
]


def fixture(name, now):
    rng = random.Random(7)
    base = {"generated_at": now, "uptime_s": 5423.7, "window_minutes": 60, "scope": "all"}
    if name == "empty":
        return {**base, "uptime_s": 12.4, "tenants": [], "backends": BACKENDS[:1]}
    if name == "sample":
        tenants = [
            _tenant(rng, now, "acme", 1203,
                    _slo(deadline=(1188, 15), latency=(1101, 102), cost=(1203, 0), quality=(1080, 123)),
                    (420.0, 1800.0, 2500.0), 4.21,
                    {"per_day": 5.0, "spent_today": 4.21, "per_month": 100.0, "spent_month": 31.0,
                     "projected_exhaustion": now + 3 * 3600 + 1200},
                    {"medium/hybrid": 803, "extractive/hybrid": 320, "large/hybrid": 60, "small/lexical": 20},
                    {"rerank/skipped": 1203, "fallback/expanded": 88, "retrieve/expanded": 41},
                    {"factoid": 702, "procedural": 301, "summary": 200},
                    {"answered": 1003, "abstained": 112, "fallback": 88},
                    _timeline(rng, now, 60, 20, 420, 1800, 0.0035, 0.03, 4)),
            _tenant(rng, now, "globex", 640,
                    _slo(deadline=(639, 1), latency=(630, 10)),
                    (95.0, 310.0, 480.0), 0.64,
                    {"per_day": 10.0, "spent_today": 0.64, "per_month": None, "spent_month": 0.64,
                     "projected_exhaustion": None},
                    {"small/hybrid": 600, "extractive/lexical": 40},
                    {"rerank/skipped": 640},
                    {"factoid": 500, "procedural": 140},
                    {"answered": 610, "abstained": 30},
                    _timeline(rng, now, 60, 11, 95, 310, 0.001, 0.005, 2, gaps=0.15)),
            _tenant(rng, now, "initech", 86,
                    _slo(deadline=(86, 0)),
                    (1.2, 3.4, 5.1), 0.0, None,
                    {"extractive/hybrid": 86}, {"rerank/skipped": 86, "answer/skipped": 9},
                    {"factoid": 50, "summary": 36}, {"answered": 77, "abstained": 9},
                    _timeline(rng, now, 25, 3, 1.2, 3.4, 0.0, 0.0, 1, gaps=0.4)),
            _tenant(rng, now, "umbrella-research-division", 17,
                    _slo(deadline=(15, 2), quality=(12, 5)),
                    (2900.0, 7400.0, 9800.0), 0.31,
                    {"per_day": 0.3, "spent_today": 0.31, "per_month": 5.0, "spent_month": 0.31,
                     "projected_exhaustion": now - 600},
                    {"large/hybrid": 17}, {"fallback/expanded": 3}, {"summary": 17},
                    {"answered": 12, "abstained": 2, "fallback": 3},
                    _timeline(rng, now, 8, 2, 2900, 7400, 0.02, 0.2, 2, gaps=0.5)),
            # quiet for the last hour, nothing configured, no SLO checks
            _tenant(rng, now, "hooli", 2, {}, (3.1, 4.0, 4.0), 0.0,
                    {"per_day": None, "spent_today": None, "per_month": None, "spent_month": None,
                     "projected_exhaustion": None},
                    {}, {}, {}, {"answered": 2}, []),
        ]
        return {**base, "tenants": tenants, "backends": BACKENDS}
    if name == "tenant":  # what a tenant key sees: its own tenant, no backends
        body = fixture("sample", now)
        return {**body, "scope": "acme", "tenants": body["tenants"][:1], "backends": []}
    if name == "many":
        tenants = []
        for i in range(40):
            q = int(rng.lognormvariate(5, 1.2)) + 1
            miss = rng.choice([0.0, 0.01, 0.02, 0.08])
            lat = rng.choice([3.0, 120.0, 400.0, 1500.0])
            tenants.append(_tenant(
                rng, now, f"tenant-{i:02d}", q,
                _slo(deadline=(q - int(q * miss), int(q * miss)), latency=(q - int(q * miss / 2), int(q * miss / 2))),
                (lat, lat * 3, lat * 4), round(q * 0.002, 4),
                {"per_day": 2.0, "spent_today": round(q * 0.002, 4), "per_month": 40.0,
                 "spent_month": round(q * 0.01, 4), "projected_exhaustion": None} if i % 3 == 0 else None,
                {"small/hybrid": q}, {"rerank/skipped": q}, {"factoid": q}, {"answered": q},
                _timeline(rng, now, 60, max(1, q // 60), lat, lat * 3, 0.002, miss, 2, gaps=0.3)))
        tenants.append(_tenant(rng, now, "_other", 3, _slo(deadline=(3, 0)), (2.0, 3.0, 3.0), 0.0, None,
                               {"extractive/hybrid": 3}, {}, {"factoid": 3}, {"answered": 3},
                               _timeline(rng, now, 3, 1, 2.0, 3.0, 0.0, 0.0, 1)))
        return {**base, "tenants": tenants, "backends": BACKENDS}
    raise SystemExit(f"standin: unknown fixture {name!r} (sample, many, empty, tenant)")


def shift_to_now(body, now):
    """Moves a saved answer's clock so that its generated_at is now."""
    delta = now - int(body.get("generated_at", now))
    body["generated_at"] = now
    for t in body.get("tenants", []):
        for p in t.get("timeline", []):
            p["t"] += delta
        b = t.get("budget") or {}
        if isinstance(b.get("projected_exhaustion"), (int, float)):
            b["projected_exhaustion"] += delta
    return body


def make_handler(args, load_page):
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "slorag-standin"

        def log_message(self, fmt, *a):
            if args.verbose:
                sys.stderr.write("standin: " + fmt % a + "\n")

        def send(self, status, ctype, body, extra=()):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def error(self, status, code, message):
            body = json.dumps({"error": {"code": code, "message": message, "request_id": "standin"}}).encode()
            extra = [("WWW-Authenticate", "Bearer")] if status == 401 else []
            self.send(status, "application/json", body, extra)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/dashboard":
                page, csp = load_page()  # assembled per request: edits show on reload
                self.send(200, "text/html; charset=utf-8", page,
                          [("Content-Security-Policy", csp), ("X-Content-Type-Options", "nosniff"),
                           ("Referrer-Policy", "no-referrer")])
            elif path == "/v1/stats":
                self.stats()
            else:
                self.error(404, "not_found", "no such route")

        def stats(self):
            auth = self.headers.get("Authorization")
            if args.upstream:
                req = urllib.request.Request(args.upstream.rstrip("/") + "/v1/stats")
                if auth:
                    req.add_header("Authorization", auth)
                try:
                    with urllib.request.urlopen(req, timeout=5) as r:
                        self.send(r.status, "application/json", r.read())
                except urllib.error.HTTPError as e:
                    self.send(e.code, "application/json", e.read())
                except OSError as e:
                    self.error(502, "bad_gateway", f"upstream: {e}")
                return
            if args.key and auth != "Bearer " + args.key:
                self.error(401, "unauthorized",
                           "send Authorization: Bearer with the admin key, the dashboard key or a tenant key")
                return
            now = int(time.time())
            if args.stats:
                with open(args.stats, encoding="utf-8") as f:
                    body = shift_to_now(json.load(f), now)
            else:
                body = fixture(args.fixture, now)
            self.send(200, "application/json", json.dumps(body).encode())

    return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8099)
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--fixture", default="sample", help="sample, many, empty or tenant")
    src.add_argument("--stats", help="a saved /v1/stats JSON body")
    src.add_argument("--upstream", help="proxy /v1/stats to this slorag (http://127.0.0.1:8080)")
    ap.add_argument("--key", help="require this Bearer key for canned /v1/stats")
    ap.add_argument("--dump", action="store_true", help="print the fixture's JSON and exit")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.dump:
        json.dump(fixture(args.fixture, int(time.time())), sys.stdout, indent=1)
        return
    files = [os.path.join(DASH, n) for n in ("index.html", "dashboard.css", "dashboard.js")]

    def load_page():
        html, csp = gen_asset.assemble(files[0], files[1:])
        return html.encode("utf-8"), csp

    load_page()  # fail at start-up, not on the first request, if the page does not assemble
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args, load_page))
    print(f"standin: http://127.0.0.1:{args.port}/dashboard", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
