#!/bin/sh
# run.sh BUILD SECONDS [NAME...] - runs each fuzz harness of a FLEETSIM_FUZZ
# build (all of them, or the NAMEs given: scenario, nginx, ...) for SECONDS,
# one after another, one process at a time. Each starts from its corpus in
# BUILD/fuzz-corpus/NAME (kept between runs; new inputs are added there),
# its seeds and its regressions (BUILD/fuzz-targets.txt, written by
# tests/fuzz/CMakeLists.txt, says where those are). A crash, leak, timeout
# or sanitizer report leaves the input in BUILD/fuzz-artifacts/ and the log
# in BUILD/fuzz-logs/NAME.log; the exit status is then 1.
# FUZZ_FLAGS adds libFuzzer flags (e.g. FUZZ_FLAGS=-only_ascii=1).
set -u
build=${1:?usage: run.sh BUILD SECONDS [NAME...]}
secs=${2:?usage: run.sh BUILD SECONDS [NAME...]}
shift 2
list="$build/fuzz-targets.txt"
[ -r "$list" ] || { echo "run.sh: no $list (configure with -DFLEETSIM_FUZZ=ON)" >&2; exit 2; }
mkdir -p "$build/fuzz-corpus" "$build/fuzz-artifacts" "$build/fuzz-logs"
failed=""
while read -r name seeds regressions dict; do
    if [ $# -gt 0 ]; then
        case " $* " in *" $name "*) ;; *) continue ;; esac
    fi
    bin="$build/tests/fuzz/fuzz_$name"
    [ -x "$bin" ] || { echo "run.sh: $bin not built" >&2; exit 2; }
    corpus="$build/fuzz-corpus/$name"
    mkdir -p "$corpus"
    dirs="$corpus $seeds"
    [ -d "$regressions" ] && dirs="$dirs $regressions"
    dictflag=""
    [ "$dict" != "-" ] && dictflag="-dict=$dict"
    log="$build/fuzz-logs/$name.log"
    echo "== fuzz_$name: ${secs}s"
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -close_fd_mask=3 \
        -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$name-" \
        $dictflag ${FUZZ_FLAGS:-} $dirs </dev/null >"$log" 2>&1
    rc=$?
    grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$log" | tail -1
    grep -E '^stat::number_of_executed_units' "$log"
    if [ $rc -ne 0 ]; then
        echo "fuzz_$name: FAILED (exit $rc), see $log:"
        grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5
        failed="$failed $name"
    fi
done <"$list"
if [ -n "$failed" ]; then
    echo "failed:$failed"
    exit 1
fi
