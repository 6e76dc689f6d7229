#!/bin/sh
# same-results.sh - proves a refactor changed no result. `record DIR` runs
# every shipped scenario (scenarios/, scenarios/chaos/, bench/scenarios/) at
# two seeds and keeps each summary.json with wall_time_s blanked and the
# peak_rss_mb line left out (measures of the machine, not of the model);
# `check DIR`
# runs them again and fails, naming the scenario, when any summary differs
# by a byte. Run `record` before a change and `check` after every step.
#   scripts/same-results.sh record /tmp/base [FLEETSIM]
#   scripts/same-results.sh check  /tmp/base [FLEETSIM]
# FLEETSIM_ARGS adds options to every run (e.g. --fast: fast mode's results,
# kept in a baseline of their own).
set -eu
mode=${1:?record|check}
dir=${2:?directory}
bin=${3:-build/fleetsim}
seeds="1 7"
cd "$(dirname "$0")/.."
case $mode in record) rm -rf "$dir"; mkdir -p "$dir" ;; check) [ -d "$dir" ] || { echo "no baseline in $dir" >&2; exit 2; } ;; *) echo "record or check" >&2; exit 2 ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
list=$(ls scenarios/*.yaml scenarios/chaos/*.yaml bench/scenarios/*.yaml 2>/dev/null)
run_one() { # scenario seed key
    out="$tmp/$3"
    # exit 1 is a failed steady-state hypothesis: a result like any other
    "$bin" run "$1" --seed "$2" ${FLEETSIM_ARGS:-} --quiet --out "$out" >/dev/null 2>&1 || [ $? -eq 1 ] || {
        echo "FAIL $1 seed $2: exit $?" >&2; return 1; }
    sed 's/"wall_time_s":[^,}]*/"wall_time_s":0/; /"peak_rss_mb":/d' "$out/summary.json" > "$tmp/$3.json"
}
pids=""
for s in $list; do
    case $s in */k8s/*) continue ;; esac
    for seed in $seeds; do
        key=$(echo "$s" | tr '/' '_' | sed 's/\.yaml$//')-$seed
        run_one "$s" "$seed" "$key" &
        pids="$pids $!"
        # two at a time (two cores)
        if [ $(echo $pids | wc -w) -ge 2 ]; then wait $pids || fail=1; pids=""; fi
    done
done
[ -n "$pids" ] && { wait $pids || fail=1; }
for f in "$tmp"/*.json; do
    k=$(basename "$f")
    if [ "$mode" = record ]; then cp "$f" "$dir/$k"
    elif [ ! -f "$dir/$k" ]; then echo "new: ${k%.json} (no baseline; record one)" >&2
    elif ! cmp -s "$f" "$dir/$k"; then echo "DIFFERS: ${k%.json}" >&2; fail=1
    fi
done
n=$(ls "$tmp"/*.json | wc -l)
if [ "$mode" = check ]; then
    for f in "$dir"/*.json; do
        [ -f "$tmp/$(basename "$f")" ] || { echo "MISSING: $(basename "${f%.json}")" >&2; fail=1; }
    done
fi
[ $fail -eq 0 ] && echo "same-results: $mode ok ($n summaries)"
exit $fail
