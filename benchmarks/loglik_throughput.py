"""Throughput of the importance-sampled test log-likelihood (pipeline/likelihood.py), images/s.

    python benchmarks/loglik_throughput.py --prior normal realnvp hierarchical --samples 100 --images 8
    python benchmarks/loglik_throughput.py --device cuda --samples 5000 --images 64 --chunk-size 16384

The MNIST network of supplement E.1 at its real size (d_z = 16, d_t = 8, the priors' paper-scale
options), random weights and images (the cost does not depend on them). Beside each case: the
decoder alone at the same batch (z/s), so ``decoder_efficiency`` = images/s x S / decoder z/s
says how close the estimator runs to the decoder's speed (1 = all time in the decoder), and,
once, the machine's single-thread 2048 x 2048 float32 matmul GFLOP/s and its CPU model.
Wall and CPU time are both recorded: on a busy shared machine images per CPU-second is the
steadier number. Writes one JSON file to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import torch

from pipeline.likelihood import importance_log_likelihood
from pipeline.models.vae import build_vae
from pipeline.priors import realnvp  # noqa: F401  (registers "realnvp" until priors/__init__ imports it)

# paper-scale options (config/config.yaml's methods block; realnvp: Xu et al. B.2)
PRIOR_OPTIONS = {
    "normal": {},
    "vampprior": {"n_components": 50},
    "gmm": {"n_components": 50},
    "realnvp": {"n_blocks": 20, "hidden": 256, "n_layers": 1},
    "hierarchical": {"d_t": 8, "n_layers": 5, "hidden": 512},
    "ladder": {"d_t": 8, "n_layers": 5, "hidden": 512, "n_components": 50},
}


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return fields.get("Model name", "unknown").strip()


def matmul_gflops(n: int = 2048, repeats: int = 3) -> dict:
    """Single-thread float32 n x n matmul GFLOP/s (2 n^3 flops), best of ``repeats``, by wall
    time and by this process's CPU time."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    wall = cpu = float("inf")
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        a @ b
        wall, cpu = min(wall, time.perf_counter() - started), min(cpu, time.process_time() - cpu_started)
    torch.set_num_threads(previous)
    return {"wall": 2 * n**3 / wall / 1e9, "cpu": 2 * n**3 / cpu / 1e9}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(prior: str, samples: int, images: int, chunk_size: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    settings = {"architecture": "mnist", "d_z": 16, "prior": prior, "prior_options": PRIOR_OPTIONS[prior]}
    vae = build_vae(settings).to(device).eval()
    x = torch.rand(images, 1, 28, 28, device=device)
    importance_log_likelihood(vae, x[:1], min(samples, 16), chunk_size=chunk_size)  # warm-up
    _sync(device)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = importance_log_likelihood(vae, x, samples, seed=0, chunk_size=chunk_size)
    _sync(device)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    # the decoder alone, at the batch the estimator gives it
    batch = min(chunk_size, samples * max(1, chunk_size // samples))
    z = torch.randn(batch, 16, device=device)
    reps = max(1, (images * samples) // batch)
    with torch.no_grad():
        vae.decode(z)
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            vae.decode(z)
        _sync(device)
    decoder_z_per_s = reps * batch / (time.perf_counter() - t0)
    decoder_z_per_cpu_s = reps * batch / (time.process_time() - c0)
    images_per_s = images / seconds
    return {"prior": prior, "samples": samples, "images": images, "chunk_size": chunk_size, "seconds": seconds,
            "images_per_s": images_per_s, "decoder_z_per_s": decoder_z_per_s,
            "decoder_efficiency": images_per_s * samples / decoder_z_per_s,
            # CPU seconds (all threads) resist a busy shared machine better than wall time
            "cpu_seconds": cpu_seconds, "images_per_cpu_s": images / cpu_seconds, "decoder_z_per_cpu_s": decoder_z_per_cpu_s,
            "decoder_efficiency_cpu": images / cpu_seconds * samples / decoder_z_per_cpu_s,
            "paper_scale_hours": 10_000 * 5_000 / (images_per_s * samples) / 3600,  # 10k test images x S = 5,000
            "mean_log_px": result["log_px"].mean().item(), "threads": torch.get_num_threads(), "device": str(device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prior", nargs="+", default=["normal", "realnvp", "hierarchical"], choices=sorted(PRIOR_OPTIONS))
    parser.add_argument("--samples", type=int, default=100, help="S per image (5,000 at paper scale)")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--chunk-size", type=int, default=2048, help="decoder evaluations per pass")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="benchmarks/out/loglik_throughput.json")
    args = parser.parse_args()
    device = torch.device(args.device)
    record = {"cpu_model": cpu_model(), "host": platform.node(), "torch": torch.__version__,
              "matmul_2048_float32_gflops_1thread": matmul_gflops(), "load_average": list(os.getloadavg()), "cases": []}
    gflops = record["matmul_2048_float32_gflops_1thread"]
    print(f"CPU: {record['cpu_model']}, load average {record['load_average'][0]:.1f}; single-thread 2048x2048 float32 "
          f"matmul: {gflops['wall']:.1f} GFLOP/s by wall time, {gflops['cpu']:.1f} by CPU time", flush=True)
    for threads in args.threads if device.type == "cpu" else [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        for prior in args.prior:
            case = measure(prior, args.samples, args.images, args.chunk_size, device)
            record["cases"].append(case)
            print(f"{prior:13s} S={args.samples:5d} {threads} thread(s): {case['images_per_s']:8.2f} images/s "
                  f"({case['images_per_s'] * args.samples:9.0f} z/s; decoder alone {case['decoder_z_per_s']:9.0f} z/s, "
                  f"efficiency {case['decoder_efficiency']:.2f}; per CPU-s {case['images_per_cpu_s']:.2f} images, "
                  f"efficiency {case['decoder_efficiency_cpu']:.2f}); 10k images x S=5000: {case['paper_scale_hours']:.1f} h",
                  flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
