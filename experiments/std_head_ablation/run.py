"""The paper's ReLU std heads against our softplus heads, at a reference run's scale (issue 8.4).

Question: does the paper's ReLU + 1e-3 std head, which collapses the VampPrior in the quick
profile (experiments/vampprior_collapse), still hurt at the CPU reference's scale (full
Fashion-MNIST, 1,876 updates at batch 64, seed 0), and does it hurt LaDDer?

Answer (reference/cpu_fashion_mnist/std_head_ablation/std_head.md, 2026-11, this repository's
2-core Xeon): yes for the VampPrior: ReLU leaves 11 of 16 active units, 31 % of its posterior stds
at the floor, a Table 2 cross-entropy of +29.0 (softplus -12.4), ELBO 617.5 (659.0), error 0.0803
(0.0760). LaDDer is barely touched (0.4 % of q(z|x) stds and none of q(t|z)'s at the floor, 16
active units; ELBO 662.9 against 612.1, error 0.0752 against 0.0805, within seed noise). So the
workflow's std heads are softplus (training.std_activation).

    python experiments/std_head_ablation/run.py --run-dir ../ladder_reference --config config/reference.yaml \
        --methods vampprior ladder --seeds 0 --out results/experiments/std_head

Trains each (method, seed) again with ``training.std_activation: relu`` (the paper's ReLU + 1e-3 on
every std head: q(z|x) and the prior VAE's q(t|z)), evaluates it with the reference config's
evaluation block, and writes OUT.csv / OUT.md comparing it with the softplus run of the same
identity already in RUN_DIR (``results/runs/<dataset>/<method>/default/seed<s>/metrics.json``):
active units, the fraction of stds at the floor (dead units), Table 2's cross-entropy and Table 3's
ELBO and reconstruction error. Runs go to OUT/<dataset>/<method>/seed<s>/ (resumable: a finished
model is not retrained).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.config import load_config

COLUMNS = ("active_units", "posterior_std_at_floor", "hyper_posterior_std_at_floor", "cross_entropy", "elbo", "rec_error")


def metrics(path: Path) -> dict:
    return json.loads(path.read_text())["metrics"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, required=True, help="working directory of the softplus reference DAG")
    parser.add_argument("--config", type=Path, default=Path("config/reference.yaml"))
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--methods", nargs="+", default=["vampprior", "ladder"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", type=Path, default=Path("results/experiments/std_head"))
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    relu = args.out / "relu.yaml"
    relu.write_text(yaml.safe_dump({"training": {"std_activation": "relu"}}))
    evaluation = json.dumps(load_config(args.config)["evaluation"])  # the full config with the overlay
    data = args.run_dir / "data" / "processed" / f"{args.dataset}.h5"
    rows = []
    for method in args.methods:
        for seed in args.seeds:
            run = args.out / args.dataset / method / f"seed{seed}"
            model, evaluated = run / "model.pt", run / "metrics.json"
            if not model.exists():
                subprocess.run([sys.executable, "-m", "pipeline", "train", "--config", str(args.config), str(relu), "--dataset", args.dataset,
                                "--method", method, "--seed", str(seed), "--data", str(data), "--out", str(model), "--threads", "1",
                                "--no-progress"], check=True)
            if not evaluated.exists():
                subprocess.run([sys.executable, "-m", "pipeline", "evaluate", "--model", str(model), "--data", str(data), "--options", evaluation,
                                "--out", str(evaluated), "--no-progress"], check=True)
            softplus = args.run_dir / "results" / "runs" / args.dataset / method / "default" / f"seed{seed}" / "metrics.json"
            for head, path in (("relu (paper)", evaluated), ("softplus (ours)", softplus)):
                found = metrics(path) if path.exists() else {}
                rows.append({"dataset": args.dataset, "method": method, "seed": seed, "std_head": head,
                             **{c: found.get(c, float("nan")) for c in COLUMNS}})
    header = ["dataset", "method", "seed", "std_head", *COLUMNS]
    lines = [",".join(header)] + [",".join(str(r[h]) for h in header) for r in rows]
    (args.out.with_suffix(".csv")).write_text("\n".join(lines) + "\n")
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(f"{r[h]:.4g}" if isinstance(r[h], float) else str(r[h]) for h in header) + " |" for r in rows]
    (args.out.with_suffix(".md")).write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
