"""SLURM smoke test, in the default run (`make test`, CI): the profile on a real one-node SLURM
whose node declares 2 GPUs as generic resources (scripts/slurm/cluster.sh), a few minutes.

One small training, one group job (evaluation, encoding and sampling of that run) and one table
(run locally), with `training.device: auto`: every network job declares gpu=1 and asks SLURM for
a GPU; with no CUDA here each then runs on the CPU, logging the CUDA_VISIBLE_DEVICES SLURM gave
it. Skipped, saying why, without root or apt-get (the cluster script installs Debian's
slurm-wlm, slurmdbd, mariadb-server and munge: `make slurm-packages`, which .ci/run calls).
The long fault tests are in tests/test_slurm.py behind `-m slurm`.
"""

import re
import time
from pathlib import Path

import pytest
import yaml

from pipeline.provenance import REPO_ROOT
from tests.test_slurm import PROFILE, SUBMITTED, cluster, finish, profile_env, read_tables, run_id, sacct, sacct_tres, sh, start_profile_run  # noqa: F401 (cluster: fixture)
from tests.conftest import tiny_config

# In `make test` (CI), not `make test-fast`: a few minutes (tests/conftest.py keeps it out of the cluster category).
pytestmark = pytest.mark.slow

RUN = "results/runs/mnist5k/normal/default/seed0"
GPU_RULES = {"train_model", "evaluate_model", "encode", "sample", "fid_model", "fid_reference", "fid_real", "slp_run", "figure2"}


def requested_gpus(tres: str) -> int:
    """gres/gpu=N of sacct's ReqTRES ('billing=1,cpu=1,gres/gpu=1,mem=2000M,node=1'), 0 if none."""
    found = re.search(r"gres/gpu=(\d+)", tres)
    return int(found.group(1)) if found else 0


def visible_devices(log: Path) -> list[str]:
    """CUDA_VISIBLE_DEVICES as each device resolution of a job logged it (pipeline.devices)."""
    return re.findall(r"device \S+ \(.*CUDA_VISIBLE_DEVICES=(\S+)\)", log.read_text())


def test_training_group_and_table_through_the_profile_with_one_gpu_per_submission(cluster, tmp_path):  # noqa: F811
    assert re.search(r"gpu:[2-9]", sh("sinfo", "-h", "-o", "%G")), \
        "the running cluster declares no GPUs: restart it (scripts/slurm/cluster.sh stop; scripts/slurm/cluster.sh start)"
    started = time.time()
    path = tiny_config(tmp_path)
    config = yaml.safe_load(path.read_text())
    config["run"]["methods"] = ["normal"]
    config["training"]["device"] = "auto"  # gpu=1 on every network job; no CUDA here, so it runs on the CPU
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    targets = ["results/tables/table3.csv", f"{RUN}/encodings.h5", f"{RUN}/samples.h5"]
    proc = start_profile_run(tmp_path, path, *targets, "--slurm-strict-init-seconds-before-status-checks", "5",
                             "--slurm-strict-max-status-interval", "8", "--slurm-strict-keep-successful-logs")
    out = finish(proc, tmp_path, timeout=600)
    print(f"SLURM smoke test: {time.time() - started:.0f} s")

    submitted = {slurm_id: log for _, slurm_id, log in SUBMITTED.findall(out)}  # SLURM id -> its log
    states = dict(sacct(run_id(out)))
    assert set(states) == set(submitted) and set(states.values()) == {"COMPLETED"}, (submitted, states)
    assert re.search(r"^localrule table:", out, re.M), "the table must run on the submit host"
    tres = sacct_tres(run_id(out))
    kinds = {slurm_id: "group" if "group_per_run" in log else re.search(r"rule_(\w+)", log).group(1) for slurm_id, log in submitted.items()}
    by_kind = {}
    for slurm_id, kind in kinds.items():
        by_kind.setdefault(kind, []).append(requested_gpus(tres[slurm_id]))
    print("GPUs asked per submission:", by_kind)
    assert by_kind.get("train_model") == [1], by_kind  # one training, one GPU
    assert by_kind.get("group") == [1], by_kind  # 3 GPU jobs in one group: one GPU, used in turn
    assert by_kind.get("prepare_dataset") == [0], by_kind

    # Inside the group the jobs took turns: the group's Snakemake started each GPU job after the
    # previous one finished (its log is the SLURM job's output).
    group_log = Path(next(log for slurm_id, log in submitted.items() if kinds[slurm_id] == "group"))
    group_log = group_log if group_log.is_absolute() else tmp_path / group_log
    events = re.findall(r"^\s*(?:(rule|localrule) (\w+):|(Finished jobid): \S+ \(Rule: (\w+)\))", group_log.read_text(), re.M)
    sequence = [("start" if kind else "end", rule or finished_rule) for kind, rule, _, finished_rule in events]
    sequence = [step for i, step in enumerate(sequence) if i == 0 or step != sequence[i - 1]]  # the job step echoes each line
    assert sorted(rule for what, rule in sequence if what == "start") == ["encode", "evaluate_model", "sample"], sequence
    assert sequence == [step for pair in zip(sequence[::2], sequence[1::2]) for step in pair] and all(
        a[0] == "start" and b == ("end", a[1]) for a, b in zip(sequence[::2], sequence[1::2])), f"GPU jobs of the group overlapped: {sequence}"

    # Every job that asked for a GPU ran with the one its allocation gave it.
    logs = {p.relative_to(tmp_path / "results" / "logs").parts[0]: visible_devices(p) for p in (tmp_path / "results" / "logs").rglob("*.log")}
    gpu_logs = {stage: seen for stage, seen in logs.items() if seen}
    assert {"train", "evaluate", "encode", "sample"} <= set(gpu_logs), logs
    for stage, seen in gpu_logs.items():
        assert seen and all(value in ("0", "1") for value in seen), (stage, seen)
    assert read_tables(tmp_path)["table3.csv"]


def test_paper_config_dry_run_through_the_profile_shows_gpu_and_memory_per_rule(cluster, tmp_path):  # noqa: F811
    """config/config.yaml (the paper) through profiles/slurm as a dry run: every network rule asks
    for one GPU, the rest none, and each job states its memory (the profile's expression over its
    input size is <TBD> until the input exists)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "snakemake", "all", "-n", "--snakefile", REPO_ROOT / "Snakefile", "--profile", PROFILE]
    result = subprocess.run(list(map(str, cmd)), cwd=tmp_path, capture_output=True, text=True, timeout=300, env=profile_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    jobs = re.findall(r"^\s*(?:local)?rule (\w+):\n(?:.*\n)*?\s*resources: (.*)$", result.stdout, re.M)
    per_rule = {}
    for rule, resources in jobs:
        values = dict(item.split("=", 1) for item in resources.split(", "))
        per_rule.setdefault(rule, set()).add((values.get("gpu", "0"), values.get("mem_mb"), values.get("runtime")))
    print("rule: {(gpu, mem_mb, runtime minutes)} under the paper config")
    for rule, requests in sorted(per_rule.items()):
        print(f"  {rule}: {sorted(requests)}")
    assert {"train_model", "evaluate_model", "encode", "sample", "fid_model", "prepare_dataset"} <= set(per_rule)
    for rule, requests in per_rule.items():
        assert {gpu for gpu, _, _ in requests} == ({"1"} if rule in GPU_RULES else {"0"}), (rule, requests)
        assert all(mem == "<TBD>" or (mem or "").isdigit() and int(mem) > 0 for _, mem, _ in requests), (rule, requests)
