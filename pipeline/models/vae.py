"""The VAE: encoder q(z|x), Laplace decoder p(x|z) with a learned scalar scale, and a prior p(z).

Every density term is per image, in nats, summed over pixels or latent dimensions:

    ELBO = E_q[log p(x|z)] + H[q(z|x)] + E_q[log p(z)]          (LaDDer Eq. 2: terms 1, 2, 3)

with the Laplace likelihood of supplement C (Eq. 14) on pixels in [0, 1].
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pipeline.models.celeba import CelebaDecoder, CelebaEncoder
from pipeline.models.mnist import MnistDecoder, MnistEncoder
from pipeline.priors import Prior, build_prior

ARCHITECTURES = {"mnist": (MnistEncoder, MnistDecoder), "celeba": (CelebaEncoder, CelebaDecoder)}
LOG_2PI = math.log(2 * math.pi)


def laplace_log_likelihood(x: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """log prod_k 1/(2 sigma) exp(-|x_k - mu_k| / sigma) (supplement Eq. 14). (B,C,H,W) -> (B,)"""
    d = x[0].numel()
    return -(x - mean).abs().flatten(1).sum(1) / scale - d * torch.log(2 * scale)


def gaussian_entropy(std: torch.Tensor) -> torch.Tensor:
    """H[N(mu, diag std^2)] = sum_i (log std_i + (1 + log 2 pi) / 2). (B,d) -> (B,)"""
    return (torch.log(std) + 0.5 * (1 + LOG_2PI)).sum(-1)


class VAE(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module, prior: Prior, init_scale: float = 0.5):
        super().__init__()
        self.encoder, self.decoder, self.prior = encoder, decoder, prior
        # The decoder's Laplace scale sigma: one learned scalar (supplement C), kept as a log.
        self.log_scale = nn.Parameter(torch.tensor(math.log(init_scale)))
        prior.bind_encoder(encoder)

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    @torch.no_grad()
    def floor_scale(self, mae: float) -> None:
        """The original code floors sigma at the batch mean absolute error: the Laplace
        maximum-likelihood scale given the reconstructions."""
        self.log_scale.clamp_(min=math.log(max(mae, 1e-6)))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def terms(self, x: torch.Tensor, prior_term: str = "training") -> dict[str, torch.Tensor]:
        """One reparameterised sample z ~ q(z|x); returns per-image terms (B,) and the MAE.

        prior_term: 'training' (what the autoencoder is trained on), 'bound' (the reported
        ELBO's term, Eq. 8's L'(z) for the generative priors) or 'exact' (log p(z)).
        """
        mean, std = self.encode(x)                    # (B,d_z) each
        z = mean + std * torch.randn_like(std)        # (B,d_z)
        x_mean = self.decode(z)                       # (B,C,H,W)
        if prior_term == "training":
            log_pz = self.prior.training_log_prob(z)
        elif prior_term == "bound":
            log_pz = self.prior.log_prob_bound(z)
        else:
            log_pz = self.prior.log_prob(z)
        rec = laplace_log_likelihood(x, x_mean, self.scale)
        entropy = gaussian_entropy(std)
        return {
            "rec_loglik": rec,
            "entropy": entropy,
            "log_prior": log_pz,
            "elbo": rec + entropy + log_pz,
            "mae": (x - x_mean).abs().mean().detach(),
            "z": z,
        }


def build_vae(settings: dict) -> VAE:
    """Build the VAE of one run from its resolved settings (see pipeline.config.run_settings)."""
    arch = settings["architecture"]
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    enc_cls, dec_cls = ARCHITECTURES[arch]
    d_z = settings["d_z"]
    encoder = enc_cls(d_z, std_activation=settings.get("std_activation", "relu"))
    prior = build_prior(settings["prior"], d_z, dict(settings.get("prior_options", {})))
    return VAE(encoder, dec_cls(d_z), prior, init_scale=settings.get("init_scale", 0.5))
