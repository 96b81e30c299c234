"""Test-set metrics, one protocol for every prior.

- ELBO (Table 3), per image in nats: E_q[log p(x|z)] + H[q(z|x)] + E_q[log p(z)], with
  ``mc_samples`` reparameterised z per image, the entropy in closed form, log p(z) exact for
  priors that have it and the paper's bound L'(z) (Eq. 7/8) for the generative priors.
- Per-pixel reconstruction error (Table 3): mean |x - decoder(posterior mean)| over pixels.
- Active units (Burda et al. 2016, reported by Xu et al. 2019): latent dimensions whose
  posterior mean varies across the test set, Var_x(E_q[z_i]) > 0.01. Few active units flag a
  collapsed posterior (the decoder ignores z).
- Cross-entropy E_q(z)[log p(z)] (Table 2): z ~ q(z|x) over the test set (Eq. 3), log p(z)
  exact, or for the hierarchical and LaDDer priors an importance-sampling estimate with
  ``is_samples`` samples of a proposal fitted per z (``HierarchicalPrior.fit_proposal``):
  biased low for finite K, so the metrics record the estimate at K/10 beside the one at K and
  the effective sample size, and the prior-VAE bound beside both.
- Posterior standard deviations at the std head's floor (1e-3, the ReLU head's dead units),
  as a fraction of all q(z|x) and, where present, q(t|z) dimensions over the test set.

The Laplace scale is the model's: fixed from the whole training set at the end of training
(``pipeline.training.training_set_scale``). Generated images are a function of (seed, index)
only: noise is drawn in fixed blocks of ``SAMPLE_BLOCK`` images from CPU generators seeded by
(seed, block), so neither the batch size nor the device changes them.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from pipeline.artefacts import batches, quantise, to_float
from pipeline.layers import STD_FLOOR
from pipeline.models import VAE
from pipeline.models.vae import gaussian_entropy, laplace_log_likelihood
from pipeline.seeds import SAMPLE_BLOCKS, derive_seed

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016
SAMPLE_BLOCK = 100  # images per generator seed in ``generate``: a constant, never a config knob
MAX_REDRAWS = 10  # rounds of SAMPLE_BLOCK draws to fill one block with finite z
TRUNCATED_FRACTION = 0.01  # of the n draws; above it a run's generation is flagged as truncated (tables' notes)
AT_FLOOR = STD_FLOOR * (1 + 1e-4)  # a std this close to the head's additive floor is a dead unit
ENCODE_BATCH = 500  # images per encoder call in ``encode_images`` (memory only)


class NonFiniteSamples(RuntimeError):
    """The prior's sampler returned too many non-finite z for its images to be a sample of it."""


def sample_seed(seed: int, block: int) -> int:
    """The generator seed of generated block ``block`` of a run seeded ``seed`` (pipeline.seeds)."""
    return derive_seed(seed, SAMPLE_BLOCKS, block)


