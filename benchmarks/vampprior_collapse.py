"""Why the VampPrior VAE collapses in the quick profile, and what stops it (issue 8, item 8).

    .venv/bin/python benchmarks/vampprior_collapse.py --variant quick normal --seeds 0 --epochs 4
    .venv/bin/python benchmarks/vampprior_collapse.py --variant softplus --seeds 0 1 --epochs 8 --every 50
    .venv/bin/python benchmarks/vampprior_collapse.py --summary     # table of every JSON in benchmarks/out
    .venv/bin/python benchmarks/vampprior_collapse.py --list

Each variant trains one run through ``pipeline.training.train`` on the real mnist5k data
(``data/processed/mnist5k.h5``; build it with ``python -m pipeline prepare-data --dataset
mnist5k --config config/quick.yaml --out data/processed/mnist5k.h5``) with the quick profile's
settings (batch 32, lr 1e-3, 125 steps per epoch) and one thread, changing one thing per
variant. Every ``--every`` steps it records, on the first ``--n-test`` test images and
without touching the training RNG: active units (Var_x E_q[z_i] > 0.01), per-pixel error of
decoder(posterior mean), the cross-entropy E_q[log p(z)], the entropy H[q(z|x)], and for the
VampPrior the components' spread (mean over dimensions of Var_k of the component means), their
mean std, and the mean distance of the pseudo-images from each other. At the end it runs
``pipeline.evaluation.evaluate``. Writes ``benchmarks/out/vampprior_collapse_{variant}_seed{seed}_e{epochs}.json``.

Finding (README, "VampPrior collapse"): with the paper's ReLU + 1e-3 std head every VampPrior
variant collapses (longer, data or N(0, 1) init, KL warm-up, learned Laplace scale); with a
softplus head it does not, and matches the normal prior under the same budget.

Variants that need a change outside the prior (KL warm-up) are made here by wrapping the
VAE's ``terms``: ELBO_beta = rec + beta * (H[q] + log p(z)), the VampPrior paper's warm-up
(Tomczak & Welling 2018, sec. 4: beta from 0 to 1 over the first epochs, Bowman et al.).
"""

from __future__ import annotations

import argparse
import json
import time
import types
from pathlib import Path

import torch
import yaml

import pipeline.training as training
from pipeline.config import run_settings, validate_config
from pipeline.data import load_split
from pipeline.evaluation import ACTIVE_UNIT_THRESHOLD, evaluate
from pipeline.layers import STD_FLOOR
from pipeline.models.vae import gaussian_entropy
from pipeline.priors.base import standard_normal_log_prob

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "processed" / "mnist5k.h5"
OUT = ROOT / "benchmarks" / "out"

QUICK_VAMP = {"n_components": 20, "pseudo_init_mean": 0.05, "pseudo_init_std": 0.01, "pseudo_activation": "hardtanh"}

# name -> (method, prior-option overrides, training overrides, extras for this script)
VARIANTS: dict[str, tuple[str, dict, dict, dict]] = {
    "normal": ("normal", {}, {}, {}),
    "quick": ("vampprior", {}, {}, {}),
    # pseudo-inputs N(0, 1) through hardtanh: random binary-ish images (the LaDDer code's init)
    "init_n01": ("vampprior", {"pseudo_init_mean": 0.0, "pseudo_init_std": 1.0}, {}, {}),
    # pseudo-inputs = K random training images (the VampPrior paper's "VampPrior data" init)
    "init_data": ("vampprior", {}, {}, {"init_data": True}),
    # softplus std head instead of ReLU + 1e-3 (no dead std units)
    "softplus": ("vampprior", {}, {"std_activation": "softplus"}, {}),
    "normal_softplus": ("normal", {}, {"std_activation": "softplus"}, {}),
    # KL warm-up, beta linear from 0 to 1 over N steps (VampPrior paper: 100 epochs)
    "warmup250": ("vampprior", {}, {}, {"warmup_steps": 250}),
    "warmup500": ("vampprior", {}, {}, {"warmup_steps": 500}),
    "normal_warmup250": ("normal", {}, {}, {"warmup_steps": 250}),
    "warmup250_data": ("vampprior", {}, {}, {"warmup_steps": 250, "init_data": True}),
    # train against N(0, I) for the first N steps, then switch to the VampPrior (LaDDer code's
    # "sg_pretraining" protocol for its own mixture prior)
    "nstart250": ("vampprior", {}, {}, {"normal_steps": 250}),
    "nstart250_data": ("vampprior", {}, {}, {"normal_steps": 250, "init_data": True}),
    "k1": ("vampprior", {"n_components": 1}, {}, {}),
    "k50": ("vampprior", {"n_components": 50}, {}, {}),
    # the learned Laplace scale of the original code instead of the batch-MAE MLE
    "learned_scale": ("vampprior", {}, {"decoder_scale": "learned"}, {}),
}


