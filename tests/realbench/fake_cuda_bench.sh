#!/bin/sh
# Stands in for rb_cuda_bench where there is no GPU, so that gpu-run.sh's
# steps after the build (per-precision runs, the closed loop, CSV -> profile,
# fleetsim's prediction, summary, packing) can be exercised: same options,
# same file formats, made-up but plausible timings (latency = (20 + 0.5 *
# batch) us, scaled per precision). Not a benchmark.
set -eu
out="" prec="int8" serve=0 serve_out="." loads="0.5,0.8"
while [ $# -gt 0 ]; do
    case $1 in
    --info) echo "device 0: fake GPU (tests/realbench/fake_cuda_bench.sh)"; exit 0 ;;
    --out) out=$2; shift ;;
    --precisions) prec=$2; shift ;;
    --serve) serve=1 ;;
    --latencies) ;;
    --serve-out) serve_out=$2; shift ;;
    --loads) loads=$2; shift ;;
    --shapes|--reps|--warmup|--rotate|--budget-s|--batches|--device|--samples|--qps|--duration-s|--warmup-s|--max-batch|--max-wait-ms|--calib-reps|--seed) shift ;;
    esac
    shift
done
if [ $serve -eq 1 ]; then
    # calibration: 16 batch sizes x 40 reps; results: a closed loop that the
    # made-up numbers describe only roughly
    for l in $(echo "$loads" | tr ',' ' '); do
        pct=$(awk -v l="$l" 'BEGIN { printf "%d", l * 100 + 0.5 }')
        {
            echo "# fleetsim-realbench-raw/1"
            echo "# device.kind=\"cuda\""
            echo "# device.name=\"fake GPU\""
            echo "# model.name=\"risk-mlp\""
            echo "# settings.center=\"mean\""
            echo "precision,impl,batch,rep,latency_s"
            awk 'BEGIN { for (b = 1; b <= 16; b++) for (r = 0; r < 40; r++)
                printf "int8,fake,%d,%d,%.9g\n", b, r, (20 + 0.5 * b) * (1 + 0.02 * ((r * 7) % 5 - 2)) * 1e-6 }'
        } > "$serve_out/calib-int8-load$pct.csv"
        awk -v l="$l" 'BEGIN {
            cap = 16 / 28e-6; q = l * cap
            printf "{\"schema\": \"fleetsim-serve/1\", \"device\": \"fake GPU\", \"precision\": \"int8\",\n"
            printf " \"settings\": {\"qps\": %.3f, \"load\": %g, \"capacity_qps\": %.3f, \"max_batch\": 16, \"max_wait_s\": 0.005, \"workers\": 1},\n", q, l, cap
            printf " \"latency_s\": {\"mean\": 6e-05, \"p50\": 5.5e-05, \"p90\": 8e-05, \"p99\": 0.0001, \"p999\": 0.00012, \"max\": 0.0002},\n"
            printf " \"mean_batch_size\": 8.0, \"utilization\": %.2f, \"batches\": 1000}\n", l }' > "$serve_out/serve-int8-load$pct.json"
        echo "serve: load $pct%: fake"
    done
    echo "  int8 forward pass batch 1: 0 of 1 outputs differ from the CPU reference (fake)"
    exit 0
fi
[ -n "$out" ] || { echo "fake_cuda_bench: no --out" >&2; exit 2; }
case $prec in int8) f=1 ;; int8_dp4a) f=3 ;; fp16|bf16) f=2 ;; tf32) f=4 ;; *) f=8 ;; esac
{
    echo "# fleetsim-realbench-raw/1"
    echo "# device.kind=\"cuda\""
    echo "# device.name=\"fake GPU\""
    echo "# device.cores_or_sms=132"
    echo "# created=\"2000-01-01T00:00:00Z\""
    echo "# model.name=\"fake\""
    echo "precision,impl,batch,rep,latency_s"
    for b in 1 2 4 8 16 256; do
        for r in 0 1 2; do
            awk -v b=$b -v r=$r -v f=$f -v p=$prec 'BEGIN { printf "%s,fake,%d,%d,%.9g\n", p, b, r, f * (20 + 0.5 * b + r) * 1e-6 }'
        done
    done
    echo "# check.$prec=\"ok\""
} > "$out"
echo "$prec batch median_ms"
echo "$prec 1 0.020"
