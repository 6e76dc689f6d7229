#!/usr/bin/env bash
# realbench/gpu-run.sh OUTDIR - build, check and benchmark every model and
# precision on a GPU machine (H100/H200), run the closed serving loop with the
# INT8 model at 50% and 80% of the capacity measured in the same run, and
# write raw timings, profiles, results and logs under OUTDIR. Run from
# anywhere; it works in the repository it lives in.
#
# Build: the full CMake build when its dependencies are there (then profiles,
# tables and fleetsim's predictions of the closed loop are made here);
# otherwise the standalone CUDA benchmark with nvcc alone (then the raw CSVs
# are turned into profiles, and the predictions made, later on a machine with
# the dependencies: see realbench/README.md, "GPU run"). Model shapes come from
# the committed realbench/models/*.shapes files, so no YAML parser is needed.
#
# It only reads GPU state (nvidia-smi queries); it never changes clocks, power
# limits, MIG or any other setting. Budget: under 8 minutes in all
# (RB_GPU_DEADLINE_S, default 420 s, stops starting new steps after that).
#
# OUTDIR at the end (at most 7 files; RB_KEEP_TREE=1 also keeps the folders):
#   summary.txt                 status and the summary table printed last
#   gpu-run.log                 everything printed
#   cuda-MODEL.json             profile per model (full build), else
#   cuda-MODEL.csv              all its raw CSVs in one (realbench profile --from-csv reads it)
#   serve-gpu.json              closed loop: {"serve": [per load], "fidelity": [per load]}
#   cuda-llm-step.json          LLM scheduler steps of tiny-llm, fitted (full build), else
#   cuda-llm-step.csv           their raw CSV (realbench cuda-llm-step --from-csv reads it)
#   all.tar.gz                  everything: raw/, logs/, profiles/, serve/ and the above
# Exit: 0 ok, 1 build failed, 3 no CUDA device, 4 a correctness check failed,
# 5 some runs failed or were cut short.
set -u
set -o pipefail

if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    echo "usage: realbench/gpu-run.sh OUTDIR" >&2
    exit 2
