"""scripts/budget.py: the CPU budget of a DAG, from what each job reported about itself."""

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("budget", REPO_ROOT / "scripts" / "budget.py")
budget = importlib.util.module_from_spec(spec)
spec.loader.exec_module(budget)


def _job(results: Path, key: str, wall: float, bench_cpu: str | None, log_text: str | None) -> None:
    if bench_cpu is not None:
        tsv = results / "benchmarks" / f"{key}.tsv"
        tsv.parent.mkdir(parents=True, exist_ok=True)
        tsv.write_text(f"s\th:m:s\tmax_rss\tcpu_time\n{wall}\t0:00:00\t1\t{bench_cpu}\n")
    if log_text is not None:
        log = results / "logs" / f"{key}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(log_text)


def test_the_cpu_a_job_logged_wins_over_the_benchmark_sample(tmp_path):
    # a 40-s training job: Snakemake sampled 15 CPU-s, the job itself counted 38.5
    _job(tmp_path, "train/mnist5k/normal/default/seed0", 40.0, "15.0", "INFO epoch 3/3\nINFO pipeline: pipeline-job cpu_s=38.50 max_rss_mb=700\n")
    _job(tmp_path, "train/mnist5k/normal/default/seed1", 30.0, "12.0", "no self-report here\n")  # older log: benchmark CPU
    _job(tmp_path, "sample_grid/mnist5k/normal/default/seed0", 0.0, None, "pipeline-job cpu_s=2.25 max_rss_mb=300\n")  # log only
    _job(tmp_path, "fid/reference_mnist5k", 9.0, "NA", None)  # benchmark without CPU: its wall time
    _job(tmp_path, "claims", 4.0, "3.5", None)
    totals = budget.summarise(tmp_path)
    assert totals["train"] == {"jobs": 2, "cpu_s": 38.5 + 12.0, "wall_s": 70.0, "self_reported": 1}
    assert totals["sample_grid"]["cpu_s"] == 2.25 and totals["sample_grid"]["jobs"] == 1
    assert totals["fid_reference"]["cpu_s"] == 9.0
    assert totals["claims"]["cpu_s"] == 3.5


def test_every_pipeline_command_logs_its_own_cpu_seconds():
    result = subprocess.run([sys.executable, "-m", "pipeline", "check-config", "config/quick.yaml"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    found = budget.SELF_REPORTED.findall(result.stderr)
    assert len(found) == 1 and float(found[0]) > 0.1  # at least the interpreter's start-up
