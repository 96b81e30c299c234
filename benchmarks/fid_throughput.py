"""Throughput of FID feature extraction (images/s), and optionally the time of one FID.

Random uint8 images, grey 28x28 (MNIST-like) or RGB 128x128 (CelebA-like), go through
``pipeline.fid.images_to_features`` exactly as the pipeline uses it; one warm-up batch is
excluded from the timing. Prints one line naming the machine and writes a JSON (or CSV) result.

    python benchmarks/fid_throughput.py --device cpu --n 64 --size 28 --out benchmarks/out/fid_cpu_28.json
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from pathlib import Path

import torch

from pipeline.fid import build_extractor, features_to_statistics, images_to_features, resolve_weights, statistics_to_fid
from pipeline.provenance import atomic_path, provenance, write_json


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)}"
    model = platform.processor() or platform.machine()
    try:  # /proc/cpuinfo names the CPU model; platform.processor() often does not on Linux
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {model}, {torch.get_num_threads()} torch threads"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--n", type=int, default=64, help="images timed (after one warm-up batch)")
    parser.add_argument("--size", type=int, choices=[28, 128], default=28, help="28: grey, 128: RGB")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--weights", default=None, help="torch-fidelity Inception weights (default: converted)")
    parser.add_argument("--time-fid", action="store_true", help="also time one FID from the features")
    parser.add_argument("--out", default=None, help=".json or .csv (default benchmarks/out/fid_throughput_<device>_<size>.json)")
    args = parser.parse_args(argv)

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but CUDA is not available")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    weights = resolve_weights({"weights_path": args.weights})
    extractor = build_extractor(weights, device)

    channels = 1 if args.size == 28 else 3
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.n, channels, args.size, args.size), generator=g, dtype=torch.uint8)
    warmup = images[: args.batch_size]

    images_to_features(warmup, extractor, args.batch_size, device, progress=False)
    sync(device)
    start = time.perf_counter()
    features = images_to_features(images, extractor, args.batch_size, device, progress=False)
    sync(device)
    seconds = time.perf_counter() - start

    result = {
        "machine": machine(device),
        "device": str(device),
        "n": args.n,
        "size": args.size,
        "channels": channels,
        "batch_size": args.batch_size,
        "seconds": round(seconds, 3),
        "images_per_s": round(args.n / seconds, 2),
        "loadavg_1min": os.getloadavg()[0],  # other work on the machine slows the timing
    }
    if args.time_fid:
        # torch-fidelity's FID: an eigen-decomposition of a 2048 x 2048 matrix on the CPU, whatever n is.
        stats = features_to_statistics(features)
        start = time.perf_counter()
        statistics_to_fid(stats, stats)
        result["fid_seconds"] = round(time.perf_counter() - start, 3)

    line = f"{result['machine']}: {result['images_per_s']} images/s ({args.n} images {channels}x{args.size}x{args.size}, batch {args.batch_size}, {device})"
    if "fid_seconds" in result:
        line += f"; one FID {result['fid_seconds']} s"
    print(line)

    out = Path(args.out or f"benchmarks/out/fid_throughput_{device.type}_{args.size}.json")
    record = provenance(vars(args), device=device)
    if out.suffix == ".csv":
        with atomic_path(out) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(result))
            writer.writeheader()
            writer.writerow(result)
        write_json(out.with_name(out.stem + ".provenance.json"), {}, record)
    else:
        write_json(out, result, record)
    return result


if __name__ == "__main__":
    main()
