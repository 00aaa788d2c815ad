#!/usr/bin/env python3
"""check.py - checks deploy/grafana/slorag.json.

    python3 deploy/grafana/check.py                      # structure + PromQL syntax (promtool)
    python3 deploy/grafana/check.py --metrics FILE|URL   # + every metric it uses is exported
    python3 deploy/grafana/check.py --prometheus URL     # + every query returns data there

Structure: the JSON parses, schemaVersion >= 36, every panel queries the
`datasource` variable, panel ids are unique and panels fit the 24-column
grid without overlapping. Syntax: every expression, with the dashboard
variables replaced by sample values, goes through `promtool check rules`.
--metrics takes slorag's /metrics text (a file, or a URL fetched with
SLORAG_ADMIN_KEY as the bearer token when set). --prometheus runs each query
against a Prometheus that scrapes slorag and lists the ones that return
nothing (a panel that would stay empty). Standard library only.
Exit 0 when every check passes, 1 otherwise.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
VARS = {"$__rate_interval": "1m", "$__range": "15m", "$slo_window": "15m", "$instance": ".*", "$tenant": ".*"}
LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$")


def substitute(expr):
    for k in sorted(VARS, key=len, reverse=True):
        expr = expr.replace(k, VARS[k])
    m = LABEL_VALUES.match(expr)
    if m:  # a Grafana function: check the selector inside it
        expr = f"count by ({m.group(2)}) ({m.group(1)})"
    return expr


def queries(dash):
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append((p["title"], t["expr"]))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            out.append(("variable " + v["name"], q))
    return out


def check_structure(dash):
    errs = []
    if dash.get("schemaVersion", 0) < 36:
        errs.append(f"schemaVersion {dash.get('schemaVersion')} < 36")
    names = [v["name"] for v in dash.get("templating", {}).get("list", [])]
    for need in ("datasource", "tenant"):
        if need not in names:
            errs.append(f"no ${need} template variable")
    ids, cells = set(), {}
    for p in dash["panels"]:
        if p["id"] in ids:
            errs.append(f"duplicate panel id {p['id']}")
        ids.add(p["id"])
        g = p["gridPos"]
        if g["x"] < 0 or g["w"] < 1 or g["x"] + g["w"] > 24:
            errs.append(f"panel {p['title']!r} does not fit the 24-column grid: {g}")
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    errs.append(f"panel {p['title']!r} overlaps {cells[(x, y)]!r}")
                    break
                cells[(x, y)] = p["title"]
            else:
                continue
            break
        if p["type"] != "row":
            if p.get("datasource", {}).get("uid") != "${datasource}":
                errs.append(f"panel {p['title']!r} does not use the datasource variable")
            if not p.get("targets"):
                errs.append(f"panel {p['title']!r} has no query")
    return errs


def check_syntax(qs):
    groups = [{"name": "grafana-panels", "rules": [
        {"record": f"panel_query_{i}", "expr": substitute(e)} for i, (_t, e) in enumerate(qs)]}]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        json.dump({"groups": groups}, f)  # JSON is YAML
        path = f.name
    try:
        r = subprocess.run(["promtool", "check", "rules", path], capture_output=True, text=True)
    except FileNotFoundError:
        return ["promtool is not installed (Debian package prometheus)"]
    finally:
        os.unlink(path)
    if r.returncode != 0:
        return ["promtool check rules: " + (r.stdout + r.stderr).strip()]
    print(f"promtool: {len(qs)} expressions parse")
    return []


def fetch(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode("utf-8")


def check_metrics(qs, source):
    text = fetch(source, os.environ.get("SLORAG_ADMIN_KEY")) if re.match(r"https?://", source) else open(source).read()
    families = set(re.findall(r"^# TYPE (\S+)", text, re.M))
    exported = set()
    for fam in families:
        exported |= {fam, fam + "_bucket", fam + "_sum", fam + "_count"}
    errs = []
    for title, e in qs:
        for name in set(re.findall(r"\b(slorag_[a-z_]+)", e)):
            if name not in exported:
                errs.append(f"{title!r}: {name} is not in slorag's /metrics")
    print(f"metrics: {len(families)} families exported, every name used by the dashboard checked")
    return errs


def check_prometheus(qs, base):
    errs, empty = [], []
    for title, e in qs:
        url = base.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": substitute(e)})
        try:
            body = json.loads(fetch(url))
        except (OSError, ValueError) as ex:
            errs.append(f"{title!r}: {ex}")
            continue
        if body.get("status") != "success":
            errs.append(f"{title!r}: {body.get('error')}")
        elif not body["data"]["result"]:
            empty.append(title)
    print(f"prometheus: {len(qs) - len(empty) - len(errs)} of {len(qs)} queries return data")
    for t in empty:
        print(f"  no data yet: {t}")
    return errs


def main():
    ap = argparse.ArgumentParser(description="Checks the slorag Grafana dashboard.")
    ap.add_argument("--dashboard", default=os.path.join(HERE, "slorag.json"))
    ap.add_argument("--metrics", help="slorag /metrics text: a file or a URL")
    ap.add_argument("--prometheus", help="a Prometheus base URL that scrapes slorag")
    args = ap.parse_args()
    with open(args.dashboard, encoding="utf-8") as f:
        dash = json.load(f)
    qs = queries(dash)
    errs = check_structure(dash)
    errs += check_syntax(qs)
    if args.metrics:
        errs += check_metrics(qs, args.metrics)
    if args.prometheus:
        errs += check_prometheus(qs, args.prometheus)
    for e in errs:
        print("FAIL: " + e, file=sys.stderr)
    print(f"{os.path.basename(args.dashboard)}: {len(dash['panels'])} panels, {len(qs)} queries: "
          + ("OK" if not errs else f"{len(errs)} problem(s)"))
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
