"""Issue 24: every network job declares its memory (pipeline.memory), Snakemake packs jobs under the
machine's budgets, a job that cannot fit stops the run before it starts, and the dataset is shared
through a memory map without changing a result."""

import functools
import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import h5py
import pytest
import torch
import yaml

import pipeline.training
from pipeline.config import load_config, run_settings
from pipeline.data.store import _mapped_images, load_split, write_arrays
from pipeline.memory import ARCHITECTURE_SIZES, activation_bytes_per_image, inference_bytes_per_image, job_memory, parameter_count
from pipeline.provenance import REPO_ROOT
from tests.conftest import make_digits, quick_config, tiny_settings

MEASURED = sorted((REPO_ROOT / "reference" / "memory").glob("*.json"))  # benchmarks/memory.py, one file per machine and run
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO_ROOT / "Snakefile")]


def test_training_on_the_memory_map_equals_training_on_a_private_copy(tiny_dataset, tmp_path, monkeypatch):
    with h5py.File(tiny_dataset) as f:
        assert _mapped_images(Path(tiny_dataset), f["train/images"], slice(None)) is not None  # the shared path is taken
    settings = tiny_settings("normal", epochs=2)
    shared = torch.load(pipeline.training.train(settings, tiny_dataset, tmp_path / "a" / "model.pt", progress=False), weights_only=False)
    monkeypatch.setattr(pipeline.training, "load_split", functools.partial(load_split, shared=False))
    private = torch.load(pipeline.training.train(settings, tiny_dataset, tmp_path / "b" / "model.pt", progress=False), weights_only=False)
    state_a, state_b = shared["model"], private["model"]
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


def test_architecture_constants_are_the_models():
    config = load_config()
    for arch in ("mnist", "mnist_code"):
        settings = dict(run_settings(config, "mnist", "normal", 0), architecture=arch)
        sizes = ARCHITECTURE_SIZES[arch]
        assert sizes["params"] == parameter_count(settings)
        assert sizes["train_bytes_per_image"] == activation_bytes_per_image(settings)
        assert sizes["inference_bytes_per_image"] == inference_bytes_per_image(settings)
    assert ARCHITECTURE_SIZES["celeba"]["params"] == parameter_count(run_settings(config, "celeba", "normal", 0))


def test_declarations_cover_the_measured_peaks():
    """reference/memory/*.json (benchmarks/memory.py): each job's peak RSS is under what the rule
    declares at the job's sizes, plus the dataset pages it mapped (shared, set aside once)."""
    config = load_config()
    assert MEASURED
    files = [json.loads(path.read_text()) for path in MEASURED]
    assert all(m["machine"]["cpu"] and m["jobs"] for m in files)
    for job in (job for m in files for job in m["jobs"]):
        on_gpu = "max_gpu_mb" in job
        declared = job_memory(job["rule"], config, job["dataset"], method=job["method"], sizes=job["sizes"], data_on_device=False,
                              device="auto" if on_gpu else "cpu")
        label = f"{job['rule']} {job['architecture']} {job['method']} {job['sizes']}"
        assert job["max_rss_mb"] <= declared["mem_mb"] + job["dataset_mb"], f"{label}: peak {job['max_rss_mb']} MB > declared {declared}"
        if on_gpu:
            assert job["max_gpu_mb"] <= declared["gpu_mem_mb"], f"{label}: GPU peak {job['max_gpu_mb']} MB > declared {declared}"


def test_paper_gpu_declarations_pack_small_jobs_and_not_large_ones():
    config = load_config()
    gpu = 81559  # one H100 80GB
    celeba = job_memory("train_model", config, "celeba", device="auto", data_on_device=False)
    mnist = job_memory("train_model", config, "mnist", device="auto", data_on_device=True)
    assert gpu // celeba["gpu_mem_mb"] <= 2 and gpu // mnist["gpu_mem_mb"] >= 16
    on_device = job_memory("train_model", config, "celeba", device="auto", data_on_device=True)
    assert on_device["gpu_mem_mb"] - celeba["gpu_mem_mb"] > 8000  # the ~9 GB training set, when it is kept there


def test_the_fid_reference_declares_only_the_reference_images():
    """fid_reference reads the first n_reference test images; the generated and real sets
    (fid.n_samples) belong to fid_real and fid_model (CelebA's 10,000 would add ~8 GB)."""
    config = load_config()
    more = {**config, "fid": {**config["fid"], "n_samples": 4 * config["fid"]["n_samples"]}}
    for dataset in ("mnist", "celeba"):
        assert job_memory("fid_reference", more, dataset, device="cpu") == job_memory("fid_reference", config, dataset, device="cpu")
        assert job_memory("fid_model", more, dataset, device="cpu")["mem_mb"] > job_memory("fid_model", config, dataset, device="cpu")["mem_mb"]


