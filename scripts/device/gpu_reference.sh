#!/usr/bin/env bash
# TIED TO ONE MACHINE: written for the lent GPU machines of 2026-11 (64 MiB per call, no internet,
# no Snakemake there), not a general way to run the workflow on a GPU; issue 22 replaces it.
# The paper-scale Fashion-MNIST reference (config/reference_gpu.yaml) on a lent GPU machine.
#
# That machine has torch but no Snakemake or torch-fidelity, no internet, and receives at most
# 64 MiB per call, so the data, the wheels and the Inception weights (two halves) travel in
# separate calls, and the DAG runs in its own process session between calls:
#   setup   install .whl/*.whl into /tmp/site; stage data/raw/fashion_mnist (carried)
#   bench   training throughput per prior (benchmarks/train_throughput.py, idle GPU)
#   weights assemble .carry_w0/part + .carry_w1/part into the converted Inception file, check sha256
#   fidbench Inception images/s on the GPU (benchmarks/fid_gpu_throughput.py)
#   start   run the DAG (all_tables, headline runs first, then all) with setsid, log under results/
#   watch S wait up to S seconds (or until the DAG ends), print progress, pack results into $OUT
# Every command works from the repository root. Locally, scripts/collect_reference.py turns the
# unpacked tarball into reference/gpu_fashion_mnist/.
set -u
cd "$(dirname "$0")/../.."
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
mkdir -p .bin results
command -v python >/dev/null || ln -sf "$(command -v python3)" .bin/python
export PATH=$PWD/.bin:$PATH
WEIGHTS=data/fid/inception-2015-12-05-from-fid-helper.pth
SMK="python3 -m snakemake --configfile config/reference_gpu.yaml --cores 16 --rerun-triggers mtime input params --keep-going"
OUT=${OUT:-/tmp/out}

case "$1" in
setup)
    [ -f /tmp/site/.done ] || { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl && touch /tmp/site/.done; }
    python3 -c "import snakemake, torch_fidelity, torch; print('snakemake', snakemake.__version__, 'torch', torch.__version__, torch.cuda.get_device_name())"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc ;;
bench)
    python3 benchmarks/train_throughput.py --device cuda --prior normal vampprior gmm hierarchical ladder realnvp --batch-size 256 --steps 50 --out results/bench/train_gpu.jsonl ;;
weights)
    mkdir -p data/fid && cat .carry_w0/part .carry_w1/part > $WEIGHTS.tmp
    echo "$2  $WEIGHTS.tmp" | sha256sum -c - && mv $WEIGHTS.tmp $WEIGHTS ;;
fidbench)
    python3 benchmarks/fid_gpu_throughput.py --n 4000 --out results/bench/fid_gpu.json ;;
start)
    setsid nohup bash -c "date +%s > results/gpu_started; $SMK all_tables -P results/tables/table2.csv > results/gpu_dag1.log 2>&1; \
        date +%s > results/gpu_tables_done; $SMK all > results/gpu_dag2.log 2>&1; date +%s > results/gpu_finished" > /dev/null 2>&1 &
    sleep 5; tail -3 results/gpu_dag1.log ;;
watch)
    end=$(( $(date +%s) + ${2:-60} ))
    while [ "$(date +%s)" -lt $end ] && [ ! -f results/gpu_finished ]; do sleep 10; done
    for f in results/runs/*/*/*/seed*/stats.csv; do echo "$f $(( $(wc -l < $f) - 1 ))"; done | sed 's|results/runs/||; s|/stats.csv||'
    ls results/runs/*/*/*/seed*/metrics.json results/runs/*/*/*/seed*/fid.json 2>/dev/null | wc -l
    grep -h "steps (.*) done" results/gpu_dag*.log | tail -2; grep -h -i "error" results/gpu_dag*.log | tail -5
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; uptime
    mkdir -p "$OUT" && tar czf "$OUT/gpu_results.tar.gz" --exclude='*.pt' --exclude='*.h5' --exclude='*.npz' results .snakemake/log 2>/dev/null
    ls -la "$OUT" ;;
*)
    echo "usage: $0 setup|bench|weights SHA256|fidbench|start|watch SECONDS" >&2; exit 2 ;;
esac
