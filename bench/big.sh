#!/usr/bin/env bash
# bench/big.sh - the big workloads: fleetsim's CPU time and peak RSS on the
# million-QPS minute and the 100k-QPS hour (bench/scenarios/big/, which
# scripts/same-results.sh does not run), against the SimGrid floor
# (bench/floor.c) and a plain C event heap (bench/heap_floor.c) on the same
# workload; then start-up (a 1 s run at 10 QPS) at 10, 1,000 and 10,000
# hosts (nodes of one GPU), whose peak RSS at 10,000 must stay under
# STARTUP_RSS_MB (default 256): the script fails when it does not, or when
# a run fails.
#
# SCALE (default 1) runs each workload on that fraction of its duration, at
# the same rate (SCALE=0.1: 6 s of the minute, 6 min of the hour); costs
# are given per request, which does not depend on the length past start-up.
# CPU time is user + system from /usr/bin/time, one run each.
#
# usage: bench/big.sh [million|hour|startup]...   (default: all three)
# environment: FLEETSIM_BIN (default build/fleetsim), BENCH_DIR (default
#   build/bench), SCALE, STARTUP_RSS_MB, FLEETSIM_ARGS (more options for
#   fleetsim's runs of the two workloads, e.g. "--fast" or "--exact"; the
#   million-QPS minute is in fast mode as shipped).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SCALE=${SCALE:-1}
STARTUP_RSS_MB=${STARTUP_RSS_MB:-256}
BENCH_DIR=${BENCH_DIR:-build/bench}
FLEETSIM_BIN=${FLEETSIM_BIN:-build/fleetsim}
mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
TIME=/usr/bin/time
[[ -x $FLEETSIM_BIN ]] || { echo "big: no fleetsim binary at $FLEETSIM_BIN" >&2; exit 2; }
[[ -x $TIME ]] || { echo "big: needs GNU time at $TIME (apt-get install time)" >&2; exit 2; }
what=${*:-million hour startup}

# shellcheck disable=SC2046 # pkg-config output is a list of flags
cc -O2 -std=c11 -Wall -Wextra -o "$BENCH_DIR/floor" bench/floor.c $(pkg-config --cflags --libs simgrid gsl) -lm
# shellcheck disable=SC2046
cc -O2 -std=c11 -Wall -Wextra -o "$BENCH_DIR/heap_floor" bench/heap_floor.c $(pkg-config --cflags --libs gsl) -lm

# measure LOG CMD...: runs CMD under GNU time; prints "cpu_s rss_mb", or
# "failed failed" when CMD did not exit 0 (LOG.err says why)
measure() {
    local log=$1
    shift
    if "$TIME" -f "TIME %U %S %M" -o "$log.time" "$@" >"$log" 2>"$log.err"; then
        awk '/^TIME/ { printf "%.2f %.0f\n", $2 + $3, $4 / 1024 }' "$log.time"
    else
        echo "failed failed"
    fi
}

# field NAME FILE: the value after NAME in a "name value name value" line.
field() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' "$2"; }

echo "machine: $(nproc) cores, $(awk '/model name/ { $1 = $2 = $3 = ""; print; exit }' /proc/cpuinfo)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "binary: $FLEETSIM_BIN, SCALE=$SCALE, FLEETSIM_ARGS=${FLEETSIM_ARGS:-}"
echo
echo "| workload | program | requests | CPU s | us per request | peak RSS MB |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
for w in million hour; do
    case " $what " in *" $w "*) ;; *) continue ;; esac
    if [[ $w == million ]]; then yaml=bench/scenarios/big/million-qps.yaml full=60
    else yaml=bench/scenarios/big/hour-100k.yaml full=3600; fi
    dur=$(awk -v f="$full" -v s="$SCALE" 'BEGIN { printf "%.6g", f * s }')
    out=$BENCH_DIR/big-$w
    # shellcheck disable=SC2086 # FLEETSIM_ARGS is a list of words
    read -r cpu rss < <(measure "$out.log" "$FLEETSIM_BIN" run "$yaml" --quiet ${FLEETSIM_ARGS:-} \
        --set "duration=${dur}s" --out "$out")
    n=$(awk -F'[:,]' '/"generated"/ { gsub(/[ \t]/, "", $2); print $2; exit }' "$out/summary.json")
    printf '| %s (%ss) | fleetsim | %s | %s | %.2f | %s |\n' "$w" "$dur" "$n" "$cpu" \
        "$(awk -v c="$cpu" -v n="$n" 'BEGIN { print 1e6 * c / n }')" "$rss"
    read -r cpu rss < <(measure "$BENCH_DIR/floor-$w.log" "$BENCH_DIR/floor" "$w" "$dur")
    n=$(field requests "$BENCH_DIR/floor-$w.log")
    printf '| %s (%ss) | SimGrid floor | %s | %s | %.2f | %s |\n' "$w" "$dur" "$n" "$cpu" \
        "$(awk -v c="$cpu" -v n="$n" 'BEGIN { print 1e6 * c / n }')" "$rss"
    read -r cpu rss < <(measure "$BENCH_DIR/heap-$w.log" "$BENCH_DIR/heap_floor" "$w" "$dur")
    n=$(field requests "$BENCH_DIR/heap-$w.log")
    printf '| %s (%ss) | heap floor | %s | %s | %.2f | %s |\n' "$w" "$dur" "$n" "$cpu" \
        "$(awk -v c="$cpu" -v n="$n" 'BEGIN { print 1e6 * c / n }')" "$rss"
done

fail=0
case " $what " in *" startup "*)
    echo
    echo "| hosts | wall s | CPU s | peak RSS MB |"
    echo "| ---: | ---: | ---: | ---: |"
    for nodes in 10 1000 10000; do
        y=$BENCH_DIR/startup-$nodes.yaml
        cat >"$y" <<EOF
name: startup-$nodes
duration: 1s
models:
  m: {service: {distribution: deterministic, base: 30ms, per_item: 1ms}, batch: {max_size: 64}}
pools:
  p: {model: m, replicas: $nodes, gpus_per_node: 1}
traffic:
  - {name: t, pool: p, arrivals: {process: poisson, rate: 10}}
load_balancer: {policy: least_conn}
EOF
        read -r cpu rss < <(measure "$BENCH_DIR/startup-$nodes.log" "$FLEETSIM_BIN" run "$y" \
            --quiet --out "$BENCH_DIR/startup-$nodes")
        if [[ $rss == failed ]]; then
            echo "big: start-up at $nodes hosts failed (see $BENCH_DIR/startup-$nodes.log.err)" >&2
            fail=1
            continue
        fi
        wall=$(awk -F'[:,]' '/"wall_time_s"/ { gsub(/[ \t]/, "", $2); printf "%.2f", $2; exit }' \
            "$BENCH_DIR/startup-$nodes/summary.json")
        echo "| $nodes | $wall | $cpu | $rss |"
        if [[ $nodes == 10000 && $rss -gt $STARTUP_RSS_MB ]]; then
            echo "big: start-up at 10,000 hosts took $rss MB, over $STARTUP_RSS_MB MB" >&2
            fail=1
        fi
    done
    ;;
esac
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $fail