def quick_config(method: str) -> dict:
    """config/quick.yaml validated with only the methods this script trains: a method that
    another part of the project is still adding (not yet a registered prior) cannot stop it."""
    raw = yaml.safe_load((ROOT / "config" / "quick.yaml").read_text())
    keep = {method, "vampprior", raw["ablation"]["method"]}
    raw["methods"] = {name: block for name, block in raw["methods"].items() if name in keep}
    raw["run"]["methods"] = [name for name in raw["run"]["methods"] if name in keep]
    return validate_config(raw, source="config/quick.yaml (methods: " + ", ".join(sorted(keep)) + ")")


def build_settings(variant: str, seed: int, epochs: int) -> tuple[dict, dict]:
    """The quick profile's mnist5k settings for one variant (cf. tests/conftest.py tiny_settings)."""
    method, prior_over, train_over, extras = VARIANTS[variant]
    config = quick_config(method)
    if method == "vampprior":
        config["methods"]["vampprior"] = {"prior": "vampprior", "options": {**QUICK_VAMP, **prior_over}}
    settings = run_settings(config, "mnist5k", method, seed)
    settings.update(epochs=epochs, num_threads=1, device="cpu", **train_over)
    return settings, extras


@torch.no_grad()
def snapshot(vae, test_x: torch.Tensor, step: int, generator: torch.Generator) -> dict:
    """Metrics on fixed test images; own generator so the training RNG is untouched."""
    was_training = vae.training
    vae.eval()
    mean, std = vae.encode(test_x)                                   # (N,d_z) each
    z = mean + std * torch.randn(std.shape, generator=generator)     # (N,d_z)
    row = {
        "step": step,
        "active_units": int((mean.double().var(0) > ACTIVE_UNIT_THRESHOLD).sum()),
        "rec_error": (test_x - vae.decode(mean)).abs().mean().item(),
        "cross_entropy": vae.prior.log_prob(z).mean().item(),
        "entropy": gaussian_entropy(std).mean().item(),
        "posterior_std": std.mean().item(),
        "std_at_floor": (std <= STD_FLOOR * 1.001).double().mean().item(),  # dead ReLU std units
        "posterior_mean_var": mean.var(0).mean().item(),
        "scale": vae.scale.item(),
    }
    if hasattr(vae.prior, "pseudo_inputs"):
        c_mean, c_std = vae.prior.components()                      # (K,d_z) each
        u = vae.prior.pseudo_images().flatten(1)                     # (K,784)
        row.update(component_mean_var=c_mean.var(0).mean().item(), component_std=c_std.mean().item(),
                   pseudo_pairwise_l1=(torch.cdist(u, u, p=1).sum() / (len(u) * (len(u) - 1) * u.shape[1])).item(),
                   pseudo_mean_pixel=u.mean().item())
    if was_training:
        vae.train()
    return row


