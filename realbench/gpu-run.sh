#!/usr/bin/env bash
# realbench/gpu-run.sh OUTDIR - build, check and benchmark every model and
# precision on a GPU machine (H100/H200), writing raw timings, profiles and
# logs under OUTDIR. Run from anywhere; it works in the repository it lives in.
#
# Build: the full CMake build when its dependencies are there (then profiles
# and tables are made here); otherwise the standalone CUDA benchmark with nvcc
# alone (then the raw CSVs are turned into profiles later, on a machine with
# the dependencies: realbench profile --from-csv OUTDIR/raw/MODEL-*.csv --out P.json).
# Model shapes come from the committed realbench/models/*.shapes files, so no
# YAML parser is needed here.
#
# It only reads GPU state (nvidia-smi queries); it never changes clocks, power
# limits, MIG or any other setting. Budget: about 8 minutes in all
# (RB_GPU_DEADLINE_S, default 420 s, stops starting new steps after that).
# Exit: 0 ok, 1 build failed, 3 no CUDA device, 4 a correctness check failed,
# 5 some benchmark runs failed or were cut short.
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
mkdir -p "$OUT/raw" "$OUT/logs" "$OUT/profiles"
: > "$OUT/gpu-run.log"
exec > >(tee -a "$OUT/gpu-run.log") 2>&1

START=$(date +%s)
DEADLINE=$((START + ${RB_GPU_DEADLINE_S:-420}))
BUILD=${RB_BUILD_DIR:-/tmp/realbench-gpu-build}
JOBS=$(nproc 2>/dev/null || echo 4)
MODELS=${RB_MODELS:-"risk-mlp transformer-block"}
PRECISIONS=${RB_PRECISIONS:-"int8 int8_dp4a fp16 bf16 tf32 fp32"}
REPS=${RB_REPS:-30}
STATUS=0

log() { echo "[gpu-run +$(($(date +%s) - START))s] $*"; }
left() { echo $((DEADLINE - $(date +%s))); }
set_status() { [ "$STATUS" -eq 0 ] && STATUS=$1; }
finish() {
    echo "$1" > "$OUT/STATUS"
    log "status: $1 (exit $2); outputs under $OUT"
    exit "$2"
}

log "repository $ROOT ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no git')), output $OUT"

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
if [ -z "$NVCC" ]; then
    log "no nvcc found (PATH, \$CUDACXX, /usr/local/cuda/bin/nvcc)"
    finish "build failed: no nvcc" 1
fi
log "nvcc: $NVCC ($("$NVCC" --version | tail -1))"
{ echo "# nvcc"; "$NVCC" --version; } >> "$OUT/logs/env.txt" 2>&1

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
# RB_CLI / RB_BENCH: use these prebuilt binaries instead of building.
CLI=${RB_CLI:-}
BENCH=${RB_BENCH:-}
if [ -n "$CLI$BENCH" ]; then
    log "prebuilt: realbench='${CLI:-none}' rb_cuda_bench='${BENCH:-none}'"
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
            realbench/cuda/rb_cuda_bench.cu -lcublasLt -lcublas \
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
# take the others with it ---------------------------------------------------------
first=1
for m in $MODELS; do
    [ -f "$OUT/raw/$m.shapes" ] || continue
    for p in $PRECISIONS; do
        remain=$(left)
        if [ "$remain" -lt 20 ]; then
            log "deadline near: skipping $m $p"
            set_status 5
            continue
        fi
        lim=$((remain - 10)); [ $lim -gt 200 ] && lim=200
        extra=""
        if [ $first -eq 1 ]; then extra="--bandwidth"; first=0; fi
        log "$m $p (limit ${lim}s)"
        # shellcheck disable=SC2086
        timeout -k 5 "$lim" "$BENCH" --shapes "$OUT/raw/$m.shapes" --out "$OUT/raw/$m-$p.csv" \
            --precisions "$p" --reps "$REPS" --budget-s $((lim - 15)) $extra \
            > "$OUT/logs/$m-$p.log" 2>&1
        rc=$?
        grep -vE '^(device|  MISMATCH)' "$OUT/logs/$m-$p.log" | sed 's/^/    /'
        case $rc in
            0) ;;
            4) log "$m $p: CORRECTNESS CHECK FAILED (logs/$m-$p.log)"; [ "$STATUS" -eq 0 ] || [ "$STATUS" -eq 5 ] && STATUS=4 ;;
            124|137) log "$m $p: cut off at ${lim}s"; set_status 5 ;;
            *) log "$m $p: failed with exit $rc (logs/$m-$p.log)"; set_status 5 ;;
        esac
    done