fi
mkdir -p "$1" || exit 2
OUT=$(cd "$1" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
mkdir -p "$OUT/raw" "$OUT/logs" "$OUT/profiles" "$OUT/serve"
: > "$OUT/gpu-run.log"
exec > >(tee -a "$OUT/gpu-run.log") 2>&1

START=$(date +%s)
DEADLINE=$((START + ${RB_GPU_DEADLINE_S:-420}))
BUILD=${RB_BUILD_DIR:-/tmp/realbench-gpu-build}
JOBS=$(nproc 2>/dev/null || echo 4)
MODELS=${RB_MODELS:-"risk-mlp transformer-block"}
PRECISIONS=${RB_PRECISIONS:-"int8 int8_dp4a fp16 bf16 tf32 fp32"}
REPS=${RB_REPS:-30}
SERVE_S=${RB_SERVE_S:-20}
STATUS=0

log() { echo "[gpu-run +$(($(date +%s) - START))s] $*"; }
left() { echo $((DEADLINE - $(date +%s))); }
set_status() { [ "$STATUS" -eq 0 ] && STATUS=$1; }

log "repository $ROOT ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git')), output $OUT"

# ---- packing: the top-level files and the tarball -----------------------------
# Called on every exit path, so that whatever was produced comes back.
pack() {
    local why=$1
    echo "$why" > "$OUT/logs/STATUS"
    { echo "status: $why"; [ -f "$OUT/logs/summary-table.txt" ] && cat "$OUT/logs/summary-table.txt"; } > "$OUT/summary.txt"
    for m in $MODELS; do
        if [ -f "$OUT/profiles/cuda-$m.json" ]; then
            cp "$OUT/profiles/cuda-$m.json" "$OUT/cuda-$m.json"
        elif ls "$OUT/raw/$m"-*.csv > /dev/null 2>&1; then
            cat "$OUT/raw/$m"-*.csv > "$OUT/cuda-$m.csv"
        fi
    done
    if [ -f "$OUT/profiles/cuda-llm-step.json" ]; then
        cp "$OUT/profiles/cuda-llm-step.json" "$OUT/cuda-llm-step.json"
    elif [ -f "$OUT/raw/llm-step-tiny-llm.csv" ]; then
        cp "$OUT/raw/llm-step-tiny-llm.csv" "$OUT/cuda-llm-step.csv"
    fi
    if ls "$OUT"/serve/serve-int8-load*.json > /dev/null 2>&1; then
        {
            printf '{"serve": ['
            sep=""
            for f in "$OUT"/serve/serve-int8-load*.json; do printf '%s' "$sep"; cat "$f"; sep=","; done
            printf '],\n"fidelity": ['
            sep=""
            for f in "$OUT"/serve/fidelity-load*/fidelity.json; do
                [ -f "$f" ] || continue
                printf '%s' "$sep"; cat "$f"; sep=","
            done
            printf ']}\n'
        } > "$OUT/serve-gpu.json"
    fi
    tops=""
    for f in summary.txt gpu-run.log cuda-*.json cuda-*.csv serve-gpu.json; do
        [ -f "$OUT/$f" ] && tops="$tops $f"
    done
    # shellcheck disable=SC2086
    if tar -czf "$OUT/all.tar.gz.part" -C "$OUT" raw logs profiles serve $tops 2>/dev/null &&
       mv "$OUT/all.tar.gz.part" "$OUT/all.tar.gz"; then
        [ -n "${RB_KEEP_TREE:-}" ] || rm -rf "$OUT/raw" "$OUT/logs" "$OUT/profiles" "$OUT/serve"
    else
        rm -f "$OUT/all.tar.gz.part"
        echo "could not write all.tar.gz; the folders are left in place"
    fi
}
finish() {
    log "status: $1 (exit $2)"
    pack "$1"
    log "outputs under $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
    exit "$2"
}

# ---- environment (read-only queries) ---------------------------------------
{
    echo "# date"; date -u +%Y-%m-%dT%H:%M:%SZ
    echo "# uname"; uname -a
    echo "# nvidia-smi"; timeout 30 nvidia-smi 2>&1
    echo "# nvidia-smi -q (clocks, power, MIG)"; timeout 30 nvidia-smi -q -d CLOCK,POWER,PERFORMANCE,COMPUTE 2>&1 | head -150
    echo "# lscpu"; lscpu 2>&1 | head -30
    echo "# git"; git -C "$ROOT" log -1 --oneline 2>&1; git -C "$ROOT" status --short 2>&1 | head -20
} > "$OUT/logs/env.txt" 2>&1

NVCC=""
for c in "${CUDACXX:-}" "$(command -v nvcc 2>/dev/null)" /usr/local/cuda/bin/nvcc; do
    if [ -n "$c" ] && [ -x "$c" ]; then NVCC=$c; break; fi
done
if [ -z "$NVCC" ] && [ -z "${RB_BENCH:-}" ]; then
    log "no nvcc found (PATH, \$CUDACXX, /usr/local/cuda/bin/nvcc)"
    finish "build failed: no nvcc" 1
fi
[ -n "$NVCC" ] && { log "nvcc: $NVCC ($("$NVCC" --version | tail -1))"; { echo "# nvcc"; "$NVCC" --version; } >> "$OUT/logs/env.txt" 2>&1; }

# GPU architecture: Hopper machine code and PTX always; the local GPU's own
# architecture too when it is another one.
ARCHS="90"
CC=$(timeout 20 nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
if [ -n "$CC" ] && [ "$CC" != "90" ] && [ "$CC" -ge 75 ] 2>/dev/null; then
    ARCHS="90 $CC"
    log "GPU compute capability $CC: building for it as well as 90"
fi

# ---- build ----------------------------------------------------------------
# RB_FORCE_NVCC=1: skip CMake, build the standalone benchmark with nvcc.
# RB_CLI / RB_BENCH / RB_FLEETSIM: use these prebuilt binaries instead of building.
CLI=${RB_CLI:-}
BENCH=${RB_BENCH:-}
FLEETSIM=${RB_FLEETSIM:-}
if [ -n "$CLI$BENCH" ]; then
    log "prebuilt: realbench='${CLI:-none}' rb_cuda_bench='${BENCH:-none}' fleetsim='${FLEETSIM:-none}'"
elif [ -z "${RB_FORCE_NVCC:-}" ] && command -v cmake >/dev/null 2>&1; then
    log "trying the full CMake build in $BUILD (log: logs/cmake.log)"
    CMARCH=""
    for a in $ARCHS; do CMARCH="$CMARCH;$a-real"; done
    CMARCH="${CMARCH#;};90-virtual"
    if timeout 150 cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_CUDA_COMPILER="$NVCC" "-DCMAKE_CUDA_ARCHITECTURES=$CMARCH" \
            > "$OUT/logs/cmake.log" 2>&1 &&
       timeout 240 cmake --build "$BUILD" --target realbench rb_cuda_bench -j "$JOBS" \
            >> "$OUT/logs/cmake.log" 2>&1 &&
       [ -x "$BUILD/realbench/realbench" ] && [ -x "$BUILD/realbench/rb_cuda_bench" ]; then
        CLI="$BUILD/realbench/realbench"
        BENCH="$BUILD/realbench/rb_cuda_bench"
        log "CMake build ok"
        # fleetsim itself, for the predictions of the closed loop (optional)
        if timeout 150 cmake --build "$BUILD" --target fleetsim -j "$JOBS" >> "$OUT/logs/cmake.log" 2>&1 &&
           [ -x "$BUILD/fleetsim" ]; then
            FLEETSIM="$BUILD/fleetsim"
        else
            log "fleetsim did not build (logs/cmake.log); the closed loop is measured, not predicted here"
        fi
    else
        log "CMake build not possible here (see logs/cmake.log: $(grep -m1 -iE 'not found|error' "$OUT/logs/cmake.log" | cut -c1-160))"
    fi
fi
if [ -z "$BENCH" ]; then
    log "building the standalone CUDA benchmark with nvcc alone (log: logs/nvcc.log)"
    mkdir -p "$BUILD"
    GENCODE=""
    for a in $ARCHS; do GENCODE="$GENCODE -gencode arch=compute_$a,code=sm_$a"; done
    GENCODE="$GENCODE -gencode arch=compute_90,code=compute_90"
    # shellcheck disable=SC2086
    if timeout 300 "$NVCC" -O3 -std=c++17 $GENCODE -Xcompiler -Wall \
            realbench/cuda/rb_cuda_bench.cu realbench/cuda/rb_cuda_llm_step.cu -lcublasLt -lcublas \
            -o "$BUILD/rb_cuda_bench" > "$OUT/logs/nvcc.log" 2>&1; then
        BENCH="$BUILD/rb_cuda_bench"
        log "nvcc build ok"
    else
        tail -20 "$OUT/logs/nvcc.log"
        finish "build failed: nvcc (logs/nvcc.log)" 1
    fi
fi

# ---- device ----------------------------------------------------------------
"$BENCH" --info > "$OUT/logs/device.txt" 2>&1
rc=$?
cat "$OUT/logs/device.txt"
if [ $rc -eq 3 ]; then
    finish "no CUDA device (built ok; nothing measured)" 3
elif [ $rc -ne 0 ]; then
    finish "rb_cuda_bench --info failed (exit $rc)" 1
fi

# ---- shapes ------------------------------------------------------------------
for m in $MODELS; do
    if [ ! -f "realbench/models/$m.shapes" ]; then
        log "missing realbench/models/$m.shapes; skipping $m"
        continue
    fi
    cp "realbench/models/$m.shapes" "$OUT/raw/$m.shapes"
    if [ -n "$CLI" ] && [ -f "realbench/models/$m.yaml" ]; then
        if "$CLI" shapes --model "realbench/models/$m.yaml" --out "$OUT/raw/$m.shapes.new" 2>>"$OUT/logs/shapes.log"; then
            if ! cmp -s "$OUT/raw/$m.shapes.new" "realbench/models/$m.shapes"; then
                log "WARNING: realbench/models/$m.shapes is stale; using the one generated from $m.yaml"
                cp "$OUT/raw/$m.shapes.new" "$OUT/raw/$m.shapes"
            fi
            rm -f "$OUT/raw/$m.shapes.new"
        fi
    fi
done

# ---- benchmarks: one process per model and precision, so one failure cannot
# take the others with it. Time is kept for the closed loop (~90 s). ------------
first=1
for m in $MODELS; do
    [ -f "$OUT/raw/$m.shapes" ] || continue
    for p in $PRECISIONS; do
        remain=$(($(left) - 100))
        if [ "$remain" -lt 20 ]; then
            log "deadline near: skipping $m $p"
            set_status 5
            continue
        fi
        lim=$((remain - 10)); [ $lim -gt 150 ] && lim=150
        extra=""
        if [ $first -eq 1 ]; then extra="--bandwidth"; first=0; fi
        log "$m $p (limit ${lim}s)"
        # shellcheck disable=SC2086
        timeout -k 5 "$lim" "$BENCH" --shapes "$OUT/raw/$m.shapes" --out "$OUT/raw/$m-$p.csv" \
            --precisions "$p" --reps "$REPS" --budget-s $((lim - 15)) $extra \
            > "$OUT/logs/$m-$p.log" 2>&1
        rc=$?
        grep -vE '^(device|  MISMATCH)' "$OUT/logs/$m-$p.log" | sed 's/^/    /' | head -20
        case $rc in
            0) ;;
            4) log "$m $p: CORRECTNESS CHECK FAILED (logs/$m-$p.log)"; [ "$STATUS" -eq 0 ] || [ "$STATUS" -eq 5 ] && STATUS=4 ;;
            124|137) log "$m $p: cut off at ${lim}s"; set_status 5 ;;
            *) log "$m $p: failed with exit $rc (logs/$m-$p.log)"; set_status 5 ;;
        esac
    done
