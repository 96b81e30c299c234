"""Hierarchical prior: the prior VAE with a fixed hyper prior p(t) = N(0, I).

p(z) = integral p(z|t) p(t) dt, with p(z|t) and q(t|z) from ``PriorVAE``. This is the
"hierarchical" baseline of the LaDDer paper and the base class of the LaDDer prior, which
replaces p(t) by a fitted Dirichlet-process mixture.

Densities (B = batch, S = samples of t):

- ``prior_elbo(z, S)``: L(z; alpha, beta) of Eq. 4 for one z: the mean over S reparameterised
  t ~ q(t|z) of log p(z|t) + log p(t) - log q(t|z). A lower bound on log p(z) in expectation.
- ``log_prob(z, K)``: importance-sampling estimate with proposal q(t|z),
  logsumexp_k [log p(z|t_k) + log p(t_k) - log q(t_k|z)] - log K. Consistent as K grows;
  biased low for finite K (Jensen) but exp() of it is unbiased for p(z).
- ``training_log_prob`` = ``prior_elbo(z, 1)``; ``log_prob_bound`` = ``prior_elbo(z,
  n_bound_samples)``; ``block_loss(z)`` = -mean ``prior_elbo(z.detach(), 1)`` (supplement B).
- ``sample(n)``: t ~ p(t), z = decode(t), the mean of p(z|t) (as the original generates).
"""

from __future__ import annotations

import math

import torch

from pipeline.priors.base import LOG_2PI, Prior, randn, register_prior, standard_normal_log_prob
from pipeline.priors.prior_vae import PriorVAE


@register_prior("hierarchical")
class HierarchicalPrior(Prior):
    """Prior VAE with p(t) = N(0, I). Options (defaults = paper scale):

    - ``d_t=8``: latent size of the prior VAE (per dataset in config: the headline numbers use
      8 / 16 / 32 on MNIST / Fashion / CelebA, the 2-D figures 2).
    - ``n_layers=5``, ``hidden=512``: hidden Linear+LeakyReLU(0.2) layers each side.
    - ``std_activation='relu'``: q(t|z) std head, ReLU + 1e-3 (paper) or 'softplus'.
    - ``sigma_min=0.05``, ``sigma_max=0.1``, ``sigma_init=0.1``: the clamped scalar std of p(z|t).
    - ``n_is_samples=1000``: K of the importance-sampling log p(z) used for evaluation.
    - ``is_chunk_size=100``: samples of t processed at once in ``log_prob`` (memory bound).
    - ``n_bound_samples=1``: samples of t in ``log_prob_bound`` (the reported ELBO term).

    Not trained with the autoencoder: the trainer gives the prior VAE its own optimiser and
    calls ``block_loss`` (block coordinate ascent, supplement B); the encoder still gets
    gradients from ``training_log_prob`` in the data ELBO.
    """

    run_options = ("d_t",)

    exact = False
    trained_with_autoencoder = False

    def __init__(
        self,
        d_z: int,
        d_t: int = 8,
        n_layers: int = 5,
        hidden: int = 512,
        std_activation: str = "relu",
        sigma_min: float = 0.05,
        sigma_max: float = 0.1,
        sigma_init: float = 0.1,
        n_is_samples: int = 1000,
        is_chunk_size: int = 100,
        n_bound_samples: int = 1,
    ):
        super().__init__(d_z)
        self.d_t = d_t
        self.n_is_samples = int(n_is_samples)
        self.is_chunk_size = int(is_chunk_size)
        self.n_bound_samples = int(n_bound_samples)
        self.vae = PriorVAE(d_z, d_t, n_layers, hidden, std_activation, sigma_min, sigma_max, sigma_init)

    # -- hyper prior (overridden by LaDDer) ----------------------------------------------
    def hyper_log_prob(self, t: torch.Tensor) -> torch.Tensor:
        """log p(t): (..., d_t) -> (...)"""
        return standard_normal_log_prob(t)

    def sample_t(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """t ~ p(t): (n, d_t)"""
        return randn((n, self.d_t), self.vae.sigma_in, generator)

    def expected_hyper_log_prob(self, t: torch.Tensor, mean_t: torch.Tensor, std_t: torch.Tensor) -> torch.Tensor:
        """The E_q(t|z)[log p(t)] term of the ELBO, estimated from the shared samples t
        (S, B, d_t) of q(t|z) = N(mean_t, std_t^2) (both (B, d_t)) -> (B,)."""
        return self.hyper_log_prob(t).mean(0)

    # -- densities -----------------------------------------------------------------------
    def _draw_t(self, mean_t: torch.Tensor, std_t: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised t ~ q(t|z) and log q(t|z): (n, B, d_t), (n, B)."""
        eps = randn((n, *mean_t.shape), mean_t)  # (n, B, d_t)
        t = mean_t + std_t * eps  # (n, B, d_t)
        log_q = -0.5 * (eps.pow(2) + LOG_2PI).sum(-1) - std_t.log().sum(-1)  # (n, B)
        return t, log_q

    def prior_elbo(self, z: torch.Tensor, n_samples: int = 1) -> torch.Tensor:
        """L(z; alpha, beta) of Eq. 4 from n_samples reparameterised t: (B, d_z) -> (B,)"""
        mean_t, std_t = self.vae.encode(z)  # (B, d_t), (B, d_t)
        t, log_q = self._draw_t(mean_t, std_t, n_samples)  # (S, B, d_t), (S, B)
        log_p_z_t = self.vae.log_p_z_given_t(z, t)  # (S, B)
        return (log_p_z_t - log_q).mean(0) + self.expected_hyper_log_prob(t, mean_t, std_t)  # (B,)

    def log_prob(self, z: torch.Tensor, n_samples: int | None = None) -> torch.Tensor:
        """Importance-sampling log p(z) with K = n_samples or n_is_samples: (B, d_z) -> (B,)"""
        k_total = int(n_samples or self.n_is_samples)
        mean_t, std_t = self.vae.encode(z)  # (B, d_t), (B, d_t)
        parts = []
        for start in range(0, k_total, self.is_chunk_size):
            k = min(self.is_chunk_size, k_total - start)
            t, log_q = self._draw_t(mean_t, std_t, k)  # (k, B, d_t), (k, B)
            log_w = self.vae.log_p_z_given_t(z, t) + self.hyper_log_prob(t) - log_q  # (k, B)
            parts.append(torch.logsumexp(log_w, dim=0))  # (B,)
        return torch.logsumexp(torch.stack(parts), dim=0) - math.log(k_total)  # (B,)

    def log_prob_bound(self, z: torch.Tensor) -> torch.Tensor:
        return self.prior_elbo(z, self.n_bound_samples)

    def training_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.prior_elbo(z, 1)

    def block_loss(self, z: torch.Tensor) -> torch.Tensor:
        return -self.prior_elbo(z.detach(), 1).mean()

    def after_step(self) -> None:
        # sigma_in is clipped like the original's; project it so it keeps receiving gradient.
        self.vae.clamp_sigma_()

    # -- generation ----------------------------------------------------------------------
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mean of p(z|t), t ~ p(t): (n, d_z)"""
        return self.vae.decode(self.sample_t(n, generator))
