#!/usr/bin/env python3
"""make_dashboard.py - writes deploy/grafana/slorag.json, the Grafana dashboard
over slorag's Prometheus metrics (docs/api.md, "GET /metrics").

    python3 deploy/grafana/make_dashboard.py            # rewrites slorag.json
    python3 deploy/grafana/make_dashboard.py --check    # fails if slorag.json is stale
    python3 deploy/grafana/make_dashboard.py --exprs    # prints every PromQL expression

The JSON is generated so that the panel layout, the shared label filters and
the PromQL stay consistent; edit this file, not the JSON. Standard library only.
The dashboard takes its Prometheus from the `datasource` variable, so it can
be imported through the UI or provisioned from a file unchanged.
"""

import json
import os
import sys

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'instance=~"$instance"'                   # every slorag family
TSEL = SEL + ', tenant=~"$tenant"'             # families with a tenant label
RATE = "$__rate_interval"
SLO_TARGET = 0.95                              # docs/api.md: the attainment goal

OK, BAD, WARN = "green", "red", "orange"


def target(expr, legend="", ref="A", instant=False):
    t = {"datasource": DS, "refId": ref, "expr": expr, "legendFormat": legend or "__auto",
         "range": not instant, "instant": instant}
    return t


def thresholds(*steps):
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


SLO_STEPS = thresholds((BAD, None), (OK, SLO_TARGET))


