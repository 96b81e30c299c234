"""The GMM prior of the LaDDer paper's baselines: p(z) = sum_m w_m N(z; mu_m, Sigma_m), refitted by EM.

The gradient-trained mixture of the VampPrior paper is a prior of its own (``mog.py``); the
mixture mathematics lives in ``mixture.py``.
"""

from __future__ import annotations

import functools

import torch

from pipeline.priors.base import Option, OptionRelation, Prior, register_prior
from pipeline.priors.mixture import GaussianMixtureBuffers


@register_prior("gmm")
class GMMPrior(Prior):
    """Gaussian-mixture prior refitted by EM between epochs (the LaDDer code's GMM baseline).

    Options (defaults = the paper-scale choice):

    - ``n_components=50``: M, as the LaDDer code.
    - A scikit-learn ``GaussianMixture`` (full covariance, ``warm_start=True``) is refitted by EM
      in ``fit(z, epoch)`` at every epoch end on ``fit_samples`` posterior samples; no gradient
      reaches the mixture. Before the first fit the prior is N(0, I).
    - ``fit_samples=2000``: posterior samples per refit.
    - ``covariance_jitter=0.01``: added to the fitted covariances. The original adds 0.01 I in
      the loss only; we use the same jittered density for training, evaluation and sampling, so
      the reported numbers belong to the prior that was trained.
    - ``max_iter=100``, ``reg_covar=1e-6``: scikit-learn's EM settings (its defaults).
    - ``seed=0``: the refit at epoch e uses ``random_state = seed + e`` (k-means init of the first fit).
    """

    label = "GMM"
    run_options = ("seed",)
    # scikit-learn's GaussianMixture bounds (n_components, max_iter >= 1, reg_covar >= 0); EM needs
    # at least one sample per component
    option_specs = {
        "n_components": Option("int", minimum=1),
        "fit_samples": Option("int", minimum=1),
        "covariance_jitter": Option("float", minimum=0),
        "max_iter": Option("int", minimum=1),
        "reg_covar": Option("float", minimum=0),
        "seed": Option("int", minimum=0),
    }
    option_relations = (OptionRelation("n_components", "<=", "fit_samples", why="EM fits the components to fit_samples points"),)
    exact = True

    def __init__(self, d_z: int, n_components: int = 50, fit_samples: int = 2000, covariance_jitter: float = 0.01,
                 max_iter: int = 100, reg_covar: float = 1e-6, seed: int = 0):
        super().__init__(d_z)
        from sklearn.mixture import GaussianMixture

        if n_components < 1 or fit_samples < n_components:
            raise ValueError(f"gmm: need 1 <= n_components <= fit_samples, got n_components={n_components}, fit_samples={fit_samples}")
        self.n_components = n_components
        self.seed = int(seed)
        self.fit_samples = int(fit_samples)
        factory = functools.partial(GaussianMixture, n_components=n_components, covariance_type="full", warm_start=True,
                                    max_iter=max_iter, reg_covar=reg_covar)
        self.mixture = GaussianMixtureBuffers(n_components, d_z, factory, covariance_jitter)

    def log_prob(self, z: torch.Tensor, n_samples: int | None = None) -> torch.Tensor:
        """(B, d_z) -> (B,)"""
        return self.mixture.log_prob(z)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, d_z)"""
        return self.mixture.sample(n, generator)

    def fit(self, z: torch.Tensor, epoch: int) -> dict:
        return self.mixture.fit(z, self.seed + int(epoch))

    def fit_summary(self) -> dict:
        return self.mixture.summary()

    def health(self) -> list[str]:
        return super().health() + self.mixture.problems()
