"""Training throughput (images/s) of one VAE step per architecture and prior, on this machine.

    python benchmarks/train_throughput.py --arch mnist --prior normal ladder --batch-size 256 --steps 20
    python benchmarks/train_throughput.py --arch celeba --device cuda --batch-size 256

One "step" is what pipeline.training does per minibatch: the autoencoder step and, for the
hierarchical and LaDDer priors, the prior-VAE block step. The step's floating-point operations
are counted once with torch's FlopCounterMode, and the achieved GFLOP/s is printed beside the
machine's 2048 x 2048 float32 matrix-product rate at the same thread count (issue 11.4): how
close to the processor's limit training runs. Writes a JSON line per case to --out.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from pipeline.config import load_config, run_settings
from pipeline.models import build_vae
from pipeline.provenance import device_description
from pipeline.training import make_optimisers, resolve_device


def measure(arch: str, prior: str, batch_size: int, steps: int, device: torch.device, warmup: int = 3, mixed_precision: str = "none") -> dict:
    config = load_config()
    dataset = "celeba" if arch == "celeba" else "mnist5k"
    if dataset not in config["datasets"]:
        config = load_config(Path(__file__).parents[1] / "config" / "config.yaml")
    settings = run_settings(config, dataset, prior, 0)
    settings["mixed_precision"] = mixed_precision
    settings["architecture"] = arch
    vae = build_vae(settings).to(device).train()
    ae_opt, prior_opt = make_optimisers(vae, settings)
    x = torch.rand(batch_size, *vae.encoder.input_shape, device=device)

    def step():
        terms = vae.terms(x)
        ae_opt.zero_grad(set_to_none=True)
        (-terms["elbo"].mean()).backward()
        ae_opt.step()
        if prior_opt is not None:
            prior_opt.zero_grad(set_to_none=True)
            vae.prior.block_loss(terms["z"].detach()).backward()
            prior_opt.step()

    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    flop_per_step = counter.get_total_flops()
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {"arch": arch, "prior": prior, "mixed_precision": mixed_precision, "batch_size": batch_size, "steps": steps, "seconds_per_step": seconds / steps,
            "gflop_per_step": flop_per_step / 1e9, "achieved_gflops": flop_per_step / 1e9 / (seconds / steps),
            "images_per_s": batch_size * steps / seconds, "device": device_description(device), "threads": torch.get_num_threads(),
            "host": platform.node()}


def matmul_gflops(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """Best-of float32 n x n matrix-product rate: the processor's practical peak for dense work."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=["mnist", "mnist_code", "celeba"], default="mnist")
    parser.add_argument("--prior", nargs="+", default=["normal", "vampprior", "gmm", "hierarchical", "ladder"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--mixed-precision", choices=["none", "bf16"], default="none", help="training.mixed_precision (bf16: networks under autocast)")
    parser.add_argument("--out", default="benchmarks/out/train_throughput.jsonl")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    peak = matmul_gflops(device)
    print(f"2048x2048 float32 matmul: {peak:.1f} GFLOP/s on {device_description(device)} ({torch.get_num_threads()} threads)")
    for prior in args.prior:
        result = measure(args.arch, prior, args.batch_size, args.steps, device, mixed_precision=args.mixed_precision)
        result["matmul_gflops"] = peak
        print(f"{args.arch:7s} {prior:13s} {args.mixed_precision:4s} batch {args.batch_size:4d}: {result['seconds_per_step'] * 1e3:8.1f} ms/step "
              f"{result['images_per_s']:9.1f} images/s, {result['achieved_gflops']:6.1f} GFLOP/s = {result['achieved_gflops'] / peak:5.1%} "
              f"of the matmul rate, on {result['device']} ({result['threads']} threads)", flush=True)
        with open(args.out, "a") as handle:
            handle.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