@torch.no_grad()
def evaluate(vae: VAE, images: torch.Tensor, mc_samples: int = 1, is_samples: int = 1000, batch_size: int = 500,
             device: torch.device | str = "cpu", seed: int = 0, progress: bool = True) -> dict:
    """Metrics of ``vae`` on uint8 test images (N,C,H,W); means over images plus their spread."""
    torch.manual_seed(seed)
    vae.eval()
    prior = vae.prior
    posterior_means = []
    keys = ("elbo", "rec_loglik", "entropy", "log_prior_elbo", "cross_entropy", "cross_entropy_bound", "cross_entropy_tenth", "is_ess", "rec_error")
    per_image: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
    floor_counts = {"posterior_std_at_floor": [0, 0], "hyper_posterior_std_at_floor": [0, 0]}
    for part in tqdm(list(batches(len(images), batch_size)), desc="evaluate", disable=not progress, mininterval=2.0):
        x = to_float(images[part].to(device))                           # (B,C,H,W)
        mean, std = vae.encode(x)                                       # (B,d_z)
        posterior_means.append(mean.double().cpu())
        _count_floor(floor_counts["posterior_std_at_floor"], std)
        entropy = gaussian_entropy(std)                                 # (B,)
        sums = {k: torch.zeros(len(x), device=x.device) for k in ("rec", "bound", "ce", "ce_tenth", "ess")}
        for _ in range(mc_samples):
            z = mean + std * torch.randn_like(std)
            sums["rec"] += laplace_log_likelihood(x, vae.decode(z), vae.scale)
            bound = prior.log_prob_bound(z)
            sums["bound"] += bound
            if prior.exact:
                sums["ce"] += bound
                sums["ce_tenth"] += bound
            else:
                diag = prior.log_prob_diagnostics(z, n_samples=is_samples)
                sums["ce"] += diag["log_prob"]
                sums["ce_tenth"] += diag["log_prob_tenth"]
                sums["ess"] += diag["ess"]
                _count_floor(floor_counts["hyper_posterior_std_at_floor"], prior.vae.encode(z)[1])
        rec, bound, ce, ce_tenth, ess = (sums[k] / mc_samples for k in ("rec", "bound", "ce", "ce_tenth", "ess"))
        per_image["elbo"].append(rec + entropy + bound)
        per_image["rec_loglik"].append(rec)
        per_image["entropy"].append(entropy)
        per_image["log_prior_elbo"].append(bound)
        per_image["cross_entropy"].append(ce)
        per_image["cross_entropy_bound"].append(bound)
        per_image["cross_entropy_tenth"].append(ce_tenth)
        per_image["is_ess"].append(ess)
        per_image["rec_error"].append((x - vae.decode(mean)).abs().flatten(1).mean(1))
    if prior.exact:
        del per_image["cross_entropy_tenth"], per_image["is_ess"]
    values = {k: torch.cat(v).double().cpu() for k, v in per_image.items()}
    n = len(images)
    result = {k: v.mean().item() for k, v in values.items()}
    result.update({f"{k}_std_over_images": v.std().item() for k, v in values.items()})
    # the ELBO's KL term E_q[log q(z|x) - log p(z)] (Xu et al. split the ELBO into it and the reconstruction)
    result["kl"] = -(result["entropy"] + result["log_prior_elbo"])
    if not prior.exact:
        result["is_ess_min"] = values["is_ess"].min().item()
    result.update({k: (c[0] / c[1] if c[1] else None) for k, c in floor_counts.items()})
    unit_variance = torch.cat(posterior_means).var(0)                   # (d_z,)
    result.update(
        active_units=int((unit_variance > ACTIVE_UNIT_THRESHOLD).sum()),
        latent_dims=int(unit_variance.numel()),
        n_images=n,
        scale=vae.scale.item(),
        estimators={
            "elbo": f"{mc_samples} reparameterised z per image; entropy closed form; "
                    + ("exact log p(z)" if prior.exact else "prior-VAE bound L'(z) (LaDDer Eq. 7/8)")
                    + "; Laplace scale fixed from the training set at the end of training",
            "cross_entropy": "exact log p(z)" if prior.exact else
                             f"importance sampling (Laplace-mixture proposal fitted per z, HierarchicalPrior.fit_proposal), "
                             f"K={is_samples}: lower-biased; "
                             "cross_entropy_tenth is the same estimate from the first K/10 samples",
            "cross_entropy_bound": "same as cross_entropy" if prior.exact else "prior-VAE ELBO L'(z), a lower bound",
            "rec_error": "mean |x - decoder(posterior mean)| per pixel, pixels in [0, 1]",
            "active_units": f"dimensions with Var_x(E_q[z_i]) > {ACTIVE_UNIT_THRESHOLD} over the test images",
            "posterior_std_at_floor": f"fraction of q(z|x) stds within {AT_FLOOR:.6g} (the std head's floor: dead ReLU units)",
        },
        mc_samples=mc_samples,
        is_samples=None if prior.exact else is_samples,
    )
    result.update(prior.fit_summary())  # the mixture's final component count (LaDDer, GMM)
    return result


def log_likelihood_metrics(vae: VAE, images: torch.Tensor, n_samples: int, seed: int, device: torch.device | str = "cpu",
                           refine_steps: int | None = None, *, architecture: str) -> dict:
    """log p(x) per test image by importance sampling (pipeline.likelihood; S = ``n_samples``), the
    metrics the VampPrior paper and Xu et al. report, with their convergence diagnostics.
    ``refine_steps``: Adam steps refining each image's proposal (None: pipeline.likelihood's default).
    ``architecture`` sets how many decoder evaluations fit in memory at once (pipeline.memory.loglik_chunk)."""
    from pipeline.likelihood import REFINE_STEPS, importance_log_likelihood, likelihood_metrics
    from pipeline.memory import loglik_chunk

    steps = REFINE_STEPS if refine_steps is None else int(refine_steps)
    chunk = loglik_chunk(architecture, "cuda" if torch.device(device).type == "cuda" else "cpu")
    result = importance_log_likelihood(vae, to_float(images).to(device), n_samples, seed=seed, chunk_size=chunk, refine_steps=steps)
    metrics = likelihood_metrics(result)
    metrics["loglik_refine_steps"] = steps
    metrics["estimators_loglik"] = (f"importance sampling, S={n_samples} per image, with a proposal refined per image from q(z|x) "
                                    f"by {steps} Adam steps "
                                    "(pipeline.likelihood; joint over (z, t) with the prior's r(t|z) for the hierarchical and LaDDer "
                                    "priors); test_log_likelihood_tenth uses the first S/10 samples")
    return metrics


