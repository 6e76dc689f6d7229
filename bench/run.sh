#!/usr/bin/env bash
# bench/run.sh - fleetsim's speed against its floor and against SimPy.
#
# Two workloads of about 2M requests (bench/scenarios/mmc.yaml: M/M/c-like,
# no batching; bench/scenarios/batched.yaml: batches up to 16, 5 ms window),
# each run by three programs:
#   fleetsim  the real binary on the scenario (summary.json gives the count)
#   floor     bench/floor.c, a bare SimGrid program doing only what the model
#             must do (one sleep per arrival, one execution per batch)
#   simpy     bench/simpy_*.py, the same model in SimPy (Debian python3-simpy3),
#             on 1/SIMPY_SCALE of the duration (default 1/10: 200k requests)
#             because 2M take about a minute each; rates are per request
# Every measurement is repeated REPS times (default 3) and the median taken;
# wall time, CPU time and peak RSS come from /usr/bin/time. Then the RSS
# check: fleetsim on each scenario at 1/10 of its duration (same rate), whose
# peak RSS must match the full run's.
#
# usage: bench/run.sh            (from anywhere; `make bench` calls it)
# environment: FLEETSIM_BIN (default build/fleetsim, built when missing),
#   BENCH_DIR (scratch and results, default build/bench), REPS, SIMPY_SCALE,
#   PYTHON (default /usr/bin/python3, which has Debian's simpy).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
REPS=${REPS:-3}
SIMPY_SCALE=${SIMPY_SCALE:-10}
PYTHON=${PYTHON:-/usr/bin/python3}
BENCH_DIR=${BENCH_DIR:-build/bench}
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
"$PYTHON" -c 'import simpy' 2>/dev/null ||
    { echo "bench: $PYTHON cannot import simpy (apt-get install python3-simpy3)" >&2; exit 2; }

FLOOR=$BENCH_DIR/floor
# shellcheck disable=SC2046 # pkg-config output is a list of flags
cc -O2 -std=c11 -Wall -Wextra -o "$FLOOR" bench/floor.c $(pkg-config --cflags --libs simgrid gsl) -lm

# Durations (simulated seconds) of the scenarios; floor.c and the SimPy
# scripts hold the same defaults.
declare -A DURATION=([mmc]=156250 [batched]=460)

RUNS=$BENCH_DIR/runs.tsv   # workload tool rep requests wall_s cpu_s rss_kb
: >"$RUNS"

load() { awk '{print $1, $2, $3}' /proc/loadavg; }

# field NAME FILE: the value after NAME in a "name value name value" line.
field() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' "$2"; }

# measure WORKLOAD TOOL REP: runs one program once and appends a row to RUNS.
measure() {
    local w=$1 tool=$2 rep=$3 dur=${DURATION[$1]} log=$BENCH_DIR/$1-$2-$3.log
    local tf=$BENCH_DIR/time.txt n
    case $tool in
    fleetsim | fleetsim-1x)
        [[ $tool == fleetsim-1x ]] && dur=$(awk -v d="$dur" 'BEGIN { print d / 10 }')
        $TIME -f '%e %U %S %M' -o "$tf" "$FLEETSIM_BIN" run "bench/scenarios/$w.yaml" \
            --set "duration=${dur}s" --out "$BENCH_DIR/out-$w-$tool" --quiet >"$log" 2>&1
        n=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"]["generated"])' \
            "$BENCH_DIR/out-$w-$tool/summary.json")
        ;;
    floor)
        $TIME -f '%e %U %S %M' -o "$tf" "$FLOOR" "$w" "$dur" >"$log" 2>&1
        n=$(awk '{ print $3 }' "$log")
        ;;
    simpy)
        dur=$(awk -v d="$dur" -v s="$SIMPY_SCALE" 'BEGIN { print d / s }')
        $TIME -f '%e %U %S %M' -o "$tf" "$PYTHON" "bench/simpy_$w.py" "$dur" >"$log" 2>&1
        n=$(field requests "$log")
        ;;
    esac
    read -r wall usr sys rss <"$tf"
    local cpu
    cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN { print u + s }')
    if [[ $tool == simpy ]]; then # the loop's own times: interpreter start excluded
        wall=$(field wall_s "$log")
        cpu=$(field cpu_s "$log")
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$tool" "$rep" "$n" "$wall" "$cpu" "$rss" >>"$RUNS"
    printf '  %-8s %-11s rep %d: %9s requests  %7.2f s wall  load %s\n' "$w" "$tool" "$rep" "$n" \
        "$wall" "$(load)" >&2
}