done

# ---- closed loop on the GPU: risk-mlp INT8 at 50% and 80% of the capacity
# measured in the same process (calibration in the loop's conditions first) ----
if [ -f "$OUT/raw/risk-mlp.shapes" ] && [ "$(left)" -gt 60 ]; then
    dur=$SERVE_S
    [ $(( $(left) - 30 )) -lt $((2 * dur + 30)) ] && dur=$(( ($(left) - 60) / 2 ))
    [ "$dur" -lt 5 ] && dur=5
    log "closed loop: risk-mlp int8 on the GPU, loads 0.5 and 0.8, ${dur} s each (log: logs/serve-gpu.log)"
    timeout -k 5 $((2 * dur + 90)) "$BENCH" --shapes "$OUT/raw/risk-mlp.shapes" --serve --loads 0.5,0.8 \
        --duration-s "$dur" --warmup-s 2 --max-batch 16 --max-wait-ms 5 --serve-out "$OUT/serve" \
        > "$OUT/logs/serve-gpu.log" 2>&1
    rc=$?
    sed 's/^/    /' "$OUT/logs/serve-gpu.log" | grep -v '^    device' | tail -12
    case $rc in
        0) ;;
        4) log "closed loop: INT8 OUTPUT CHECK FAILED; not served"; [ "$STATUS" -eq 0 ] || [ "$STATUS" -eq 5 ] && STATUS=4 ;;
        *) log "closed loop failed or was cut off (exit $rc; logs/serve-gpu.log)"; set_status 5 ;;
    esac
    if [ -n "$CLI" ] && [ -n "$FLEETSIM" ]; then
        for f in "$OUT"/serve/serve-int8-load*.json; do
            [ -f "$f" ] || continue
            l=$(basename "$f" .json); l=${l#serve-int8-load}
            "$CLI" fidelity --serve "$f" --calib "$OUT/serve/calib-int8-load$l.csv" --fleetsim "$FLEETSIM" \
                --out "$OUT/serve/fidelity-load$l" >> "$OUT/logs/fidelity.log" 2>&1 ||
                log "fleetsim prediction for load $l% failed (logs/fidelity.log)"
        done
        grep -h "^fidelity" "$OUT/logs/fidelity.log" 2>/dev/null | sed 's/^/    /'
    fi
else
    log "closed loop skipped (no risk-mlp shapes or no time left)"
    set_status 5
fi

# ---- LLM scheduler steps: the tiny-llm stack (realbench/models/tiny-llm.yaml:
# layers 2, d_model 64, d_ff 256, heads 4, kv_heads 2; given here as flags, so
# that no YAML parser is needed) in fp16, bf16 and int8 over the step grid ----
if [ "$(left)" -gt 60 ]; then
    log "LLM steps: tiny-llm fp16/bf16/int8 on the GPU (log: logs/llm-step.log)"
    timeout -k 5 150 "$BENCH" --llm-step --out "$OUT/raw/llm-step-tiny-llm.csv" --layers 2 \
        --d-model 64 --d-ff 256 --heads 4 --kv-heads 2 --precisions fp16,bf16,int8 \
        > "$OUT/logs/llm-step.log" 2>&1
    rc=$?
    grep -E "within|failed" "$OUT/logs/llm-step.log" | sed 's/^/    /'
    case $rc in
        0) ;;
        4) log "LLM steps: CORRECTNESS CHECK FAILED (logs/llm-step.log)"; [ "$STATUS" -eq 0 ] || [ "$STATUS" -eq 5 ] && STATUS=4 ;;
        *) log "LLM steps failed or were cut off (exit $rc; logs/llm-step.log)"; set_status 5 ;;
    esac
    if [ "$rc" -eq 0 ] && [ -n "$CLI" ]; then
        "$CLI" cuda-llm-step --model realbench/models/tiny-llm.yaml --from-csv "$OUT/raw/llm-step-tiny-llm.csv" \
            --out "$OUT/profiles/cuda-llm-step.json" >> "$OUT/logs/llm-step.log" 2>&1 ||
            { log "LLM step profile failed (logs/llm-step.log)"; set_status 5; }
    fi