def run(variant: str, seed: int, epochs: int, every: int, n_test: int, out_dir: Path) -> dict:
    settings, extras = build_settings(variant, seed, epochs)
    test_images, _ = load_split(DATA, "test", limit=n_test)
    test_x = training.to_float(test_images)
    train_images, _ = load_split(DATA, "train")
    trajectory: list[dict] = []
    batch_log: list[dict] = []
    generator = torch.Generator().manual_seed(12345)
    original_build = training.build_vae

    def build_with_probes(s: dict):
        """The trainer's VAE, with per-step probes (and the warm-up) bolted on."""
        vae = original_build(s)
        state = {"step": 0}
        if extras.get("init_data"):
            g = torch.Generator().manual_seed(seed)
            pick = torch.randperm(len(train_images), generator=g)[: vae.prior.n_components]
            with torch.no_grad():
                vae.prior.pseudo_inputs.copy_(training.to_float(train_images[pick]))  # (K,1,28,28)
        orig_terms, orig_update = vae.terms, vae.update_scale
        warmup = extras.get("warmup_steps", 0)
        normal_steps = extras.get("normal_steps", 0)
        if normal_steps:
            orig_prior_term = vae.prior.training_log_prob

            def prior_term(z):
                if state["step"] < normal_steps:
                    return standard_normal_log_prob(z)  # (B,)
                return orig_prior_term(z)

            vae.prior.training_log_prob = prior_term

        def terms(self, x):
            t = orig_terms(x)
            if self.training:
                beta = min(1.0, (state["step"] + 1) / warmup) if warmup else 1.0
                t["elbo"] = t["rec_loglik"] + beta * (t["entropy"] + t["log_prior"])  # beta-weighted -KL
                state["beta"] = beta
                state["last"] = {k: t[k].detach().mean().item() for k in ("rec_loglik", "entropy", "log_prior")}
            return t

        def update_scale(self, mae):
            orig_update(mae)
            state["step"] += 1
            if state["step"] % every == 0 or state["step"] == 1:
                row = snapshot(self, test_x, state["step"], generator)
                row.update(beta=state.get("beta", 1.0), **{f"train_{k}": v for k, v in state["last"].items()})
                trajectory.append(row)

        vae.terms = types.MethodType(terms, vae)
        vae.update_scale = types.MethodType(update_scale, vae)
        return vae

    run_dir = out_dir / "runs" / f"{variant}_seed{seed}_e{epochs}"
    if run_dir.exists():
        for f in run_dir.iterdir():
            f.unlink()
    training.build_vae = build_with_probes
    started = time.time()
    try:
        model_path = training.train(settings, DATA, run_dir / "model.pt", progress=False)
    finally:
        training.build_vae = original_build
    seconds = time.time() - started
    vae, _ = training.load_model(model_path)
    metrics = evaluate(vae, test_images, mc_samples=1, is_samples=100, batch_size=500, seed=0, progress=False)
    final = {k: metrics[k] for k in ("elbo", "rec_loglik", "entropy", "cross_entropy", "rec_error", "active_units", "scale")}
    result = {"variant": variant, "seed": seed, "epochs": epochs, "steps": trajectory[-1]["step"] if trajectory else 0,
              "train_seconds": round(seconds, 1), "settings": settings, "extras": extras, "final": final,
              "trajectory": trajectory, "n_test": n_test}
    (out_dir / f"vampprior_collapse_{variant}_seed{seed}_e{epochs}.json").write_text(json.dumps(result, indent=1))
    for f in run_dir.iterdir():  # keep only the JSON: checkpoints are 30 MB each
        f.unlink()
    run_dir.rmdir()
    return result


def summary(out_dir: Path) -> list[dict]:
    """One row per finished run (every JSON in out_dir), written to vampprior_collapse_summary.json."""
    rows = []
    for path in sorted(out_dir.glob("vampprior_collapse_*_seed*_e*.json")):
        r = json.loads(path.read_text())
        last = r["trajectory"][-1]
        rows.append({"variant": r["variant"], "seed": r["seed"], "steps": r["steps"],
                     "std_activation": r["settings"]["std_activation"], "prior": r["settings"]["prior"],
                     **{k: round(v, 4) if isinstance(v, float) else v for k, v in r["final"].items()},
                     "posterior_std_final": round(last["posterior_std"], 4),
                     "first_step_with_active_units": next((row["step"] for row in r["trajectory"] if row["active_units"] > 0), None)})
    (out_dir / "vampprior_collapse_summary.json").write_text(json.dumps(rows, indent=1))
    for row in rows:
        print(f"{row['variant']:16s} {row['prior']:9s} {row['std_activation']:8s} seed{row['seed']} steps {row['steps']:5d} "
              f"AU {row['active_units']:2d} err {row['rec_error']:.4f} CE {row['cross_entropy']:8.2f} ELBO {row['elbo']:7.1f} "
              f"std {row['posterior_std_final']:.4f} first AU>0 at {row['first_step_with_active_units']}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", nargs="+", default=["quick", "normal"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=4, help="125 steps per epoch at batch 32")
    parser.add_argument("--every", type=int, default=25, help="probe every N steps")
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--summary", action="store_true", help="tabulate the JSON files already in --out")
    args = parser.parse_args()
    if args.summary:
        summary(args.out)
        return
    if args.list:
        for name, spec in VARIANTS.items():
            print(name, spec)
        return
    if not DATA.exists():
        raise SystemExit(f"{DATA} is missing: run `.venv/bin/python -m pipeline prepare-data --dataset mnist5k "
                         f"--config config/quick.yaml --out {DATA.relative_to(ROOT)}` first")
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    for variant in args.variant:
        for seed in args.seeds:
            r = run(variant, seed, args.epochs, args.every, args.n_test, args.out)
            f = r["final"]
            print(f"{variant:16s} seed{seed} steps {r['steps']:5d} AU {f['active_units']:2d} err {f['rec_error']:.4f} "
                  f"CE {f['cross_entropy']:8.2f} ELBO {f['elbo']:9.1f} H {f['entropy']:7.2f} ({r['train_seconds']:.0f}s)", flush=True)
            for row in r["trajectory"][:: max(1, len(r["trajectory"]) // 8)]:
                print("   ", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()
                              if k in ("step", "active_units", "rec_error", "cross_entropy", "entropy", "posterior_std", "std_at_floor",
                                       "posterior_mean_var", "component_mean_var", "component_std", "pseudo_pairwise_l1", "beta")}, flush=True)


if __name__ == "__main__":
    main()
