"""The Snakemake workflow end to end on a tiny config, and the paper-scale DAG."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.provenance import REPO_ROOT
from tests.conftest import METHODS, SNAKEMAKE, quick_config, snakemake, tiny_config

@pytest.mark.slow
def test_tiny_workflow_end_to_end_then_nothing_to_do(tmp_path):
    config = tiny_config(tmp_path)
    started = time.time()
    result = snakemake("all", "--cores", "2", "--configfile", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    print(f"tiny workflow: {time.time() - started:.0f} s")

    tables = tmp_path / "results" / "tables"
    for table in ("table2", "table3", "table_sm1", "table_sm2", "table_priors"):
        for ext in ("csv", "md", "tex", "provenance.json"):
            assert (tables / f"{table}.{ext}").stat().st_size > 0, f"{table}.{ext}"
    assert not (tables / "table1.csv").exists()  # CelebA is not in this run
    table3 = (tables / "table3.md").read_text()
    for label in ("Normal", "VampPrior", "GMM", "Hierarchical", "Ours (LaDDer)", "paper (MNIST)"):
        assert label in table3
    sm2 = (tables / "table_sm2.md").read_text()
    assert "d_t = 2" in sm2 and "d_t = 8" in sm2 and "fid_n_generated = 8" in sm2
    for method in METHODS:
        run = tmp_path / "results" / "runs" / "mnist5k" / method / "default" / "seed0"
        for name in ("model.pt", "checkpoint.pt", "stats.csv", "training_options.json", "train.log", "metrics.json", "encodings.h5", "samples.h5",
                     "fid.json"):
            assert (run / name).exists(), f"{method}/{name}"
        assert (tmp_path / "results" / "figures" / "samples" / f"mnist5k_{method}_default_seed0.pdf").exists()
    assert (tmp_path / "results" / "runs" / "mnist5k" / "ladder" / "d_t2" / "seed0" / "fid.json").exists()
    assert not (tmp_path / "results" / "runs" / "mnist5k" / "ladder" / "d_t8").exists()  # d_t = 8 reuses the ladder run
    figures = tmp_path / "results" / "figures"
    for figure in ("fig2/mnist5k_seed0", "fig3/mnist5k", "fig4/mnist5k", "fig5/mnist5k", "fig6/mnist5k", *(f"supplement/samples_{m}" for m in METHODS)):
        for ext in ("png", "pdf"):
            assert (figures / f"{figure}.{ext}").stat().st_size > 0, f"{figure}.{ext}"
    for table in ("fig2_mnist5k_seed0", "fig4_mnist5k", "slp_mnist5k"):
        assert (figures / "tables" / f"{table}.csv").exists(), table
    claims = (tmp_path / "results" / "claims.md").read_text()
    assert "C1" in claims and "C8" in claims
    # Issue 13.5: the Snakemake report holds every table and figure this DAG built
    from tests.conftest import check_report

    check_report(tmp_path, config)
    # Issue 8.1: a table cell is the mean over seeds of the per-run metric files
    import json

    import pandas as pd

    table3 = pd.read_csv(tables / "table3.csv")
    metrics = json.loads((tmp_path / "results" / "runs" / "mnist5k" / "ladder" / "default" / "seed0" / "metrics.json").read_text())
    cell = table3[(table3.metric == "elbo") & (table3.method == "ladder")].iloc[0]
    assert cell["mean"] == pytest.approx(metrics["metrics"]["elbo"], rel=1e-12) and cell.n_seeds == 1
    # ... and a per-run metric equals a direct call of the package on the saved model
    from pipeline.artefacts import load_model, load_split
    from pipeline.evaluation import evaluate

    vae, _ = load_model(tmp_path / "results" / "runs" / "mnist5k" / "ladder" / "default" / "seed0" / "model.pt")
    images, _ = load_split(tmp_path / "data" / "processed" / "mnist5k.h5", "test", limit=64)
    options = yaml.safe_load(config.read_text())["evaluation"]
    direct = evaluate(vae, images, options["mc_samples"], options["is_samples"], options["batch_size"], "cpu", seed=0, progress=False)
    for key in ("elbo", "rec_error", "cross_entropy", "active_units"):
        assert direct[key] == pytest.approx(metrics["metrics"][key], rel=1e-5), key

    again = snakemake("all", "--cores", "2", "--dry-run", "--configfile", str(config), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stdout + again.stderr

    # Issue 7.2: each rule's params hold only what its outputs depend on (checked on the finished DAG).
    def scheduled(change):
        changed = yaml.safe_load(config.read_text())
        change(changed)
        path = tmp_path / "changed.yaml"
        path.write_text(yaml.safe_dump(changed, sort_keys=False))
        result = snakemake("all", "--cores", "2", "--dry-run", "--quiet", "rules", "--configfile", str(path), cwd=tmp_path, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        out = result.stdout + result.stderr
        return {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit()}

    assert "fid_reference" not in scheduled(lambda c: c["fid"].update(n_samples=6))
    assert scheduled(lambda c: c["data"]["celeba"].update(test_size=123)) == {}
    limit = scheduled(lambda c: c["datasets"]["mnist5k"].update(test_limit=32))
    assert "train_model" not in limit and limit.get("evaluate_model") == len(METHODS)
    assert scheduled(lambda c: c["training"].update(num_threads=2, device="auto")) == {}
    assert scheduled(lambda c: c["training"].update(device="cpu")) == {}
    assert scheduled(lambda c: c["fid"].update(device="auto", batch_size=4)) == {}
    assert scheduled(lambda c: c["sampling"].update(batch_size=5)) == {}
    grid = scheduled(lambda c: c["sampling"].update(grid_rows=3))
    assert "fid_model" not in grid and grid.get("sample_grid") == len(METHODS)
    assert "train_model" in scheduled(lambda c: c["training"].update(adam_beta2=0.9))


def test_paper_scale_dry_run_builds_every_job(tmp_path):
    result = snakemake("all", "--cores", "8", "--dry-run", "--quiet", "rules", "--configfile", str(REPO_ROOT / "config" / "config.yaml"),
                       cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    # 3 datasets x 6 methods x 5 seeds headline runs; d_t ablation variants beside each dataset's own d_t (3, 3, 4) x 5 seeds;
    # figure runs on MNIST and Fashion-MNIST: normal/d_z2 for Figure 2 (first seed), vampprior/d_z2 and gmm/d_z2 for
    # Figure 4 (5 seeds; Figure 4's ladder/d_t2 is an ablation run already)
    assert " train_model " in out or "train_model" in out
    counts = {line.split()[0]: int(line.split()[1]) for line in out.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert counts["train_model"] == 3 * 6 * 5 + (3 + 3 + 4) * 5 + 2 * (1 + 2 * 5)
    assert counts["prepare_dataset"] == 3 and counts["fid_reference"] == 3
    assert counts["table"] == 6  # Tables 1, 2, 3, supplement Tables 1, 2 and table_priors


def test_lint_is_clean():
    result = subprocess.run([*SNAKEMAKE, "--lint"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_bad_config_value_stops_with_its_key(tmp_path):
    config = quick_config()
    config["datasets"]["mnist5k"]["epochs"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake("--cores", "1", "--configfile", str(path), "--dry-run", cwd=tmp_path, timeout=300)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    # the package's message, first and brief: file, key path, what to do (no schema dump)
    assert "Configuration error" in out and "datasets.mnist5k.epochs" in out and "bad.yaml" in out
    assert len(out.splitlines()) < 20, out