else
    log "LLM steps skipped (no time left)"
    set_status 5
fi

# ---- profiles -------------------------------------------------------------------
for m in $MODELS; do
    csvs=$(ls "$OUT/raw/$m"-*.csv 2>/dev/null)
    [ -n "$csvs" ] || continue
    if [ -n "$CLI" ]; then
        # shellcheck disable=SC2086
        if "$CLI" profile --from-csv $csvs --out "$OUT/profiles/cuda-$m.json" > "$OUT/logs/profile-$m.log" 2>&1; then
            log "wrote profiles/cuda-$m.json"
            "$CLI" table "$OUT/profiles/cuda-$m.json" > "$OUT/profiles/cuda-$m.txt" 2>&1
        else
            log "profile for $m failed: $(head -3 "$OUT/logs/profile-$m.log")"
            set_status 5
        fi
    fi
done

# ---- CPU side, when the full build is there and time is left --------------------------
if [ -n "$CLI" ] && [ "$(left)" -gt 90 ]; then
    log "CPU profile of risk-mlp on this host (budget 30 s)"
    timeout 70 "$CLI" cpu --model realbench/models/risk-mlp.yaml --out "$OUT/profiles/cpu-risk-mlp-gpuhost.json" \
        --raw "$OUT/raw/cpu-risk-mlp-gpuhost.csv" --budget-s 30 > "$OUT/logs/cpu-risk-mlp.log" 2>&1 ||
        log "CPU benchmark failed (logs/cpu-risk-mlp.log)"
