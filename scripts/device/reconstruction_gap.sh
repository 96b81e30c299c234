#!/usr/bin/env bash
# TIED TO ONE MACHINE: written for the lent GPU machines of 2026-11 (64 MiB per call, no internet,
# no Snakemake there), not a general way to run the workflow on a GPU; issue 22 replaces it.
# experiments/reconstruction_gap/run.py at paper scale on a lent GPU machine (README, "Reconstruction gap").
#   setup    prepare data/processed/fashion_mnist.h5 from the carried data/raw/fashion_mnist
#   start    run the sweep (all variants, or those named) in its own process session (it outlives the call), log under results/
#   bench    bf16 against fp32 training throughput on the GPU (benchmarks/train_throughput.py)
#   watch S  wait up to S seconds (or until the sweep ends), print progress, pack results into $OUT
set -u
cd "$(dirname "$0")/../.."
# the lent machine has torch but not jsonschema: its wheels travel in .whl_min (carry)
[ -d .whl_min ] && [ ! -f /tmp/site/.min ] && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl_min/*.whl && touch /tmp/site/.min
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
DIR=results/reconstruction_gap
mkdir -p results
case "$1" in
setup)
    python3 -m pipeline prepare-data --dataset fashion_mnist --config config/reference_gpu.yaml --out data/processed/fashion_mnist.h5
    python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name())"; nproc ;;
start)
    log=results/reconstruction_gap_$(date +%s).log
    setsid nohup python3 experiments/reconstruction_gap/run.py --config config/reference_gpu.yaml --jobs 16 --device cuda \
        ${2:+--variants ${*:2}} --out $DIR > $log 2>&1 < /dev/null &
    echo $! >> results/sweep.pids
    sleep 20; tail -3 $log; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader ;;
bench)
    for arch in mnist mnist_code; do for mp in none bf16; do
        python3 benchmarks/train_throughput.py --device cuda --arch $arch --prior normal ladder --mixed-precision $mp --steps 50 --out results/bench/train_gpu_bf16.jsonl
    done; done ;;
watch)
    end=$(( $(date +%s) + ${2:-60} ))
    running() { for pid in $(cat results/sweep.pids 2>/dev/null); do kill -0 "$pid" 2>/dev/null && return 0; done; return 1; }
    while [ "$(date +%s)" -lt $end ] && running; do sleep 10; done
    for f in $DIR/*/stats.csv; do echo "$f $(( $(wc -l < $f) - 1 )) $(tail -1 $f | cut -d, -f6)"; done
    tail -n 3 results/reconstruction_gap_*.log; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; uptime
    mkdir -p "$OUT" && tar czf "$OUT/reconstruction_gap.tar.gz" --exclude='*.pt' results ;;
*)
    echo "usage: $0 setup|start [VARIANT...]|bench|watch SECONDS" >&2; exit 2 ;;
esac
