#!/usr/bin/env python3
"""bench/churn.py - what making and dropping collections leaves behind.

    python3 bench/churn.py [--rounds 20000] [--every 2000] [SLORAG ...]

For each slorag binary given (default build/slorag), in turn and in this one
run: `slorag serve` on its embedded defaults in a scratch data directory;
one document in collection "keep"; then ROUNDS times: store a document in
collection "tmp" (which makes it) and delete the collection.  Every EVERY
rounds it prints the server's resident memory (VmRSS) and the median and
p99 of 200 questions asked of "keep" (one keep-alive connection, the
extractive tier).  Two binaries side by side: an A/B of the same machine
state (e.g. a build from before a change: git worktree add, meson setup,
meson compile slorag).
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class Client:
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        self.c.request(method, path, body=data, headers=headers)
        r = self.c.getresponse()
        payload = r.read()
        return r.status, payload


def expect(status, want, what, payload):
    if status != want:
        sys.exit(f"churn: {what}: HTTP {status} (wanted {want}): {payload[:200]!r}")


def run(binary, rounds, every):
    tmp = tempfile.mkdtemp(prefix="slorag-churn-")
    port = free_port()
    log = open(os.path.join(tmp, "serve.log"), "w")
    p = subprocess.Popen([binary, "serve", "--data", os.path.join(tmp, "data"), "--listen", f"127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=log)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        c = Client(port)
        st, body = c.call("POST", "/v1/collections/keep/documents",
                          [{"id": "ferry", "text": "The ferry to the island leaves every hour from pier two."}])
        expect(st, 201, "store in keep", body)
        print(f"{binary}: {rounds} rounds of make-and-drop, figures every {every}", flush=True)
        print(f"  {'rounds':>7} {'rss_kb':>8} {'query_p50_ms':>12} {'query_p99_ms':>12} {'round_ms':>8}", flush=True)
        t_rounds = time.monotonic()
        for i in range(rounds + 1):
            if i % every == 0:
                lat = []
                for _ in range(200):
                    t0 = time.perf_counter()
                    st, body = c.call("POST", "/v1/query", {"question": "When does the ferry leave?",
                                                            "collection": "keep", "tier": "extractive"})
                    lat.append((time.perf_counter() - t0) * 1000)
                    expect(st, 200, "query", body)
                lat.sort()
                per_round = (time.monotonic() - t_rounds) * 1000 / every if i else 0
                print(f"  {i:>7} {rss_kb(p.pid):>8} {statistics.median(lat):>12.3f} {lat[int(len(lat) * 0.99)]:>12.3f}"
                      f" {per_round:>8.3f}", flush=True)
                t_rounds = time.monotonic()
            if i == rounds:
                break
            st, body = c.call("POST", "/v1/collections/tmp/documents",
                              [{"id": f"d{i}", "text": f"Tide table number {i} for the harbour."}])
            expect(st, 201, "store in tmp", body)
            st, body = c.call("DELETE", "/v1/collections/tmp")
            expect(st, 200, "drop tmp", body)
    finally:
        p.terminate()
        p.wait(timeout=30)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20000)
    ap.add_argument("--every", type=int, default=2000)
    ap.add_argument("binaries", nargs="*", default=["build/slorag"])
    a = ap.parse_args()
    for b in a.binaries:
        run(b, a.rounds, a.every)


if __name__ == "__main__":
    main()
