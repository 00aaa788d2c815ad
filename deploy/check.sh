#!/bin/sh
# check.sh - checks deploy/: the Prometheus configuration and the Grafana
# dashboard (needs promtool, from Debian's prometheus package, and python3).
#
# promtool also checks that credentials_file exists, which it does only on
# a configured Prometheus host; here the full check runs on a copy whose
# key path points at a placeholder file.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

promtool check config --syntax-only prometheus.yml
printf 'placeholder-admin-key\n' >"$tmp/slorag-admin-key"
sed "s|/etc/prometheus/slorag-admin-key|$tmp/slorag-admin-key|" prometheus.yml >"$tmp/prometheus.yml"
promtool check config "$tmp/prometheus.yml"

python3 -m json.tool grafana/slorag.json >/dev/null
python3 grafana/make_dashboard.py --check
python3 grafana/check.py "$@"
