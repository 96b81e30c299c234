"""Issue 18's evidence: LaDDer under the old and the original protocol, one change at a time, at a
scale a shared 2-core CPU affords (Fashion-MNIST, 10,000 training images, 6 epochs at batch 64 (942
updates), lr 1e-3, no gradient clipping), beside the normal, GMM and hierarchical priors, 3 seeds.

The original's warm-up is 10 of its Fashion-MNIST epochs; the paper trains 50, so W is 20 % of the
epochs: 1 of 6 here (0.2 x 6 = 1.2, rounded). Every variant is a patch of the settings that
config/config.yaml + experiments/fidelity/config.yaml give (pipeline.config.run_settings); nothing
else differs.

    python experiments/fidelity/run.py --data data/processed/fashion_mnist.h5 --out RUN_DIR --jobs 2
    python experiments/fidelity/run.py ... --seeds 1 2 --variants VARIANT ... --second-variants --extra-variants
    python experiments/fidelity/summarise.py --runs RUN_DIR/runs --out reference/fidelity_fashion_mnist

Resumable: a finished run (its metrics.json) is skipped; an interrupted one resumes from its
checkpoint. Answer (reference/fidelity_fashion_mnist, reference/README.md): the collapse is the warm
refit (2-3 components against 18-33 with cold refits); the warm-up changes the first epochs only and
costs +0.0019 of test L1 in every seed; no change makes LaDDer reconstruct like the normal prior.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

# The old protocol (this repository before issue 18): the prior VAE in the encoder's loss from the
# first step, the DP mixture with the Eq. 6 priors refitted warm (max_iter 100), the prior trained at
# the autoencoder's rate.
OLD_MIXTURE = {"refit": "warm"}
OLD_WARMUP = {"warmup_mode": "prior_vae"}
OLD_RATES = {"prior_learning_rate": None, "prior_scale_learning_rate": None}

# variant -> (method in the config, prior-option patch, training-setting patch)
VARIANTS = {
    "normal": ("normal", {}, {}),
    "gmm": ("gmm", {}, {}),
    "hierarchical": ("hierarchical", {}, {}),
    "hierarchical_old": ("hierarchical", {"warmup_epochs": 0}, OLD_RATES),
    "ladder": ("ladder", {}, {}),
    "ladder_old": ("ladder", {**OLD_MIXTURE, **OLD_WARMUP}, OLD_RATES),
    "ladder_old+mixture": ("ladder", OLD_WARMUP, OLD_RATES),
    "ladder_old+warmup": ("ladder", OLD_MIXTURE, OLD_RATES),
    "ladder_old+rates": ("ladder", {**OLD_MIXTURE, **OLD_WARMUP}, {}),
}


# The order jobs run in, so that what the question needs most finishes first on a shared machine:
# LaDDer under both protocols for every seed, then the normal prior for every seed, then seed 0 of the rest.
CORE = ["ladder", "ladder_old"]
SECOND = ["normal"]


def settings_for(config: dict, variant: str, seed: int) -> dict:
    from pipeline.config import run_settings

    method, prior_patch, training_patch = VARIANTS[variant]
    settings = copy.deepcopy(run_settings(config, "fashion_mnist", method, seed))
    settings["prior_options"].update(prior_patch)
    settings.update(training_patch)
    settings["method"] = variant
    return settings


def run_one(job: tuple) -> str:
    import torch

    from pipeline.evaluation import evaluate
    from pipeline.data import load_split
    from pipeline.artefacts import load_model
    from pipeline.training import train

    settings, data, run_dir, test_limit, is_samples = job
    run_dir = Path(run_dir)
    metrics_path = run_dir / "metrics.json"
    if metrics_path.exists():
        return f"{run_dir}: done before"
    torch.set_num_threads(1)
    model = run_dir / "model.pt"
    if not model.exists():
        train(settings, data, model, progress=False, device="cpu")
    vae, _ = load_model(model)
    images, _ = load_split(data, "test", limit=test_limit)
    metrics = evaluate(vae, images, is_samples=is_samples, seed=settings["seed"], progress=False)
    metrics_path.write_text(json.dumps({"settings": settings, "metrics": metrics}, indent=1, default=float))
    return f"{run_dir}: {metrics['rec_error']:.4f} L1, ELBO {metrics['elbo']:.1f}"


def main() -> None:
    from pipeline.config import load_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", default="reference/fidelity_fashion_mnist")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=CORE, help="run for every seed, first")
    parser.add_argument("--second-variants", nargs="*", default=SECOND, help="run for every seed, next")
    parser.add_argument("--extra-variants", nargs="*", default=[v for v in VARIANTS if v not in CORE + SECOND],
                        help="run for the first seed, last")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    config = load_config(HERE / "config.yaml")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config_used.json").write_text(json.dumps(config, indent=1))
    ds = config["datasets"]["fashion_mnist"]
    order = ([(v, s) for s in args.seeds for v in args.variants] + [(v, s) for s in args.seeds for v in args.second_variants]
             + [(v, args.seeds[0]) for v in args.extra_variants])
    jobs = [(settings_for(config, v, s), args.data, str(out / "runs" / v / f"seed{s}"), ds["test_limit"], config["evaluation"]["is_samples"])
            for v, s in order]
    with ProcessPoolExecutor(args.jobs) as pool:
        for line in pool.map(run_one, jobs):
            print(line, flush=True)


if __name__ == "__main__":
    main()
