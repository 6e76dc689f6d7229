#!/usr/bin/env bash
# bench/instr.sh - instructions per request (callgrind), the load-independent
# check on bench/run.sh's time ratios.
#
# Each program runs twice under callgrind: on 1/DIVISOR of the workload's duration
# (default 1/10: about 200k requests; SimPy on a tenth of that) and on 1 ms of simulated time;
# the second run's total (start-up and teardown) is subtracted from the first
# before dividing by the number of requests. Prints one line per program and
# keeps the callgrind files in BENCH_DIR/cg for `callgrind_annotate`.
#
# usage: bench/instr.sh [mmc|batched]...   (default: both)
# environment: FLEETSIM_BIN (default build/fleetsim), BENCH_DIR (default
#   build/bench; needs the floor binary bench/run.sh builds there),
#   PYTHON (default /usr/bin/python3), FLEETSIM_ARGS (more options for
#   fleetsim run, e.g. "--fast --set simulation.arrival_quantum=2ms"; word
#   split), DIVISOR (default 10: the fraction of the workload's duration run).
# Takes about 10 minutes per workload on one CPU (valgrind: ~50x slower).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
FLEETSIM_BIN=${FLEETSIM_BIN:-build/fleetsim}
PYTHON=${PYTHON:-/usr/bin/python3}
BENCH_DIR=${BENCH_DIR:-build/bench}
FLOOR=$BENCH_DIR/floor
CG=$BENCH_DIR/cg
mkdir -p "$CG"
command -v valgrind >/dev/null || { echo "instr: needs valgrind" >&2; exit 2; }
[[ -x $FLOOR ]] || { echo "instr: no floor at $FLOOR (run bench/run.sh first)" >&2; exit 2; }

DIVISOR=${DIVISOR:-10}
read -r -a EXTRA <<<"${FLEETSIM_ARGS:-}"
declare -A DURATION=([mmc]=$((156250 / DIVISOR)) [batched]=$(awk -v d="$DIVISOR" 'BEGIN { print 460 / d }'))

# instr NAME CMD...: total instructions of one run under callgrind.
instr() {
    local name=$1
    shift
    valgrind --tool=callgrind --callgrind-out-file="$CG/$name.out" "$@" >"$CG/$name.log" 2>&1
    awk '/Collected/ { print $NF }' "$CG/$name.log"
}

# per_req LABEL FULL START REQUESTS
per_req() {
    awk -v w="$W" -v l="$1" -v f="$2" -v s="$3" -v n="$4" \
        'BEGIN { printf "%-8s %-9s %9d requests %7.0f instructions/request (start-up %.0f M subtracted)\n", w, l, n, (f - s) / n, s / 1e6 }'
}

WORKLOADS=("$@")
[[ ${#WORKLOADS[@]} -gt 0 ]] || WORKLOADS=(mmc batched)
for W in "${WORKLOADS[@]}"; do
    d=${DURATION[$W]}
    f=$(instr "fleetsim-$W" "$FLEETSIM_BIN" run "bench/scenarios/$W.yaml" --set "duration=${d}s" \
        --out "$CG/out-$W" --quiet "${EXTRA[@]}")
    n=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"]["generated"])' \
        "$CG/out-$W/summary.json")
    s=$(instr "fleetsim-$W-0" "$FLEETSIM_BIN" run "bench/scenarios/$W.yaml" --set "duration=0.001s" \
        --out "$CG/out-$W-0" --quiet "${EXTRA[@]}")
    per_req fleetsim "$f" "$s" "$n"

    f=$(instr "floor-$W" "$FLOOR" "$W" "$d")
    n=$(grep -v '^==' "$CG/floor-$W.log" | awk '{ print $3 }')
    s=$(instr "floor-$W-0" "$FLOOR" "$W" 0.001)
    per_req floor "$f" "$s" "$n"

    f=$(instr "simpy-$W" "$PYTHON" "bench/simpy_$W.py" "$(awk -v d="$d" 'BEGIN { print d / 10 }')")
    n=$(grep -v '^==' "$CG/simpy-$W.log" | awk '{ for (i = 1; i < NF; i++) if ($i == "requests") print $(i + 1) }')
    s=$(instr "simpy-$W-0" "$PYTHON" "bench/simpy_$W.py" 0.001)
    n0=$(grep -v '^==' "$CG/simpy-$W-0.log" | awk '{ for (i = 1; i < NF; i++) if ($i == "requests") print $(i + 1) }')
    per_req simpy "$f" "$s" "$((n - n0))"
done
