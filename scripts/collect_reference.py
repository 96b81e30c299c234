"""Copy what a reader needs of a finished (or partly finished) reference DAG into reference/.

    .venv/bin/python scripts/collect_reference.py RUN_DIR [--out reference] [--configfile OVERLAY ...] [--keep SUBFOLDER ...]

RUN_DIR is the working directory the reference DAG ran in (`snakemake --directory RUN_DIR
--configfile config/reference.yaml ...`). Copied: tables, claims, figures and the numbers beside
them, and per run its identity and provenance, metrics, FID/KID, stats per epoch, prior fits
and benchmark timings. Never checkpoints, models or HDF5 (size). STATUS.md says which runs and
outputs exist, so a partial reference says what it holds. ``--configfile`` names the overlays the
DAG ran with (as given to snakemake): the merged, validated configuration is written to
``config_used.yaml``. RUN_DIR's ``CODE_COMMIT`` (the commit a frozen copy was made from) is copied.
``--keep`` names subfolders of an existing ``--out`` that are not the DAG's (an ablation collected
beside it) and survive the refresh.

A table or the claims the DAG has not made yet (its inputs are incomplete) is computed by the same
functions the rules' commands call (``build_table``, ``write_claims``), over the per-run files that exist, into ``tables_partial/`` and
``claims_partial.*``; STATUS.md lists them so no reader mistakes them for the complete ones.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

PER_RUN = ("training_options.json", "stats.csv", "prior_fit.jsonl", "metrics.json", "fid.json", "train.log")
TREES = ("results/tables", "results/figures", "results/benchmarks", "results/fid", "results/bench")
SKIP_SUFFIXES = (".pt", ".h5", ".npz")


def collect(run_dir: Path, out: Path, keep: tuple[str, ...] = ()) -> dict:
    for name in keep:  # all checked before anything is removed
        if not (out / name).is_dir():
            raise SystemExit(f"--keep {name}: {out / name} is not a folder; name a subfolder of {out} to keep")
    out.mkdir(parents=True, exist_ok=True)
    for child in out.iterdir():  # the previous collection, but the kept folders
        if child.name not in keep:
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    copied = []
    for tree in TREES:
        for path in sorted((run_dir / tree).rglob("*")) if (run_dir / tree).exists() else []:
            if path.is_file() and path.suffix not in SKIP_SUFFIXES:
                target = out / path.relative_to(run_dir / "results")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                copied.append(str(target.relative_to(out)))
    for name in ("claims.md", "claims.csv", "claims.html", "claims.provenance.json"):
        if (run_dir / "results" / name).exists():
            shutil.copy2(run_dir / "results" / name, out / name)
            copied.append(name)
    if (run_dir / "CODE_COMMIT").exists():
        shutil.copy2(run_dir / "CODE_COMMIT", out / "CODE_COMMIT")
        copied.append("CODE_COMMIT")
    runs = {}
    for options in sorted((run_dir / "results" / "runs").rglob("training_options.json")):
        run = options.parent
        rel = run.relative_to(run_dir / "results")
        for name in PER_RUN:
            if (run / name).exists():
                (out / rel).mkdir(parents=True, exist_ok=True)
                shutil.copy2(run / name, out / rel / name)
        epochs = json.loads(options.read_text())["settings"]["epochs"]
        epochs_done = len((run / "stats.csv").read_text().splitlines()) - 1 if (run / "stats.csv").exists() else 0
        runs[str(rel)] = {"trained": (run / "model.pt").exists() or epochs_done >= epochs, "evaluated": (run / "metrics.json").exists(),
                          "fid": (run / "fid.json").exists(),
                          "epochs_done": epochs_done, "epochs": epochs}
    return {"runs": runs, "files": copied, "partial": partial_outputs(run_dir, out)}


def write_config_used(overlays: list[Path], path: Path) -> None:
    """The configuration the DAG ran with: config/config.yaml and the overlays merged and validated
    (``pipeline.config.load_config``, as Snakemake merges --configfile)."""
    import yaml

    from pipeline.config import load_config

    config = load_config(*overlays)
    header = (f"# The configuration this reference ran with: config/config.yaml merged with {', '.join(map(str, overlays))}\n"
              "# (scripts/collect_reference.py; the overlay's own comments say why each value differs from the paper).\n")
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))


def partial_outputs(run_dir: Path, out: Path) -> list[str]:
    """Tables and claims the DAG has not written, from the per-run files that exist (``pipeline``'s
    own commands; default column sets). -> the files written, relative to ``out``"""
    import yaml

    from pipeline.claims import write_claims
    from pipeline.config import DEFAULT_CONFIG
    from pipeline.tables import build_table

    results = run_dir / "results"
    order = yaml.safe_load(DEFAULT_CONFIG.read_text())["run"]["methods"]  # the tables' column order
    rank = {m: i for i, m in enumerate(order)}

    def by_method(paths):  # results/runs/{dataset}/{method}/{variant}/seed{seed}/file
        return [str(p) for p in sorted(paths, key=lambda p: (p.parts[-5], rank.get(p.parts[-4], len(rank)), p.parts[-4], p.parts[-3], p.parts[-2]))]

    metrics = by_method(results.glob("runs/*/*/default/seed*/metrics.json"))
    fids = by_method(results.glob("runs/*/*/*/seed*/fid.json"))
    headline_fids = [f for f in fids if "/default/" in f]
    reals = sorted(map(str, results.glob("fid/*/real_seed*.json")))
    # table1 is CelebA's (Table 1): MNIST and Fashion-MNIST FIDs are supplement Table 1's
    wanted = {"table2": metrics, "table3": metrics, "table_priors": metrics, "table1": [f for f in headline_fids if "/celeba/" in f],
              "table_sm1": headline_fids + reals, "table_sm2": [f for f in fids if "/ladder/" in f] + reals}
    written = []
    for name, inputs in wanted.items():
        if (results / "tables" / f"{name}.csv").exists() or not inputs:
            continue
        prefix = out / "tables_partial" / name
        prefix.parent.mkdir(parents=True, exist_ok=True)
        build_table(name, [Path(p) for p in inputs], prefix)
        written += [str(p.relative_to(out)) for p in sorted(prefix.parent.glob(f"{name}.*"))]
    if not (results / "claims.csv").exists() and metrics:
        slp = sorted(map(str, results.glob("figures/tables/slp_*.csv")))  # the DAG's figure tables (C7, C8), where made
        alignment = [str(p) for p in sorted(results.glob("figures/tables/fig4_*.csv")) if not p.name.endswith("_summary.csv")]
        write_claims(metrics, fids + reals, slp, alignment, str(out / "claims_partial"), datasets=sorted({Path(m).parts[-5] for m in metrics}))
        written += [p.name for p in sorted(out.glob("claims_partial.*"))]
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("reference"))
    parser.add_argument("--configfile", type=Path, nargs="*", default=[], help="the overlays the DAG ran with, as given to snakemake")
    parser.add_argument("--keep", nargs="*", default=[], help="subfolders of --out that are not the DAG's and survive the refresh")
    args = parser.parse_args()
    status = collect(args.run_dir, args.out, tuple(args.keep))
    if args.configfile:
        write_config_used(args.configfile, args.out / "config_used.yaml")
    runs = status["runs"]
    lines = ["# Status of this reference run", "",
             f"{sum(r['trained'] for r in runs.values())} of {len(runs)} started runs trained, "
             f"{sum(r['evaluated'] for r in runs.values())} evaluated, {sum(r['fid'] for r in runs.values())} with FID/KID.", "",
             "| run | epochs done | trained | evaluated | FID/KID |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {r['epochs_done']} of {r['epochs']} | {r['trained']} | {r['evaluated']} | {r['fid']} |" for name, r in sorted(runs.items())]
    if status["partial"]:
        lines += ["", "Computed here from the per-run files that exist, because the DAG had not written them "
                  "(their inputs are incomplete): " + ", ".join(f"`{p}`" for p in status["partial"]) + "."]
    (args.out / "STATUS.md").write_text("\n".join(lines) + "\n")
    (args.out / "status.json").write_text(json.dumps(status, indent=1) + "\n")
    print("\n".join(lines[:3]))


if __name__ == "__main__":
    main()
