"""Test log-likelihood log p(x) per image by importance sampling, the posterior as proposal.

For a prior with an exact density (``prior.exact``: normal, GMM, VampPrior, Real NVP):

    log p(x) ~= logsumexp_s [log p(x|z_s) + log p(z_s) - log q(z_s|x)] - log S,   z_s ~ q(z|x)

(Burda et al. 2016; the VampPrior paper's test LL with S = 5,000). For the generative priors
(hierarchical, LaDDer), whose log p(z) has no closed form, the estimate is joint over (z, t):
proposal q(z|x) q(t|z), target p(x|z) p(z|t) p(t), so one (z, t) pair per sample and

    log w_s = log p(x|z_s) + log p(z_s|t_s) + log p(t_s) - log q(z_s|x) - log q(t_s|z_s).

Both are consistent as S grows; for finite S the estimate is biased low (Jensen) while exp() of
it is unbiased for p(x).

Batching: images and samples are processed together, ``chunk_size`` decoder evaluations per
pass (several images x all their samples when S < chunk_size, else one image's samples in
chunks), so the cost is S decoder passes per image at the decoder's batch throughput.

Seeding: the noise of image i (eps_z (S, d_z), then eps_t (S, d_t)) is drawn on the CPU from
its own generator seeded by (seed, first_index + i), or, when the caller passes one generator,
from it image by image in order. Either way an image's samples do not depend on the chunk
size or the device; with per-image seeds they do not depend on the other images evaluated.

Diagnostics (per image): the estimate from the first S/10 samples beside the one from all S
(a converged estimate barely moves), and the importance weights' effective sample size
ESS = (sum w)^2 / sum w^2 (Kong 1992), between 1 (one sample dominates) and S.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from pipeline.models.vae import laplace_log_likelihood
from pipeline.priors.base import LOG_2PI
from pipeline.seeds import derive_seed

LogLikelihood = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x (M, ...), mean (M, ...)) -> (M,)


# -- per-image noise ------------------------------------------------------------------------
def image_seed(seed: int, index: int) -> int:
    """A 63-bit seed for image ``index`` of a run seeded ``seed`` (pipeline.seeds)."""
    return derive_seed(seed, index)


def image_noise(n_samples: int, dim: int, seed: int, index: int) -> torch.Tensor:
    """Standard normal noise of image ``index``: (n_samples, dim) on the CPU."""
    g = torch.Generator().manual_seed(image_seed(seed, index))
    return torch.randn(n_samples, dim, generator=g)


# -- the prior's side of one importance weight ----------------------------------------------
def prior_log_weight(prior, z: torch.Tensor, eps_t: torch.Tensor | None) -> torch.Tensor:
    """The prior's part of log w for samples z (M, d_z): log p(z) where exact, else the joint
    term log p(z|t) + log p(t) - log q(t|z) with t = mean_t(z) + std_t(z) eps_t. -> (M,)

    The one place that uses the generative priors' accessors (``HierarchicalPrior``: q(t|z)
    from ``prior.vae.encode``, ``prior.vae.log_p_z_given_t``, ``prior.hyper_log_prob``).
    """
    if prior.exact:
        return prior.log_prob(z)  # (M,)
    if eps_t is None or not hasattr(prior, "vae") or not hasattr(prior, "hyper_log_prob"):
        raise TypeError(f"{type(prior).__name__} has no exact log p(z) and no q(t|z), p(z|t), p(t) accessors "
                        "(prior.vae.encode, prior.vae.log_p_z_given_t, prior.hyper_log_prob): "
                        "joint importance sampling over (z, t) needs them")
    mean_t, std_t = prior.vae.encode(z)  # (M, d_t) each
    t = mean_t + std_t * eps_t  # (M, d_t)
    log_q_t = -0.5 * (eps_t.pow(2) + LOG_2PI).sum(-1) - std_t.log().sum(-1)  # (M,)
    return prior.vae.log_p_z_given_t(z, t) + prior.hyper_log_prob(t) - log_q_t  # (M,)


def latent_noise_dims(prior) -> tuple[int, int]:
    """(d_z, d_t): noise per sample; d_t = 0 for priors with an exact density."""
    return prior.d_z, (0 if prior.exact else int(prior.d_t))


# -- reduction --------------------------------------------------------------------------------
def summarise_log_weights(log_w: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image, from log weights (N, S): the estimate from all S, the one from the first
    S // 10 (at least 1) and the effective sample size. -> each (N,)"""
    s = log_w.shape[1]
    s10 = max(1, s // 10)
    lse = torch.logsumexp(log_w, 1)  # (N,)
    return {
        "log_px": lse - math.log(s),
        "log_px_tenth": torch.logsumexp(log_w[:, :s10], 1) - math.log(s10),
        "ess": torch.exp(2 * lse - torch.logsumexp(2 * log_w, 1)),  # (sum w)^2 / sum w^2
    }


# -- the estimator ----------------------------------------------------------------------------
@torch.no_grad()
def importance_log_likelihood(
    vae,
    images: torch.Tensor,
    n_samples: int,
    seed: int = 0,
    first_index: int = 0,
    generator: torch.Generator | None = None,
    chunk_size: int = 2048,
    log_likelihood: LogLikelihood | None = None,
) -> dict:
    """IS estimate of log p(x) in nats for each image of ``images`` (N, C, H, W), floats in the
    decoder's range, on the VAE's device.

    ``vae`` needs ``encode(x) -> (mean, std)``, ``decode(z) -> mean of p(x|z)``, ``prior`` and,
    for the default Laplace likelihood (supplement C), ``scale``. ``log_likelihood(x, mean)``
    replaces log p(x|z) (tests use a Gaussian for an exact answer). Noise: per-image seeds
    (``seed``, ``first_index + i``) unless ``generator`` is given (then drawn image by image).

    Returns per-image tensors (N,) on the CPU: ``log_px`` (S samples), ``log_px_tenth`` (the
    first S // 10), ``ess``; and ``n_samples`` = S, ``n_samples_tenth``.
    """
    if n_samples < 1 or chunk_size < 1:
        raise ValueError(f"importance_log_likelihood: need n_samples >= 1 and chunk_size >= 1, got {n_samples}, {chunk_size}")
    prior = vae.prior
    if log_likelihood is None:
        scale = vae.scale  # the Laplace scale stored at the end of training

        def log_likelihood(x, mean):
            return laplace_log_likelihood(x, mean, scale)

    d_z, d_t = latent_noise_dims(prior)
    images_per_pass = max(1, chunk_size // n_samples)
    samples_per_pass = min(n_samples, chunk_size)
    was_training = getattr(vae, "training", False)
    if hasattr(vae, "eval"):
        vae.eval()
    parts: list[dict[str, torch.Tensor]] = []
    try:
        for start in range(0, len(images), images_per_pass):
            x = images[start:start + images_per_pass]  # (G, C, H, W)
            g = len(x)
            noise = torch.stack([  # per image, in image order: (G, S, d_z + d_t)
                torch.randn(n_samples, d_z + d_t, generator=generator) if generator is not None
                else image_noise(n_samples, d_z + d_t, seed, first_index + start + i)
                for i in range(g)
            ])
            mean, std = vae.encode(x)  # (G, d_z) each
            noise = noise.to(device=mean.device, dtype=mean.dtype)
            log_w = torch.empty(g, n_samples, device=mean.device, dtype=mean.dtype)  # (G, S)
            for s0 in range(0, n_samples, samples_per_pass):
                eps = noise[:, s0:s0 + samples_per_pass]  # (G, s, d_z + d_t)
                log_w[:, s0:s0 + eps.shape[1]] = _log_weights(vae, prior, x, mean, std, eps, d_z, log_likelihood)
            parts.append({k: v.cpu() for k, v in summarise_log_weights(log_w).items()})
    finally:
        if was_training and hasattr(vae, "train"):
            vae.train()
    out: dict = {k: torch.cat([p[k] for p in parts]) for k in ("log_px", "log_px_tenth", "ess")}
    out.update(n_samples=int(n_samples), n_samples_tenth=max(1, n_samples // 10))
    return out


def _log_weights(vae, prior, x, mean, std, eps, d_z: int, log_likelihood: LogLikelihood) -> torch.Tensor:
    """log w for G images x s samples: x (G, ...), mean/std (G, d_z), eps (G, s, d_z + d_t) -> (G, s)"""
    g, s = eps.shape[:2]
    eps_z, eps_t = eps[..., :d_z], eps[..., d_z:]
    z = mean.unsqueeze(1) + std.unsqueeze(1) * eps_z  # (G, s, d_z)
    log_q = -0.5 * (eps_z.pow(2) + LOG_2PI).sum(-1) - std.log().sum(-1, keepdim=True)  # (G, s): log q(z|x)
    flat = z.reshape(g * s, d_z)  # (G*s, d_z)
    x_rep = x.unsqueeze(1).expand(g, s, *x.shape[1:]).reshape(g * s, *x.shape[1:])  # (G*s, C, H, W)
    log_px_z = log_likelihood(x_rep, vae.decode(flat)).view(g, s)  # (G, s)
    log_pz = prior_log_weight(prior, flat, eps_t.reshape(g * s, -1) if eps_t.shape[-1] else None).view(g, s)
    return log_px_z + log_pz - log_q


def likelihood_metrics(result: dict) -> dict:
    """Numbers for metrics.json from ``importance_log_likelihood``'s result (nats per image)."""
    log_px, tenth, ess = result["log_px"], result["log_px_tenth"], result["ess"]
    s = result["n_samples"]
    return {
        "test_log_likelihood": log_px.mean().item(),
        "test_nll": -log_px.mean().item(),
        "test_log_likelihood_tenth": tenth.mean().item(),
        # how much the estimate still moved from S/10 to S samples (near 0 when converged)
        "loglik_convergence_gap": (log_px - tenth).mean().item(),
        "loglik_ess_mean": ess.mean().item(),
        "loglik_ess_min": ess.min().item(),
        "loglik_ess_fraction_median": (ess / s).median().item(),
        "loglik_samples": s,
        "loglik_samples_tenth": result["n_samples_tenth"],
        "loglik_images": int(log_px.numel()),
    }
