#!/usr/bin/env bash
# bench/misses.sh - instructions and L1 data-cache misses per request of the
# node-count sweep's workload (bench/scenarios/sweep.yaml, 40 QPS per
# one-GPU node), by callgrind's cache simulation: the load-independent
# check on bench/sweep.sh's times where those grow with the fleet through
# memory traffic rather than work.
#
# For each policy and node count, two runs under callgrind
# (--cache-sim=yes): LONG and SHORT seconds' worth of requests (default
# 200k and 40k); the difference of their totals over the difference of
# their request counts is the cost per request, free of start-up. Prints
# one line per point; keeps the callgrind files in BENCH_DIR/misses for
# `callgrind_annotate --show=Ir,D1mr,D1mw`.
#
# usage: bench/misses.sh [POLICY...]   (default: least_conn)
# environment: FLEETSIM_BIN (default build/fleetsim), NODES (default
#   "10 10000"), REQUESTS (default 200000), BENCH_DIR (default build/bench),
#   FLEETSIM_ARGS (default "--fast").
# About 2 minutes per point at 10,000 nodes on one CPU.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
FLEETSIM_BIN=${FLEETSIM_BIN:-build/fleetsim}
NODES=${NODES:-10 10000}
REQUESTS=${REQUESTS:-200000}
BENCH_DIR=${BENCH_DIR:-build/bench}
FLEETSIM_ARGS=${FLEETSIM_ARGS:---fast}
OUT=$BENCH_DIR/misses
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "misses: needs valgrind" >&2; exit 2; }
[[ -x $FLEETSIM_BIN ]] || { echo "misses: no fleetsim binary at $FLEETSIM_BIN" >&2; exit 2; }

POLICIES=("$@")
[[ ${#POLICIES[@]} -gt 0 ]] || POLICIES=(least_conn)

# one POLICY NODES DURATION_S TAG: "Ir D1mr D1mw requests" of one run
one() {
    local cg=$OUT/$4.cg
    # shellcheck disable=SC2086 # FLEETSIM_ARGS is a list of words
    valgrind --tool=callgrind --cache-sim=yes --callgrind-out-file="$cg" \
        "$FLEETSIM_BIN" run bench/scenarios/sweep.yaml $FLEETSIM_ARGS \
        --set "load_balancer.policy=$1" --set "pools.p.replicas=$2" \
        --set "traffic.0.arrivals.rate=$((40 * $2))" --set "duration=${3}s" \
        --set "interval=$(awk -v d="$3" 'BEGIN { print d / 5 }')s" \
        --out "$OUT/$4.out" --quiet >"$OUT/$4.log" 2>&1
    local n
    n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"]["generated"])' \
        "$OUT/$4.out/summary.json")
    callgrind_annotate --show=Ir,D1mr,D1mw "$cg" 2>/dev/null |
        awk -v n="$n" '/PROGRAM TOTALS/ { gsub(",", ""); print $1, $3, $5, n }'
}

printf '%-24s %6s %9s %10s %10s %10s\n' policy nodes requests instr/req D1_reads D1_writes
for p in "${POLICIES[@]}"; do
    for n in $NODES; do
        long=$(awk -v r="$REQUESTS" -v n="$n" 'BEGIN { printf "%.6g", r / (40 * n) }')
        short=$(awk -v d="$long" 'BEGIN { printf "%.6g", d / 5 }')
        read -r il rl wl nl <<<"$(one "$p" "$n" "$long" "$p-$n-long")"
        read -r is rs ws ns <<<"$(one "$p" "$n" "$short" "$p-$n-short")"
        awk -v p="$p" -v n="$n" -v d="$((nl - ns))" -v i="$((il - is))" -v r="$((rl - rs))" \
            -v w="$((wl - ws))" 'BEGIN { printf "%-24s %6d %9d %10.0f %10.2f %10.2f\n", p, n, d, i / d, r / d, w / d }'
    done
done
