"""The workflow on a real one-node SLURM (scripts/slurm/cluster.sh) through `--profile profiles/slurm`.

Marked `slurm` (not in the default run): `.venv/bin/python -m pytest -m slurm tests/test_slurm.py`.
The default run has a few-minute smoke test on the same cluster (tests/test_slurm_smoke.py).
Needs root (the cluster script installs Debian packages and starts system daemons) and
snakemake-executor-plugin-slurm. Minutes, not seconds: every job is a SLURM job and Snakemake
polls sacct every 20+ s.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.config import merged_config
from pipeline.provenance import REPO_ROOT
from tests.conftest import snakemake, tiny_config

pytestmark = pytest.mark.slurm

CLUSTER = REPO_ROOT / "scripts" / "slurm" / "cluster.sh"
PROFILE = REPO_ROOT / "profiles" / "slurm"
SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


def sh(*args, check=True, timeout=120):
    result = subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@pytest.fixture(scope="module")
def cluster():
    """A running one-node cluster; stopped afterwards only if this module started it."""
    if os.geteuid() != 0:
        pytest.skip("needs root: scripts/slurm/cluster.sh installs Debian packages and starts munge/mariadb/slurm daemons")
    if not shutil.which("apt-get") and not shutil.which("slurmctld"):
        pytest.skip("neither SLURM nor apt-get here: install slurm-wlm slurmdbd mariadb-server munge")
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install snakemake-executor-plugin-slurm")
    was_running = subprocess.run([CLUSTER, "status"], capture_output=True).returncode == 0
    sh(CLUSTER, "start", timeout=600)
    yield
    if not was_running:
        sh(CLUSTER, "stop")


def slurm_config(tmp_path: Path, **train) -> Path:
    """The tiny end-to-end config with config/cpu.yaml merged over it, as a cluster without GPUs
    runs it (no `gpu` resource requested)."""
    path = tiny_config(tmp_path)
    config = merged_config(path, REPO_ROOT / "config" / "cpu.yaml")
    assert config["training"]["device"] == config["fid"]["device"] == "cpu"
    config["datasets"]["mnist5k"].update(train)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def profile_env():
    # The slurm-strict executor (profiles/slurm) lives in scripts/slurm.
    path = os.pathsep.join(p for p in (str(REPO_ROOT / "scripts" / "slurm"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def start_profile_run(tmp_path: Path, config: Path, *targets):
    """Snakemake with the profile, in the background; its output goes to tmp_path/snakemake.log."""
    log = open(tmp_path / "snakemake.log", "w")
    cmd = [sys.executable, "-m", "snakemake", *targets, "--snakefile", REPO_ROOT / "Snakefile", "--profile", PROFILE, "--configfile", config]
    return subprocess.Popen(list(map(str, cmd)), cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=profile_env())


def finish(proc, tmp_path: Path, timeout: float) -> str:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(2)  # SIGINT: Snakemake cancels its SLURM jobs
        proc.wait(timeout=60)
        raise AssertionError(f"snakemake did not finish in {timeout} s:\n" + (tmp_path / "snakemake.log").read_text()[-4000:])
    out = (tmp_path / "snakemake.log").read_text()
    assert proc.returncode == 0, out[-6000:]
    return out


def run_id(out: str) -> str:
    return re.search(r"SLURM run ID: (\S+)", out).group(1)


def sacct(run: str, duplicates=False) -> list[tuple[str, str]]:
    """(SLURM job id, state) of this run's jobs, first word of the state ('CANCELLED by 0' ->
    'CANCELLED'); with duplicates, every record of a requeued job."""
    args = ["sacct", "-X", "-P", "-n", "-o", "JobIDRaw,State", "--name", run, "-S", "now-1days"]
    rows = [line.split("|") for line in sh(*args, *(["--duplicates"] if duplicates else [])).splitlines() if line]
    return [(jobid, state.split()[0]) for jobid, state in rows]


def sacct_tres(run: str) -> dict[str, str]:
    """SLURM job id -> what it asked for (ReqTRES: 'billing=1,cpu=1,gres/gpu=1,mem=2000M,node=1')."""
    rows = sh("sacct", "-X", "-P", "-n", "-o", "JobIDRaw,ReqTRES", "--name", run, "-S", "now-1days").splitlines()
    return dict(row.split("|", 1) for row in rows if row)


def wait_until(what: str, condition, timeout: float, proc=None, every=1.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"snakemake ended (rc {proc.returncode}) while waiting for {what}")
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def read_tables(root: Path) -> dict[str, str]:
    tables = {p.name: p.read_text() for p in sorted((root / "results" / "tables").glob("*.csv"))}
    assert tables, f"no tables under {root}/results/tables"
    return tables


def test_tiny_workflow_on_slurm_matches_local_run(cluster, tmp_path):
    started = time.time()
    on_slurm, local = tmp_path / "slurm", tmp_path / "local"
    on_slurm.mkdir(), local.mkdir()
    proc = start_profile_run(on_slurm, slurm_config(on_slurm), "all")
    out = finish(proc, on_slurm, timeout=1800)
    print(f"tiny workflow through profiles/slurm: {time.time() - started:.0f} s")

    # Every submission is a SLURM job of this run, and every one of them COMPLETED.
    submitted = {slurm_id: log for _, slurm_id, log in SUBMITTED.findall(out)}
    states = dict(sacct(run_id(out)))
    assert submitted and set(submitted) == set(states), (submitted, states)
    assert set(states.values()) == {"COMPLETED"}, states
    assert not [tres for tres in sacct_tres(run_id(out)).values() if "gres/gpu" in tres], "config/cpu.yaml: no job asks for a GPU"
    # Every non-local job ran inside one of them: Snakemake names cluster jobs "rule", local ones
    # "localrule"; per-run jobs went as group jobs.
    local_rules = set(re.findall(r"^localrule (\w+):", out, re.M))
    assert "table" in local_rules, "tables must run locally (localrules: table in the Snakefile)"
    assert any("group_per_run" in log for log in submitted.values()), "per-run jobs were not grouped"
    n_jobs = int(re.search(r"^total\s+(\d+)", out, re.M).group(1))
    n_local = len(re.findall(r"^localrule \w+:", out, re.M))
    n_cluster = len(re.findall(r"^Finished jobid: \S+ \(Rule: (\w+)\)", out, re.M)) - n_local
    assert n_cluster == n_jobs - n_local and "(100%) done" in out
    for rule in ("train_model", "evaluate_model", "sample", "fid_model", "fid_reference", "prepare_dataset"):
        assert rule not in local_rules

    # Same seeds, same tables as a local run.
    result = snakemake("all", "--cores", "2", "--configfile", str(slurm_config(local)), cwd=local, timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]
    assert read_tables(on_slurm) == read_tables(local)


def test_cancelled_training_resumes_and_node_failure_recovers(cluster, tmp_path):
    """scancel a running training: retried, resumes from its checkpoint. Then the node's slurmd
    stops while the retried training runs (the node is declared DOWN) and comes back: recovered."""
    started = time.time()
    # The retry must still be training when the node is declared DOWN (SlurmdTimeout 30 s plus a
    # ping: up to ~90 s after slurmd stops; the job itself keeps running meanwhile). An epoch takes
    # 0.4-0.5 s on the idle 2-core Xeon and 2-3 s at load 10: with 50 epochs an idle machine
    # finished the retry before the node was down (sacct COMPLETED, no NODE_FAIL: seen 2026-12-05).
    config = slurm_config(tmp_path, epochs=300)
    data = yaml.safe_load(config.read_text())
    data["run"]["methods"] = ["ladder"]
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    # One training job: Table 3 needs the one LaDDer run's metrics (`all` would also train the
    # ablation's d_t variants and the figures' 2-D runs).
    proc = start_profile_run(tmp_path, config, "results/tables/table3.csv")
    log = tmp_path / "snakemake.log"

    def training_jobs():
        return [slurm_id for _, slurm_id, path in SUBMITTED.findall(log.read_text()) if "rule_train_model" in path]

    def running(slurm_id):
        return sh("squeue", "-h", "-j", slurm_id, "-o", "%T", check=False).strip() == "RUNNING"

    # Fault 1: scancel the training once its first checkpoint exists.
    first = wait_until("a training job", training_jobs, 300, proc)[0]
    assert len(training_jobs()) == 1, "the fault config must have one training job"
    wait_until("a checkpoint", lambda: list(tmp_path.glob("results/**/checkpoint.pt")), 300, proc)
    assert running(first)
    sh("scancel", first)
    retry = wait_until("the resubmitted training", lambda: [j for j in training_jobs() if j != first], 300, proc)[0]
    wait_until("the retry to run", lambda: running(retry), 300, proc)
    train_logs = list(tmp_path.glob("results/logs/train/**/*.log"))
    resumed = wait_until("the retry to resume", lambda: [m for p in train_logs for m in re.findall(r"resum\w* .* after epoch (\d+)", p.read_text())], 120, proc)
    assert int(resumed[0]) > 0, resumed

    # Fault 2: the node dies under the running retry (slurmd stops; after SlurmdTimeout the
    # node is DOWN and its jobs fail or are requeued), then comes back.
    sh(CLUSTER, "stop-node")
    try:
        wait_until("the node to be declared down", lambda: "down" in sh("sinfo", "-h", "-N", "-o", "%T"), 180, every=3)
    finally:
        sh(CLUSTER, "start-node")
    out = finish(proc, tmp_path, timeout=3600)
    print(f"fault run: {time.time() - started:.0f} s")

    history = sacct(run_id(out), duplicates=True)
    final = dict(sacct(run_id(out)))
    print("sacct records:", history)
    assert final[first] == "CANCELLED", history
    # The node failure hit the retry: SLURM requeued it (several records) or it failed and
    # Snakemake submitted it again.
    retry_records = [state for jobid, state in history if jobid == retry]
    assert len(retry_records) > 1 or final[retry] == "NODE_FAIL", history
    assert final[training_jobs()[-1]] == "COMPLETED"
    assert all(state == "COMPLETED" for jobid, state in final.items() if jobid not in (first, retry)), final
    assert read_tables(tmp_path)


def test_unreadable_job_state_ends_the_run_with_an_error_naming_the_job(cluster, tmp_path):
    """slurmdbd stops while a training job runs, so sacct fails: after --slurm-strict-state-timeout
    the job is cancelled and the run ends with an error naming it (the bare plugin waits forever,
    its outputs unread)."""
    started = time.time()
    config = slurm_config(tmp_path, epochs=500)  # runs for minutes: still running when accounting stops
    target = "results/runs/mnist5k/normal/default/seed0/model.pt"
    proc = start_profile_run(tmp_path, config, target, "--slurm-strict-state-timeout", "40", "--retries", "0")
    log = tmp_path / "snakemake.log"

    def training_job():
        return [slurm_id for _, slurm_id, path in SUBMITTED.findall(log.read_text()) if "rule_train_model" in path]

    job = wait_until("the training job", training_job, 300, proc)[0]
    wait_until("the training to run", lambda: sh("squeue", "-h", "-j", job, "-o", "%T", check=False).strip() == "RUNNING", 300, proc)
    sh(CLUSTER, "stop-accounting")
    try:
        proc.wait(timeout=400)  # timeout 40 s + status polls; the bare plugin never returns
    except subprocess.TimeoutExpired:
        proc.kill()  # a hung executor ignores SIGINT while its status query fails
        proc.wait(timeout=60)
        sh("scancel", job, check=False)
        raise AssertionError("snakemake hung with the job state unreadable:\n" + log.read_text()[-4000:])
    finally:
        sh(CLUSTER, "start-accounting")
    out = log.read_text()
    print(f"unreadable-state run: {time.time() - started:.0f} s")
    assert proc.returncode != 0, out[-4000:]
    message = re.search(rf"SLURM job {job} \(rule train_model \(([^)]*)\)\): its state could not be read \(([^)]*)\)", out)
    assert message, out[-4000:]
    assert "method=normal" in message.group(1) and "seed=0" in message.group(1)
    assert "status query failed" in message.group(2)
    # cancelled, not left running on the cluster
    assert sh("squeue", "-h", "-j", job, "-o", "%T", check=False).strip() in ("", "CANCELLED", "COMPLETING")
