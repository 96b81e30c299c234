"""Test log-likelihood log p(x) per image by importance sampling, the posterior as proposal.

For a prior with an exact density (``prior.exact``: normal, GMM, VampPrior, Real NVP):

    log p(x) ~= logsumexp_s [log p(x|z_s) + log p(z_s) - log q(z_s|x)] - log S,   z_s ~ q(z|x)

(Burda et al. 2016; the VampPrior paper's test LL with S = 5,000). For the generative priors
(hierarchical, LaDDer), whose log p(z) has no closed form, the estimate is joint over (z, t):
proposal q(z|x) q(t|z), target p(x|z) p(z|t) p(t), so one (z, t) pair per sample and

    log w_s = log p(x|z_s) + log p(z_s|t_s) + log p(t_s) - log q(z_s|x) - log q(t_s|z_s).

Both are consistent as S grows; for finite S the estimate is biased low (Jensen) while exp() of
it is unbiased for p(x).

Proposal. The encoder's q(z|x) is a poor proposal on trained models (effective sample sizes of
1.4-1.7 out of S = 100 on the CPU reference: the amortised posterior is narrower than, and
offset from, p(z|x)), so each image's proposal is first refined (Cremer et al. 2018's local
optimisation of the inference gap): a diagonal Gaussian N(m, diag s^2), started at q(z|x), takes
``REFINE_STEPS`` Adam steps on the importance-weighted bound with ``REFINE_SAMPLES`` samples
(Burda et al. 2016), which favours proposals that cover p(z|x) rather than fit inside it. The
proposal is then the defensive mixture (1 - b) N(m, diag s^2) + b q(z|x), b = ``Z_DEFENSIVE``,
whose weights are at most 1/b times those of q(z|x) alone. For the generative priors t is drawn
from the prior's own r(t|z) (``HierarchicalPrior.fit_proposal``: a Student-t at the Laplace fit
of p(t|z), mixed with q(t|z)), fitted once per image at the refined mean m and moved to each
sample z along the linearised model's gain (a Newton fit per sample would cost ~100 prior-VAE
passes each), so

    log w_s = log p(x|z_s) + log p(z_s|t_s) + log p(t_s) - log r(z_s|x) - log r(t_s|z_s).

Batching: images and samples are processed together, ``chunk_size`` decoder evaluations per
pass (several images x all their samples when S < chunk_size, else one image's samples in
chunks), so the cost is S decoder passes per image at the decoder's batch throughput.

Seeding: the noise of image i (per sample: eps_z (d_z), one normal choosing the mixture's
component, then r(t|z)'s noise; the refinement's noise after all S samples) is drawn on the CPU
from its own generator seeded by (seed, first_index + i), or, when the caller passes one
generator, from it image by image in order. Either way an image's samples do not depend on the
chunk size or the device; with per-image seeds they do not depend on the other images evaluated.

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

# The proposal (module docstring): constants of the estimator, not config knobs.
REFINE_STEPS = 100    # Adam steps refining each image's Gaussian proposal (0: the encoder's q(z|x))
REFINE_SAMPLES = 8    # samples per step of the importance-weighted bound that the refinement maximises
REFINE_LR = 0.1       # Adam step size, in units of q(z|x)'s std (the refinement is whitened by it)
Z_DEFENSIVE = 0.2     # weight of q(z|x) in the proposal mixture


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


def proposal_log_weight(prior, z: torch.Tensor, eps_t: torch.Tensor | None, fit: dict | None = None) -> torch.Tensor:
    """The prior's part of log w with the prior's own t-proposal: log p(z) where exact, else
    log p(z|t) + log p(t) - log r(t|z) with t ~ r(t|z) (``draw_proposal``) drawn from eps_t
    (M, proposal_noise_dim). ``fit``: the Laplace fit (``fit_proposal``) at a nearby z, one per
    sample ("center" (M, d_z) and its fields (M, ...)), moved to each z along its gain (exact for a
    linear p(z|t)) instead of a Newton fit per sample. -> (M,)"""
    if prior.exact:
        return prior.log_prob(z)  # (M,)
    mean_t, std_t = prior.vae.encode(z)  # (M, d_t) each
    if fit is None:
        fit = dict(prior.fit_proposal(z), center=z)
    modes = fit["modes"] + (fit["gain"] @ (z - fit["center"])[:, None, :, None]).squeeze(-1)  # (M, C, d_t)
    proposal = {"mean_t": mean_t, "std_t": std_t, "log_pi": fit["log_pi"], "modes": modes, "scale_tril": fit["scale_tril"]}
    t, log_r = prior.draw_proposal(proposal, eps_t.unsqueeze(0))  # (1, M, d_t), (1, M)
    return prior.vae.log_p_z_given_t(z, t[0]) + prior.hyper_log_prob(t[0]) - log_r[0]  # (M,)


def latent_noise_dims(prior) -> tuple[int, int]:
    """(d_z, d_t): noise per sample for z and for the prior's proposal of t (0 for exact priors)."""
    return prior.d_z, (0 if prior.exact else int(prior.proposal_noise_dim()))


