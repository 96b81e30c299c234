"""Hierarchical prior: the prior VAE with a fixed hyper prior p(t) = N(0, I).

p(z) = integral p(z|t) p(t) dt, with p(z|t) and q(t|z) from ``PriorVAE``. This is the
"hierarchical" baseline of the LaDDer paper and the base class of the LaDDer prior, which
replaces p(t) by a fitted Dirichlet-process mixture.

Densities (B = batch, S = samples of t):

- ``prior_elbo(z, S)``: L(z; alpha, beta) of Eq. 4 for one z: the mean over S reparameterised
  t ~ q(t|z) of log p(z|t) + log p(t) - log q(t|z). A lower bound on log p(z) in expectation.
- ``log_prob(z, K)``: importance-sampling estimate with a defensive proposal r(t|z),
  logsumexp_k [log p(z|t_k) + log p(t_k) - log r(t_k|z)] - log K. Consistent as K grows;
  biased low for finite K (Jensen) but exp() of it is unbiased for p(z). r is the mixture
  (1 - a) q(t|z) + a N(mean_t, diag(max(w std_t, f)^2)): q(t|z) alone is a poor proposal where
  its std sits at the ReLU head's 1e-3 floor (dead units: measured on trained models, ~38 % of
  the dimensions), because the true p(t|z) is much wider there and the estimate then misses
  mass (biased low by nats). The widened component (w = ``is_widen``, f = ``is_std_floor``,
  a = ``is_defensive``) bounds the weights in those dimensions. ``log_prob_diagnostics`` also
  returns the estimate from the first K/10 samples and the effective sample size.
- ``training_log_prob`` = ``prior_elbo(z, 1)``; ``log_prob_bound`` = ``prior_elbo(z,
  n_bound_samples)``; ``block_loss(z)`` = -mean ``prior_elbo(z.detach(), 1)`` (supplement B).
- ``sample(n)``: t ~ p(t), z = decode(t), the mean of p(z|t) (as the original generates).
"""

from __future__ import annotations

import math

import torch

from pipeline.layers import STD_ACTIVATION
from pipeline.priors.base import LOG_2PI, Option, OptionRelation, Prior, randn, register_prior, standard_normal_log_prob
from pipeline.priors.prior_vae import PriorVAE


