"""FID speed on this machine: Inception images/s before and after, against the matmul rate; fixed costs.

Records (one JSON under benchmarks/out/):
- the CPU model (lscpu's "Model name") and the load average (other work slows every timing);
- float32 2048 x 2048 matrix-product GFLOP/s on 1 thread and on ``--threads`` threads;
- Inception pool features, images/s on ``--threads`` threads: *before* (torch-fidelity's forward:
  NCHW, grey replicated before the resize to 299, batch 64, the old path) and *after*
  (``pipeline.fid.metric.pool_features``: resize on the image's own channels, NHWC, ``--batch-size``),
  with the implied GFLOP/s (InceptionV3 at 299: ~5.7 GMAC = ~11.5 GFLOP per image);
- one FID of N features against a 2048-d reference: torch-fidelity (general eigvals) vs
  ``frechet_distance`` (symmetric eigenvalues), their relative difference, for N = 32 and N = 4096;
- fixed costs per job: ``python -c "import torch"``, ``import torch, torch_fidelity`` and
  ``import pipeline.fid.commands`` in fresh interpreters, and the Inception load time.
Timings are the best of ``--repeats``: on a shared machine the minimum is the least disturbed.

    python benchmarks/fid_throughput.py --n 32 --threads 2 --out benchmarks/out/fid_cpu.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.fid import build_extractor, features_to_statistics, frechet_distance, resolve_weights, statistics_to_fid
from pipeline.fid.metric import pool_features
from pipeline.provenance import provenance, write_json

INCEPTION_GFLOP = 11.5  # per 299x299 image, multiply-adds counted as 2 FLOP


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return "unknown"


def best(f, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gflops(threads: int, repeats: int) -> float:
    torch.set_num_threads(threads)
    a = torch.randn(2048, 2048)
    a @ a  # warm-up
    return round(2 * 2048**3 / best(lambda: a @ a, repeats) / 1e9, 1)


def fresh_import_seconds(code: str, repeats: int) -> float:
    return round(best(lambda: subprocess.run([sys.executable, "-c", code], check=True), repeats), 2)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="images timed per variant")
    parser.add_argument("--size", type=int, choices=[28, 128], default=28, help="28: grey (MNIST-like), 128: RGB (CelebA-like)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch of the new path")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--weights", default=None, help="torch-fidelity Inception weights (default: converted)")
    parser.add_argument("--out", default="benchmarks/out/fid_cpu.json")
    args = parser.parse_args(argv)

    result = {"cpu": cpu_model(), "cpus": os.cpu_count(), "loadavg_1min_start": os.getloadavg()[0],
              "matmul_gflops_1_thread": matmul_gflops(1, args.repeats * 2),
              f"matmul_gflops_{args.threads}_threads": matmul_gflops(args.threads, args.repeats * 2)}
    torch.set_num_threads(args.threads)

    weights = resolve_weights({"weights_path": args.weights})
    start = time.perf_counter()
    plain = build_extractor(weights, "cpu")
    result["inception_load_s"] = round(time.perf_counter() - start, 2)
    fast = build_extractor(weights, "cpu", channels_last=True)
    channels = 1 if args.size == 28 else 3
    images = torch.randint(0, 256, (args.n, channels, args.size, args.size), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)

    def before():
        for part in images.split(64):
            plain(part.expand(-1, 3, -1, -1))

    def after():
        for part in images.split(args.batch_size):
            pool_features(fast, part)

    with torch.inference_mode():
        pool_features(fast, images[:2]), plain(images[:2].expand(-1, 3, -1, -1))  # warm-up
        for name, f in (("before", before), ("after", after)):
            seconds = best(f, args.repeats)
            result[f"images_per_s_{name}"] = round(args.n / seconds, 2)
            result[f"inception_gflops_{name}"] = round(args.n * INCEPTION_GFLOP / seconds, 1)

    rng = np.random.default_rng(0)
    reference = features_to_statistics(rng.normal(size=(4096, 2048)) @ rng.normal(size=(2048, 2048)) * 0.05)
    for n in (32, 4096):
        features = rng.normal(size=(n, 2048)) + 0.1
        stats = features_to_statistics(features)
        start = time.perf_counter()
        expected = statistics_to_fid(reference, stats)
        result[f"fid_torch_fidelity_s_n{n}"] = round(time.perf_counter() - start, 2)
        ref = dict(reference)  # sigma_sqrt (N > 2048) is computed once per reference; timed with it
        start = time.perf_counter()
        ours = frechet_distance(ref, features)
        result[f"fid_fast_s_n{n}"] = round(time.perf_counter() - start, 2)
        result[f"fid_fast_rel_diff_n{n}"] = float(abs(ours - expected) / abs(expected))

    result["import_torch_s"] = fresh_import_seconds("import torch", args.repeats)
    result["import_torch_fidelity_s"] = fresh_import_seconds("import torch, torch_fidelity", args.repeats)
    result["import_fid_commands_s"] = fresh_import_seconds("import pipeline.fid.commands, pipeline.fid.scores", args.repeats)
    result["loadavg_1min_end"] = os.getloadavg()[0]
    result.update(n=args.n, size=args.size, batch_size=args.batch_size, threads=args.threads, repeats=args.repeats)

    print(f"{result['cpu']}: matmul {result['matmul_gflops_1_thread']} / {result[f'matmul_gflops_{args.threads}_threads']} GFLOP/s "
          f"(1 / {args.threads} threads); Inception {result['images_per_s_before']} -> {result['images_per_s_after']} images/s; "
          f"FID n=32 {result['fid_torch_fidelity_s_n32']} -> {result['fid_fast_s_n32']} s; load avg {result['loadavg_1min_end']}")
    write_json(Path(args.out), result, provenance(vars(args)))
    return result


if __name__ == "__main__":
    main()
