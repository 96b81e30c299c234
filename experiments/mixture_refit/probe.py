"""Why LaDDer's hyper-prior collapsed at d_t = 16 (issue 18): refits of a Bayesian Gaussian mixture
after the data it was fitted on has changed shape, as between two epochs of training.

Each case fits a mixture on "before" data (unimodal, as t after the warm-up), then refits it on
"after" data: C well-separated Gaussian clusters in d dimensions whose spread is `scale` (the t-space
scale moves while the prior VAE trains). Reported: components with weight > 0.01 after the refit.
Fitters: today's LaDDer fit (Dirichlet process, Eq. 6 priors mu ~ N(0, I), Sigma ~ Wishart(d, I),
max_iter 100, warm start), the original code's training fit (finite Dirichlet, scikit-learn's
data-dependent priors, max_iter 1000, warm start) and each of them cold (no warm start).

    python experiments/mixture_refit/probe.py [--out experiments/mixture_refit/probe.csv]
"""

from __future__ import annotations

import argparse
import csv
import time

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture
import warnings

warnings.simplefilter("ignore", ConvergenceWarning)

FITTERS = {
    "today (DP, Eq. 6 priors, 100 it)": dict(weight_concentration_prior_type="dirichlet_process", eq6=True, max_iter=100),
    "original training fit (finite Dir., data priors, 1000 it)": dict(weight_concentration_prior_type="dirichlet_distribution", eq6=False, max_iter=1000),
    "DP, data priors, 1000 it": dict(weight_concentration_prior_type="dirichlet_process", eq6=False, max_iter=1000),
}


def make(spec: dict, d: int, warm: bool, seed: int) -> BayesianGaussianMixture:
    eq6 = dict(mean_prior=np.zeros(d), covariance_prior=np.eye(d), degrees_of_freedom_prior=float(d)) if spec["eq6"] else {}
    return BayesianGaussianMixture(n_components=50, covariance_type="full", weight_concentration_prior=0.1,
                                   weight_concentration_prior_type=spec["weight_concentration_prior_type"],
                                   max_iter=spec["max_iter"], warm_start=warm, random_state=seed, **eq6)


def clusters(rng, n: int, d: int, c: int, scale: float, separation: float = 8.0) -> np.ndarray:
    centres = rng.normal(size=(c, d))
    centres *= separation * scale / np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, c, n)
    return centres[labels] + scale * rng.normal(size=(n, d))


def active(est) -> int:
    return int((est.weights_ > 0.01).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="experiments/mixture_refit/probe.csv")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    d, c, n = 16, 10, 2000
    rows = []
    for seed in range(args.seeds):
        for scale in (0.1, 1.0, 5.0):
            for name, spec in FITTERS.items():
                for warm in (True, False):
                    rng = np.random.default_rng(seed)
                    before = rng.normal(size=(n, d))  # unimodal, as t after the warm-up
                    after = clusters(rng, n, d, c, scale)
                    est = make(spec, d, warm, seed)
                    est.fit(before)
                    first = active(est)
                    start = time.time()
                    est.fit(after)
                    rows.append({"seed": seed, "scale": scale, "fitter": name, "warm_start": warm, "clusters": c,
                                 "active_before": first, "active_after_refit": active(est),
                                 "largest_weight": round(float(est.weights_.max()), 3), "seconds": round(time.time() - start, 2)})
                    print(rows[-1], flush=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