@register_prior("hierarchical")
class HierarchicalPrior(Prior):
    """Prior VAE with p(t) = N(0, I). Options (defaults = paper scale):

    - ``d_t=8``: latent size of the prior VAE (per dataset in config: the headline numbers use
      8 / 16 / 32 on MNIST / Fashion / CelebA, the 2-D figures 2).
    - ``n_layers=5``, ``hidden=512``: hidden Linear+LeakyReLU(0.2) layers each side.
    - ``std_activation='softplus'``: q(t|z) std head, softplus + 1e-3 or the paper's 'relu' (ReLU + 1e-3).
    - ``sigma_min=0.05``, ``sigma_max=0.1``, ``sigma_init=0.1``: the clamped scalar std of p(z|t).
    - ``n_is_samples=1000``: K of the importance-sampling log p(z) used for evaluation.
    - ``is_chunk_size=100``: samples of t processed at once in ``log_prob`` (memory bound).
    - ``n_bound_samples=1``: samples of t in ``log_prob_bound`` (the reported ELBO term).
    - ``is_defensive=0.5``, ``is_widen=2.0``, ``is_std_floor=0.3``: the importance-sampling
      proposal (module docstring); ``is_defensive=0`` gives plain q(t|z).
    - ``warmup_epochs=0``, ``warmup_mode='standard_normal'``: the original's warm-up
      ('sg_pretraining', ``Prior.begin_epoch``): for W epochs the encoder is trained against
      N(0, I) and the prior VAE starts training in epoch W; 'prior_vae' keeps the prior VAE's
      term in the encoder's loss from the first step. Config sets W per dataset
      (``datasets.<d>.prior_options.warmup_epochs``: the original's 5 / 10 / 10).

    Not trained with the autoencoder: the trainer gives the prior VAE its own optimiser and
    calls ``block_loss`` (block coordinate ascent, supplement B); the encoder still gets
    gradients from ``training_log_prob`` in the data ELBO.
    """

    label = "Hierarchical"
    run_options = ("d_t",)
    scale_parameters = ("vae.sigma_in",)  # p(z|t)'s std: its own Adam in the original (training.prior_scale_learning_rate)
    option_specs = {
        "d_t": Option("int", minimum=1),
        "n_layers": Option("int", minimum=0),
        "hidden": Option("int", minimum=1),
        "std_activation": Option("str", choices=("relu", "softplus")),
        "sigma_min": Option("float", above=0),
        "sigma_max": Option("float", above=0),
        "sigma_init": Option("float"),  # clamped into [sigma_min, sigma_max]
        "n_is_samples": Option("int", minimum=1),
        "is_chunk_size": Option("int", minimum=1),
        "n_bound_samples": Option("int", minimum=1),
        "is_defensive": Option("float", minimum=0, below=1),
        "is_widen": Option("float", above=0),
        "is_std_floor": Option("float", minimum=0),
        "warmup_epochs": Option("int", minimum=0),
        "warmup_mode": Option("str", choices=("standard_normal", "prior_vae")),
    }
    option_relations = (OptionRelation("sigma_min", "<=", "sigma_max", why="the clamp range of p(z|t)'s std"),)

    exact = False
    trained_with_autoencoder = False

    def __init__(
        self,
        d_z: int,
        d_t: int = 8,
        n_layers: int = 5,
        hidden: int = 512,
        std_activation: str = STD_ACTIVATION,
        sigma_min: float = 0.05,
        sigma_max: float = 0.1,
        sigma_init: float = 0.1,
        n_is_samples: int = 1000,
        is_chunk_size: int = 100,
        n_bound_samples: int = 1,
        is_defensive: float = 0.5,
        is_widen: float = 2.0,
        is_std_floor: float = 0.3,
        warmup_epochs: int = 0,
        warmup_mode: str = "standard_normal",
    ):
        super().__init__(d_z)
        if warmup_mode not in ("standard_normal", "prior_vae"):
            raise ValueError(f"warmup_mode must be 'standard_normal' or 'prior_vae', got {warmup_mode!r}")
        self.warmup_epochs, self.warmup_mode = int(warmup_epochs), warmup_mode
        if not 0.0 <= is_defensive < 1.0:
            raise ValueError(f"is_defensive must be in [0, 1), got {is_defensive}")
        self.d_t = d_t
        self.is_defensive, self.is_widen, self.is_std_floor = float(is_defensive), float(is_widen), float(is_std_floor)
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

    def draw_proposal(self, mean_t: torch.Tensor, std_t: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """t ~ r(t|z), the defensive mixture of q(t|z) and its widened copy, and log r(t|z):
        (n, B, d_t), (n, B). Also the proposal of the joint (z, t) log-likelihood estimate."""
        wide = torch.maximum(std_t * self.is_widen, torch.full_like(std_t, self.is_std_floor))  # (B, d_t)
        eps = randn((n, *mean_t.shape), mean_t)  # (n, B, d_t)
        if self.is_defensive > 0:
            use_wide = torch.rand((n, mean_t.shape[0], 1), device=mean_t.device) < self.is_defensive  # (n, B, 1)
            t = mean_t + torch.where(use_wide, wide, std_t) * eps  # (n, B, d_t)
        else:
            t = mean_t + std_t * eps
        return t, self.proposal_log_prob(t, mean_t, std_t)

    def proposal_log_prob(self, t: torch.Tensor, mean_t: torch.Tensor, std_t: torch.Tensor) -> torch.Tensor:
        """log r(t|z): t (n, B, d_t) -> (n, B)"""
        def log_normal(std):
            return -0.5 * (((t - mean_t) / std).pow(2) + LOG_2PI).sum(-1) - std.log().sum(-1)  # (n, B)

        if self.is_defensive <= 0:
            return log_normal(std_t)
        wide = torch.maximum(std_t * self.is_widen, torch.full_like(std_t, self.is_std_floor))
        return torch.logaddexp(math.log1p(-self.is_defensive) + log_normal(std_t), math.log(self.is_defensive) + log_normal(wide))

    def log_prob(self, z: torch.Tensor, n_samples: int | None = None) -> torch.Tensor:
        """Importance-sampling log p(z) with K = n_samples or n_is_samples: (B, d_z) -> (B,)"""
        return self.log_prob_diagnostics(z, n_samples)["log_prob"]

    def log_prob_diagnostics(self, z: torch.Tensor, n_samples: int | None = None) -> dict[str, torch.Tensor]:
        """The IS estimate at K, the estimate from its first K/10 samples, and the effective
        sample size (sum w)^2 / sum w^2, each (B,)."""
        k_total = int(n_samples or self.n_is_samples)
        mean_t, std_t = self.vae.encode(z)  # (B, d_t), (B, d_t)
        log_w = []
        for start in range(0, k_total, self.is_chunk_size):
            k = min(self.is_chunk_size, k_total - start)
            t, log_r = self.draw_proposal(mean_t, std_t, k)  # (k, B, d_t), (k, B)
            log_w.append(self.vae.log_p_z_given_t(z, t) + self.hyper_log_prob(t) - log_r)  # (k, B)
        log_w = torch.cat(log_w)  # (K, B)
        k_tenth = max(1, k_total // 10)
        return {
            "log_prob": torch.logsumexp(log_w, dim=0) - math.log(k_total),
            "log_prob_tenth": torch.logsumexp(log_w[:k_tenth], dim=0) - math.log(k_tenth),
            "ess": torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0)),
        }

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
