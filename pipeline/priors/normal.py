"""The standard normal prior p(z) = N(0, I) of the original VAE (Kingma & Welling 2014)."""

from __future__ import annotations

import torch

from pipeline.priors.base import Prior, register_prior, standard_normal_log_prob


@register_prior("normal")
class NormalPrior(Prior):
    label = "Normal"

    def log_prob(self, z: torch.Tensor, n_samples: int | None = None) -> torch.Tensor:
        return standard_normal_log_prob(z)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = generator.device if generator is not None else torch.device("cpu")
        return torch.randn(n, self.d_z, generator=generator, device=device)  # no parameters: lives where the generator does
