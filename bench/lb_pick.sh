#!/usr/bin/env bash
# bench/lb_pick.sh - routing's own cost per request as the pool grows, every
# policy, two workloads (bench/lb_pick.c: batch requests; LLM requests with
# chained prefix hashes and servers reporting their LLM load). Builds
# bench/lb_pick.c against the policies library of the build, then prints one
# line per policy, workload and pool size: CPU ns per request, the minimum of
# REPS runs of STEPS requests.
#
# usage: bench/lb_pick.sh [POLICY...]   (default: every registered policy)
# environment: BUILD (default build), NODES (default "10 100 1000 10000"),
#   STEPS (default 200000), REPS (default 3), WORKLOADS (default "batch llm"),
#   BENCH_DIR (scratch, default build/bench).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
NODES=${NODES:-10 100 1000 10000}
STEPS=${STEPS:-200000}
REPS=${REPS:-3}
WORKLOADS=${WORKLOADS:-batch llm}
BENCH_DIR=${BENCH_DIR:-build/bench}
mkdir -p "$BENCH_DIR"
LIB=$BUILD/policies/libfleetsim_policies.a
[[ -f $LIB ]] || { echo "lb_pick: no $LIB (cmake --build $BUILD first)" >&2; exit 2; }
# shellcheck disable=SC2046 # pkg-config prints a list of words
cc -O2 -std=c11 -Wall -Wextra -Ipolicies -o "$BENCH_DIR/lb_pick" bench/lb_pick.c "$LIB" \
    $(pkg-config --cflags --libs gsl yaml-0.1) -lm

POLICIES=("$@")
if [[ ${#POLICIES[@]} -eq 0 ]]; then
    read -r -a POLICIES <<<"$("$BUILD/fleetsim" list | awk '/^load-balancing/ { on = 1; next } on && NF == 0 { exit } on { print $1 }' | tr '\n' ' ')"
fi
printf '%-8s %-24s %6s %10s %10s\n' workload policy nodes requests ns/request
for w in $WORKLOADS; do
    for p in "${POLICIES[@]}"; do
        for n in $NODES; do
            "$BENCH_DIR/lb_pick" "$w" "$p" "$n" "$STEPS" "$REPS"
        done
    done
done
