"""Summarise experiments/fidelity/run.py's runs: per variant, mean +- sd over seeds of the test
metrics (L1 error, ELBO, KL, posterior entropy, final mixture components) and, per epoch, the
training ELBO, KL, posterior entropy and the mixture's active components; copies the small files of
each run (not the models) into the committed folder.

    python experiments/fidelity/summarise.py --runs /work/evidence/fidelity/runs \\
        --out reference/fidelity_fashion_mnist
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import pandas as pd

METRICS = {"rec_error": "test L1 error", "elbo": "test ELBO", "kl": "KL", "entropy": "posterior entropy",
           "mixture_components": "mixture components (final)", "active_units": "active units"}
KEEP = ("metrics.json", "stats.csv", "prior_fit.jsonl", "train.log", "training_options.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows, epochs = [], []
    for metrics_file in sorted(args.runs.glob("*/seed*/metrics.json")):
        run = metrics_file.parent
        variant, seed = run.parent.name, int(run.name.removeprefix("seed"))
        target = args.out / "runs" / variant / run.name
        target.mkdir(parents=True, exist_ok=True)
        for name in KEEP:
            if (run / name).exists():
                shutil.copy2(run / name, target / name)
        metrics = json.loads(metrics_file.read_text())["metrics"]
        rows.append({"variant": variant, "seed": seed, **{k: metrics.get(k) for k in METRICS}})
        stats = pd.read_csv(run / "stats.csv")
        for r in stats.itertuples():
            epochs.append({"variant": variant, "seed": seed, "epoch": r.epoch, "train_elbo": r.elbo, "train_mae": r.mae,
                           "kl": -(r.entropy + r.log_prior), "posterior_entropy": r.entropy,
                           "against_standard_normal": getattr(r, "against_standard_normal", None),
                           "mixture_components": getattr(r, "prior_n_active", None)})
    runs = pd.DataFrame(rows).sort_values(["variant", "seed"])
    runs.to_csv(args.out / "runs.csv", index=False)
    pd.DataFrame(epochs).to_csv(args.out / "per_epoch.csv", index=False)
    summary = runs.groupby("variant").agg(**{f"{k}_mean": (k, "mean") for k in METRICS}, **{f"{k}_sd": (k, "std") for k in METRICS},
                                          seeds=("seed", "count"))
    summary.to_csv(args.out / "summary.csv")
    lines = ["| variant | seeds | " + " | ".join(METRICS.values()) + " |", "|---|---|" + "---|" * len(METRICS)]
    for variant, r in summary.iterrows():
        cells = []
        for k in METRICS:
            mean, sd = r[f"{k}_mean"], r[f"{k}_sd"]
            digits = 4 if k == "rec_error" else 1
            cells.append("-" if pd.isna(mean) else f"{mean:.{digits}f}" + ("" if pd.isna(sd) else f" ± {sd:.{digits}f}"))
        lines.append(f"| {variant} | {int(r.seeds)} | " + " | ".join(cells) + " |")
    (args.out / "summary.md").write_text("\n".join(lines) + "\n\nMean ± sample sd over seeds (no ± with one seed). "
                                          "Test metrics on the first 2,000 Fashion-MNIST test images.\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
