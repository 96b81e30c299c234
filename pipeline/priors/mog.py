"""The gradient-trained mixture-of-Gaussians prior (the VampPrior paper's MoG baseline).

p(z) = sum_m w_m N(z; mu_m, diag(exp(log_var_m))): means, diagonal log-variances and weight logits
are parameters trained by the ELBO together with the autoencoder. Tomczak & Welling used
uniform weights 1/K; we learn the weights (logits start at 0, i.e. uniform).
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.priors.base import Option, Prior, register_prior
from pipeline.priors.mixture import mixture_log_prob, mixture_sample


@register_prior("mog")
class GradientMixturePrior(Prior):
    """Options: ``n_components=50``; ``init_std=1.0`` (initial means ~ N(0, init_std^2 I), log-variances
    0); ``seed`` (filled from the run) seeds the initial means."""

    label = "MoG (gradient)"
    run_options = ("seed",)
    option_specs = {"n_components": Option("int", minimum=1), "init_std": Option("float", minimum=0), "seed": Option("int", minimum=0)}
    exact = True
    trained_with_autoencoder = True  # joins the autoencoder's optimiser; no refit between epochs

    def __init__(self, d_z: int, n_components: int = 50, init_std: float = 1.0, seed: int = 0):
        super().__init__(d_z)
        if n_components < 1:
            raise ValueError(f"mog: n_components must be >= 1, got {n_components}")
        g = torch.Generator().manual_seed(int(seed))
        self.means = nn.Parameter(torch.randn(n_components, d_z, generator=g) * init_std)  # (M, d)
        self.log_var = nn.Parameter(torch.zeros(n_components, d_z))  # (M, d)
        self.weight_logits = nn.Parameter(torch.zeros(n_components))  # (M,)

    def log_prob(self, z: torch.Tensor, n_samples: int | None = None) -> torch.Tensor:
        """(B, d_z) -> (B,)"""
        log_w = torch.log_softmax(self.weight_logits, dim=0)  # (M,)
        return mixture_log_prob(z, log_w, self.means, scale_diag=torch.exp(0.5 * self.log_var))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, d_z)"""
        w = torch.softmax(self.weight_logits, dim=0)  # (M,)
        return mixture_sample(n, w, self.means, scale_diag=torch.exp(0.5 * self.log_var), generator=generator)
