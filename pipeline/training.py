"""Train one VAE: the same protocol for every prior.

Per minibatch (supplement B, block coordinate ascent, generalised to every prior):
  1. autoencoder step: Adam on -ELBO w.r.t. encoder and decoder (and the prior's parameters
     when the prior is trained with the autoencoder: VampPrior, gradient GMM); then the
     Laplace scale is set from the batch MAE (see pipeline.models.vae.VAE on scale_mode);
  2. prior block step (hierarchical, LaDDer): Adam on the prior VAE's -L'(z) with z detached.
At each epoch end the prior refits what it fits between epochs (EM GMM, DP mixture of LaDDer)
from posterior samples of the training set.

Optimiser details from the original code (NOTES section 2): Adam beta2 = 0.95, element-wise
gradient clipping, autoencoder lr x0.99 per epoch, prior lr x1.01 per epoch.

A checkpoint (plain dict, RNG states included) is written atomically after every epoch; a
rerun resumes from it and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from pipeline.data import load_split
from pipeline.models import VAE, build_vae
from pipeline.provenance import atomic_path, provenance, write_json

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    pass


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"training.device is {name!r} but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(name)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B,C,H,W) -> float in [0, 1]."""
    return images.float().div_(255.0)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """Data order and fit subsets depend on (seed, epoch) only, so resuming is exact."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def make_optimisers(vae: VAE, settings: dict) -> tuple[torch.optim.Adam, torch.optim.Adam | None]:
    betas = (settings["adam_beta1"], settings["adam_beta2"])
    prior = vae.prior
    ae_params = [p for name, p in vae.named_parameters() if not name.startswith("prior.") and p.requires_grad]
    if prior.trained_with_autoencoder:
        ae_params += list(prior.parameters())
    ae_opt = torch.optim.Adam(ae_params, lr=settings["learning_rate"], betas=betas)
    prior_opt = torch.optim.Adam(prior.parameters(), lr=settings["learning_rate"], betas=betas) if prior.has_block_step else None
    return ae_opt, prior_opt


def set_learning_rates(ae_opt, prior_opt, settings: dict, epoch: int) -> None:
    for group in ae_opt.param_groups:
        group["lr"] = settings["learning_rate"] * settings["lr_decay"] ** epoch
    if prior_opt is not None:
        for group in prior_opt.param_groups:
            group["lr"] = settings["learning_rate"] * settings["prior_lr_growth"] ** epoch


def _clip(optimiser: torch.optim.Optimizer, value: float | None) -> None:
    if value is not None:
        params = [p for group in optimiser.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_value_(params, value)


@torch.no_grad()
def sample_posterior(vae: VAE, images: torch.Tensor, device: torch.device, batch_size: int = 500) -> torch.Tensor:
    """z ~ q(z|x) for uint8 images, batched. (N,C,H,W) -> (N,d_z)"""
    out = []
    for start in range(0, len(images), batch_size):
        mean, std = vae.encode(to_float(images[start:start + batch_size].to(device)))
        out.append(mean + std * torch.randn_like(std))
    return torch.cat(out)


class Run:
    """The files of one run folder: options, stats, prior-fit log, checkpoint."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.options = self.dir / "training_options.json"
        self.stats = self.dir / "stats.csv"
        self.prior_fits = self.dir / "prior_fit.jsonl"
        self.checkpoint = self.dir / "checkpoint.pt"