def refine_proposal(vae, prior, x, mean, std, noise, log_likelihood: LogLikelihood, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image's Gaussian proposal N(m, diag s^2), refined from q(z|x) = N(mean, diag std^2) by
    ``steps`` Adam steps on the importance-weighted bound with R samples: x (G, ...), mean/std
    (G, d_z), noise (G, steps, R, d_z + d_t) (d_t: q(t|z)'s noise for the generative priors'
    single-sample log p(z) term). Images are independent (Adam is element-wise). -> (G, d_z) each"""
    d_z = mean.shape[-1]
    shift = torch.zeros_like(mean, requires_grad=True)  # m = mean + std * shift
    log_ratio = torch.zeros_like(mean, requires_grad=True)  # s = std * exp(log_ratio)
    opt = torch.optim.Adam([shift, log_ratio], lr=REFINE_LR)
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1 - k / max(1, steps))  # to 0: the last steps settle
    g, r = noise.shape[0], noise.shape[2]
    x_rep = x.unsqueeze(1).expand(g, r, *x.shape[1:]).reshape(g * r, *x.shape[1:])  # (G*R, ...)
    with torch.enable_grad():
        for step in range(steps):
            eps = noise[:, step]  # (G, R, d_z + d_t)
            m, s = mean + std * shift, std * log_ratio.exp()  # (G, d_z)
            z = m.unsqueeze(1) + s.unsqueeze(1) * eps[..., :d_z]  # (G, R, d_z)
            log_r = -0.5 * (eps[..., :d_z].pow(2) + LOG_2PI).sum(-1) - s.log().sum(-1, keepdim=True)  # (G, R)
            flat = z.reshape(g * r, d_z)
            log_t = eps[..., d_z:].reshape(g * r, -1)
            log_w = (log_likelihood(x_rep, vae.decode(flat)) + prior_log_weight(prior, flat, log_t if log_t.shape[-1] else None)).view(g, r) - log_r
            bound = torch.logsumexp(log_w, 1).sum()  # the per-image bounds are independent: their sum's gradient is each one's
            opt.zero_grad(set_to_none=True)
            shift.grad, log_ratio.grad = torch.autograd.grad(-bound, [shift, log_ratio])
            opt.step()
            decay.step()
    return (mean + std * shift).detach(), (std * log_ratio.exp()).detach()


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
    refine_steps: int = REFINE_STEPS,
) -> dict:
    """IS estimate of log p(x) in nats for each image of ``images`` (N, C, H, W), floats in the
    decoder's range, on the VAE's device.

    ``vae`` needs ``encode(x) -> (mean, std)``, ``decode(z) -> mean of p(x|z)``, ``prior`` and,
    for the default Laplace likelihood (supplement C), ``scale``. ``log_likelihood(x, mean)``
    replaces log p(x|z) (tests use a Gaussian for an exact answer). Noise: per-image seeds
    (``seed``, ``first_index + i``) unless ``generator`` is given (then drawn image by image).
    ``refine_steps`` = 0 uses the encoder's q(z|x) as the proposal of z (module docstring).

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
    d_sample = d_z + 1 + d_t  # per sample: z, the mixture's component choice, r(t|z)
    d_refine = d_z + (0 if prior.exact else int(prior.d_t))  # per refinement sample: z, q(t|z)
    n_refine = refine_steps * REFINE_SAMPLES

    def draw(i: int) -> torch.Tensor:  # image i's noise: its S samples', then its refinement's, flattened
        g = generator if generator is not None else torch.Generator().manual_seed(image_seed(seed, first_index + i))
        return torch.cat([torch.randn(n_samples * d_sample, generator=g), torch.randn(n_refine * d_refine, generator=g)])

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
            mean, std = vae.encode(x)  # (G, d_z) each
            flat_noise = torch.stack([draw(start + i) for i in range(g)]).to(device=mean.device, dtype=mean.dtype)  # in image order
            noise = flat_noise[:, :n_samples * d_sample].view(g, n_samples, d_sample)  # (G, S, d_sample)
            refine_noise = flat_noise[:, n_samples * d_sample:].view(g, refine_steps, REFINE_SAMPLES, d_refine)
            m, s = refine_proposal(vae, prior, x, mean, std, refine_noise, log_likelihood, refine_steps)  # (G, d_z) each
            fit = None if prior.exact else dict(prior.fit_proposal(m), center=m)  # r(t|z)'s Laplace fit at each image's m
            log_w = torch.empty(g, n_samples, device=mean.device, dtype=mean.dtype)  # (G, S)
            for s0 in range(0, n_samples, samples_per_pass):
                eps = noise[:, s0:s0 + samples_per_pass]  # (G, s, d_sample)
                log_w[:, s0:s0 + eps.shape[1]] = _log_weights(vae, prior, x, (mean, std), (m, s), eps, d_z, log_likelihood, fit)
            parts.append({k: v.cpu() for k, v in summarise_log_weights(log_w).items()})
    finally:
        if was_training and hasattr(vae, "train"):
            vae.train()
    out: dict = {k: torch.cat([p[k] for p in parts]) for k in ("log_px", "log_px_tenth", "ess")}
    out.update(n_samples=int(n_samples), n_samples_tenth=max(1, n_samples // 10))
    return out


def _log_weights(vae, prior, x, encoder, refined, eps, d_z: int, log_likelihood: LogLikelihood, fit: dict | None = None) -> torch.Tensor:
    """log w for G images x s samples: x (G, ...), encoder = q(z|x)'s (mean, std) and refined =
    the refined proposal's (m, s), each (G, d_z), eps (G, s, d_z + 1 + d_t) -> (G, s)"""
    g, s = eps.shape[:2]
    eps_z, pick, eps_t = eps[..., :d_z], eps[..., d_z:d_z + 1], eps[..., d_z + 1:]
    use_q = torch.special.ndtr(pick) < Z_DEFENSIVE  # (G, s, 1): this sample comes from q(z|x)
    (mean, std), (m, sd) = ((a.unsqueeze(1), b.unsqueeze(1)) for a, b in (encoder, refined))  # (G, 1, d_z) each
    z = torch.where(use_q, mean, m) + torch.where(use_q, std, sd) * eps_z  # (G, s, d_z)

    def log_normal(loc, scale):
        return -0.5 * (((z - loc) / scale).pow(2) + LOG_2PI).sum(-1) - scale.log().sum(-1)  # (G, s)

    log_q = torch.logaddexp(math.log1p(-Z_DEFENSIVE) + log_normal(m, sd), math.log(Z_DEFENSIVE) + log_normal(mean, std))  # log r(z|x)
    flat = z.reshape(g * s, d_z)  # (G*s, d_z)
    x_rep = x.unsqueeze(1).expand(g, s, *x.shape[1:]).reshape(g * s, *x.shape[1:])  # (G*s, C, H, W)
    log_px_z = log_likelihood(x_rep, vae.decode(flat)).view(g, s)  # (G, s)
    per_sample = None if fit is None else {k: v.repeat_interleave(s, 0) for k, v in fit.items()}  # image g's fit for its s samples
    log_pz = proposal_log_weight(prior, flat, eps_t.reshape(g * s, -1) if eps_t.shape[-1] else None, per_sample).view(g, s)
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
