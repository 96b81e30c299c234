"""Why the VampPrior VAE collapses in the quick profile, and what stops it (issue 8, item 8).

Question: the quick profile's VampPrior VAE ended with 0 active units and the all-black median
image. Is it the pseudo-inputs' initialisation, the missing KL warm-up, the Laplace scale, or the
std head?

Answer (2026-11, this repository's 2-core Xeon; the JSON went to benchmarks/out/, not kept; the
numbers are in README.md, "Std heads"): the paper's ReLU + 1e-3 std head. Under a VampPrior every
q(z|x) equals every q(z|u_k) while the decoder ignores z, so shrinking the std costs nothing: the
ReLU std units die at the floor (all 16 by step 900) and get no gradient again. Every ReLU variant
collapses (data or N(0, 1) pseudo-inputs, KL warm-up, learned scale); with softplus the VampPrior
leaves the plateau at step 200-250 like the normal prior and after 1,000 steps has 16/16 active
units (error 0.056/0.050 for seeds 0/1, normal prior 0.053/0.051). Hence training.std_activation:
softplus; experiments/std_head_ablation repeats the comparison at the CPU reference's scale.

    .venv/bin/python experiments/vampprior_collapse/run.py --variant quick normal --seeds 0 --epochs 4
    .venv/bin/python experiments/vampprior_collapse/run.py --variant softplus --seeds 0 1 --epochs 8 --every 50
    .venv/bin/python experiments/vampprior_collapse/run.py --summary     # table of every JSON in --out
    .venv/bin/python experiments/vampprior_collapse/run.py --list

Each variant trains one run with the workflow's training loop (``train_probed``: the public
pieces of ``pipeline.training``, no checkpoints) on the real mnist5k data
(``data/processed/mnist5k.h5``; build it with ``python -m pipeline prepare-data --dataset
mnist5k --config config/quick.yaml --out data/processed/mnist5k.h5``) with the quick profile's
settings (batch 32, lr 1e-3, 125 steps per epoch) and one thread, changing one thing per
variant. Every ``--every`` steps it records, on the first ``--n-test`` test images and
without touching the training RNG: active units (Var_x E_q[z_i] > 0.01), per-pixel error of
decoder(posterior mean), the cross-entropy E_q[log p(z)], the entropy H[q(z|x)], and for the
VampPrior the components' spread (mean over dimensions of Var_k of the component means), their
mean std, and the mean distance of the pseudo-images from each other. At the end it runs
``pipeline.evaluation.evaluate``. Writes ``results/experiments/vampprior_collapse_{variant}_seed{seed}_e{epochs}.json``.

Finding (README, "VampPrior collapse"): with the paper's ReLU + 1e-3 std head every VampPrior
variant collapses (longer, data or N(0, 1) init, KL warm-up, learned Laplace scale); with a
softplus head it does not, and matches the normal prior under the same budget.

Variants that need a change outside the prior are made in ``train_probed``'s objective: the KL
warm-up ELBO_beta = rec + beta * (H[q] + log p(z)), the VampPrior paper's (Tomczak & Welling 2018,
sec. 4: beta from 0 to 1 over the first epochs, Bowman et al.), and N(0, I) in place of p(z) for
the first steps. Every variant but the softplus ones uses the paper's ReLU std head (the quick
profile's head when this ran; the workflow's is softplus now).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from pipeline.artefacts import to_float
from pipeline.config import DEFAULT_CONFIG, merged_config, run_settings, validate_config
from pipeline.data import load_split
from pipeline.evaluation import ACTIVE_UNIT_THRESHOLD, evaluate
from pipeline.layers import STD_FLOOR
from pipeline.models import build_vae
from pipeline.models.vae import gaussian_entropy
from pipeline.priors.base import standard_normal_log_prob
from pipeline.training import epoch_generator, make_optimisers, set_learning_rates

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "processed" / "mnist5k.h5"
OUT = ROOT / "results" / "experiments"
PAPER_HEAD = {"std_activation": "relu"}  # every variant's std head unless it names another

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
    """The quick profile (config/config.yaml with config/quick.yaml over it) validated with only
    the methods this script trains: a method another part of the project is still adding cannot stop it."""
    raw = merged_config(DEFAULT_CONFIG, ROOT / "config" / "quick.yaml")
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
    settings.update(epochs=epochs, **{**PAPER_HEAD, **train_over})
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


def train_probed(settings: dict, images: torch.Tensor, extras: dict, probe) -> torch.nn.Module:
    """``pipeline.training``'s epoch loop for priors trained with the autoencoder (normal,
    VampPrior), built from its public pieces, without checkpoints, with this experiment's
    objective changes (``extras``: warm-up steps, N(0, I) steps, data-initialised pseudo-inputs).
    ``probe(vae, step, beta, terms)`` runs after every optimiser step."""
    seed, batch_size = settings["seed"], settings["batch_size"]
    torch.manual_seed(seed)
    vae = build_vae(settings)
    ae_opt, prior_opt = make_optimisers(vae, settings)
    if prior_opt is not None:
        raise SystemExit(f"{settings['prior']}: a prior trained in blocks of its own; this experiment trains normal and VampPrior only")
    if extras.get("init_data"):  # pseudo-inputs = K random training images
        pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[: vae.prior.n_components]
        with torch.no_grad():
            vae.prior.pseudo_inputs.copy_(to_float(images[pick]))  # (K,1,28,28)
    warmup, normal_steps = extras.get("warmup_steps", 0), extras.get("normal_steps", 0)
    step, clip = 0, settings["grad_clip_value"]
    for epoch in range(settings["epochs"]):
        set_learning_rates(ae_opt, prior_opt, settings, epoch)
        vae.prior.begin_epoch(epoch)
        order = torch.randperm(len(images), generator=epoch_generator(seed, epoch))
        vae.train()
        for start in range(0, len(images), batch_size):
            terms = vae.terms(to_float(images[order[start:start + batch_size]]))
            beta = min(1.0, (step + 1) / warmup) if warmup else 1.0
            log_prior = standard_normal_log_prob(terms["z"]) if step < normal_steps else terms["log_prior"]  # (B,)
            loss = -(terms["rec_loglik"] + beta * (terms["entropy"] + log_prior)).mean()  # beta-weighted -KL
            ae_opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_value_([p for group in ae_opt.param_groups for p in group["params"]], clip)
            ae_opt.step()
            vae.update_scale(terms["mae"])
            if vae.prior.trained_with_autoencoder:
                vae.prior.after_step()
            step += 1
            probe(vae, step, beta, terms)
    return vae.eval()


def run(variant: str, seed: int, epochs: int, every: int, n_test: int, out_dir: Path) -> dict:
    settings, extras = build_settings(variant, seed, epochs)
    test_images, _ = load_split(DATA, "test", limit=n_test)
    test_x = to_float(test_images)
    train_images, _ = load_split(DATA, "train", limit=settings["train_limit"])
    trajectory: list[dict] = []
    generator = torch.Generator().manual_seed(12345)

    def probe(vae, step: int, beta: float, terms: dict) -> None:
        if step % every == 0 or step == 1:
            row = snapshot(vae, test_x, step, generator)
            row.update(beta=beta, **{f"train_{k}": terms[k].detach().mean().item() for k in ("rec_loglik", "entropy", "log_prior")})
            trajectory.append(row)

    started = time.time()
    vae = train_probed(settings, train_images, extras, probe)
    seconds = time.time() - started
    metrics = evaluate(vae, test_images, mc_samples=1, is_samples=100, batch_size=500, seed=0, progress=False)
    final = {k: metrics[k] for k in ("elbo", "rec_loglik", "entropy", "cross_entropy", "rec_error", "active_units", "scale")}
    result = {"variant": variant, "seed": seed, "epochs": epochs, "steps": trajectory[-1]["step"] if trajectory else 0,
              "train_seconds": round(seconds, 1), "settings": settings, "extras": extras, "final": final,
              "trajectory": trajectory, "n_test": n_test}
    (out_dir / f"vampprior_collapse_{variant}_seed{seed}_e{epochs}.json").write_text(json.dumps(result, indent=1))
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
