#!/bin/sh
# Latency and errors per load-balancing policy at 70% and 90% load, as a
# markdown table, from fleetsim runs. The scenario is below: 8 nodes, one GPU
# each, exponential service of mean 100 ms (capacity 80 qps), a per-node
# queue of 64 and a 2 s client timeout, Poisson arrivals, seed 1.
#
#   scripts/lb-table.sh [FLEETSIM_BINARY]            print the table
#   scripts/lb-table.sh --update [FLEETSIM_BINARY]   rewrite it in docs/load-balancing.md
#
# The binary defaults to build/fleetsim. Needs python3 (reads summary.json).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
update=0
if [ "${1:-}" = "--update" ]; then update=1; shift; fi
bin=${1:-$root/build/fleetsim}
[ -x "$bin" ] || { echo "lb-table: no fleetsim binary at $bin (build first, or pass its path)" >&2; exit 2; }
tmp=$(mktemp -d /tmp/lb-table-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/s.yaml" <<'YAML'
name: lb-table
seed: 1
duration: 1200s
warmup: 120s
interval: 600s
models:
  m:
    service: {distribution: exponential, mean: 100ms}
pools:
  gpu:
    model: m
    replicas: 8
    queue_capacity: 64
    timeout: 2s
    link: {latency: 100us, bandwidth: 10Gbps}
traffic:
  - name: api
    pool: gpu
    arrivals: {process: poisson, rate: 56}
load_balancer:
  policy: round_robin
YAML

policies="round_robin weighted_round_robin random random_two_least_conn least_conn least_time p2c_least_request jsq peak_ewma hash first"
{
  echo "| policy | p50 @70% | p99 @70% | errors @70% | p50 @90% | p99 @90% | errors @90% |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for p in $policies; do
    row="| \`$p\`"
    for qps in 56 72; do
      out="$tmp/$p-$qps"
      "$bin" run "$tmp/s.yaml" --quiet --out "$out" \
        --set load_balancer.policy="$p" --set traffic.0.arrivals.rate="$qps" >/dev/null
      row="$row | $(python3 - "$out/summary.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r = d["requests"]
bad = r["rejected"] + r["failed"] + r["timed_out"]
fin = bad + r["completed"]
l = d["latency_s"]
print("%.0f ms | %.0f ms | %.2f%%" % (1000 * l["p50"], 1000 * l["p99"], 100.0 * bad / fin if fin else 0.0))
PY
)"
    done
    echo "$row |"
  done
} >"$tmp/table.md"

if [ "$update" = 1 ]; then
  doc="$root/docs/load-balancing.md"
  awk -v table="$tmp/table.md" '
    /<!-- lb-table:begin -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
    /<!-- lb-table:end -->/ { skip = 0 }
    !skip { print }' "$doc" >"$tmp/doc" && cp "$tmp/doc" "$doc"
  echo "lb-table: updated $doc" >&2
else
  cat "$tmp/table.md"
fi
