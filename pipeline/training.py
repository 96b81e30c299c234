"""Train one VAE: the same protocol for every prior.

Per minibatch (supplement B, block coordinate ascent, generalised to every prior):
  1. autoencoder step: Adam on -ELBO w.r.t. encoder and decoder (and the prior's parameters
     when the prior is trained with the autoencoder: VampPrior, gradient GMM); then the
     Laplace scale is set from the batch MAE (see pipeline.models.vae.VAE on scale_mode);
  2. prior block step (hierarchical, LaDDer): Adam on the prior VAE's -L'(z) with z detached.
At each epoch end the prior refits what it fits between epochs (EM GMM, DP mixture of LaDDer)
from posterior samples of the training set.

The original code's warm-up ('sg_pretraining', ``Prior.begin_epoch``): for the first W epochs of
the hierarchical, LaDDer and VampPrior priors the encoder is trained against N(0, I) on z, with no
term of the prior in its loss; the prior's own parameters train from epoch W and LaDDer's mixture
is first fitted at its end. The prior's parameter groups have their own learning rates
(``learning_rate``: 3e-4 for the prior VAE and the pseudo-inputs, 2e-4 for sigma_in, x1.01 per
epoch, as the original).

Optimiser details from the original code (docs/original-code.md): Adam beta2 = 0.95, element-wise
gradient clipping (``grad_clip_value``; off at paper scale, see reference/README.md, "The reconstruction gap"),
autoencoder lr x0.99 per epoch, prior lr x1.01 per epoch.

A checkpoint (plain dict, RNG states included) is written atomically after every epoch; a
rerun resumes from it and ends with the same weights as an uninterrupted run. A run is identified
by its scientific settings only (``pipeline.config.run_settings``): device and thread count are
execution flags, so a run interrupted under one set of them resumes under another (a checkpoint
written on CUDA loads on CPU and back). Epochs are counted from 1 in every message and file.

At the end of training the Laplace scale sigma is fixed to its maximum-likelihood value on the
whole training set (the mean absolute error of one z ~ q(z|x) per image), stored with the model
and used by evaluation: not the scale of the last training minibatch.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from pipeline.artefacts import batches, load_model, save_model, to_float  # noqa: F401  (load_model, to_float re-exported)
from pipeline.config import identity
from pipeline.data import load_split
from pipeline.devices import resolve_device  # noqa: F401 (one home for devices; callers import it from here too)
from pipeline.models import VAE, build_vae
from pipeline.models.vae import MIN_SCALE
from pipeline.priors.mixture import COLLAPSED_COMPONENTS
from pipeline.provenance import atomic_path, provenance, write_json
from pipeline.seeds import EPOCH_ORDER, TRAINING_SCALE, derive_seed

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    pass


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """Data order and fit subsets depend on (seed, epoch) only, so resuming is exact."""
    return torch.Generator().manual_seed(derive_seed(seed, EPOCH_ORDER, epoch))


def make_optimisers(vae: VAE, settings: dict) -> tuple[torch.optim.Adam, torch.optim.Adam | None]:
    """The autoencoder's Adam and, for priors with a block step, the prior's. Each parameter group
    has a ``role`` that sets its learning rate (``set_learning_rates``): "autoencoder"; "prior"
    (the prior VAE's networks, or a prior trained by the ELBO such as the VampPrior's
    pseudo-inputs, when ``prior_learning_rate`` is set: the original gave both an optimiser of
    their own); "prior_scale" (the prior VAE's sigma_in when ``prior_scale_learning_rate`` is
    set: its own Adam in the original). Adam's state is per parameter, so a group with its own
    rate is the same as an optimiser of its own."""
    betas = (settings["adam_beta1"], settings["adam_beta2"])
    prior = vae.prior
    ae_params = [p for name, p in vae.named_parameters() if not name.startswith("prior.") and p.requires_grad]
    ae_groups = [{"params": ae_params, "role": "autoencoder"}]
    if prior.trained_with_autoencoder and any(True for _ in prior.parameters()):
        if settings.get("prior_learning_rate") is None:
            ae_params += list(prior.parameters())  # the autoencoder's rate and decay
        else:
            ae_groups.append({"params": list(prior.parameters()), "role": "prior"})
    ae_opt = torch.optim.Adam(ae_groups, lr=settings["learning_rate"], betas=betas)
    if not prior.has_block_step:
        return ae_opt, None
    own_scale = settings.get("prior_scale_learning_rate") is not None
    scale = [p for name, p in prior.named_parameters() if own_scale and name in prior.scale_parameters]
    rest = [p for p in prior.parameters() if all(p is not q for q in scale)]
    prior_groups = [{"params": rest, "role": "prior"}] + ([{"params": scale, "role": "prior_scale"}] if scale else [])
    return ae_opt, torch.optim.Adam(prior_groups, lr=settings["learning_rate"], betas=betas)


def learning_rate(settings: dict, role: str, epoch: int) -> float:
    """The rate of a parameter group in epoch ``epoch`` (0-based). The autoencoder's decays x0.99
    per epoch and the prior's grows x1.01, counted from the first epoch as the original's
    ``1.01 ** (cur_epoch - 1)`` (not from the warm-up's end); a prior rate left null follows
    the autoencoder's base rate (this repository's protocol before issue 18)."""
    if role == "autoencoder":
        return settings["learning_rate"] * settings["lr_decay"] ** epoch
    base = settings.get("prior_scale_learning_rate") if role == "prior_scale" else None
    base = base if base is not None else settings.get("prior_learning_rate")
    base = base if base is not None else settings["learning_rate"]
    return base * settings["prior_lr_growth"] ** epoch


def set_learning_rates(ae_opt, prior_opt, settings: dict, epoch: int) -> None:
    for opt in (ae_opt, prior_opt):
        for group in (opt.param_groups if opt is not None else ()):
            group["lr"] = learning_rate(settings, group.get("role", "autoencoder"), epoch)


def _clip(optimiser: torch.optim.Optimizer, value: float | None) -> None:
    if value is not None:
        params = [p for group in optimiser.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_value_(params, value)


@torch.no_grad()
def sample_posterior(vae: VAE, images: torch.Tensor, device: torch.device, batch_size: int = 500) -> torch.Tensor:
    """z ~ q(z|x) for uint8 images, batched. (N,C,H,W) -> (N,d_z)"""
    out = []
    for part in batches(len(images), batch_size):
        mean, std = vae.encode(to_float(images[part].to(device)))
        out.append(mean + std * torch.randn_like(std))
    return torch.cat(out)


SCALE_BLOCK = 500  # images per generator seed in training_set_scale (a constant: results never depend on batching)


@torch.no_grad()
def training_set_scale(vae: VAE, images: torch.Tensor, device: torch.device, seed: int) -> float:
    """The Laplace scale's maximum-likelihood value on the whole training set: mean |x - decoder(z)|
    over pixels with one z ~ q(z|x) per image (the z the ELBO's reconstruction term uses). The
    noise of block b comes from a CPU generator seeded with (seed, b): the training RNG stream is
    untouched and the value is the same on every device."""
    vae.eval()
    total, count = 0.0, 0
    for block, part in enumerate(batches(len(images), SCALE_BLOCK)):
        generator = torch.Generator().manual_seed(derive_seed(seed, TRAINING_SCALE, block))
        x = to_float(images[part].to(device))
        mean, std = vae.encode(x)
        eps = torch.randn(tuple(std.shape), generator=generator).to(device)
        total += (x - vae.decode(mean + std * eps)).abs().sum().item()
        count += x.numel()
    return max(total / count, MIN_SCALE)


class Run:
    """The files of one run folder: options, stats, prior-fit log, checkpoint."""

    def __init__(self, run_dir: str | Path):
        self.dir = Path(run_dir)
        self.options = self.dir / "training_options.json"
        self.stats = self.dir / "stats.csv"
        self.prior_fits = self.dir / "prior_fit.jsonl"
        self.checkpoint = self.dir / "checkpoint.pt"
        self.log = self.dir / "train.log"


def train(settings: dict, dataset_path: str | Path, model_path: str | Path, run_dir: str | Path | None = None,
          stop_after_epoch: int | None = None, progress: bool = True, device: str = "auto", num_threads: int = 0,
          data_on_device: bool = True) -> Path:
    """Train (or resume) one run and write ``model_path``; returns it.

    ``settings`` is the run's identity (``pipeline.config.run_settings``); ``device``,
    ``num_threads`` and ``data_on_device`` (keep the uint8 training set in GPU memory, or move each
    minibatch there) are execution flags. ``stop_after_epoch`` ends early after that many epochs
    without writing the model (used to test resuming); the checkpoint stays.
    """
    settings = identity(settings)
    model_path = Path(model_path)
    run = Run(run_dir or model_path.parent)
    run.dir.mkdir(parents=True, exist_ok=True)
    with _attempt_log(run):
        return _train(settings, dataset_path, model_path, run, stop_after_epoch, progress, resolve_device(device), num_threads, data_on_device)


def _train(settings, dataset_path, model_path, run, stop_after_epoch, progress, device, num_threads, data_on_device) -> Path:
    torch.set_num_threads(num_threads or 1)
    seed = settings["seed"]
    torch.manual_seed(seed)
    log.info("attempt: %s/%s/%s seed %d on %s, %d thread(s)", settings["dataset"], settings["method"], settings.get("variant", "default"),
             seed, device, torch.get_num_threads())

    images, _ = load_split(dataset_path, "train", limit=settings["train_limit"])
    if data_on_device:
        images = images.to(device)  # uint8 on the device: CelebA-128 (~9 GB) fits whole on a large GPU
    vae = build_vae(settings).to(device)
    ae_opt, prior_opt = make_optimisers(vae, settings)
    record = provenance(config=settings, seed=seed, device=device, dataset=str(dataset_path), num_threads=torch.get_num_threads())
    write_json(run.options, {"settings": settings}, record)

    epochs_done, rows, fits = _resume(run, settings, vae, ae_opt, prior_opt, device)
    n, batch_size = len(images), settings["batch_size"]
    for epoch in range(epochs_done, settings["epochs"]):  # 0-based index; messages say epoch + 1
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            return model_path
        started = time.time()
        set_learning_rates(ae_opt, prior_opt, settings, epoch)
        vae.prior.begin_epoch(epoch)
        prior_trains = vae.prior.trains_in_epoch(epoch)
        generator = epoch_generator(seed, epoch)
        order = torch.randperm(n, generator=generator)
        sums: dict[str, float] = {}
        n_steps = math.ceil(n / batch_size)
        bar = tqdm(range(n_steps), desc=f"{settings['dataset']}/{settings['method']}/seed{seed} epoch {epoch + 1}/{settings['epochs']}",
                   disable=not progress, mininterval=2.0, leave=False)
        vae.train()
        for step in bar:
            x = to_float(images[order[step * batch_size:(step + 1) * batch_size].to(images.device)].to(device, non_blocking=True))
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
            if prior_opt is not None and prior_trains:
                prior_loss = vae.prior.block_loss(terms["z"].detach())
                prior_opt.zero_grad(set_to_none=True)
                prior_loss.backward()
                _clip(prior_opt, settings["grad_clip_value"])
                prior_opt.step()
                vae.prior.after_step()
                logged["prior_loss"] = prior_loss.detach()
            batch = dict(zip(logged, torch.stack(list(logged.values())).tolist()))  # one device sync per step
            # A non-finite step stops the run before this epoch's checkpoint: the last good one stays.
            _check_finite(batch["elbo"], "autoencoder ELBO", epoch, step, n_steps, run)
            _check_finite(batch.get("prior_loss", 0.0), "prior block loss", epoch, step, n_steps, run)
            for key, value in batch.items():
                sums[key] = sums.get(key, 0.0) + value * len(x)
            if step % 10 == 0:
                bar.set_postfix(elbo=f"{batch['elbo']:.1f}", mae=f"{batch['mae']:.4f}")
        bar.close()

        row = {"epoch": epoch + 1, **{key: value / n for key, value in sums.items()}}
        row.update(scale=vae.scale.item(), lr=ae_opt.param_groups[0]["lr"], against_standard_normal=vae.prior.warming_up)
        if vae.prior.fit_samples:
            fit_images = images[torch.randperm(n, generator=generator)[: vae.prior.fit_samples].to(images.device)].to(device)
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
        _save_checkpoint(run, vae, ae_opt, prior_opt, settings, epoch + 1, rows, fits, device)
        _write_stats(run.stats, rows)
        if fits:
            _write_jsonl(run.prior_fits, fits)

    final = vae.prior.fit_summary()
    if final.get("mixture_components", COLLAPSED_COMPONENTS + 1) <= COLLAPSED_COMPONENTS:
        log.warning("the prior's mixture ended with %d active component(s) (largest weight %.3f): it has collapsed "
                    "(tables flag this run)", final["mixture_components"], final["mixture_largest_weight"])
    scale_source = "learned scalar (training.decoder_scale: learned)"
    if vae.scale_mode == "mle":
        scale = training_set_scale(vae, images, device, seed)
        with torch.no_grad():
            vae.log_scale.fill_(math.log(scale))
        scale_source = f"maximum-likelihood value on the {n} training images (one z ~ q(z|x) each): {scale:.6f}"
        log.info("Laplace scale fixed from the training set: %.6f (last minibatch: %.6f)", scale, rows[-1]["scale"] if rows else float("nan"))
    save_model(model_path, vae, settings, rows, record, scale_source)
    return model_path


def _resume(run: Run, settings: dict, vae, ae_opt, prior_opt, device) -> tuple[int, list, list]:
    """Load this run's checkpoint if there is one; returns (epochs done, stats rows, fit records).

    A checkpoint of other scientific settings is not this run's: it is moved aside (never
    deleted) with the differing keys named, and training starts from epoch 1. So is one that
    cannot be read (truncated by a full disk or a copy; atomic writes make that rare): it is
    the only checkpoint a run keeps, so training restarts from epoch 1, saying so.
    """
    if not run.checkpoint.exists():
        return 0, [], []
    try:
        state = torch.load(run.checkpoint, map_location=device, weights_only=False)
    except Exception as err:  # torch raises RuntimeError, EOFError, OSError, pickle errors, ... on damaged files
        aside = run.checkpoint.with_name(f"checkpoint.damaged-{time.strftime('%Y%m%d-%H%M%S')}.pt")
        run.checkpoint.rename(aside)
        log.warning("%s cannot be read (%s: %s); moved to %s, starting from epoch 1", run.checkpoint, type(err).__name__,
                    str(err).splitlines()[0] if str(err) else "", aside.name)
        return 0, [], []
    theirs = identity(state["settings"])
    theirs.setdefault("variant", settings.get("variant"))
    if theirs != settings:
        differ = sorted(k for k in set(theirs) | set(settings) if theirs.get(k) != settings.get(k))
        aside = run.checkpoint.with_name(f"checkpoint.superseded-{time.strftime('%Y%m%d-%H%M%S')}.pt")
        run.checkpoint.rename(aside)
        log.warning("%s belongs to a run with other settings (differing keys: %s); moved to %s, starting from epoch 1",
                    run.checkpoint, ", ".join(differ), aside.name)
        return 0, [], []
    vae.load_state_dict(state["model"])
    ae_opt.load_state_dict(state["ae_optimizer"])
    if prior_opt is not None:
        prior_opt.load_state_dict(state["prior_optimizer"])
    torch.set_rng_state(state["rng"]["torch"])
    if device.type == "cuda" and state["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    epochs_done = state["epochs_done"]
    log.info("resuming %s after epoch %d of %d", run.dir, epochs_done, settings["epochs"])
    return epochs_done, state["stats"], state["prior_fits"]


@contextlib.contextmanager
def _attempt_log(run: Run):
    """Append this attempt's log records to the run's train.log (reruns keep earlier attempts)."""
    handler = logging.FileHandler(run.log, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("pipeline")
    logger.addHandler(handler)
    previous_level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        handler.stream.write(f"==== attempt started {time.strftime('%Y-%m-%d %H:%M:%S')} ====\n")
        yield
    except Exception as err:
        log.error("attempt failed: %s", err)
        raise
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        handler.close()


def _check_finite(value: float, what: str, epoch: int, step: int, n_steps: int, run: Run) -> None:
    if math.isfinite(value):
        return
    where = f"epoch {epoch + 1}, step {step + 1} of {n_steps}"
    if epoch > 0 and run.checkpoint.exists():
        kept = (f"Kept: {run.checkpoint} (this run's settings, after epoch {epoch}). A rerun with the same settings resumes "
                f"from epoch {epoch + 1} with the same random numbers, so it diverges again unless the cause was outside the run. "
                "Changing a setting of the run's identity (e.g. the learning rate) starts a new run from epoch 1; "
                "the old checkpoint is then moved aside as checkpoint.superseded-*.pt, not deleted.")
    else:
        kept = "No epoch finished, so nothing was kept; a rerun starts from epoch 1."
    raise TrainingDiverged(f"{what} is {value} at {where}. {kept}")


def _save_checkpoint(run: Run, vae, ae_opt, prior_opt, settings, epochs_done, rows, fits, device) -> None:
    state = {
        "settings": settings, "epochs_done": epochs_done, "stats": rows, "prior_fits": fits, "model": vae.state_dict(),
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
