#!/bin/sh
# Stands in for rb_cuda_bench where there is no GPU, so that gpu-run.sh's
# steps after the build (per-precision runs, CSV -> profile, summary) can be
# exercised: same options, same CSV format, made-up but plausible timings
# (latency = (20 + 0.5 * batch) us, scaled per precision). Not a benchmark.
set -eu
out="" prec="int8"
while [ $# -gt 0 ]; do
    case $1 in
    --info) echo "device 0: fake GPU (tests/realbench/fake_cuda_bench.sh)"; exit 0 ;;
    --out) out=$2; shift ;;
    --precisions) prec=$2; shift ;;
    --shapes|--reps|--warmup|--rotate|--budget-s|--batches|--device|--samples) shift ;;
    esac
    shift
done
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
    for b in 1 2 4 8; do
        for r in 0 1 2; do
            awk -v b=$b -v r=$r -v f=$f -v p=$prec 'BEGIN { printf "%s,fake,%d,%d,%.9g\n", p, b, r, f * (20 + 0.5 * b + r) * 1e-6 }'
        done
    done
    echo "# check.$prec=\"ok\""
} > "$out"
echo "$prec batch median_ms"
echo "$prec 1 0.020"
