"""Peak host memory (and GPU memory, where CUDA is present) of every network rule's command, per
architecture, at the paper's batch sizes: the evidence behind pipeline/memory.py's declarations.

    nice -n 10 python benchmarks/memory.py --out reference/memory/cpu.json            # this machine
    python benchmarks/memory.py --device cuda --out reference/memory/gpu.json        # a GPU box

Each job is the real ``python -m pipeline <command>`` a rule runs, on a synthetic processed dataset
of the architecture's image shape (MNIST-size 1x28x28, CelebA 3x128x128), with the paper's
configuration except the sizes that only set how long a job runs (epochs, images, iterations):
those keep every batch at the paper's size (training 256, evaluation/encoding/sampling 500, FID
64, the importance-sampling chunk of 2,048) so the peak is the paper's; the sizes that grow a
job's memory are recorded beside each peak, and pipeline.memory.job_memory is evaluated at them.
Peaks come from the job's own last log line (``pipeline-job ... max_rss_mb=... [max_gpu_mb=...]``:
ru_maxrss, which counts the dataset pages the job touched through its memory map, recorded as
``dataset_mb``; torch.cuda.max_memory_allocated). The JSON names the machine
(pipeline.provenance's record: CPU, GPU, versions) and each job's declaration.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.config import load_config, run_settings
from pipeline.data.store import write_arrays
from pipeline.evaluation import ENCODE_BATCH
from pipeline.memory import activation_bytes_per_image, job_memory, loglik_chunk, parameter_count
from pipeline.provenance import REPO_ROOT, provenance, write_json

PEAK = re.compile(r"pipeline-job cpu_s=([0-9.]+) max_rss_mb=([0-9]+)(?: max_gpu_mb=([0-9]+) max_gpu_reserved_mb=([0-9]+))?")
SHAPES = {"mnist": (1, 28, 28), "celeba": (3, 128, 128)}
DATASET = {"mnist": "mnist", "celeba": "celeba"}  # the config's dataset block per architecture
# Per architecture: the methods trained, training images and batch sizes, test images, FID sizes
# (two, for the per-image slope), and the figure jobs run (the rules that exist for that dataset:
# CelebA has Figure 6 only). MNIST-size jobs run at the paper's batches. CelebA on a CPU: training
# at batch 256 holds ~30 GB of activations (256 x 114 MB, pipeline.memory.activation_bytes_per_image),
# evaluation at 500 ~16 GB, more than a 24 GB machine shared with other work affords, so there every
# job runs on 64 images or fewer (training at batches 16 and 32), and the declaration is evaluated
# at the batch the job really used (the per-image term is linear in the batch); on a GPU box pass
# --celeba-batches 256. The importance sampling runs two full passes of its CelebA chunk
# (pipeline.memory.loglik_chunk: 128 decodes on a CPU, 4 GB with the workspace) without the
# proposal's refinement, whose 8 samples with gradients hold ~0.9 GB (8 x 114 MB) and cost
# over 7 CPU-minutes for one image here (stopped unfinished); MNIST-size evaluation runs it (None:
# the config's 100 steps).
PLAN = {
    "mnist": {"methods": ["normal", "ladder"], "n_train": 2048, "train_limit": 512, "batches": [256], "n_test": 1000, "fid_n": [128, 512],
              "n_samples": 1000, "loglik_images": 2, "loglik_samples": 2048, "refine_steps": None, "figures": ["slp_run", "figure3", "figure5"]},
    "celeba": {"methods": ["normal"], "n_train": 64, "train_limit": None, "batches": [16, 32], "n_test": 64, "fid_n": [32, 64],
               "n_samples": 64, "loglik_images": 1, "loglik_samples": 256, "refine_steps": 0, "figures": ["figure6"]},
}


def synthetic_dataset(path: Path, arch: str, n_train: int, n_test: int) -> Path:
    rng = np.random.default_rng(0)
    splits = {s: (rng.integers(0, 256, (n, *SHAPES[arch]), dtype=np.uint8), rng.integers(0, 10, n)) for s, n in (("train", n_train), ("test", n_test))}
    write_arrays(path, splits, name=DATASET[arch], sources=[{"path": "synthetic", "how": "benchmarks/memory.py"}], checksums={}, split_seed=0,
                 data_cfg={})
    return path


def run_job(name: str, args: list[str], log_dir: Path) -> dict:
    """Run one CLI job; its peaks from its last log line."""
    log = log_dir / f"{name}.log"
    started = time.time()
    with open(log, "w") as handle:
        rc = subprocess.run([sys.executable, "-m", "pipeline", *args], stdout=handle, stderr=subprocess.STDOUT, cwd=REPO_ROOT).returncode
    text = log.read_text()
    match = PEAK.search(text)
    if rc != 0 or match is None:
        raise RuntimeError(f"{name} failed (exit {rc}); its log {log}:\n{text[-3000:]}")
    result = {"seconds": round(time.time() - started, 1), "cpu_s": float(match[1]), "max_rss_mb": int(match[2])}
    if match[3] is not None:
        result.update(max_gpu_mb=int(match[3]), max_gpu_reserved_mb=int(match[4]))
    print(f"{name}: {result}", flush=True)
    return result


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=["mnist", "celeba"], choices=list(PLAN))
    parser.add_argument("--device", default="auto", help="the jobs' --device (auto: a GPU where CUDA is present)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", nargs="+", help="methods trained (default: the plan's per architecture)")
    parser.add_argument("--celeba-batches", type=int, nargs="+", default=PLAN["celeba"]["batches"], help="CelebA training batch sizes")
    parser.add_argument("--work", default="benchmarks/out/memory", help="scratch folder (datasets, runs, logs)")
    parser.add_argument("--out", default="reference/memory/cpu.json")
    parser.add_argument("--resume", action="store_true", help="keep the jobs --out already holds and measure only the others")
    args = parser.parse_args()

    config = load_config()
    work = (REPO_ROOT / args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    weights = work / "inception.pth"
    if not weights.exists():
        run_job("fid_weights", ["fid-weights", "--out", str(weights)], work)
    common = ["--device", args.device]
    device_type = "cuda" if args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    out = REPO_ROOT / args.out
    jobs = json.loads(out.read_text())["jobs"] if args.resume and out.exists() else []
    architectures = {}

    def save():
        result = {"benchmark": "benchmarks/memory.py", "argv": sys.argv[1:], "machine": machine(), "architectures": architectures, "jobs": jobs}
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json(out, result, provenance(config={"argv": sys.argv[1:]}))
        return result

    batches = {"mnist": PLAN["mnist"]["batches"], "celeba": args.celeba_batches}
    for arch in args.archs:
        plan = PLAN[arch]
        dataset = DATASET[arch]
        data = synthetic_dataset(work / f"{arch}.h5", arch, plan["n_train"], plan["n_test"])
        image_mb = np.prod(SHAPES[arch]) / 2**20
        normal = run_settings(config, dataset, "normal", 0)
        architectures[arch] = {"params": parameter_count(normal), "activation_bytes_per_image": activation_bytes_per_image(normal)}

        def record(rule, method, name, argv, sizes, dataset_images, variant="default"):
            key = (rule, arch, method, variant, sizes)
            done = [j for j in jobs if (j["rule"], j["architecture"], j["method"], j.get("variant", "default"), j["sizes"]) == key]
            if done and all(Path(p).exists() for p in argv if str(p).startswith(str(work)) and p.endswith((".pt", ".h5", ".npz"))):
                print(f"{arch}_{name}: measured before (--resume)", flush=True)
                return
            result = run_job(f"{arch}_{name}", argv, work)
            declared = job_memory(rule, config, dataset, method=method, sizes=sizes, data_on_device=False,
                                  device="auto" if "max_gpu_mb" in result else "cpu")
            jobs.append({"rule": rule, "architecture": arch, "dataset": dataset, "method": method, "variant": variant, "sizes": sizes,
                         "dataset_mb": round(dataset_images * image_mb, 1), **result, "declared": declared})
            save()  # after every job: an interrupted benchmark keeps what it measured

        def train(method, run, batch, variant="default"):
            """One epoch on train_limit images (or one batch): the training peak at this batch."""
            settings = dict(run_settings(config, dataset, method, 0, variant=variant), epochs=1, batch_size=batch,
                            train_limit=plan["train_limit"] or batch)
            run.mkdir(parents=True, exist_ok=True)
            for stale in run.glob("checkpoint*.pt"):
                stale.unlink()
            suffix = f"_{variant}" if variant != "default" else f"_b{batch}"
            record("train_model", method, f"train_{method}{suffix}",
                   ["train", "--settings", json.dumps(settings), "--data", str(data), "--out", str(run / "model.pt"), *common,
                    "--threads", str(args.threads), "--data-on-device", "0", "--no-progress"],
                   {"n_train": settings["train_limit"], "batch": batch}, settings["train_limit"], variant)

        evaluation = dict(config["evaluation"], loglik_test_limit=plan["loglik_images"], loglik_samples=plan["loglik_samples"])
        if plan["refine_steps"] is not None:
            evaluation["loglik_refine_steps"] = plan["refine_steps"]
        # the batch each job really runs at: the config's, or all the images where there are fewer
        eval_batch = max(min(plan["n_test"], evaluation["batch_size"]), loglik_chunk(arch, device_type))
        methods = args.methods or plan["methods"]
        for method in methods:
            run = work / "runs" / arch / method
            model = run / "model.pt"
            for batch in batches[arch]:
                train(method, run, batch)
            record("evaluate_model", method, f"evaluate_{method}",
                   ["evaluate", "--model", str(model), "--data", str(data), "--options", json.dumps(evaluation), *common, "--no-progress",
                    "--out", str(run / "metrics.json")], {"n_test": plan["n_test"], "batch": eval_batch}, plan["n_test"])
            record("encode", method, f"encode_{method}", ["encode", "--model", str(model), "--data", str(data), *common, "--out", str(run / "encodings.h5")],
                   {"n_train": plan["n_train"], "n_test": plan["n_test"], "batch": min(plan["n_train"], ENCODE_BATCH)},
                   plan["n_train"] + plan["n_test"])
            sample_batch = min(plan["n_samples"], config["sampling"]["batch_size"])
            record("sample", method, f"sample_{method}",
                   ["sample", "--model", str(model), "--options", json.dumps({"n_samples": plan["n_samples"]}), "--batch-size",
                    str(sample_batch), *common, "--out", str(run / "samples.h5")], {"n_samples": plan["n_samples"], "batch": sample_batch}, 0)

        method = methods[-1]
        run = work / "runs" / arch / method
        fid_common = [*common, "--batch-size", str(config["fid"]["batch_size"]), "--threads", str(args.threads), "--no-progress"]
        for n in plan["fid_n"]:
            options = dict(config["fid"], n_samples=n, n_reference=n, kid_subset_size=min(n // 2, config["fid"]["kid_subset_size"]))
            options = {k: options[k] for k in ("n_samples", "n_reference", "real_split", "kid_subset_size", "kid_subsets")}
            reference = run / f"reference{n}.npz"
            record("fid_reference", method, f"fid_reference_{n}",
                   ["fid-reference", "--weights", str(weights), "--data", str(data), "--options", json.dumps({"n_reference": n}), *fid_common,
                    "--out", str(reference)], {"n_reference": n}, n)
            record("fid_model", method, f"fid_model_{n}",
                   ["fid", "--weights", str(weights), "--model", str(run / "model.pt"), "--samples", str(run / "samples.h5"), "--data", str(data),
                    "--reference", str(reference), "--options", json.dumps(options), *fid_common, "--out", str(run / f"fid{n}.json")],
                   {"n_samples": n, "n_reference": n}, n)
        interpolation = dict(config["interpolation"], iterations=5)
        test_images = min(plan["n_test"], interpolation["test_images"])
        figure_sizes = {"n_test": test_images, "batch": min(test_images, config["evaluation"]["batch_size"])}
        models = [f"{m}={work / 'runs' / arch / (m if m in methods else method) / 'model.pt'}" for m in ("ladder", "gmm", "normal")]
        if "figure5" in plan["figures"]:  # Figure 5 draws paths in LaDDer's 2-D t-space: the d_t2 run
            run_t2 = work / "runs" / arch / "ladder_d_t2"
            train("ladder", run_t2, batches[arch][0], variant="d_t2")
            models[0] = f"ladder={run_t2 / 'model.pt'}"
        if "slp_run" in plan["figures"]:
            record("slp_run", method, "slp_run",
                   ["slp-table", "--model", str(run / "model.pt"), "--data", str(data), "--options", json.dumps(interpolation), *common,
                    "--out", str(work / f"slp_{arch}.csv")], figure_sizes, test_images)
        if "figure3" in plan["figures"]:
            runs = [work / "runs" / arch / m for m in methods]
            record("figure3", method, "figure3",
                   ["figure3", "--data", str(data), "--models", *[str(r / "model.pt") for r in runs], "--samples", *[str(r / "samples.h5") for r in runs],
                    "--options", json.dumps(config["figures"]), "--threads", str(args.threads), "--out", str(work / "fig3.png"),
                    "--table", str(work / "fig3.csv")], {}, 0)
        for figure in ("figure5", "figure6"):
            if figure in plan["figures"]:
                record(figure, method, figure,
                       ["figure-interpolation", "--figure", figure[-1], "--dataset", dataset, "--data", str(data), "--model", *models,
                        "--options", json.dumps(interpolation), *common, "--out-prefix", str(work / f"{arch}_{figure}")], figure_sizes, test_images)
    result = save()
    print(f"wrote {out}")
    return result


def machine() -> dict:
    """The machine the peaks were measured on: CPU model, cores, memory, GPU (name and memory) if any."""
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor())
    total_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    gpus = [{"name": torch.cuda.get_device_name(i), "memory_mb": torch.cuda.get_device_properties(i).total_memory // 2**20}
            for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mb": total_kb // 1024, "gpus": gpus, "torch": torch.__version__,
            "kind": f"gpu: {gpus[0]['name']}" if gpus else "cpu only (GPU figures not measured)"}


if __name__ == "__main__":
    main()