# ---- the workflow under budgets ------------------------------------------------------------------
def _workflow_dir(tmp_path: Path, seeds: int) -> Path:
    config = quick_config()
    config["run"] = {"datasets": ["mnist5k"], "methods": ["normal"], "seeds": list(range(seeds))}
    config["datasets"]["mnist5k"].update(epochs=2, batch_size=64, train_limit=256, test_limit=64)
    config["training"]["num_threads"] = 1
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    data = tmp_path / "data" / "processed" / "mnist5k.h5"
    data.parent.mkdir(parents=True)
    write_arrays(data, {"train": make_digits(256, 0), "test": make_digits(64, 1)}, name="mnist5k", sources=[{"path": "generated", "how": "test"}],
                 checksums={}, split_seed=0, data_cfg={})
    return tmp_path


def _interval(log: Path) -> tuple[float, float, int]:
    lines = log.read_text().splitlines()
    stamp = [datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp() for line in lines if re.match(r"\d{4}-\d\d-\d\d ", line)]
    peak = int(re.search(r"max_rss_mb=(\d+)", lines[-1])[1])
    return stamp[0], stamp[-1], peak


@pytest.mark.slow
def test_a_budget_for_two_jobs_runs_two_of_four_at_once_each_under_its_declaration(tmp_path):
    cwd = _workflow_dir(tmp_path, seeds=4)
    config = load_config(cwd / "tiny.yaml")
    declared = job_memory("train_model", config, "mnist5k", device="cpu")["mem_mb"]
    models = [f"results/runs/mnist5k/normal/default/seed{s}/model.pt" for s in range(4)]
    result = subprocess.run([*SNAKEMAKE, *models, "--cores", "4", "--configfile", "tiny.yaml", "--resources", f"mem_mb={2 * declared + declared // 2}"],
                            cwd=cwd, capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    intervals = [_interval(cwd / f"results/logs/train/mnist5k/normal/default/seed{s}.log") for s in range(4)]
    events = sorted([(start, 1) for start, _, _ in intervals] + [(end, -1) for _, end, _ in intervals], key=lambda e: (e[0], e[1]))
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    assert most <= 2, f"{most} training jobs ran at once under a budget for 2"
    dataset_mb = (cwd / "data" / "processed" / "mnist5k.h5").stat().st_size / 2**20
    for seed, (_, _, peak) in enumerate(intervals):
        assert peak <= declared + dataset_mb, f"seed {seed}: peak RSS {peak} MB > declared {declared} MB"


def test_a_job_that_cannot_fit_stops_the_run_before_it_starts(tmp_path):
    cwd = _workflow_dir(tmp_path, seeds=1)
    env = {**os.environ, "LADDER_HOST_MEM_MB": "3000"}  # 3000 MB less the 2048 reserved: ~950 MB for jobs
    result = subprocess.run([*SNAKEMAKE, "results/runs/mnist5k/normal/default/seed0/model.pt", "--cores", "1", "--configfile", "tiny.yaml"],
                            cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode != 0
    message = result.stderr
    assert re.search(r"train_model \(mnist5k\) needs [\d,]+ MB of host memory; this machine has [\d,]+ MB for jobs", message), message[-3000:]
    assert not (cwd / "results" / "runs").exists()


def test_importance_sampling_passes_fit_the_architecture(monkeypatch):
    """The log-likelihood's decoder chunk is bounded by memory (a CelebA decoder holds 16 MB per image:
    16,384 at once would need ~256 GB of GPU memory), MNIST-size chunks are unchanged, and the
    evaluation uses the bound its declaration assumes."""
    from pipeline import evaluation, likelihood
    from pipeline.memory import LOGLIK_PASS_BYTES, loglik_chunk

    assert (loglik_chunk("mnist", "cpu"), loglik_chunk("mnist", "cuda")) == (2048, 16384)
    for device in ("cpu", "cuda"):
        assert loglik_chunk("celeba", device) * ARCHITECTURE_SIZES["celeba"]["inference_bytes_per_image"] <= LOGLIK_PASS_BYTES[device]
    chunks = []

    def record(vae, images, n_samples, seed, chunk_size, refine_steps):
        chunks.append(chunk_size)
        raise StopIteration  # the chunk is all this test needs

    monkeypatch.setattr(likelihood, "importance_log_likelihood", record)
    with pytest.raises(StopIteration):
        evaluation.log_likelihood_metrics(None, torch.zeros(1, 3, 4, 4, dtype=torch.uint8), 10, 0, "cpu", 0, architecture="celeba")
    assert chunks == [loglik_chunk("celeba", "cpu")]
    config = load_config()
    declared = job_memory("evaluate_model", config, "celeba", device="cuda")
    assert declared["gpu_mem_mb"] * 2**20 >= loglik_chunk("celeba", "cuda") * ARCHITECTURE_SIZES["celeba"]["inference_bytes_per_image"]
