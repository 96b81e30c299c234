"""Shared fixtures and helpers (no test file imports another's): small datasets the tests make
themselves, tiny settings and the one tiny workflow config, 2-D densities, the report reader, and
the test categories.

Markers (pyproject.toml): ``unit`` (in-process, seconds; ``make test-fast``), ``workflow`` (runs
Snakemake or the CLI in a subprocess), ``slow`` (minutes: end-to-end runs, long trainings),
``cluster`` (starts a SLURM cluster; needs root). A test file is ``unit`` unless it is marked
otherwise, here by file name (WORKFLOW_FILES, CLUSTER_FILES) or in the file.
"""

import base64
import html
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

import numpy as np
import pytest
import torch
import yaml

from pipeline.config import DEFAULT_CONFIG, load_config, merged_config, run_settings
from pipeline.data.store import write_arrays
from pipeline.provenance import REPO_ROOT


def quick_config() -> dict:
    """The quick profile merged over config/config.yaml, as a plain (unvalidated) dict to edit."""
    return merged_config(DEFAULT_CONFIG, REPO_ROOT / "config" / "quick.yaml")


def make_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Tiny stand-in for MNIST: a bright bar whose position encodes the label. uint8 (n,1,28,28)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = (rng.random((n, 1, 28, 28)) * 30).astype(np.uint8)
    for i, label in enumerate(labels):
        images[i, 0, 2 + 2 * label: 5 + 2 * label, 4:24] = 255
    return images, labels.astype(np.int64)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny.h5"
    write_arrays(path, {"train": make_digits(64, 0), "test": make_digits(24, 1)}, name="mnist5k", sources=[{"path": "generated", "how": "test"}],
                 checksums={}, split_seed=0, data_cfg={})
    return path


# Small options per registered prior, declared once: the generic contract tests (tests/test_priors.py)
# and tiny trainings use them. A prior registered without an entry here is tested with its defaults.
SMALL_PRIOR_OPTIONS = {
    "normal": {},
    "vampprior": {"n_components": 5},
    "gmm": {"n_components": 3, "fit_samples": 200, "max_iter": 30},
    "mog": {"n_components": 4},
    "realnvp": {"n_blocks": 3, "hidden": 16},
    "hierarchical": {"d_t": 2, "n_layers": 1, "hidden": 16, "n_is_samples": 64},
    "ladder": {"d_t": 2, "n_layers": 1, "hidden": 16, "n_is_samples": 64, "n_components": 3, "fit_samples": 200,
               "warmup_epochs": 0, "n_hyper_samples": 10, "max_iter": 30},
}
TINY_PRIOR_OPTIONS = SMALL_PRIOR_OPTIONS  # the name older tests import


def tiny_settings(method: str, epochs: int = 3, seed: int = 0) -> dict:
    config = load_config(REPO_ROOT / "config" / "quick.yaml")
    config["methods"] = {method: {"prior": method, "options": TINY_PRIOR_OPTIONS.get(method, {})}}
    settings = run_settings(config, "mnist5k", method, seed)
    settings.update(epochs=epochs, batch_size=16, train_limit=None, d_z=4)
    if "d_t" in settings["prior_options"]:
        settings["prior_options"]["d_t"] = 2
    return settings


