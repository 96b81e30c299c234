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