echo "bench: $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs, load at start $(load)" >&2
echo "bench: fleetsim $FLEETSIM_BIN, floor $FLOOR, $PYTHON, $REPS repetitions" >&2
# Interleaved (rep 1 of each, then rep 2, ...) so a burst of load from
# elsewhere does not land on one program's runs only.
for rep in $(seq 1 "$REPS"); do
    for w in mmc batched; do
        for tool in fleetsim floor simpy fleetsim-1x; do
            measure "$w" "$tool" "$rep"
        done
    done
done
LOAD_END=$(load)

# Medians per (workload, tool), then the table. "cost vs floor" is the
# per-request time over the floor's (target <= 1.25), "speed vs SimPy" the
# requests per second over SimPy's (target >= 2.5); each from wall time and,
# less disturbed by other work on the machine, from CPU time (user + sys).
awk -F'\t' -v load_end="$LOAD_END" -v simpy_scale="$SIMPY_SCALE" -v ncpu="$(nproc)" '
function median(s,   a, n, t, i, j) {
    n = split(s, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
        t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
    }
    return a[int((n + 1) / 2)]
}
{
    k = $1 SUBSEP $2
    rw[k] = rw[k] " " $4 / $5; rc[k] = rc[k] " " $4 / $6
    wall[k] = wall[k] " " $5; cpu[k] = cpu[k] " " $6; rss[k] = rss[k] " " $7; req[k] = $4
}
END {
    split("mmc batched", W, " "); split("fleetsim floor simpy", T, " ")
    printf "\n| workload | tool | requests | wall s | CPU s | req/s wall | req/s CPU | peak RSS MB |"
    printf " cost vs floor wall / CPU | speed vs SimPy wall / CPU |\n"
    printf "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    for (i = 1; i <= 2; i++) {
        w = W[i]
        fw = median(rw[w SUBSEP "floor"]); fc = median(rc[w SUBSEP "floor"])
        sw = median(rw[w SUBSEP "simpy"]); sc = median(rc[w SUBSEP "simpy"])
        for (j = 1; j <= 3; j++) {
            k = w SUBSEP T[j]; a = median(rw[k]); c = median(rc[k])
            printf "| %s | %s | %d | %.2f | %.2f | %.0f | %.0f | %.1f | %.2fx / %.2fx | %.2fx / %.2fx |\n",
                   w, T[j], req[k], median(wall[k]), median(cpu[k]), a, c, median(rss[k]) / 1024,
                   fw / a, fc / c, a / sw, c / sc
        }
    }
    printf "\nPeak RSS, fleetsim, 1/10 vs full duration at the same rate (target: flat):\n\n"
    printf "| workload | requests 1/10 | RSS MB 1/10 | requests full | RSS MB full | growth |\n"
    printf "| --- | ---: | ---: | ---: | ---: | ---: |\n"
    for (i = 1; i <= 2; i++) {
        w = W[i]; a = median(rss[w SUBSEP "fleetsim-1x"]); b = median(rss[w SUBSEP "fleetsim"])
        printf "| %s | %d | %.1f | %d | %.1f | %+.1f%% |\n", w, req[w SUBSEP "fleetsim-1x"], a / 1024,
               req[w SUBSEP "fleetsim"], b / 1024, 100 * (b - a) / a
    }
    printf "\nSimPy ran 1/%s of the duration; its times are its simulation loop only.\n", simpy_scale
    printf "load average at end: %s (%s CPUs; compare ratios, not absolutes, when the machine is shared)\n", load_end, ncpu
}' "$RUNS" | tee "$BENCH_DIR/table.md"
