#!/bin/sh
# TTFT and TPOT against load for the shipped models (scenarios/models/) on
# H100-SXM and H200, as a markdown table, from fleetsim runs of the small
# scenario below: one replica (one node of tensor_parallel GPUs), Poisson
# arrivals, prompts lognormal with mean 1,024 tokens and answers lognormal
# with mean 256 (cv 0.5 both), the roofline step model, vLLM's defaults
# otherwise, seed 1.
#
# For each (model, GPU, tensor_parallel) the replica's capacity is measured
# first: a 5-minute run offered more than it can serve (the probe rate,
# multiplied by 4 until a backlog builds) estimates it from its completions
# after the first minute; a 10-minute run offered twice that estimate
# measures it as its completions per second over minutes 4 to 10, once the
# batch has filled. Then one run per load, at 25, 50, 75 and 90% of
# that capacity, 10 minutes each after 1 minute of warm-up; each row gives
# the p50 and p99 of TTFT and TPOT from its summary.json. A configuration
# whose weights do not fit the GPUs gets one row with fleetsim's reason.
#
#   scripts/llm-table.sh [FLEETSIM_BINARY]            print the table
#   scripts/llm-table.sh --update [FLEETSIM_BINARY]   rewrite it in docs/llm-serving.md
#
# The binary defaults to build/fleetsim. Needs python3 (reads summary.json
# and timeseries.csv). Takes well under a minute on one core.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
update=0
if [ "${1:-}" = "--update" ]; then update=1; shift; fi
bin=${1:-$root/build/fleetsim}
[ -x "$bin" ] || { echo "llm-table: no fleetsim binary at $bin (build first, or pass its path)" >&2; exit 2; }
tmp=$(mktemp -d /tmp/llm-table-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/s.yaml" <<YAML
name: llm-table
seed: 1
duration: 660s
warmup: 60s
interval: 60s
models:
  m:
    llm:
      config: $root/scenarios/models/llama-3.1-8b.json
      precision: bf16
pools:
  p:
    model: m
    replicas: 1
    gpus_per_node: 1
    gpu: H100-SXM
    tensor_parallel: 1
    queue_capacity: 1000000
    timeout: 3600s
traffic:
  - name: t
    pool: p
    arrivals: {process: poisson, rate: 1}
    tokens:
      input: {distribution: lognormal, mean: 1024, cv: 0.5, min: 16, max: 8192}
      output: {distribution: lognormal, mean: 256, cv: 0.5, min: 2, max: 2048}
YAML

# label | config | precision | GPU | tensor_parallel | probe rate (req/s)
# (the probe rate only needs to exceed the capacity; closer is faster)
configs="Llama-3.1-8B|llama-3.1-8b|bf16|H100-SXM|1|30
Llama-3.1-8B|llama-3.1-8b|bf16|H200|1|30
Llama-3.1-70B|llama-3.1-70b|bf16|H100-SXM|4|15
Llama-3.1-70B|llama-3.1-70b|bf16|H100-SXM|8|30
Llama-3.1-70B|llama-3.1-70b|bf16|H200|4|15
Llama-3.1-70B|llama-3.1-70b|bf16|H200|8|30
DeepSeek-V3|deepseek-v3|fp8|H100-SXM|8|80
DeepSeek-V3|deepseek-v3|fp8|H200|8|80"
loads="0.25 0.50 0.75 0.90"

run() { # OUT CONFIG PRECISION GPU TP RATE [--set ...]
  out=$1 cfg=$2 prec=$3 gpu=$4 tp=$5 rate=$6
  shift 6
  "$bin" run "$tmp/s.yaml" --quiet --out "$out" \
    --set models.m.llm.config="$root/scenarios/models/$cfg.json" --set models.m.llm.precision="$prec" \
    --set pools.p.gpu="$gpu" --set pools.p.tensor_parallel="$tp" --set pools.p.gpus_per_node="$tp" \
    --set traffic.0.arrivals.rate="$rate" "$@"
}

{
  echo "| model | GPU | TP | precision | KV blocks a replica | capacity | load | offered | output tok/s | TTFT p50 | TTFT p99 | TPOT p50 | TPOT p99 |"
  echo "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  echo "$configs" | while IFS='|' read -r label cfg prec gpu tp rate; do
    if ! "$bin" validate "$tmp/s.yaml" --set models.m.llm.config="$root/scenarios/models/$cfg.json" \
        --set models.m.llm.precision="$prec" --set pools.p.gpu="$gpu" --set pools.p.tensor_parallel="$tp" \
        --set pools.p.gpus_per_node="$tp" >"$tmp/validate.log" 2>&1; then
      why=$(sed -n 's/.*: \([^:]* does not fit on .*exceed[^(]*\) (.*/\1/p' "$tmp/validate.log" | head -n 1)
      [ -n "$why" ] || { cat "$tmp/validate.log" >&2; exit 1; }
      echo "| $label | $gpu | $tp | $prec | does not fit: $why | | | | | | | | |"
      continue
    fi
    # capacity: offered more than it serves; a first estimate from a short
    # run at the probe rate, then the completions per second of minutes 4
    # to 10 of a run offered twice that (a replica with room for 1,024
    # sequences takes a few minutes to fill)
    cap="" tries=0 dur=300s skip=1
    while [ -z "$cap" ]; do
      run "$tmp/probe" "$cfg" "$prec" "$gpu" "$tp" "$rate" --set warmup=0s --set duration="$dur"
      cap=$(python3 - "$tmp/probe" "$skip" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/timeseries.csv")))
done = [float(r["completed"]) for r in rows[int(sys.argv[2]):]]
# saturated: a backlog at the end of more than one interval's completions
if rows and float(rows[-1]["p.waiting"]) > done[-1]:
    print("%.6g" % (sum(done) / len(done) / 60.0))
PY
)
      if [ -z "$cap" ]; then
        rate=$(python3 -c "print('%.6g' % ($rate * 4))")
        tries=$((tries + 1))
        [ "$tries" -lt 4 ] || { echo "llm-table: $label $gpu TP$tp never saturated" >&2; exit 1; }
      elif [ "$dur" = 300s ]; then
        rate=$(python3 -c "print('%.6g' % (2 * $cap))")
        dur=600s skip=3 cap=""
      fi
    done
    for load in $loads; do
      qps=$(python3 -c "print('%.4g' % ($cap * $load))")
      run "$tmp/run" "$cfg" "$prec" "$gpu" "$tp" "$qps"
      python3 - "$tmp/run/summary.json" "$label" "$gpu" "$tp" "$prec" "$cap" "$load" "$qps" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
label, gpu, tp, prec, cap, load, qps = sys.argv[2:9]
l = d["pools"]["p"]["llm"]
def ms(v):
    return "%.1f ms" % (1e3 * v) if v < 10 else "%.1f s" % v
print("| %s | %s | %s | %s | %s | %.2f req/s | %d%% | %s req/s | %.0f | %s | %s | %s | %s |" % (
    label, gpu, tp, prec, "{:,}".format(int(l["kv_blocks_per_replica"])), float(cap),
    round(100 * float(load)), qps, l["output_tokens_per_s"],
    ms(l["ttft_s"]["p50"]), ms(l["ttft_s"]["p99"]), ms(l["tpot_s"]["p50"]), ms(l["tpot_s"]["p99"])))
PY
    done
  done
} >"$tmp/table.md"

if [ "$update" = 1 ]; then
  doc="$root/docs/llm-serving.md"
  awk -v table="$tmp/table.md" '
    /<!-- llm-table:begin -->/ { print; while ((getline line < table) > 0) print line; skip = 1; next }
    /<!-- llm-table:end -->/ { skip = 0 }
    !skip { print }' "$doc" >"$tmp/doc" && cp "$tmp/doc" "$doc"
  echo "llm-table: updated $doc" >&2
else
  cat "$tmp/table.md"
fi