done

# ---- profiles -------------------------------------------------------------------
for m in $MODELS; do
    csvs=$(ls "$OUT/raw/$m"-*.csv 2>/dev/null)
    [ -n "$csvs" ] || continue
    if [ -n "$CLI" ]; then
        # shellcheck disable=SC2086
        if "$CLI" profile --from-csv $csvs --out "$OUT/profiles/cuda-$m.json" > "$OUT/logs/profile-$m.log" 2>&1; then
            log "wrote profiles/cuda-$m.json"
        else
            log "profile for $m failed: $(head -3 "$OUT/logs/profile-$m.log")"
            set_status 5
        fi
    fi
done

# ---- CPU side, when the full build is there and time is left --------------------------
if [ -n "$CLI" ] && [ "$(left)" -gt 90 ]; then
    log "CPU profile of risk-mlp on this host (budget 40 s)"
    timeout 80 "$CLI" cpu --model realbench/models/risk-mlp.yaml --out "$OUT/profiles/cpu-risk-mlp-gpuhost.json" \
        --raw "$OUT/raw/cpu-risk-mlp-gpuhost.csv" --budget-s 40 > "$OUT/logs/cpu-risk-mlp.log" 2>&1 ||
        log "CPU benchmark failed (logs/cpu-risk-mlp.log)"
fi
if [ -n "$CLI" ] && [ "$(left)" -gt 60 ] && "$CLI" serve --help > /dev/null 2>&1; then
    log "closed loop: realbench serve on this host's CPU (30 s)"
    timeout 60 "$CLI" serve --profile "$OUT/profiles/cpu-risk-mlp-gpuhost.json" --load 0.5 --duration-s 30 \
        --out "$OUT/profiles/serve-cpu-gpuhost.json" > "$OUT/logs/serve.log" 2>&1 ||
        log "serve failed (logs/serve.log)"
fi

# ---- summary ----------------------------------------------------------------------
echo
echo "================ realbench GPU run summary ================"
cat "$OUT/logs/device.txt"
grep -h "device-to-device" "$OUT"/logs/*-*.log 2>/dev/null | head -1
for m in $MODELS; do
    if [ -n "$CLI" ] && [ -f "$OUT/profiles/cuda-$m.json" ]; then
        "$CLI" table "$OUT/profiles/cuda-$m.json" | tee "$OUT/profiles/cuda-$m.txt"
    else
        echo "$m (median per forward pass, from the benchmark logs):"
        for p in $PRECISIONS; do
            [ -f "$OUT/logs/$m-$p.log" ] && grep -E "^$p +[0-9]" "$OUT/logs/$m-$p.log" | awk '{printf "  %-10s batch %5s  %10s ms\n", $1, $2, $3}'
        done
    fi
done
echo "checks:"
for f in "$OUT"/raw/*.csv; do
    [ -f "$f" ] && grep -E "^# (check|error|skipped)" "$f" | sed "s|^# |  $(basename "$f" .csv): |"
done
[ -z "$CLI" ] && echo "profiles: make them where cJSON/GSL exist: realbench profile --from-csv $OUT/raw/MODEL-*.csv --out cuda-MODEL.json"
echo "took $(($(date +%s) - START)) s"
case $STATUS in
    0) finish "ok" 0 ;;
    4) finish "correctness check failed" 4 ;;
    *) finish "partial: some runs failed or were cut short" 5 ;;
esac
