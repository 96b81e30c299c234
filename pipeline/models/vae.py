"""The VAE: encoder q(z|x), Laplace decoder p(x|z) with a learned scalar scale, and a prior p(z).

Every density term is per image, in nats, summed over pixels or latent dimensions:

    ELBO = E_q[log p(x|z)] + H[q(z|x)] + E_q[log p(z)]          (LaDDer Eq. 2: terms 1, 2, 3)

with the Laplace likelihood of supplement C (Eq. 14) on pixels in [0, 1].
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from pipeline.layers import STD_ACTIVATION
from pipeline.models.celeba import CelebaDecoder, CelebaEncoder
from pipeline.models.mnist import MnistCodeDecoder, MnistCodeEncoder, MnistDecoder, MnistEncoder
from pipeline.priors import Prior, build_prior

ARCHITECTURES = {"mnist": (MnistEncoder, MnistDecoder), "mnist_code": (MnistCodeEncoder, MnistCodeDecoder),
                 "celeba": (CelebaEncoder, CelebaDecoder)}
LOG_2PI = math.log(2 * math.pi)
MIN_SCALE = 1e-3  # keeps sigma (and 1/sigma) finite on a perfect reconstruction


def laplace_log_likelihood(x: torch.Tensor, mean: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """log prod_k 1/(2 sigma) exp(-|x_k - mu_k| / sigma) (supplement Eq. 14). (B,C,H,W) -> (B,)"""
    d = x[0].numel()
    return -(x - mean).abs().flatten(1).sum(1) / scale - d * torch.log(2 * scale)


def gaussian_entropy(std: torch.Tensor) -> torch.Tensor:
    """H[N(mu, diag std^2)] = sum_i (log std_i + (1 + log 2 pi) / 2). (B,d) -> (B,)"""
    return (torch.log(std) + 0.5 * (1 + LOG_2PI)).sum(-1)


class VAE(nn.Module):
    """``scale_mode`` chooses how the Laplace scale sigma is set during training:

    - 'mle' (default): sigma is the batch mean absolute error, its maximum-likelihood value
      given the reconstructions (supplement C, following Lin et al. 2019), used in that step's
      loss without gradient and stored for evaluation;
    - 'learned': a scalar trained by the ELBO and floored at the batch MAE (the original code).
      Measured here: from sigma = 0.5 Adam needs thousands of steps to bring it down to the
      MAE (~0.13 on MNIST), and meanwhile the weak reconstruction term lets the model settle on
      the all-black median image.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, prior: Prior, init_scale: float = 0.5, scale_mode: str = "mle"):
        super().__init__()
        if scale_mode not in ("mle", "learned"):
            raise ValueError(f"decoder_scale must be 'mle' or 'learned', got {scale_mode!r}")
        self.encoder, self.decoder, self.prior = encoder, decoder, prior
        self.scale_mode = scale_mode
        # The decoder's Laplace scale sigma: one scalar (supplement C), kept as a log.
        self.log_scale = nn.Parameter(torch.tensor(math.log(init_scale)), requires_grad=scale_mode == "learned")
        prior.bind_encoder(encoder)

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    @torch.no_grad()
    def update_scale(self, mae: torch.Tensor | float) -> None:
        """After a training step: 'learned' floors sigma at the batch MAE (original code);
        'mle' stores the batch MAE itself. Stays on the device (no host sync)."""
        log_mae = torch.as_tensor(mae, device=self.log_scale.device).clamp_min(MIN_SCALE).log()
        if self.scale_mode == "mle":
            self.log_scale.copy_(log_mae)
        else:
            self.log_scale.copy_(torch.maximum(self.log_scale, log_mae))

    # Mixed precision (training.mixed_precision: bf16) covers the two networks only: their outputs
    # return as float32, so the Laplace likelihood, the entropy and every prior density are
    # computed in float32 (log-densities summed over 784 or 49,152 pixels lose too much in bf16).
    amp_dtype: torch.dtype | None = None

    def _amp(self, device: torch.device):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.amp_dtype)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self._amp(x.device):
            mean, std = self.encoder(x)
        return mean.float(), std.float()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        with self._amp(z.device):
            return self.decoder(z).float()

    def terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The training objective's terms for one reparameterised z ~ q(z|x): per image (B,),
        with the prior's training term for log p(z) (Eq. 8's L'(z) for the generative priors;
        pipeline.evaluation computes the reported metrics)."""
        mean, std = self.encode(x)                    # (B,d_z) each
        z = mean + std * torch.randn_like(std)        # (B,d_z)
        x_mean = self.decode(z)                       # (B,C,H,W)
        log_pz = self.prior.loss_log_prob(z)  # N(0, I) during the original's warm-up
        mae = (x - x_mean).abs().mean()
        scale = mae.detach().clamp_min(MIN_SCALE) if (self.training and self.scale_mode == "mle") else self.scale
        rec = laplace_log_likelihood(x, x_mean, scale)
        entropy = gaussian_entropy(std)
        return {
            "rec_loglik": rec,
            "entropy": entropy,
            "log_prior": log_pz,
            "elbo": rec + entropy + log_pz,
            "mae": mae.detach(),
            "z": z,
        }


def build_vae(settings: dict) -> VAE:
    """Build the VAE of one run from its resolved settings (see pipeline.config.run_settings)."""
    arch = settings["architecture"]
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    enc_cls, dec_cls = ARCHITECTURES[arch]
    d_z = settings["d_z"]
    encoder = enc_cls(d_z, std_activation=settings.get("std_activation", STD_ACTIVATION))
    prior = build_prior(settings["prior"], d_z, dict(settings.get("prior_options", {})))
    decoder = dec_cls(d_z, output=settings.get("decoder_output", "linear"))
    vae = VAE(encoder, decoder, prior, init_scale=settings.get("init_scale", 0.5), scale_mode=settings.get("decoder_scale", "mle"))
    precision = settings.get("mixed_precision", "none")
    if precision not in ("none", "bf16"):
        raise ValueError(f"training.mixed_precision must be 'none' or 'bf16', got {precision!r}")
    vae.amp_dtype = torch.bfloat16 if precision == "bf16" else None
    return vae