def _count_floor(counter: list[int], std: torch.Tensor) -> None:
    counter[0] += int((std <= AT_FLOOR).sum())
    counter[1] += std.numel()


@torch.no_grad()
def encode_images(vae: VAE, images: torch.Tensor, batch_size: int = ENCODE_BATCH, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and standard deviations for uint8 images. -> (N,d_z), (N,d_z)"""
    vae.eval()
    means, stds = [], []
    for part in batches(len(images), batch_size):
        mean, std = vae.encode(to_float(images[part].to(device)))
        means.append(mean.cpu())
        stds.append(std.cpu())
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def sample_latents(vae: VAE, n: int, seed: int) -> tuple[torch.Tensor, int]:
    """z_k ~ p(z) for k < n, a function of (seed, k) only: block b of SAMPLE_BLOCK draws comes
    from a CPU generator seeded with (seed, b). -> (n, d_z) on the model's device, draws replaced

    A non-finite draw is replaced by the next draws of its block's generator (so z_k stays a function
    of (seed, k)) and counted: a trained Real NVP prior's inverse overflows float32 and float64 on about
    0.1 % of N(0, I) draws (the sigmoid couplings contract forwards, so the inverse expands the tails),
    and such a z has no image. More than ``TRUNCATED_FRACTION`` replaced is flagged, not hidden: the
    caller warns, and the tables name the run (``pipeline.tables.truncated_seeds``). It does not stop
    the job: one prior's tails would otherwise stop every table and claim of the DAG (it did, on the
    CPU reference's Real NVP seed 1: 11 of 1,000 draws).
    """
    zs, replaced = [], 0
    for block, part in enumerate(batches(n, SAMPLE_BLOCK)):
        generator = torch.Generator().manual_seed(sample_seed(seed, block))
        kept = []
        for _ in range(MAX_REDRAWS):
            z = vae.prior.sample(SAMPLE_BLOCK, generator=generator)  # (SAMPLE_BLOCK, d_z)
            kept.append(z[torch.isfinite(z).all(-1)])
            if sum(map(len, kept)) >= SAMPLE_BLOCK:
                break
        block_z = torch.cat(kept)
        if len(block_z) < SAMPLE_BLOCK:
            raise NonFiniteSamples(f"{vae.prior.label} prior: block {block} of seed {seed} drew fewer than {SAMPLE_BLOCK} finite z "
                                   f"in {MAX_REDRAWS} rounds; the prior's sampler is broken, not its tails")
        replaced += len(kept) * SAMPLE_BLOCK - len(block_z)  # non-finite draws of this block
        zs.append(block_z[: part.stop - part.start])
    return torch.cat(zs), replaced


def is_truncated(replaced: int, n: int) -> bool:
    """More than TRUNCATED_FRACTION of n draws replaced: the images sample the prior restricted to
    where its inverse is finite, short of more than TRUNCATED_FRACTION of its mass."""
    return replaced > TRUNCATED_FRACTION * n


@torch.no_grad()
def generate(vae: VAE, n: int, seed: int, batch_size: int = 500, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, int]:
    """n samples z ~ p(z) and their decoder means as uint8 images, and how many non-finite draws were
    replaced (``sample_latents``). -> (n,d_z), (n,C,H,W), int

    Image k depends on (seed, k) only (``sample_latents``); ``batch_size`` only bounds memory."""
    vae.eval()
    z, replaced = sample_latents(vae, n, seed)
    images = [quantise(vae.decode(z[part].to(device))).cpu() for part in batches(n, batch_size)]
    return z.cpu(), torch.cat(images), replaced


@torch.no_grad()
def reconstruct(vae: VAE, images: torch.Tensor, batch_size: int = 500, device: torch.device | str = "cpu") -> torch.Tensor:
    """Decoder means at the posterior means, as uint8 images (for reconstruction FID)."""
    vae.eval()
    out = []
    for part in batches(len(images), batch_size):
        mean, _ = vae.encode(to_float(images[part].to(device)))
        out.append(quantise(vae.decode(mean)).cpu())
    return torch.cat(out)