# -- test categories (markers registered in pyproject.toml) ---------------------------------------
# Files whose tests run Snakemake or the CLI in subprocesses; the SLURM files start a cluster.
WORKFLOW_FILES = {"test_workflow.py", "test_faults.py", "test_add_prior.py", "test_packaging.py", "test_catalog.py", "test_memory.py"}
# test_slurm_smoke.py is not one of them: issue 23 puts it in `make test` (marked slow, a few minutes).
CLUSTER_FILES = {"test_slurm.py"}
# Single tests of unit files that run the CLI in a subprocess, and those that take 10 s or more of
# CPU (Inception, converging estimators, long fits): `file::test` (every parameter of it). Measured
# with `pytest -m unit --durations=60` (2026-12-05, load 5-12 on the 2 cores: the unit run took
# 326 CPU-seconds before these moved out, 181 after the first ten: 2 min 55 s of pytest under load 5).
WORKFLOW_TESTS = {
    "test_config.py::test_check_config_names_the_file_of_broken_yaml",
    "test_budget.py::test_every_pipeline_command_logs_its_own_cpu_seconds",
    "test_devices.py::test_a_slot_is_held_across_processes_and_freed_when_its_process_dies",
}
SLOW_TESTS = {
    "test_fid.py::test_torch_fidelity_entry_point_agrees_and_inception_score_is_nan",
    "test_fid.py::test_fid_runs_with_network_blocked",
    "test_fid.py::test_frechet_distance_on_inception_features",
    "test_fid.py::test_converted_weights_reproduce_torchscript",  # Inception forward passes
    "test_fid.py::test_pool_features_equal_torch_fidelity_forward_any_batch",
    "test_evaluation.py::test_importance_sampled_cross_entropy_agrees_with_the_exact_one",
    "test_likelihood.py::test_estimate_converges_to_exact_log_likelihood",
    "test_training.py::test_resume_under_other_execution_flags",
    "test_priors.py::test_ladder_refit_recovers_clusters_after_a_fit_on_differently_shaped_data",
}


def pytest_collection_modifyitems(config, items):
    """Every test gets one category: cluster (by file), else slow or workflow as marked, listed
    (SLOW_TESTS, WORKFLOW_TESTS) or by file, else unit. ``slurm`` is kept as a synonym of ``cluster``."""
    for item in items:
        name = Path(str(item.fspath)).name
        test = f"{name}::{item.originalname}"
        marks = {m.name for m in item.iter_markers()}
        if name in CLUSTER_FILES or marks & {"slurm", "cluster"}:
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.slurm)
        elif "slow" in marks or "workflow" in marks:
            pass
        elif test in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        elif name in WORKFLOW_FILES or test in WORKFLOW_TESTS:
            item.add_marker(pytest.mark.workflow)
        else:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# -- 2-D densities (priors, Real NVP, evaluation) ---------------------------------------------
def clustered(n: int, seed: int = 0, d: int = 2) -> torch.Tensor:
    """Three tight clusters in 2-D: (n, d)"""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[-2.0, -1.0], [1.5, -1.5], [0.5, 2.0]])[:, :d]
    k = torch.randint(3, (n,), generator=g)
    return centres[k] + 0.3 * torch.randn(n, d, generator=g)


def grid(half: float, step: float) -> torch.Tensor:
    """Cell centres of a square grid over [-half, half]^2: (n*n, 2)"""
    g = torch.arange(-half + step / 2, half, step)
    return torch.cartesian_prod(g, g)


def set_proposal(prior, A, b, sigma, inflate: float = 1.2, prec_t: torch.Tensor | None = None):
    """q(t|z): mean = the posterior mean under p(t) = N(0, I), diagonal std from the posterior
    precision's diagonal (the ELBO-optimal diagonal Gaussian) times ``inflate``."""
    prec = (torch.eye(2) if prec_t is None else prec_t) + A.T @ A / sigma**2  # (2, 2)
    S = torch.linalg.inv(prec)
    W = S @ A.T / sigma**2
    std = inflate / prec.diagonal().sqrt()
    with torch.no_grad():
        prior.vae.enc_mean.weight.copy_(W)
        prior.vae.enc_mean.bias.copy_(-W @ b)
        prior.vae.enc_std.linear.weight.zero_()
        prior.vae.enc_std.linear.bias.copy_(torch.log(torch.expm1(std - 1e-3)))


def total_variation(sample: torch.Tensor, log_prob, half: float = 6.0, bin_w: float = 0.4, sub: int = 8):
    """TV between a 2-D histogram of samples and the bin masses of exp(log_prob) (integrated
    on a sub x sub finer grid per bin). Returns (tv, grid mass)."""
    n_bins = int(round(2 * half / bin_w))
    step = bin_w / sub
    pts = grid(half, step)  # (n_bins*sub)^2 cell centres, row-major in (x, y)
    with torch.no_grad():
        dens = log_prob(pts).exp().reshape(n_bins, sub, n_bins, sub).sum((1, 3)) * step**2  # (n_bins, n_bins)
    idx = torch.floor((sample + half) / bin_w).long()  # (n, 2)
    inside = ((idx >= 0) & (idx < n_bins)).all(1)
    counts = torch.zeros(n_bins * n_bins)
    counts.index_add_(0, idx[inside, 0] * n_bins + idx[inside, 1], torch.ones(int(inside.sum())))
    hist = counts.reshape(n_bins, n_bins) / sample.shape[0]
    return 0.5 * (hist - dens).abs().sum().item(), dens.sum().item()


