"""Copy what a reader needs of a finished (or partly finished) reference DAG into reference/.

    .venv/bin/python scripts/collect_reference.py RUN_DIR [--out reference]

RUN_DIR is the working directory the reference DAG ran in (`snakemake --directory RUN_DIR
--configfile config/reference.yaml ...`). Copied: tables, claims, figures and the numbers beside
them, and per run its identity and provenance, metrics, FID/KID, stats per epoch, prior fits
and benchmark timings. Never checkpoints, models or HDF5 (size). STATUS.md says which runs and
outputs exist, so a partial reference says what it holds.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

PER_RUN = ("training_options.json", "stats.csv", "prior_fit.jsonl", "metrics.json", "fid.json", "train.log")
TREES = ("results/tables", "results/figures", "results/benchmarks", "results/fid")
SKIP_SUFFIXES = (".pt", ".h5", ".npz")


def collect(run_dir: Path, out: Path) -> dict:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    copied = []
    for tree in TREES:
        for path in sorted((run_dir / tree).rglob("*")) if (run_dir / tree).exists() else []:
            if path.is_file() and path.suffix not in SKIP_SUFFIXES:
                target = out / path.relative_to(run_dir / "results")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                copied.append(str(target.relative_to(out)))
    for name in ("claims.md", "claims.csv", "claims.html"):
        if (run_dir / "results" / name).exists():
            shutil.copy2(run_dir / "results" / name, out / name)
            copied.append(name)
    runs = {}
    for options in sorted((run_dir / "results" / "runs").rglob("training_options.json")):
        run = options.parent
        rel = run.relative_to(run_dir / "results")
        for name in PER_RUN:
            if (run / name).exists():
                (out / rel).mkdir(parents=True, exist_ok=True)
                shutil.copy2(run / name, out / rel / name)
        runs[str(rel)] = {"trained": (run / "model.pt").exists(), "evaluated": (run / "metrics.json").exists(),
                          "fid": (run / "fid.json").exists(),
                          "epochs_done": len((run / "stats.csv").read_text().splitlines()) - 1 if (run / "stats.csv").exists() else 0}
    return {"runs": runs, "files": copied}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("reference"))
    args = parser.parse_args()
    status = collect(args.run_dir, args.out)
    runs = status["runs"]
    lines = ["# Status of this reference run", "",
             f"{sum(r['trained'] for r in runs.values())} of {len(runs)} started runs trained, "
             f"{sum(r['evaluated'] for r in runs.values())} evaluated, {sum(r['fid'] for r in runs.values())} with FID/KID.", "",
             "| run | epochs done | trained | evaluated | FID/KID |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {r['epochs_done']} | {r['trained']} | {r['evaluated']} | {r['fid']} |" for name, r in sorted(runs.items())]
    (args.out / "STATUS.md").write_text("\n".join(lines) + "\n")
    (args.out / "status.json").write_text(json.dumps(status, indent=1) + "\n")
    print("\n".join(lines[:3]))


if __name__ == "__main__":
    main()
