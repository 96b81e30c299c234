"""Sum the CPU-seconds and wall-seconds per rule of a finished DAG.

    .venv/bin/python scripts/budget.py [results] [--cores 2]

Wall-clock time of a run depends on what else the machine does; the CPU-seconds its jobs used
do not (much). Their sum divided by the cores is the least DAG time an idle machine of that many
cores can reach, so the quick profile's budget can be checked on a busy machine too.

Per job, the CPU time is the one the job reported itself: every ``python -m pipeline`` command
ends its log (``results/logs/<rule>/...log``) with ``pipeline-job cpu_s=...`` (pipeline.cli.
job_resources). Snakemake's benchmark files (``results/benchmarks/<rule>/...tsv``, columns s and
cpu_time) give the wall time; their cpu_time is used only where a log has no such line, and is an
underestimate for jobs longer than ~30 s (Snakemake samples CPU every 30 s after a job's first 30 s).
"""

from __future__ import annotations

import argparse
import csv
import platform
import re
from collections import defaultdict
from pathlib import Path

from pipeline.cli import JOB_RESOURCES

SELF_REPORTED = re.compile(re.escape(JOB_RESOURCES) + r"([0-9.]+)")


def rule_of(key: Path) -> str:
    """<rule>/... -> <rule>; fid/reference_x -> fid_reference; a top-level file -> its name."""
    parts = key.parts
    if len(parts) == 1:
        return parts[0]
    if parts[0] == "fid" and len(parts) == 2:
        return "fid_" + parts[1].split("_")[0]
    return parts[0]


def _benchmark(path: Path) -> tuple[float, float | None]:
    with open(path) as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows:
        return 0.0, None
    row = rows[-1]  # a rerun appends nothing; the last line is the job's
    cpu = row.get("cpu_time", "NA")
    return float(row["s"]), (float(cpu) if cpu not in ("NA", "", None) else None)


def _self_reported(path: Path) -> float | None:
    found = SELF_REPORTED.findall(path.read_text(errors="replace")) if path.exists() else []
    return float(found[-1]) if found else None


def summarise(results: Path) -> dict[str, dict[str, float]]:
    """rule -> {jobs, cpu_s, wall_s, self_reported (jobs whose CPU came from their log)}."""
    benchmarks, logs = results / "benchmarks", results / "logs"
    keys = {p.relative_to(benchmarks).with_suffix("") for p in benchmarks.rglob("*.tsv")}
    keys |= {p.relative_to(logs).with_suffix("") for p in logs.rglob("*.log")}
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"jobs": 0, "cpu_s": 0.0, "wall_s": 0.0, "self_reported": 0})
    for key in sorted(keys):
        bench = benchmarks / key.with_suffix(".tsv")
        wall, bench_cpu = _benchmark(bench) if bench.exists() else (0.0, None)
        cpu = _self_reported(logs / key.with_suffix(".log"))
        entry = totals[rule_of(key)]
        entry["jobs"] += 1
        entry["wall_s"] += wall
        entry["self_reported"] += cpu is not None
        entry["cpu_s"] += cpu if cpu is not None else (bench_cpu if bench_cpu is not None else wall)
    return dict(totals)


def processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="?", default="results", help="the DAG's results folder (with benchmarks/ and logs/)")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    totals = summarise(Path(args.results))
    print(f"{'rule':<22}{'jobs':>6}{'CPU s':>10}{'wall s':>10}{'CPU from log':>14}")
    for rule, t in sorted(totals.items(), key=lambda kv: -kv[1]["cpu_s"]):
        print(f"{rule:<22}{t['jobs']:>6}{t['cpu_s']:>10.0f}{t['wall_s']:>10.0f}{t['self_reported']:>10d} jobs")
    cpu = sum(t["cpu_s"] for t in totals.values())
    jobs = sum(t["jobs"] for t in totals.values())
    print(f"{'total':<22}{jobs:>6}{cpu:>10.0f}{sum(t['wall_s'] for t in totals.values()):>10.0f}"
          f"{sum(t['self_reported'] for t in totals.values()):>10d} jobs")
    print(f"least DAG time on {args.cores} idle cores of this kind: {cpu / args.cores / 60:.1f} min "
          f"(processor: {processor()}; Snakemake's own CPU time is not included)")


if __name__ == "__main__":
    main()