# -- the one tiny workflow config (test_workflow, test_faults, the SLURM tests) -------------------
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO_ROOT / "Snakefile")]
METHODS = ["normal", "vampprior", "gmm", "hierarchical", "ladder", "realnvp"]


def snakemake(*args, cwd, timeout=900):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def tiny_config(tmp_path: Path) -> Path:
    config = quick_config()
    config["run"] = {"datasets": ["mnist5k"], "methods": METHODS, "seeds": [0]}
    config["datasets"]["mnist5k"].update(epochs=2, batch_size=64, train_limit=256, test_limit=64)
    config["methods"]["vampprior"]["options"]["n_components"] = 4
    config["methods"]["gmm"]["options"].update(n_components=3, fit_samples=64, max_iter=20)
    config["methods"]["hierarchical"]["options"].update(n_layers=1, hidden=32)
    config["methods"]["ladder"]["options"].update(n_layers=1, hidden=32, n_components=3, fit_samples=64, n_hyper_samples=4, max_iter=20)
    config["methods"]["realnvp"]["options"].update(n_blocks=2, hidden=16)
    config["figures"].update(datasets=["mnist5k"], seeds=[0], fig2_fit_images=200, fig2_grid_size=30, fig2_is_samples=8, fig2_mc_points=100,
                             fig2_epochs=2, fig2_steps_per_epoch=5, fig4_max_points=256, samples_grid_rows=4)
    config["interpolation"].update(iterations=20, n_pairs=3, test_images=32, figure_pairs=2, figure6_pairs=1, grid_size=30)
    config["training"]["num_threads"] = 1
    config["evaluation"].update(is_samples=8, batch_size=64, loglik_samples=8, loglik_test_limit=8)
    config["sampling"].update(n_samples=16, batch_size=16, grid_rows=4)
    config["fid"].update(n_samples=8, n_reference=8, batch_size=8, device="cpu", kid_subset_size=4, kid_subsets=10)
    config["ablation"]["d_t"] = {"mnist5k": [2, 8]}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# -- reading a finished Snakemake report back (test_report, test_workflow) -------------------
@dataclass(frozen=True)
class ReportContents:
    results: dict      # result path -> {"name", "caption" (HTML), "mime_type", "data_uri", "job_properties", ...}
    categories: dict   # category -> subcategory -> list of result paths
    runtimes: list     # [{"rule", "runtime" (s)}], one per job Snakemake has metadata for
    description: str   # the workflow description (Snakefile ``report:`` text) as HTML

    def in_category(self, category: str) -> list[str]:
        return [path for sub in self.categories.get(category, {}).values() for path in sub]


def _script_json(page: str, name: str, script_id: str):
    # anchored on the script element's id: the bundled libraries hold "var results = ..." too
    match = re.search(rf'<script id="{script_id}">\s*var {name} = (.*?);\s*</script>', page, re.S)
    if match is None:
        raise ValueError(f"no `var {name}` in the page: not a Snakemake (>= 8) HTML report")
    return json.loads(match.group(1))


def read_report(path: Path) -> ReportContents:
    """Parse the JSON that Snakemake's self-contained report page embeds."""
    page = Path(path).read_text()
    categories = _script_json(page, "categories", "categories")
    runtimes = _script_json(page, "runtimes_spec", "runtimes")["data"]["values"]
    return ReportContents(_script_json(page, "results", "results"), categories, runtimes, _script_json(page, "workflow_desc", "workflow-desc"))


def decode_data_uri(uri: str) -> bytes:
    """The bytes of an embedded result (``data:<mime>;charset=..;filename=..;base64,<data>``)."""
    header, _, data = uri.partition(",")
    return base64.b64decode(data) if header.endswith(";base64") else unquote_to_bytes(data)