fi

# ---- summary ----------------------------------------------------------------------
# Medians per precision and batch straight from the raw CSVs (no other tool).
medians() {
    grep -hv '^#' "$@" 2>/dev/null | grep -v '^precision,' | sort -t, -k1,1 -k3,3n -k5,5g |
        awk -F, '
            function flush() { if (n) printf "%s %s %.9g\n", pk, pb, (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2); n = 0 }
            { if ($1 != pk || $3 != pb) { flush(); pk = $1; pb = $3 } v[++n] = $5 }
            END { flush() }'
}
{
    echo "================ realbench GPU run summary ================"
    head -1 "$OUT/logs/device.txt"
    grep -h "device-to-device" "$OUT"/logs/*-*.log 2>/dev/null | head -1
    for m in $MODELS; do
        ls "$OUT/raw/$m"-*.csv > /dev/null 2>&1 || continue
        medians "$OUT/raw/$m"-*.csv > "$OUT/logs/medians-$m.txt"
        echo "$m: median latency per forward pass (us); speedup = latency of the other / latency of int8"
        printf "  %-10s %10s %10s %10s\n" precision b1 b16 b256
        for p in $PRECISIONS; do
            awk -v p="$p" '$1 == p { v[$2] = $3; n++ } END {
                if (!n) exit
                printf "  %-10s", p
                split("1 16 256", bs, " ")
                for (i = 1; i <= 3; i++) printf " %10s", (bs[i] in v) ? sprintf("%.1f", v[bs[i]] * 1e6) : "-"
                printf "\n" }' "$OUT/logs/medians-$m.txt"
        done
        for o in fp16 fp32; do
            awk -v o="$o" '$1 == "int8" { a[$2] = $3; na++ } $1 == o { b[$2] = $3; nb++ } END {
                if (!na || !nb) exit
                printf "  int8 vs %-5s", o
                split("1 16 256", bs, " ")
                for (i = 1; i <= 3; i++) printf " %10s", (bs[i] in a && bs[i] in b) ? sprintf("%.2fx", b[bs[i]] / a[bs[i]]) : "-"
                printf "\n" }' "$OUT/logs/medians-$m.txt"
        done
        awk '$1 == "fp16" { a[$2] = $3; na++ } $1 == "fp32" { b[$2] = $3; nb++ } END {
            if (!na || !nb) exit
            printf "  fp16 vs fp32 "
            split("1 16 256", bs, " ")
            for (i = 1; i <= 3; i++) printf " %10s", (bs[i] in a && bs[i] in b) ? sprintf("%.2fx", b[bs[i]] / a[bs[i]]) : "-"
            printf "\n" }' "$OUT/logs/medians-$m.txt"
    done
    echo "closed loop, risk-mlp int8 on the GPU (max_batch 16, max_wait 5 ms; us):"
    found=0
    for f in "$OUT"/serve/serve-int8-load*.json; do
        [ -f "$f" ] || continue
        found=1
        l=$(basename "$f" .json); l=${l#serve-int8-load}
        lat=$(grep -o '"latency_s": {[^}]*}' "$f")
        g() { echo "$1" | grep -o "\"$2\": [-0-9.e+]*" | head -1 | awk '{print $2}'; }
        qps=$(grep -o '"qps": [-0-9.e+]*' "$f" | head -1 | awk '{print $2}')
        util=$(grep -o '"utilization": [-0-9.e+]*' "$f" | awk '{print $2}')
        mb=$(grep -o '"mean_batch_size": [-0-9.e+]*' "$f" | awk '{print $2}')
        awk -v l="$l" -v q="$qps" -v p50="$(g "$lat" p50)" -v p99="$(g "$lat" p99)" -v u="$util" -v mb="$mb" \
            'BEGIN { printf "  load %s%%: %.0f QPS, util %.2f, mean batch %.1f: real p50 %.1f p99 %.1f\n", l, q, u, mb, p50 * 1e6, p99 * 1e6 }'
        if [ -f "$OUT/serve/fidelity-load$l/fidelity.json" ]; then
            grep -h "^fidelity at load $l%" "$OUT/logs/fidelity.log" | sed 's/^/    /'
        fi
    done
    [ $found -eq 1 ] || echo "  (no results: see logs/serve-gpu.log)"
    if [ -z "$FLEETSIM" ] && [ $found -eq 1 ]; then
        echo "  fleetsim's prediction: not made here (no full build); see realbench/README.md, GPU run"
    fi
    echo "checks:"
    for f in "$OUT"/raw/*.csv; do
        [ -f "$f" ] && grep -E "^# (check|error|skipped)" "$f" | sed "s|^# |  $(basename "$f" .csv): |" | head -6
    done
    grep -h "forward pass batch" "$OUT/logs/serve-gpu.log" 2>/dev/null | sed 's/^ */  serve: /'
    [ -z "$CLI" ] && echo "profiles: make them where cJSON/GSL exist: realbench profile --from-csv OUTDIR/cuda-MODEL.csv --out cuda-MODEL.json"
    echo "took $(($(date +%s) - START)) s"
} > "$OUT/logs/summary-table.txt" 2>&1
echo
cat "$OUT/logs/summary-table.txt"
case $STATUS in
    0) finish "ok" 0 ;;
    4) finish "correctness check failed" 4 ;;
    *) finish "partial: some runs failed or were cut short" 5 ;;
esac