def train(settings: dict, dataset_path: str | Path, model_path: str | Path, run_dir: str | Path | None = None,
          stop_after_epoch: int | None = None, progress: bool = True) -> Path:
    """Train (or resume) one run and write ``model_path``; returns it.

    ``stop_after_epoch`` ends early after that many epochs without writing the model (used to
    test resuming); the checkpoint stays.
    """
    model_path = Path(model_path)
    run = Run(run_dir or model_path.parent)
    run.dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(settings["device"])
    if settings.get("num_threads"):
        torch.set_num_threads(settings["num_threads"])
    seed = settings["seed"]
    torch.manual_seed(seed)

    images, _ = load_split(dataset_path, "train", limit=settings["train_limit"])
    images = images.to(device)  # uint8 on the device: CelebA-128 fits whole on a large GPU
    vae = build_vae(settings).to(device)
    ae_opt, prior_opt = make_optimisers(vae, settings)
    record = provenance(config=settings, seed=seed, device=device, dataset=str(dataset_path))
    write_json(run.options, {"settings": settings}, record)

    start_epoch, rows, fits = 0, [], []
    if run.checkpoint.exists():
        state = torch.load(run.checkpoint, map_location=device, weights_only=False)
        if state["settings"] == settings:
            vae.load_state_dict(state["model"])
            ae_opt.load_state_dict(state["ae_optimizer"])
            if prior_opt is not None:
                prior_opt.load_state_dict(state["prior_optimizer"])
            torch.set_rng_state(state["rng"]["torch"])
            if device.type == "cuda" and state["rng"].get("cuda") is not None:
                torch.cuda.set_rng_state(state["rng"]["cuda"], device)
            start_epoch, rows, fits = state["epoch"] + 1, state["stats"], state["prior_fits"]
            log.info("resuming %s from epoch %d", run.dir, start_epoch)
        else:
            log.warning("checkpoint %s was made with other settings; starting afresh", run.checkpoint)

    n, batch_size = len(images), settings["batch_size"]
    for epoch in range(start_epoch, settings["epochs"]):
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            return model_path
        started = time.time()
        set_learning_rates(ae_opt, prior_opt, settings, epoch)
        generator = epoch_generator(seed, epoch)
        order = torch.randperm(n, generator=generator)
        sums: dict[str, float] = {}
        n_steps = math.ceil(n / batch_size)
        bar = tqdm(range(n_steps), desc=f"{settings['dataset']}/{settings['method']}/seed{seed} epoch {epoch + 1}/{settings['epochs']}",
                   disable=not progress, mininterval=2.0, leave=False)
        vae.train()
        for step in bar:
            x = to_float(images[order[step * batch_size:(step + 1) * batch_size].to(device)])
            terms = vae.terms(x)
            loss = -terms["elbo"].mean()
            ae_opt.zero_grad(set_to_none=True)
            loss.backward()
            _clip(ae_opt, settings["grad_clip_value"])
            ae_opt.step()
            vae.update_scale(terms["mae"])
            if vae.prior.trained_with_autoencoder:
                vae.prior.after_step()
            logged = {k: terms[k].detach().mean() for k in ("elbo", "rec_loglik", "entropy", "log_prior", "mae")}
            if prior_opt is not None:
                prior_loss = vae.prior.block_loss(terms["z"].detach())
                prior_opt.zero_grad(set_to_none=True)
                prior_loss.backward()
                _clip(prior_opt, settings["grad_clip_value"])
                prior_opt.step()
                vae.prior.after_step()
                logged["prior_loss"] = prior_loss.detach()
            batch = dict(zip(logged, torch.stack(list(logged.values())).tolist()))  # one device sync per step
            # A non-finite step stops the run before this epoch's checkpoint: the last good one stays.
            _check_finite(batch["elbo"], "autoencoder ELBO", epoch, step, run)
            _check_finite(batch.get("prior_loss", 0.0), "prior block loss", epoch, step, run)
            for key, value in batch.items():
                sums[key] = sums.get(key, 0.0) + value * len(x)
            if step % 10 == 0:
                bar.set_postfix(elbo=f"{batch['elbo']:.1f}", mae=f"{batch['mae']:.4f}")
        bar.close()

        row = {"epoch": epoch + 1, **{key: value / n for key, value in sums.items()}}
        row.update(scale=vae.scale.item(), lr=ae_opt.param_groups[0]["lr"])
        if vae.prior.fit_samples:
            fit_images = images[torch.randperm(n, generator=generator)[: vae.prior.fit_samples].to(device)]
            vae.eval()
            fit = vae.prior.fit(sample_posterior(vae, fit_images, device), epoch)
            fits.append({"epoch": epoch + 1, **fit})
            row.update({f"prior_{k}": v for k, v in fit.items() if isinstance(v, (int, float, bool))})
        problems = vae.prior.health()
        for problem in problems:
            log.warning("epoch %d: prior problem: %s", epoch + 1, problem)
        row["prior_health"] = "; ".join(problems) or "ok"
        row["seconds"] = round(time.time() - started, 2)
        rows.append(row)
        log.info("epoch %d/%d %s", epoch + 1, settings["epochs"], json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}))
        _save_checkpoint(run, vae, ae_opt, prior_opt, settings, epoch, rows, fits, device)
        _write_stats(run.stats, rows)
        if fits:
            _write_jsonl(run.prior_fits, fits)

    with atomic_path(model_path) as tmp:
        torch.save({"settings": settings, "model": vae.state_dict(), "epochs": settings["epochs"], "stats": rows,
                    "provenance": record}, tmp)
    return model_path


def load_model(model_path: str | Path, device: torch.device | str = "cpu") -> tuple[VAE, dict]:
    """Rebuild a trained VAE from its model file (the architecture comes from the file)."""
    state = torch.load(model_path, map_location=device, weights_only=False)
    vae = build_vae(state["settings"]).to(device)
    vae.load_state_dict(state["model"])
    vae.eval()
    return vae, state["settings"]


def _check_finite(value: float, what: str, epoch: int, step: int, run: Run) -> None:
    if not math.isfinite(value):
        kept = f"the last good checkpoint {run.checkpoint} (epoch {epoch}) is kept" if run.checkpoint.exists() else "no checkpoint was written yet"
        raise TrainingDiverged(f"{what} is {value} at epoch {epoch + 1}, step {step}; {kept}. "
                               "Lower the learning rate or check the data, then rerun to resume.")


def _save_checkpoint(run: Run, vae, ae_opt, prior_opt, settings, epoch, rows, fits, device) -> None:
    state = {
        "settings": settings, "epoch": epoch, "stats": rows, "prior_fits": fits, "model": vae.state_dict(),
        "ae_optimizer": ae_opt.state_dict(),
        "prior_optimizer": prior_opt.state_dict() if prior_opt is not None else None,
        "rng": {"torch": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None},
    }
    with atomic_path(run.checkpoint) as tmp:
        torch.save(state, tmp)


def _write_stats(path: Path, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _write_jsonl(path: Path, records: list[dict]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r, default=float) + "\n" for r in records))
