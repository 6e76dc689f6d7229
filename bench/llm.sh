#!/usr/bin/env bash
# bench/llm.sh - the token-level LLM server's speed on the Azure conversation
# trace (bench/scenarios/llm-azure.yaml: 1 h, 19,366 requests, Llama-3.1-8B
# on one node of 4 x H100, 4 replicas).
#
# Runs, each REPS times (default 3), median taken; wall time, CPU time
# (user + sys) and peak RSS from /usr/bin/time:
#   1h-coalesced   the scenario as shipped: one SimGrid activity per run of
#                  identical steps (models.llama8b.llm.coalesce_steps true)
#   1h-per-step    the same, one activity per step (coalesce_steps false):
#                  the same results, the cost of an activity per step
#   1h-batch       bench/scenarios/llm-azure-batch.yaml: the same arrivals on
#                  the batch server (4 GPUs, batches of up to 64, a fixed
#                  1.5 s each): one activity per batch, no tokens
#   100x-coalesced the trace replayed 100 times at once (traffic.0.tokens.copies
#                  =100, 1.94M requests) on 100 nodes, 400 replicas
#                  (pools.llm.replicas=100); target: under 60 s of CPU
# and 100x-per-step once, stopped after PER_STEP_LIMIT_S (default 300 s):
# step by step it needs about ten times the coalesced run, so it is reported
# as not finished when it does not.
#
# usage: bench/llm.sh            (from anywhere)
# environment: FLEETSIM_BIN (default build/fleetsim, built when missing),
#   BENCH_DIR (scratch and results, default build/bench-llm), REPS,
#   PER_STEP_LIMIT_S (0 skips the 100x per-step run), PYTHON.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
REPS=${REPS:-3}
PER_STEP_LIMIT_S=${PER_STEP_LIMIT_S:-300}
PYTHON=${PYTHON:-python3}
BENCH_DIR=${BENCH_DIR:-build/bench-llm}
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
TIME=/usr/bin/time

if [[ -z "${FLEETSIM_BIN:-}" ]]; then
    FLEETSIM_BIN=build/fleetsim
    if [[ ! -x $FLEETSIM_BIN ]]; then
        cmake -S . -B build >/dev/null
        cmake --build build -j "$(nproc)" --target fleetsim
    fi
fi
[[ -x $FLEETSIM_BIN ]] || { echo "bench: no fleetsim binary at $FLEETSIM_BIN" >&2; exit 2; }
[[ -x $TIME ]] || { echo "bench: needs GNU time at $TIME (apt-get install time)" >&2; exit 2; }

LLM=bench/scenarios/llm-azure.yaml
BATCH=bench/scenarios/llm-azure-batch.yaml
PER_STEP=(--set models.llama8b.llm.coalesce_steps=false)
X100=(--set traffic.0.tokens.copies=100 --set pools.llm.replicas=100)

RUNS=$BENCH_DIR/runs.tsv   # run rep requests steps wall_s cpu_s rss_kb
: >"$RUNS"

load() { awk '{print $1, $2, $3}' /proc/loadavg; }

# measure NAME REP LIMIT_S SCENARIO [ARGS...]: one run, a row in RUNS.
measure() {
    local name=$1 rep=$2 limit=$3 scenario=$4
    shift 4
    local out=$BENCH_DIR/out-$name tf=$BENCH_DIR/time.txt rc=0
    local pre=()
    [[ $limit -gt 0 ]] && pre=(timeout "$limit")
    rm -rf "$out"
    $TIME -f '%e %U %S %M' -o "$tf" "${pre[@]}" "$FLEETSIM_BIN" run "$scenario" "$@" \
        --out "$out" --quiet >"$BENCH_DIR/$name-$rep.log" 2>&1 || rc=$?
    if [[ $rc -eq 124 ]]; then
        printf '%s\t%s\t-\t-\tNF\tNF\t-\n' "$name" "$rep" >>"$RUNS"
        printf '  %-15s rep %d: stopped after %d s  load %s\n' "$name" "$rep" "$limit" "$(load)" >&2
        return
    fi
    [[ $rc -eq 0 ]] || { echo "bench: $name failed (exit $rc), see $BENCH_DIR/$name-$rep.log" >&2; exit 1; }
    read -r wall usr sys rss <"$tf"
    local n steps
    read -r n steps < <("$PYTHON" -c 'import json,sys
d = json.load(open(sys.argv[1]))
p = d["pools"]["llm"]
print(d["requests"]["generated"], p["llm"]["steps"] if "llm" in p else 0)' "$out/summary.json")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rep" "$n" "$steps" "$wall" \
        "$(awk -v u="$usr" -v s="$sys" 'BEGIN { print u + s }')" "$rss" >>"$RUNS"
    printf '  %-15s rep %d: %8s requests %10s steps %7.2f s wall  load %s\n' "$name" "$rep" "$n" \
        "$steps" "$wall" "$(load)" >&2
}

echo "bench: $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, load at start $(load)" >&2
echo "bench: fleetsim $FLEETSIM_BIN, $REPS repetitions" >&2
# Interleaved (rep 1 of each, then rep 2, ...) so a burst of load from
# elsewhere does not land on one run's repetitions only.
for rep in $(seq 1 "$REPS"); do
    measure 1h-coalesced "$rep" 0 "$LLM"
    measure 1h-per-step "$rep" 0 "$LLM" "${PER_STEP[@]}"
    measure 1h-batch "$rep" 0 "$BATCH"
    measure 100x-coalesced "$rep" 0 "$LLM" "${X100[@]}"
done
if [[ $PER_STEP_LIMIT_S -gt 0 ]]; then
    measure 100x-per-step 1 "$PER_STEP_LIMIT_S" "$LLM" "${X100[@]}" "${PER_STEP[@]}"
fi
LOAD_END=$(load)

awk -F'\t' -v load_end="$LOAD_END" -v ncpu="$(nproc)" -v limit="$PER_STEP_LIMIT_S" '
function median(s,   a, n, t, i, j) {
    n = split(s, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
        t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
    }
    return a[int((n + 1) / 2)]
}
{
    if (!($1 in seen)) { order[++k] = $1; seen[$1] = 1 }
    req[$1] = $3; steps[$1] = $4
    if ($5 == "NF") { nf[$1] = 1; next }
    wall[$1] = wall[$1] " " $5; cpu[$1] = cpu[$1] " " $6; rss[$1] = rss[$1] " " $7
}
END {
    printf "\n| run | requests | engine steps | wall s | CPU s | CPU us per request | peak RSS MB |\n"
    printf "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    for (i = 1; i <= k; i++) {
        r = order[i]
        if (nf[r]) {
            printf "| %s | - | - | not finished in %d s | - | - | - |\n", r, limit
            continue
        }
        c = median(cpu[r])
        st = steps[r] > 0 ? sprintf("%d", steps[r]) : "-"
        printf "| %s | %d | %s | %.2f | %.2f | %.1f | %.1f |\n", r, req[r], st,
               median(wall[r]), c, 1e6 * c / req[r], median(rss[r]) / 1024
    }
    printf "\nload average at end: %s (%s CPUs; CPU time is less disturbed by other work than wall time)\n", load_end, ncpu
}' "$RUNS" | tee "$BENCH_DIR/table.md"
