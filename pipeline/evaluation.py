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
  q(t|z) as proposal and ``is_samples`` samples; the lower bound is recorded beside it.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from pipeline.models import VAE
from pipeline.models.vae import gaussian_entropy, laplace_log_likelihood
from pipeline.training import to_float

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016


@torch.no_grad()
def evaluate(vae: VAE, images: torch.Tensor, mc_samples: int = 1, is_samples: int = 1000, batch_size: int = 500,
             device: torch.device | str = "cpu", seed: int = 0, progress: bool = True) -> dict:
    """Metrics of ``vae`` on uint8 test images (N,C,H,W); means over images plus their spread."""
    torch.manual_seed(seed)
    vae.eval()
    prior = vae.prior
    posterior_means = []
    per_image: dict[str, list[torch.Tensor]] = {k: [] for k in ("elbo", "rec_loglik", "entropy", "log_prior_elbo", "cross_entropy", "cross_entropy_bound", "rec_error")}
    for start in tqdm(range(0, len(images), batch_size), desc="evaluate", disable=not progress, mininterval=2.0):
        x = to_float(images[start:start + batch_size].to(device))       # (B,C,H,W)
        mean, std = vae.encode(x)                                       # (B,d_z)
        posterior_means.append(mean.double().cpu())
        entropy = gaussian_entropy(std)                                 # (B,)
        sums = {k: torch.zeros(len(x), device=x.device) for k in ("rec", "bound", "ce")}
        for _ in range(mc_samples):
            z = mean + std * torch.randn_like(std)
            sums["rec"] += laplace_log_likelihood(x, vae.decode(z), vae.scale)
            bound = prior.log_prob_bound(z)
            sums["bound"] += bound
            sums["ce"] += bound if prior.exact else prior.log_prob(z, n_samples=is_samples)
        rec, bound, ce = (sums[k] / mc_samples for k in ("rec", "bound", "ce"))
        per_image["elbo"].append(rec + entropy + bound)
        per_image["rec_loglik"].append(rec)
        per_image["entropy"].append(entropy)
        per_image["log_prior_elbo"].append(bound)
        per_image["cross_entropy"].append(ce)
        per_image["cross_entropy_bound"].append(bound)
        per_image["rec_error"].append((x - vae.decode(mean)).abs().flatten(1).mean(1))
    values = {k: torch.cat(v).double().cpu() for k, v in per_image.items()}
    n = len(images)
    result = {k: v.mean().item() for k, v in values.items()}
    result.update({f"{k}_std_over_images": v.std().item() for k, v in values.items()})
    unit_variance = torch.cat(posterior_means).var(0)                   # (d_z,)
    result.update(
        active_units=int((unit_variance > ACTIVE_UNIT_THRESHOLD).sum()),
        latent_dims=int(unit_variance.numel()),
        n_images=n,
        scale=vae.scale.item(),
        estimators={
            "elbo": f"{mc_samples} reparameterised z per image; entropy closed form; "
                    + ("exact log p(z)" if prior.exact else "prior-VAE bound L'(z) (LaDDer Eq. 7/8)"),
            "cross_entropy": "exact log p(z)" if prior.exact else f"importance sampling, proposal q(t|z), K={is_samples}",
            "cross_entropy_bound": "same as cross_entropy" if prior.exact else "prior-VAE ELBO L'(z), a lower bound",
            "rec_error": "mean |x - decoder(posterior mean)| per pixel, pixels in [0, 1]",
            "active_units": f"dimensions with Var_x(E_q[z_i]) > {ACTIVE_UNIT_THRESHOLD} over the test images",
        },
        mc_samples=mc_samples,
        is_samples=None if prior.exact else is_samples,
    )
    return result


@torch.no_grad()
def encode_images(vae: VAE, images: torch.Tensor, batch_size: int = 500, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and standard deviations for uint8 images. -> (N,d_z), (N,d_z)"""
    vae.eval()
    means, stds = [], []
    for start in range(0, len(images), batch_size):
        mean, std = vae.encode(to_float(images[start:start + batch_size].to(device)))
        means.append(mean.cpu())
        stds.append(std.cpu())
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def generate(vae: VAE, n: int, seed: int, batch_size: int = 500, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """n samples z ~ p(z) and their decoder means as uint8 images. -> (n,d_z), (n,C,H,W)"""
    from pipeline.fid import quantise

    vae.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    zs, images = [], []
    for start in range(0, n, batch_size):
        z = vae.prior.sample(min(batch_size, n - start), generator=generator)
        zs.append(z.cpu())
        images.append(quantise(vae.decode(z)).cpu())
    return torch.cat(zs), torch.cat(images)


@torch.no_grad()
def reconstruct(vae: VAE, images: torch.Tensor, batch_size: int = 500, device: torch.device | str = "cpu") -> torch.Tensor:
    """Decoder means at the posterior means, as uint8 images (for reconstruction FID)."""
    from pipeline.fid import quantise

    vae.eval()
    out = []
    for start in range(0, len(images), batch_size):
        mean, _ = vae.encode(to_float(images[start:start + batch_size].to(device)))
        out.append(quantise(vae.decode(mean)).cpu())
    return torch.cat(out)
