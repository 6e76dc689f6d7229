#!/usr/bin/env bash
# bench/sweep.sh - CPU time per request as the fleet grows, at a fixed load
# per node (bench/scenarios/sweep.yaml: 40 QPS per one-GPU node, load 0.8).
#
# For each policy and node count, fleetsim runs the scenario twice, for a
# long and a short duration (the long one about 250k requests, the short
# one a fifth of that); the difference of their CPU times (user + system,
# GNU time) over the difference of their request counts is the cost per
# request, free of start-up (the platform, per-node state) and teardown.
# The minimum over REPS repetitions is kept. Prints one line per point.
#
# usage: bench/sweep.sh [POLICY...]   (default: least_conn p2c_least_request
#   and the other policies that keep an index). `first` without max_conns
#   sends every request to server 0 (at 10,000 nodes a queue of millions):
#   measure it with FLEETSIM_ARGS="--fast --set load_balancer.max_conns=2".
# environment: FLEETSIM_BIN (default build/fleetsim), NODES (default
#   "10 100 1000 10000"), REQUESTS (default 250000), REPS (default 1),
#   BENCH_DIR (scratch, default build/bench), FLEETSIM_ARGS (more options
#   for every run, e.g. "--fast").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
FLEETSIM_BIN=${FLEETSIM_BIN:-build/fleetsim}
NODES=${NODES:-10 100 1000 10000}
REQUESTS=${REQUESTS:-250000}
REPS=${REPS:-1}
BENCH_DIR=${BENCH_DIR:-build/bench}
TIME=/usr/bin/time
mkdir -p "$BENCH_DIR"
[[ -x $FLEETSIM_BIN ]] || { echo "sweep: no fleetsim binary at $FLEETSIM_BIN" >&2; exit 2; }
[[ -x $TIME ]] || { echo "sweep: needs GNU time at $TIME (apt-get install time)" >&2; exit 2; }

POLICIES=("$@")
[[ ${#POLICIES[@]} -gt 0 ]] || POLICIES=(least_conn p2c_least_request weighted_round_robin
                                         round_robin random random_two_least_conn first jsq)

# one POLICY NODES DURATION_S: "cpu_s requests" of one run
one() {
    local out=$BENCH_DIR/sweep-out
    # shellcheck disable=SC2086 # FLEETSIM_ARGS is a list of words
    "$TIME" -f '%U %S' -o "$BENCH_DIR/sweep.time" "$FLEETSIM_BIN" run bench/scenarios/sweep.yaml ${FLEETSIM_ARGS:-} \
        --set "load_balancer.policy=$1" --set "pools.p.replicas=$2" \
        --set "traffic.0.arrivals.rate=$((40 * $2))" --set "duration=${3}s" \
        --set "interval=$(awk -v d="$3" 'BEGIN { print d / 5 }')s" \
        --out "$out" --quiet >/dev/null
    local cpu n
    cpu=$(awk '{ print $1 + $2 }' "$BENCH_DIR/sweep.time")
    n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"]["generated"])' \
        "$out/summary.json")
    echo "$cpu $n"
}

printf '%-24s %6s %9s %9s %12s\n' policy nodes requests cpu_s us/request
for p in "${POLICIES[@]}"; do
    for n in $NODES; do
        long=$(awk -v r="$REQUESTS" -v n="$n" 'BEGIN { printf "%.6g", r / (40 * n) }')
        short=$(awk -v d="$long" 'BEGIN { printf "%.6g", d / 5 }')
        best=""
        for _ in $(seq "$REPS"); do
            read -r cl nl <<<"$(one "$p" "$n" "$long")"
            read -r cs ns <<<"$(one "$p" "$n" "$short")"
            us=$(awk -v a="$cl" -v b="$cs" -v x="$nl" -v y="$ns" 'BEGIN { printf "%.2f", 1e6 * (a - b) / (x - y) }')
            if [[ -z $best ]] || awk -v u="$us" -v b="$best" 'BEGIN { exit !(u < b) }'; then best=$us; fi
        done
        printf '%-24s %6d %9d %9.2f %12s\n' "$p" "$n" "$((nl - ns))" "$cl" "$best"
    done
done
