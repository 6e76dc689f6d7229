#!/bin/sh
# Latency and errors per load-balancing policy at 70% and 90% load, as a
# markdown table, from fleetsim runs; and at 90% behind 1, 2 or 4 L7
# balancers (a two-tier front end), a second table. The scenario is below: 8 nodes, one GPU
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

# The same 90% load behind an L4 balancer (round robin) and 1, 2 or 4 L7
# balancers with the policy, each with its own connection counts.
{
  echo "| policy | p99, 1 L7 | p99, 2 L7 | p99, 4 L7 | errors, 4 L7 |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  for p in least_conn jsq p2c_least_request round_robin; do
    row="| \`$p\`"
    for n in 1 2 4; do
      out="$tmp/$p-l7-$n"
      l7="[{name: l7-0}"
      i=1
      while [ "$i" -lt "$n" ]; do l7="$l7, {name: l7-$i}"; i=$((i + 1)); done
      sed "s/^  policy: round_robin$/  policy: $p\n  l7: $l7]/" "$tmp/s.yaml" >"$tmp/l7.yaml"
      "$bin" run "$tmp/l7.yaml" --quiet --out "$out" --set traffic.0.arrivals.rate=72 >/dev/null
      row="$row | $(python3 - "$out/summary.json" "$n" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r = d["requests"]
bad = r["rejected"] + r["failed"] + r["timed_out"]
fin = bad + r["completed"]
cell = "%.0f ms" % (1000 * d["latency_s"]["p99"])
if sys.argv[2] == "4":
    cell += " | %.2f%%" % (100.0 * bad / fin if fin else 0.0)
print(cell)
PY
)"
    done
    echo "$row |"
  done
} >"$tmp/tiers.md"

if [ "$update" = 1 ]; then
  doc="$root/docs/load-balancing.md"
  awk -v table="$tmp/table.md" -v tiers="$tmp/tiers.md" '
    /<!-- lb-table:begin -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
    /<!-- tiers-table:begin -->/ { print; while ((getline line < tiers) > 0) print line; skip = 1; next }
    /<!-- (lb|tiers)-table:end -->/ { skip = 0 }
    !skip { print }' "$doc" >"$tmp/doc" && cp "$tmp/doc" "$doc"
  echo "lb-table: updated $doc" >&2
else
  cat "$tmp/table.md"
  echo
  cat "$tmp/tiers.md"
fi