def rows(page: str) -> list[tuple[str, list[str]]]:
    """(row class, cell texts) of every body row of every table in a page."""
    out = []
    for cls, body in re.findall(r'<tr(?: class="([^"]*)")?>(.*?)</tr>', page, re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
        if cells:
            out.append((cls, cells))
    return out


# Rules of the end-to-end run whose job run times the report must show (Statistics panel).
TIMED_RULES = ("prepare_dataset", "train_model", "evaluate_model", "fid_model", "table", "claims")


# -- the check on a finished workflow (called from tests/test_workflow.py) --------------------------
def _caption_ok(path: str, entry: dict) -> None:
    caption = entry.get("caption") or ""
    assert len(re.sub(r"<[^>]+>", "", caption).strip()) > 40, f"{path}: the report shows no caption"
    # docutils renders RST errors into the caption as "System Message" blocks
    assert "System Message" not in caption and "system-message" not in caption, f"{path}: caption has an RST error: {caption[:500]}"


def check_report(workdir: Path, configfile: Path, timeout: int = 600, snakefile: Path = REPO_ROOT / "Snakefile"):
    """Build ``snakemake --report`` in a finished workflow and check that it holds every table
    (as its HTML page, with the paper's rows), the claims' verdicts, every figure the DAG wrote
    under results/figures, each with a caption, and the jobs' run times. ``workdir`` must hold a
    finished run of ``configfile`` and nothing older (every PNG under results/figures is expected
    in the report). Returns the contents (ReportContents)."""
    workdir = Path(workdir)
    out = workdir / "report.html"
    # outside the repository root profiles/default (which names the stylesheet) is not loaded
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--report", str(out), "--configfile", str(configfile),
               "--report-stylesheet", str(REPO_ROOT / "workflow" / "report" / "style.css")]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "nav.h-screen.min-w-fit" in out.read_text(), "the report lacks workflow/report/style.css (the menu would widen)"
    contents = read_report(out)
    assert contents.description.strip(), "no workflow description: the Snakefile needs `report: \"workflow/report/workflow.rst\"`"

    tables = sorted(workdir.glob("results/tables/*.md"))
    assert tables, "the workflow built no table"
    for md in tables:
        path = f"results/tables/{md.stem}.html"
        assert path in contents.in_category("Tables"), f"{path} is not in the report's Tables (has {contents.in_category('Tables')})"
        entry = contents.results[path]
        _caption_ok(path, entry)
        page = decode_data_uri(entry["data_uri"]).decode()
        kinds = [cls for cls, _ in rows(page)]
        assert "ours" in kinds and "paper" in kinds, f"{path}: the page lacks our rows or the paper's"
        cells = [c.strip() for line in md.read_text().splitlines() if line.startswith("|") and not line.startswith(("| Dataset", "|---"))
                 for c in line.strip("|").split("|")]
        assert cells == [c for _, row in rows(page) for c in row], f"{path}: the page's cells differ from {md.name}'s"

    if (workdir / "results" / "claims.md").exists():
        assert "results/claims.html" in contents.in_category("Claims"), "the claims' verdicts are not in the report"
        _caption_ok("results/claims.html", contents.results["results/claims.html"])
        page = decode_data_uri(contents.results["results/claims.html"]["data_uri"]).decode()
        assert re.search(r'<td class="(holds|fails|inconclusive|not-run)">', page), "the claims page shows no verdict"

    figures = sorted(str(p.relative_to(workdir)) for p in workdir.glob("results/figures/**/*.png"))
    assert figures, "the workflow built no figure"
    missing = [f for f in figures if f not in contents.results]
    assert not missing, f"figures not in the report: {missing}"
    for path in figures:
        assert contents.results[path]["mime_type"] == "image/png", path
        _caption_ok(path, contents.results[path])

    timed = {r["rule"] for r in contents.runtimes}
    assert set(TIMED_RULES) <= timed, f"no run time for rules {set(TIMED_RULES) - timed}"
    assert all(r["runtime"] >= 0 for r in contents.runtimes)
    return contents
