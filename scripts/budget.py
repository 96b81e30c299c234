"""Sum the CPU-seconds and wall-seconds per rule from a DAG's benchmark files.

    .venv/bin/python scripts/budget.py [results/benchmarks] [--cores 2]

Wall-clock time of a run depends on what else the machine does; the CPU-seconds its jobs used
do not (much). Their sum divided by the cores is the least DAG time an idle machine of that many
cores can reach, so the quick profile's budget can be checked on a busy machine too. Snakemake
writes one TSV per job (`benchmark:` directive) with columns s (wall) and cpu_time.
"""

from __future__ import annotations

import argparse
import csv
import platform
from collections import defaultdict
from pathlib import Path


def rule_of(path: Path, root: Path) -> str:
    """results/benchmarks/<rule>/... -> <rule> (fid/reference_x.tsv -> fid_reference)."""
    parts = path.relative_to(root).parts
    if parts[0] == "fid" and len(parts) == 2:
        return "fid_" + parts[1].split("_")[0]
    return parts[0]


def summarise(root: Path) -> dict[str, dict[str, float]]:
    totals: dict[str, dict[str, float]] = defaultdict(lambda: {"jobs": 0, "cpu_s": 0.0, "wall_s": 0.0})
    for path in sorted(root.rglob("*.tsv")):
        with open(path) as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        if not rows:
            continue
        row = rows[-1]  # a rerun appends nothing; the last line is the job's
        entry = totals[rule_of(path, root)]
        entry["jobs"] += 1
        entry["wall_s"] += float(row["s"])
        cpu = row.get("cpu_time", "NA")
        entry["cpu_s"] += float(cpu) if cpu not in ("NA", "", None) else float(row["s"])
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
    parser.add_argument("root", nargs="?", default="results/benchmarks")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    totals = summarise(Path(args.root))
    print(f"{'rule':<22}{'jobs':>6}{'CPU s':>10}{'wall s':>10}")
    for rule, t in sorted(totals.items(), key=lambda kv: -kv[1]["cpu_s"]):
        print(f"{rule:<22}{t['jobs']:>6}{t['cpu_s']:>10.0f}{t['wall_s']:>10.0f}")
    cpu = sum(t["cpu_s"] for t in totals.values())
    print(f"{'total':<22}{sum(t['jobs'] for t in totals.values()):>6}{cpu:>10.0f}{sum(t['wall_s'] for t in totals.values()):>10.0f}")
    print(f"least DAG time on {args.cores} idle cores of this kind: {cpu / args.cores / 60:.1f} min "
          f"(processor: {processor()}; Snakemake's own CPU time is not included)")


if __name__ == "__main__":
    main()
