"""The prior VAE of LaDDer (Sec. 3.1, supplement E): q(t|z) and p(z|t) as MLPs.

Architecture (docs/original-code.md): each side is ``n_layers`` hidden
Linear(``hidden``) + LeakyReLU(0.2) layers; the encoder has a mean head (Linear) and a std
head (Linear -> ReLU + 1e-3); the decoder ends in a Linear mean; p(z|t) = N(z; mean(t),
sigma^2 I) with one learned scalar sigma (``sigma_in``) clamped to [0.05, 0.1]. With
``n_layers=0`` both maps are linear (z -> t affine heads, t -> z affine decoder).

Linear layers use PyTorch's default initialisation (the TF original used Glorot uniform).
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.layers import STD_ACTIVATION, StdHead
from pipeline.priors.base import LOG_2PI

LEAKY_SLOPE = 0.2


def _mlp(d_in: int, hidden: int, n_layers: int) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(n_layers):
        layers += [nn.Linear(d, hidden), nn.LeakyReLU(LEAKY_SLOPE)]
        d = hidden
    return nn.Sequential(*layers), d


class PriorVAE(nn.Module):
    """z (d_z) -> t (d_t) -> z. See the module docstring for the options.

    ``std_activation``: 'relu' (the paper's ReLU + 1e-3) or 'softplus' (softplus + 1e-3).
    ``sigma_init`` is clamped into [sigma_min, sigma_max] at construction. ``sigma()`` clamps
    ``sigma_in`` like the original's clip: no gradient once outside the bounds; trainers may
    call ``clamp_sigma_()`` after each step to keep the parameter itself inside.
    """

    def __init__(
        self,
        d_z: int,
        d_t: int,
        n_layers: int = 5,
        hidden: int = 512,
        std_activation: str = STD_ACTIVATION,
        sigma_min: float = 0.05,
        sigma_max: float = 0.1,
        sigma_init: float = 0.1,
    ):
        super().__init__()
        if not 0 < sigma_min <= sigma_max:
            raise ValueError(f"need 0 < sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
        self.d_z, self.d_t = d_z, d_t
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)
        self.enc_body, h = _mlp(d_z, hidden, n_layers)
        self.enc_mean = nn.Linear(h, d_t)
        self.enc_std = StdHead(h, d_t, std_activation)
        self.dec_body, h = _mlp(d_t, hidden, n_layers)
        self.dec_mean = nn.Linear(h, d_z)
        init = min(max(float(sigma_init), self.sigma_min), self.sigma_max)
        self.sigma_in = nn.Parameter(torch.tensor(init))  # ()

    def encode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(t|z): (..., d_z) -> mean (..., d_t), std (..., d_t)"""
        h = self.enc_body(z)  # (..., hidden)
        return self.enc_mean(h), self.enc_std(h)  # (..., d_t) each

    def decode(self, t: torch.Tensor) -> torch.Tensor:
        """mean of p(z|t): (..., d_t) -> (..., d_z)"""
        return self.dec_mean(self.dec_body(t))

    def sigma(self) -> torch.Tensor:
        """the scalar std of p(z|t), clamped: ()"""
        return self.sigma_in.clamp(self.sigma_min, self.sigma_max)

    @torch.no_grad()
    def clamp_sigma_(self) -> None:
        self.sigma_in.clamp_(self.sigma_min, self.sigma_max)

    def log_p_z_given_t(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """log N(z; decode(t), sigma^2 I): z (..., d_z), t (..., d_t), broadcast -> (...)"""
        mean = self.decode(t)  # (..., d_z)
        sigma = self.sigma()  # ()
        sq = ((z - mean) / sigma).pow(2).sum(-1)  # (...)
        return -0.5 * (sq + self.d_z * LOG_2PI) - self.d_z * torch.log(sigma)
