"""Gaussian mixtures: the one place where a mixture's density, sampling and refitting are written.

Not a prior itself; the priors that use it:

- ``mixture_log_prob`` / ``mixture_sample``: functional forms (full ``scale_tril`` or diagonal
  ``scale_diag``), used by the gradient-trained mixture prior (``mog.py``) with its parameters;
- ``GaussianMixtureBuffers``: a mixture stored as buffers (weights, means, Cholesky factors),
  refitted between epochs by a scikit-learn estimator that it owns and checkpoints. The EM GMM
  prior (``gmm.py``, z-space) and the LaDDer hyper prior (``ladder.py``, t-space,
  Dirichlet-process mixture) both use it.

Zero mixture weights are allowed (log 0 = -inf drops out of the log-sum-exp, with zero gradient):
before the first fit the mixture is N(0, I) written as component 0 with weight 1, the others 0.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from pipeline.priors.base import LOG_2PI, generator_device, randn


# A component is "active" above this weight (the original code's 1e-2 for its fitted mixtures).
ACTIVE_WEIGHT = 1e-2
# A mixture with this many active components or fewer is reported as collapsed (logs, tables).
COLLAPSED_COMPONENTS = 2


# -- functional mixture density and sampling ------------------------------------------------
def mixture_log_prob(
    x: torch.Tensor,
    log_weights: torch.Tensor,
    means: torch.Tensor,
    scale_tril: torch.Tensor | None = None,
    scale_diag: torch.Tensor | None = None,
) -> torch.Tensor:
    """log sum_m w_m N(x; mu_m, S_m S_m^T) for x (..., d) -> (...).

    Give exactly one of ``scale_tril`` (M, d, d) lower-triangular with positive diagonal, or
    ``scale_diag`` (M, d) positive (diagonal covariance). ``log_weights`` (M,) may hold -inf.
    """
    if (scale_tril is None) == (scale_diag is None):
        raise ValueError("mixture_log_prob: give exactly one of scale_tril and scale_diag")
    d = x.shape[-1]
    m = means.shape[0]
    batch_shape = x.shape[:-1]
    flat = x.reshape(-1, d)  # (N, d)
    if scale_diag is not None:
        y = (flat[:, None, :] - means) / scale_diag  # (N, M, d)
        half_log_det = scale_diag.log().sum(-1)  # (M,)
    else:
        # y_m = S_m^{-1} (x - mu_m) for every component as one matrix product with the
        # stacked inverse factors (fast on CPU and GPU; S^{-1} is (M, d, d), cheap to form).
        eye = torch.eye(d, dtype=scale_tril.dtype, device=scale_tril.device)  # (d, d)
        inv = torch.linalg.solve_triangular(scale_tril, eye.expand(m, d, d), upper=False)  # (M, d, d)
        inv_flat = inv.reshape(m * d, d)  # (M*d, d)
        shift = (inv @ means.unsqueeze(-1)).reshape(m * d)  # (M*d,)
        y = (flat @ inv_flat.T - shift).reshape(-1, m, d)  # (N, M, d)
        half_log_det = scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # (M,)
    log_comp = -0.5 * (y.pow(2).sum(-1) + d * LOG_2PI) - half_log_det  # (N, M)
    return torch.logsumexp(log_comp + log_weights, dim=-1).reshape(batch_shape)  # (...)


def mixture_sample(
    n: int,
    weights: torch.Tensor,
    means: torch.Tensor,
    scale_tril: torch.Tensor | None = None,
    scale_diag: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """n draws from the mixture -> (n, d): component k ~ Cat(w), then mu_k + S_k eps.

    Written by hand rather than with ``torch.distributions`` because its ``sample`` takes no
    ``torch.Generator``; ``GaussianMixtureBuffers.distribution()`` gives the equivalent
    ``MixtureSameFamily`` (the tests check both agree). Random numbers are drawn on the
    generator's device and moved to the mixture's device.
    """
    if (scale_tril is None) == (scale_diag is None):
        raise ValueError("mixture_sample: give exactly one of scale_tril and scale_diag")
    d = means.shape[-1]
    gdev = generator_device(generator, means)
    k = torch.multinomial(weights.detach().to(gdev, torch.float64), n, replacement=True, generator=generator).to(means.device)  # (n,)
    eps = randn((n, d), means, generator)  # (n, d)
    if scale_diag is not None:
        return means[k] + scale_diag[k] * eps  # (n, d)
    return means[k] + (scale_tril[k] @ eps.unsqueeze(-1)).squeeze(-1)  # (n, d)


# -- checkpointable scikit-learn state ------------------------------------------------------
def _to_torch_state(value: Any) -> Any:
    """numpy -> torch / python types that ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value, copy=True))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return type(value)(_to_torch_state(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot checkpoint scikit-learn attribute of type {type(value).__name__}")


def _to_numpy_state(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    if isinstance(value, (tuple, list)):
        return type(value)(_to_numpy_state(v) for v in value)
    return value


def fitted_attributes(estimator: Any) -> dict[str, Any]:
    """The fitted state of a scikit-learn mixture (its ``name_`` attributes) as torch/python values."""
    return {
        k: _to_torch_state(v)
        for k, v in vars(estimator).items()
        if k.endswith("_") and not k.startswith("_")
    }


class GaussianMixtureBuffers(nn.Module):
    """A Gaussian mixture held as buffers, refitted by a scikit-learn estimator it owns.

    Buffers: ``weights`` (M,), ``means`` (M, d), ``scale_tril`` (M, d, d) (Cholesky factor of
    covariance + ``covariance_jitter`` I) and ``n_fits`` (number of refits so far). Starts as
    N(0, I). ``estimator_factory`` returns a fresh (unfitted, ``warm_start=True``) sklearn
    mixture; the fitted estimator travels in the state dict as extra state (plain tensors and
    numbers, loadable with ``torch.load(weights_only=True)``), so a resumed run warm-starts
    its next refit exactly where the interrupted run would have.
    """

    def __init__(
        self,
        n_components: int,
        dim: int,
        estimator_factory: Callable[[], Any] | None = None,
        covariance_jitter: float = 0.0,
    ):
        super().__init__()
        self.n_components = n_components
        self.dim = dim
        self.covariance_jitter = float(covariance_jitter)
        self.estimator_factory = estimator_factory
        self.estimator: Any = None
        self.register_buffer("weights", torch.zeros(n_components))  # (M,)
        self.register_buffer("means", torch.zeros(n_components, dim))  # (M, d)
        self.register_buffer("scale_tril", torch.eye(dim).repeat(n_components, 1, 1))  # (M, d, d)
        self.register_buffer("n_fits", torch.zeros((), dtype=torch.long))  # ()
        self.reset_standard_normal()

    # -- state ---------------------------------------------------------------------------
    @torch.no_grad()
    def reset_standard_normal(self) -> None:
        """N(0, I): component 0 with weight 1, every other weight 0."""
        self.weights.zero_()
        self.weights[0] = 1.0
        self.means.zero_()
        self.scale_tril.copy_(torch.eye(self.dim, dtype=self.scale_tril.dtype).expand_as(self.scale_tril))

    @torch.no_grad()
    def set_mixture(self, weights: Any, means: Any, covariances: Any) -> None:
        """Load point estimates (numpy or torch; covariances (M, d, d)); adds the jitter."""
        w = torch.as_tensor(weights).detach().to("cpu", torch.float64)  # (M,)
        mu = torch.as_tensor(means).detach().to("cpu", torch.float64)  # (M, d)
        cov = torch.as_tensor(covariances).detach().to("cpu", torch.float64)  # (M, d, d)
        cov = cov + self.covariance_jitter * torch.eye(self.dim, dtype=torch.float64)  # (M, d, d)
        tril = torch.linalg.cholesky(cov)  # (M, d, d)
        self.weights.copy_(w / w.sum())
        self.means.copy_(mu)
        self.scale_tril.copy_(tril)

    def get_extra_state(self) -> dict:
        if self.estimator is None:
            return {}
        return {"fitted": fitted_attributes(self.estimator)}

    def set_extra_state(self, state: dict) -> None:
        if not state:
            self.estimator = None
            return
        if self.estimator_factory is None:
            raise RuntimeError("checkpoint holds a fitted mixture but this mixture has no estimator")
        est = self.estimator_factory()
        for k, v in state["fitted"].items():
            setattr(est, k, _to_numpy_state(v))
        self.estimator = est

    # -- density and sampling ------------------------------------------------------------
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d) -> (...)"""
        return mixture_log_prob(x, self.weights.log(), self.means, scale_tril=self.scale_tril)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, d)"""
        return mixture_sample(n, self.weights, self.means, scale_tril=self.scale_tril, generator=generator)

    def distribution(self) -> torch.distributions.MixtureSameFamily:
        """The same mixture as a ``torch.distributions`` object (for checks and plots)."""
        return torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(probs=self.weights),
            torch.distributions.MultivariateNormal(self.means, scale_tril=self.scale_tril),
        )

    # -- refit ---------------------------------------------------------------------------
    def fit(self, x: torch.Tensor, random_state: int) -> dict:
        """Refit (warm-started) on x (N, d); returns numbers for the training log."""
        if self.estimator_factory is None:
            raise RuntimeError("this mixture has no estimator to fit")
        x = x.detach()
        if not torch.isfinite(x).all():
            raise FloatingPointError("mixture refit: the samples contain NaN or inf (training diverged?)")
        data = x.to("cpu", torch.float64).numpy()  # (N, d)
        est = self.estimator if self.estimator is not None else self.estimator_factory()
        est.set_params(random_state=int(random_state))
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(data)
        self.estimator = est
        self.set_mixture(est.weights_, est.means_, est.covariances_)
        self.n_fits += 1
        w = np.sort(np.asarray(est.weights_))[::-1]
        return {
            "n_active": int((w > ACTIVE_WEIGHT).sum()),
            "largest_weight": float(w[0]),
            "weights": [float(v) for v in w],
            "lower_bound": float(est.lower_bound_),
            "converged": bool(est.converged_),
            "n_iter": int(est.n_iter_),
        }

    def summary(self) -> dict:
        """The mixture as fitted now: components with weight > 0.01 and the largest weight ({} before
        the first fit: the N(0, I) start is not a fitted mixture)."""
        if not int(self.n_fits):
            return {}
        w = self.weights.detach().cpu()
        return {"mixture_components": int((w > ACTIVE_WEIGHT).sum()), "mixture_largest_weight": float(w.max())}

    def problems(self, collapse_threshold: float | None = 0.99) -> list[str]:
        """Non-finite buffers; after a fit, one component holding more than the threshold."""
        out = [f"non-finite values in mixture {name}" for name in ("weights", "means", "scale_tril")
               if not torch.isfinite(getattr(self, name)).all()]
        if collapse_threshold is not None and int(self.n_fits) > 0:
            wmax = float(self.weights.max())
            if wmax > collapse_threshold:
                out.append(f"mixture collapsed: one component holds {wmax:.4f} of the weight")
        return out