class Layout:
    """Places panels left to right on Grafana's 24-column grid."""

    def __init__(self):
        self.panels = []
        self.next_id = 1
        self.x = 0
        self.y = 0
        self.row_h = 0

    def _id(self):
        i = self.next_id
        self.next_id += 1
        return i

    def row(self, title):
        self.newline()
        self.panels.append({"type": "row", "title": title, "id": self._id(), "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.y += 1

    def newline(self):
        self.y += self.row_h
        self.x = 0
        self.row_h = 0

    def add(self, panel, w, h):
        if self.x + w > 24:
            self.newline()
        panel["id"] = self._id()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        panel.setdefault("datasource", DS)
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)


def timeseries(title, targets, unit="short", desc="", stack=False, percent=False, steps=None,
               min_=None, max_=None, legend_calcs=("mean", "max")):
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10 if not stack else 60,
              "showPoints": "never", "spanNulls": False,
              "stacking": {"mode": "percent" if percent else "normal" if stack else "none", "group": "A"}}
    defaults = {"unit": unit, "custom": custom}
    if steps:
        defaults["thresholds"] = steps
        custom["thresholdsStyle"] = {"mode": "line"}
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    return {"type": "timeseries", "title": title, "description": desc, "targets": targets,
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"legend": {"displayMode": "table", "placement": "right", "calcs": list(legend_calcs),
                                   "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "desc"}}}


def stat(title, expr, unit="short", desc="", steps=None, decimals=None, mappings=None):
    defaults = {"unit": unit, "thresholds": steps or thresholds(("text", None)),
                "color": {"mode": "thresholds"}}
    if decimals is not None:
        defaults["decimals"] = decimals
    if mappings:
        defaults["mappings"] = mappings
    return {"type": "stat", "title": title, "description": desc, "targets": [target(expr, ref="A")],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "textMode": "auto", "justifyMode": "auto",
                        "orientation": "auto"}}


def build():
    L = Layout()

    # ---- headline numbers over the selected time range ----
    L.row("Overview (selected tenants, dashboard time range)")
    L.add(stat("Queries/s", f"sum(rate(slorag_queries_total{{{TSEL}}}[{RATE}]))", "reqps",
               "Answered, abstained and fallback queries per second."), 4, 4)
    L.add(stat("SLO attainment", f'sum(increase(slorag_slo_total{{{TSEL}, result="met"}}[$__range])) / '
               f"sum(increase(slorag_slo_total{{{TSEL}}}[$__range]))", "percentunit",
               f"Share of SLO checks met over the time range, all objectives; red below the {SLO_TARGET:.0%} target.",
               SLO_STEPS, 1), 4, 4)
    L.add(stat("p95 latency", "histogram_quantile(0.95, sum by (le) "
               f"(rate(slorag_query_duration_seconds_bucket{{{TSEL}}}[{RATE}])))", "s",
               "End-to-end query latency, 95th percentile."), 4, 4)
    L.add(stat("Cost in range", f"sum(increase(slorag_cost_total{{{TSEL}}}[$__range]))", "none",
               "Backend spend over the time range, in the currency units of the backend prices.", decimals=3), 4, 4)
    L.add(stat("Open breakers", f"count(slorag_backend_breaker_state{{{SEL}}} == 1) or vector(0)", "none",
               "LLM backends whose circuit breaker is open.", thresholds((OK, None), (BAD, 1))), 4, 4)
    L.add(stat("Worker queue", f"sum(slorag_worker_queue_depth{{{SEL}}})", "none",
               "Requests waiting for a worker thread (503 overloaded when server.queue_max is reached).",
               thresholds((OK, None), (WARN, 1), (BAD, 100))), 4, 4)

    # ---- SLOs ----
    L.row("SLO attainment")
    L.add(timeseries(
        "Attainment by tenant and objective ($slo_window window)",
        [target(f'sum by (tenant, objective) (rate(slorag_slo_total{{{TSEL}, result="met"}}[$slo_window])) / '
                f"sum by (tenant, objective) (rate(slorag_slo_total{{{TSEL}}}[$slo_window]))",
                "{{tenant}} {{objective}}")],
        "percentunit", f"Share of queries that met each objective; the red line is the {SLO_TARGET:.0%} target.",
        steps=SLO_STEPS, max_=1, legend_calcs=("mean", "min", "lastNotNull")), 14, 9)
    L.add({"type": "bargauge", "title": "Attainment over the time range",
           "description": f"Per tenant and objective; red below the {SLO_TARGET:.0%} target.",
           "targets": [target(f'sum by (tenant, objective) (increase(slorag_slo_total{{{TSEL}, result="met"}}[$__range])) / '
                              f"sum by (tenant, objective) (increase(slorag_slo_total{{{TSEL}}}[$__range]))",
                              "{{tenant}} {{objective}}", instant=True)],
           "fieldConfig": {"defaults": {"unit": "percentunit", "min": 0, "max": 1, "decimals": 1,
                                        "thresholds": SLO_STEPS, "color": {"mode": "thresholds"}}, "overrides": []},
           "options": {"orientation": "horizontal", "displayMode": "basic", "showUnfilled": True,
                       "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}}, 10, 9)
    L.add(timeseries(
        "Missed SLO checks/s by objective",
        [target(f'sum by (objective) (rate(slorag_slo_total{{{TSEL}, result="missed"}}[{RATE}]))', "{{objective}}")],
        "ops", "Which objective is failing, summed over the selected tenants.", stack=True), 24, 6)

    # ---- latency and traffic ----
    L.row("Latency and traffic")
    L.add(timeseries(
        "Query latency p50 / p95 / p99 by tenant",
        [target(f"histogram_quantile({q}, sum by (le, tenant) "
                f"(rate(slorag_query_duration_seconds_bucket{{{TSEL}}}[{RATE}])))", "{{tenant}} p" + p, ref)
         for q, p, ref in ((0.5, "50", "A"), (0.95, "95", "B"), (0.99, "99", "C"))],
        "s", "From the slorag_query_duration_seconds histogram (buckets 1 ms to 60 s)."), 12, 8)
    L.add(timeseries(
        "Stage latency p95",
        [target("histogram_quantile(0.95, sum by (le, stage) "
                f"(rate(slorag_stage_duration_seconds_bucket{{{SEL}}}[{RATE}])))", "{{stage}}")],
        "s", "Time in queue, classify, plan, retrieve and generate (all tenants)."), 12, 8)
    L.add(timeseries(
        "Queries/s by outcome",
        [target(f"sum by (outcome) (rate(slorag_queries_total{{{TSEL}}}[{RATE}]))", "{{outcome}}")],
        "reqps", "answered, abstained (the documents did not support an answer) and fallback.", stack=True), 8, 8)
    L.add(timeseries(
        "Intent mix",
        [target(f"sum by (intent) (rate(slorag_queries_total{{{TSEL}}}[{RATE}]))", "{{intent}}")],
        "percent", "Share of queries per classified intent.", stack=True, percent=True), 8, 8)
    L.add(timeseries(
        "Queries/s by tenant",
        [target(f"sum by (tenant) (rate(slorag_queries_total{{{TSEL}}}[{RATE}]))", "{{tenant}}")],
        "reqps", stack=True), 8, 8)

    # ---- cost ----
    L.row("Cost")
    L.add(timeseries(
        "Cost per hour by tenant",
        [target(f"sum by (tenant) (rate(slorag_cost_total{{{TSEL}}}[{RATE}])) * 3600", "{{tenant}}")],
        "none", "Spend rate in the backends' price units per hour.", stack=True), 12, 8)
    L.add(timeseries(
        "LLM tokens/s by tenant and direction",
        [target(f"sum by (tenant, direction) (rate(slorag_tokens_total{{{TSEL}}}[{RATE}]))",
                "{{tenant}} {{direction}}")],
        "short", stack=True), 12, 8)

    # ---- planner ----
    L.row("Planner: configurations and adaptive depth (all tenants)")
    L.add(timeseries(
        "Plans chosen/s (generator tier / retriever)",
        [target(f"sum by (tier, retriever) (rate(slorag_plans_total{{{SEL}}}[{RATE}]))", "{{tier}}/{{retriever}}")],
        "ops", "The configuration the planner picked per query.", stack=True), 12, 8)
    L.add(timeseries(
        "Stage decisions/s (skipped / expanded)",
        [target(f"sum by (stage, decision) (rate(slorag_stage_decisions_total{{{SEL}}}[{RATE}]))",
                "{{stage}} {{decision}}")],
        "ops", "Stages the planner skipped (e.g. rerank) or expanded (e.g. fallback to the extractive tier)."), 12, 8)

    # ---- backends ----
    L.row("LLM backends")
    L.add({"type": "state-timeline", "title": "Circuit breaker state",
           "description": "slorag_backend_breaker_state: 0 closed, 1 open, 2 half-open.",
           "targets": [target(f"max by (backend, tier) (slorag_backend_breaker_state{{{SEL}}})", "{{backend}} ({{tier}})")],
           "fieldConfig": {"defaults": {
               "color": {"mode": "thresholds"},
               "thresholds": thresholds((OK, None), (BAD, 1), (WARN, 2)),
               "mappings": [{"type": "value", "options": {
                   "0": {"text": "closed", "color": OK, "index": 0},
                   "1": {"text": "open", "color": BAD, "index": 1},
                   "2": {"text": "half-open", "color": WARN, "index": 2}}}]}, "overrides": []},
           "options": {"showValue": "auto", "mergeValues": True, "rowHeight": 0.8, "alignValue": "center",
                       "legend": {"showLegend": False}}}, 12, 8)
    L.add(timeseries(
        "Backend calls in flight and queued",
        [target(f"sum by (backend) (slorag_backend_in_flight{{{SEL}}})", "{{backend}} in flight", "A"),
         target(f"sum by (backend) (slorag_backend_queued{{{SEL}}})", "{{backend}} queued", "B")],
        "short", "Queued calls wait for a slot under the backend's max_concurrency."), 12, 8)
    L.add(timeseries(
        "Backend failure ratio",
        [target(f"sum by (backend) (rate(slorag_backend_failures{{{SEL}}}[{RATE}])) / "
                f"sum by (backend) (rate(slorag_backend_calls{{{SEL}}}[{RATE}]))", "{{backend}}")],
        "percentunit", "Failed attempts over finished attempts (both gauges only ever grow, so rate() applies).",
        steps=thresholds((OK, None), (WARN, 0.05), (BAD, 0.2)), min_=0), 8, 8)
    L.add(timeseries(
        "Backend retries/s",
        [target(f"sum by (backend) (rate(slorag_backend_retries{{{SEL}}}[{RATE}]))", "{{backend}}")],
        "ops"), 8, 8)
    L.add(timeseries(
        "Backend latency (moving average)",
        [target(f"max by (backend) (slorag_backend_latency_ewma_seconds{{{SEL}}})", "{{backend}}")],
        "s", "Exponentially weighted moving average of successful calls."), 8, 8)

    # ---- server ----
    L.row("HTTP server")
    L.add(timeseries(
        "HTTP requests/s by status code",
        [target(f"sum by (code) (rate(slorag_http_requests_total{{{SEL}}}[{RATE}]))", "{{code}}")],
        "reqps", stack=True), 12, 8)
    L.add(timeseries(
        "HTTP errors/s by route (4xx, 5xx)",
        [target(f'sum by (route, code) (rate(slorag_http_requests_total{{{SEL}, code=~"4..|5.."}}[{RATE}]))',
                "{{route}} {{code}}")],
        "reqps", "429 is rate limiting, 503 overload or shutdown, 504 a passed deadline."), 12, 8)
    L.add(timeseries(
        "Worker queue depth and requests in flight",
        [target(f"sum(slorag_worker_queue_depth{{{SEL}}})", "queued for a worker", "A"),
         target(f"sum(slorag_http_in_flight{{{SEL}}})", "in flight", "B")],
        "short"), 12, 7)
    L.add(stat("Documents", f"sum(slorag_store_documents{{{SEL}}})"), 3, 7)
    L.add(stat("Chunks", f"sum(slorag_store_chunks{{{SEL}}})"), 3, 7)
    L.add(stat("Vectors", f"sum(slorag_index_vectors{{{SEL}}})"), 3, 7)
    L.add(stat("Uptime", f"min(slorag_uptime_seconds{{{SEL}}})", "s"), 3, 7)

    templating = [
        {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1, "options": [], "regex": ""},
        {"name": "instance", "label": "Instance", "type": "query", "datasource": DS,
         "query": {"query": "label_values(slorag_build_info, instance)", "refId": "instance"},
         "definition": "label_values(slorag_build_info, instance)",
         "multi": True, "includeAll": True, "allValue": ".*", "current": {"text": "All", "value": "$__all"},
         "refresh": 2, "sort": 1, "hide": 0, "options": [], "regex": ""},
        {"name": "tenant", "label": "Tenant", "type": "query", "datasource": DS,
         "query": {"query": 'label_values(slorag_queries_total{instance=~"$instance"}, tenant)', "refId": "tenant"},
         "definition": 'label_values(slorag_queries_total{instance=~"$instance"}, tenant)',
         "multi": True, "includeAll": True, "allValue": ".*", "current": {"text": "All", "value": "$__all"},
         "refresh": 2, "sort": 1, "hide": 0, "options": [], "regex": ""},
        {"name": "slo_window", "label": "Attainment window", "type": "custom", "query": "5m,15m,1h,6h",
         "current": {"text": "15m", "value": "15m"}, "hide": 0, "multi": False, "includeAll": False,
         "options": [{"text": v, "value": v, "selected": v == "15m"} for v in ("5m", "15m", "1h", "6h")]},
    ]
    return {
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        ],
        "uid": "slorag-overview",
        "title": "slorag: SLOs, cost and backends",
        "description": "slorag's Prometheus metrics (docs/dashboard.md). Generated by deploy/grafana/make_dashboard.py.",
        "tags": ["slorag", "rag", "slo"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [],
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": {"list": templating},
        "panels": L.panels,
    }


def expressions(dash):
    """(panel title, expr) for every query, rows included."""
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append((p["title"], t["expr"]))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            out.append(("variable " + v["name"], v["definition"]))
    return out


def main(argv):
    dash = build()
    if "--exprs" in argv:
        for title, expr in expressions(dash):
            print(f"{title}\t{expr}")
        return 0
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "slorag.json")
    text = json.dumps(dash, indent=2) + "\n"
    if "--check" in argv:
        with open(path, encoding="utf-8") as f:
            if f.read() != text:
                print(f"{path} is stale: run python3 deploy/grafana/make_dashboard.py", file=sys.stderr)
                return 1
        print(f"{path} matches its generator")
        return 0
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    print(f"wrote {path}: {sum(1 for p in dash['panels'] if p['type'] != 'row')} panels")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
