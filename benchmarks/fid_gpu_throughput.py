"""Inception (FID/KID feature) throughput on a CUDA GPU: images/s per batch size and layout.

    python benchmarks/fid_gpu_throughput.py --n 4000 --out benchmarks/out/fid_gpu.json

Times ``pipeline.fid.metric.pool_features`` (the code every FID job runs) on uint8 28 x 28 grey
images (Fashion-MNIST's shape), for float32 NCHW and NHWC weights at several batch sizes, and the
GPU's float32 and TF32-off 4096 x 4096 matrix-product rate beside it; the implied GFLOP/s uses
InceptionV3's ~11.5 GFLOP per 299 x 299 image. Without a CUDA device it says so and exits 1: the
CPU counterpart is benchmarks/fid_throughput.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from pipeline.fid import build_extractor, resolve_weights
from pipeline.fid.metric import pool_features
from pipeline.provenance import device_description, provenance, write_json

INCEPTION_GFLOP = 11.5


def timed(f, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        f()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="images per timing")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 250, 500])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--out", default="benchmarks/out/fid_gpu.json")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: see benchmarks/fid_throughput.py for the CPU", file=sys.stderr)
        sys.exit(1)
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False  # the FID jobs' float32 arithmetic
    torch.backends.cudnn.allow_tf32 = False
    a = torch.randn(4096, 4096, device=device)
    result = {"device": device_description(device), "n": args.n,
              "matmul_tflops_fp32": round(2 * 4096**3 / timed(lambda: a @ a, 5) / 1e12, 1)}
    weights = resolve_weights({"weights_path": args.weights})
    images = torch.randint(0, 256, (args.n, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    with torch.inference_mode():
        for layout in ("nchw", "nhwc"):
            extractor = build_extractor(weights, device, channels_last=layout == "nhwc")
            pool_features(extractor, images[:8])  # warm-up (cuDNN autotuning)
            for batch in args.batch_sizes:
                seconds = timed(lambda: [pool_features(extractor, part) for part in images.split(batch)], 2)
                result[f"images_per_s_{layout}_b{batch}"] = round(args.n / seconds, 1)
                result[f"inception_tflops_{layout}_b{batch}"] = round(args.n * INCEPTION_GFLOP / seconds / 1e3, 2)
    print(" ".join(f"{k}={v}" for k, v in result.items()))
    write_json(Path(args.out), result, provenance(vars(args), device=device))
    return result


if __name__ == "__main__":
    main()
