"""LaDDer prior (Lin & Clark 2020): the prior VAE with a Dirichlet-process mixture hyper prior.

p(z) = integral p(z|t) p(t) dt, p(t) = sum_m w_m N(t; mu_m, Sigma_m) fitted between epochs by
scikit-learn's variational ``BayesianGaussianMixture`` (Sec. 3.2) to t ~ q(t|z) drawn for
posterior samples z (the aggregate hyper posterior, supplement A). As the original code,
log p(t) uses the fitted point estimates (weights_, means_, covariances_), held as buffers: no
gradient reaches the mixture, the paper's bound L(t; xi) of Eq. 6 is not used in the loss.
Starts as N(0, I) (supplement B) and stays so until the first refit, at the end of epoch
``warmup_epochs`` (the original's 'sg_pretraining'; the warm-up itself is the hierarchical prior's).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from pipeline.priors.base import Option, register_prior
from pipeline.priors.base import OptionRelation
from pipeline.priors.mixture import GaussianMixtureBuffers
from pipeline.priors.base import randn
from pipeline.priors.hierarchical import HierarchicalPrior


@register_prior("ladder")
class LadderPrior(HierarchicalPrior):
    """Options: every ``HierarchicalPrior`` option (d_t=8, n_layers=5, hidden=512,
    std_activation='softplus', sigma_min=0.05, sigma_max=0.1, sigma_init=0.1, n_is_samples=1000,
    is_chunk_size=100, n_bound_samples=1), and:

    - ``n_components=50``: mixture components (truncation level of the Dirichlet process).
    - ``weight_concentration_prior_type='dirichlet_process'``, ``weight_concentration_prior=0.1``:
      the paper's DP mixture. The original code trained against a finite-Dirichlet fit
      ('dirichlet_distribution', same concentration) and used a DP fit on ~20k samples only for
      sampling and plots; we use one DP mixture for both.
    - ``mean_prior=0.0``, ``mean_precision_prior=1.0``, ``covariance_prior=1.0``,
      ``degrees_of_freedom_prior=None``: the priors of the mixture's parameters, the paper's
      Eq. 6 by default: mu ~ N(0, I), Sigma ~ Wishart(d_t, I) (scikit-learn's Wishart prior on
      the precision with covariance_prior x I and d_t degrees of freedom; None = d_t). A
      ``null`` mean or covariance prior takes scikit-learn's data-dependent default instead
      (the data mean / covariance of the t samples, the original code's setting).
    - ``max_iter=100``, ``reg_covar=1e-6``: scikit-learn's variational-inference settings
      (its defaults); ``covariance_type`` is 'full'.
    - ``refit='cold'``: each refit starts afresh (k-means initialisation seeded by ``seed +
      epoch``); 'warm' starts from the previous epoch's fit, as the original code. Warm refits
      collapse (issue 18; experiments/mixture_refit): components that the previous fit placed
      where t no longer is get no responsibility, their weights go to the concentration prior
      and they never come back, so after the first refit at d_t = 16 one or two components held
      all the weight.
    - ``covariance_jitter=0.0``: added to the fitted covariances in log p(t) and sampling.
    - ``fit_samples=2000``: posterior samples z the trainer passes to ``fit`` (one t each).
    - ``warmup_epochs`` (the hierarchical prior's option, the original's 'sg_pretraining': 5 on
      MNIST, 10 on Fashion-MNIST and CelebA). ``fit(z, epoch)`` takes the 0-based index
      of the epoch that just ended (the trainer's loop variable) and keeps N(0, I) while
      ``epoch + 1 < warmup_epochs``: the first mixture is fitted at the end of epoch
      ``warmup_epochs`` (1-based) and used from the next one. 0 and 1 both mean: fit after the
      first epoch.
    - ``n_hyper_samples=100``: the E_q(t|z)[log p(t)] term of the prior ELBO is averaged over
      this many fresh t ~ q(t|z) (as the original); the other terms use the ELBO's own samples.
      0 means: use the ELBO's samples for this term too.
    - ``seed=0``: the refit at epoch e draws its t and seeds scikit-learn with ``seed + e``.
    """

    label = "Ours (LaDDer)"
    short_label = "LaDDer"
    run_options = ("d_t", "seed")
    # the hierarchical prior's options plus the mixture's, with scikit-learn's
    # BayesianGaussianMixture bounds (weight_concentration_prior > 0, max_iter >= 1, ...)
    option_specs = {
        **HierarchicalPrior.option_specs,
        "n_components": Option("int", minimum=1),
        "weight_concentration_prior_type": Option("str", choices=("dirichlet_process", "dirichlet_distribution")),
        "weight_concentration_prior": Option("float", above=0, nullable=True),
        "mean_prior": Option("float", nullable=True),
        "mean_precision_prior": Option("float", above=0, nullable=True),
        "covariance_prior": Option("float", above=0, nullable=True),
        "degrees_of_freedom_prior": Option("float", nullable=True),
        "max_iter": Option("int", minimum=1),
        "reg_covar": Option("float", minimum=0),
        "refit": Option("str", choices=("cold", "warm")),
        "covariance_jitter": Option("float", minimum=0),
        "fit_samples": Option("int", minimum=1),
        "n_hyper_samples": Option("int", minimum=0),
        "seed": Option("int", minimum=0),
    }
    option_relations = HierarchicalPrior.option_relations + (
        OptionRelation("n_components", "<=", "fit_samples", why="the mixture is fitted to fit_samples points"),
        OptionRelation("degrees_of_freedom_prior", ">", "d_t", offset=-1, why="scikit-learn's Wishart prior"),
    )

    def __init__(
        self,
        d_z: int,
        n_components: int = 50,
        weight_concentration_prior_type: str = "dirichlet_process",
        weight_concentration_prior: float = 0.1,
        mean_prior: float | None = 0.0,
        mean_precision_prior: float = 1.0,
        covariance_prior: float | None = 1.0,
        degrees_of_freedom_prior: float | None = None,
        max_iter: int = 100,
        reg_covar: float = 1e-6,
        refit: str = "cold",
        covariance_jitter: float = 0.0,
        fit_samples: int = 2000,
        n_hyper_samples: int = 100,
        seed: int = 0,
        **hierarchical_options,
    ):
        super().__init__(d_z, **hierarchical_options)
        from sklearn.mixture import BayesianGaussianMixture

        factory = functools.partial(
            BayesianGaussianMixture,
            n_components=n_components,
            covariance_type="full",
            weight_concentration_prior_type=weight_concentration_prior_type,
            weight_concentration_prior=weight_concentration_prior,
            # Eq. 6: mu ~ N(mean_prior 1, I / mean_precision_prior), Sigma ~ Wishart(dof, covariance_prior I)
            mean_prior=None if mean_prior is None else [float(mean_prior)] * self.d_t,
            mean_precision_prior=mean_precision_prior,
            covariance_prior=None if covariance_prior is None else (float(covariance_prior) * np.eye(self.d_t)),
            degrees_of_freedom_prior=float(self.d_t if degrees_of_freedom_prior is None else degrees_of_freedom_prior),
            max_iter=max_iter,
            reg_covar=reg_covar,
            warm_start=refit == "warm",
        )
        self.mixture = GaussianMixtureBuffers(n_components, self.d_t, factory, covariance_jitter)
        self.fit_samples = int(fit_samples)
        self.n_hyper_samples = int(n_hyper_samples)
        self.seed = int(seed)

    # -- hyper prior ---------------------------------------------------------------------
    def hyper_log_prob(self, t: torch.Tensor) -> torch.Tensor:
        """log p(t) under the fitted mixture: (..., d_t) -> (...)"""
        return self.mixture.log_prob(t)

    def sample_t(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """t ~ p(t): (n, d_t)"""
        return self.mixture.sample(n, generator)

    def expected_hyper_log_prob(self, t: torch.Tensor, mean_t: torch.Tensor, std_t: torch.Tensor) -> torch.Tensor:
        """E_q(t|z)[log p(t)] from n_hyper_samples fresh reparameterised t: -> (B,)"""
        if self.n_hyper_samples <= 0:
            return super().expected_hyper_log_prob(t, mean_t, std_t)
        t_h, _ = self._draw_t(mean_t, std_t, self.n_hyper_samples)  # (H, B, d_t)
        return self.hyper_log_prob(t_h).mean(0)  # (B,)

    # -- between-epoch refit -------------------------------------------------------------
    @torch.no_grad()
    def fit(self, z: torch.Tensor, epoch: int) -> dict:
        """Refit p(t) to one t ~ q(t|z) per given z (N, d_z), unless still warming up."""
        if epoch + 1 < self.warmup_epochs:
            return {"fitted": False}
        mean_t, std_t = self.vae.encode(z.detach())  # (N, d_t), (N, d_t)
        device = mean_t.device
        g = torch.Generator(device=device).manual_seed(self.seed + int(epoch))
        t = mean_t + std_t * randn(tuple(mean_t.shape), mean_t, g)  # (N, d_t)
        return {"fitted": True, **self.mixture.fit(t, self.seed + int(epoch))}

    def fit_summary(self) -> dict:
        return self.mixture.summary()

    def health(self) -> list[str]:
        return super().health() + self.mixture.problems(collapse_threshold=0.99)
