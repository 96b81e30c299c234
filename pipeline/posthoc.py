"""Post-hoc prior fitting (Figure 2): the autoencoder fixed, a prior fitted to its encodings.

LaDDer Figure 2 compares, on one 2-D latent space, the aggregate posterior q(z) = (1/N) sum_n
q(z|x_n) with priors fitted to it after the autoencoder is trained. Everything here talks to a
prior only through the contract of ``pipeline.priors.base``, so any registered prior can be
fitted the way its training protocol fits it (``pipeline.training``, supplement B):

- a prior ``trained_with_autoencoder`` (VampPrior, gradient GMM): Adam on -E_q[log p(z)] with
  respect to the prior's own parameters only (the VampPrior's pseudo-inputs; the encoder it
  shares stays frozen);
- a prior with a block step (hierarchical, LaDDer): Adam on ``block_loss(z)`` (the prior VAE's
  -L'(z), Eq. 4/8) and ``after_step()``;
- a prior with a between-epoch ``fit`` (EM GMM, LaDDer's DP mixture): ``fit(z, epoch)`` at
  each "epoch" end, on one fresh z ~ q(z|x) per encoded image.

z ~ q(z|x_n) are drawn from the stored posterior means and stds (reparameterised), so the
encoder is needed only by the VampPrior.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from pipeline.priors import PRIORS, Prior, build_prior

log = logging.getLogger(__name__)
LOG_2PI = math.log(2 * math.pi)


# -- the aggregate posterior and a grid to evaluate densities on ----------------------------
def aggregate_posterior_log_prob(z: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """log q(z) = log (1/N) sum_n N(z; mean_n, diag std_n^2), the exact mixture (LaDDer Eq. 3).

    z (G, d), mean (N, d), std (N, d) -> (G,). Computed in float64, ``chunk`` grid points at a
    time (memory G_chunk x N).
    """
    mean64, log_std = mean.double(), std.double().log()  # (N, d) each
    norm = -log_std.sum(-1) - 0.5 * mean.shape[1] * LOG_2PI  # (N,)
    out = []
    for start in range(0, len(z), chunk):
        zc = z[start:start + chunk].double()  # (g, d)
        sq = (((zc[:, None, :] - mean64) / log_std.exp()) ** 2).sum(-1)  # (g, N)
        out.append(torch.logsumexp(norm - 0.5 * sq, dim=1) - math.log(len(mean)))  # (g,)
    return torch.cat(out)  # (G,)


@dataclass(frozen=True)
class Grid2D:
    """A regular grid of cell centres: xs (nx,), ys (ny,); ``points`` (ny*nx, 2) in row-major
    (y outer, x inner) order so that ``values.reshape(ny, nx)`` is an image with y on rows."""

    xs: torch.Tensor
    ys: torch.Tensor

    @property
    def points(self) -> torch.Tensor:
        yy, xx = torch.meshgrid(self.ys, self.xs, indexing="ij")  # (ny, nx) each
        return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)  # (ny*nx, 2)

    @property
    def cell_area(self) -> float:
        return float((self.xs[1] - self.xs[0]) * (self.ys[1] - self.ys[0]))

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(left, right, bottom, top) cell edges, for imshow."""
        dx, dy = float(self.xs[1] - self.xs[0]), float(self.ys[1] - self.ys[0])
        return (float(self.xs[0]) - dx / 2, float(self.xs[-1]) + dx / 2, float(self.ys[0]) - dy / 2, float(self.ys[-1]) + dy / 2)


def square_grid(lo: float, hi: float, n: int) -> Grid2D:
    """n x n cell centres covering [lo, hi]^2."""
    if n < 2 or not hi > lo:
        raise ValueError(f"grid needs n >= 2 and hi > lo, got n={n}, [{lo}, {hi}]")
    step = (hi - lo) / n
    centres = lo + step * (torch.arange(n, dtype=torch.float64) + 0.5)  # (n,)
    return Grid2D(centres, centres.clone())


def posterior_grid(mean: torch.Tensor, std: torch.Tensor, n: int, margin: float = 4.0, tail: float = 1e-3) -> Grid2D:
    """A square grid holding the aggregate posterior's mass: from the ``tail`` quantile of
    mean - margin*std to the 1-tail quantile of mean + margin*std over both axes (quantiles,
    so a few outlying encodings do not shrink every panel)."""
    if mean.shape[1] != 2:
        raise ValueError(f"a 2-D density grid needs d_z = 2 encodings, got d_z = {mean.shape[1]}")
    lo = torch.quantile((mean - margin * std).double().flatten(), tail).item()
    hi = torch.quantile((mean + margin * std).double().flatten(), 1 - tail).item()
    return square_grid(lo, hi, n)


def grid_divergences(log_q: torch.Tensor, log_p: torch.Tensor, cell_area: float) -> dict[str, float]:
    """Riemann sums on a grid (log_q, log_p (G,)):

    - ``cross_entropy`` = sum q log p dA, i.e. E_q(z)[log p(z)] (Table 2's quantity, higher is better);
    - ``kl`` = sum q (log q - log p) dA = KL(q || p) >= 0 up to grid error;
    - ``q_mass``, ``p_mass``: sum q dA and sum p dA (near 1 when the grid holds the density).
    """
    log_q, log_p = log_q.double(), log_p.double()
    w = log_q.exp() * cell_area  # (G,)
    # q log p with q = 0 is 0 even where log p = -inf
    w_log_p = torch.where(w > 0, w * log_p, torch.zeros_like(w))  # (G,)
    return {
        "cross_entropy": float(w_log_p.sum()),
        "kl": float((w * log_q).sum() - w_log_p.sum()),
        "q_mass": float(w.sum()),
        "p_mass": float(log_p.exp().sum() * cell_area),
    }


def monte_carlo_divergences(prior: Prior, mean: torch.Tensor, std: torch.Tensor, n_points: int, n_samples: int | None,
                            seed: int = 0) -> dict[str, float]:
    """The same two numbers without a grid, as a check on its resolution: z_n ~ q(z|x_n) for
    up to ``n_points`` encodings (mean, std (N, d)), E_q[log p] ~ mean log p(z_n) and
    KL ~ mean [log q(z_n) - log p(z_n)], log q the exact mixture over all N encodings."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(mean), generator=g)[:n_points]  # (n,)
    z = _sample_z(mean[idx], std[idx], g)  # (n, d)
    log_p = grid_log_prob(prior, z, n_samples)  # (n,)
    log_q = aggregate_posterior_log_prob(z, mean, std)  # (n,)
    return {"cross_entropy_mc": float(log_p.mean()), "kl_mc": float((log_q - log_p).mean())}


@torch.no_grad()
def grid_log_prob(prior: Prior, points: torch.Tensor, n_samples: int | None = None, batch_size: int = 1024) -> torch.Tensor:
    """The prior's log p(z) at points (G, d) -> (G,), ``n_samples`` importance samples where
    the density is an estimate (hierarchical, LaDDer)."""
    param = next(prior.parameters(), None)
    buf = next(prior.buffers(), None)
    ref = param if param is not None else buf
    device, dtype = (ref.device, ref.dtype) if ref is not None else (torch.device("cpu"), torch.float32)
    out = [prior.log_prob(points[s:s + batch_size].to(device, dtype), n_samples=n_samples).double().cpu()
           for s in range(0, len(points), batch_size)]
    return torch.cat(out)


# -- post-hoc fitting -----------------------------------------------------------------------
@dataclass(frozen=True)
class PosthocOptions:
    """How a prior is fitted post hoc (defaults: the training protocol's optimiser).

    epochs x steps_per_epoch Adam steps on minibatches of ``batch_size`` encodings, a between-
    epoch ``fit`` after each epoch (the prior's own warm-up applies), Adam betas (0.9, 0.95)
    and element-wise gradient clipping at ``grad_clip`` as in ``pipeline.training``.
    ``joint_learning_rate`` serves priors trained with the autoencoder (VampPrior pseudo-inputs,
    in pixel units): measured on a 2-D mnist5k VAE, lr 1e-3 moved them too little in 400 steps
    (mean -log p(z) 146 nats after 600 steps) while 1e-2 reached 4.6 nats.
    """

    epochs: int = 10
    steps_per_epoch: int = 100
    batch_size: int = 256
    learning_rate: float = 1e-3
    joint_learning_rate: float = 1e-2
    adam_betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = 1.0
    seed: int = 0


def prior_options(method_block: dict, d_t: int, seed: int) -> dict:
    """A config method block's options, with the options the run fills (d_t, seed) filled as
    ``pipeline.config.run_settings`` does: the method's own value wins."""
    name = method_block["prior"]
    if name not in PRIORS:
        raise KeyError(f"unknown prior {name!r}; registered priors: {', '.join(sorted(PRIORS))}")
    options = dict(method_block.get("options", {}))
    if "d_t" in PRIORS[name].run_options:
        options["d_t"] = d_t  # the 2-D figure's own d_t, not the dataset's headline value
    if "seed" in PRIORS[name].run_options:
        options.setdefault("seed", seed)
    return options


def _sample_z(mean: torch.Tensor, std: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """z ~ q(z|x) for each row: (n, d)"""
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)  # (n, d)
    return mean + std * eps


def fit_prior_posthoc(prior: Prior, mean: torch.Tensor, std: torch.Tensor, options: PosthocOptions = PosthocOptions()) -> list[dict]:
    """Fit ``prior`` in place to the encodings (mean, std (N, d_z), on CPU); returns one log
    record per epoch. The prior must already be bound to its encoder if it needs one, and
    that encoder frozen (its parameters are not the prior's, so Adam never touches them)."""
    params = [p for p in prior.parameters() if p.requires_grad]
    gradient = bool(params) and (prior.trained_with_autoencoder or prior.has_block_step)
    refits = prior.fit_samples > 0
    if not gradient and not refits:
        return []  # nothing to fit (the standard normal)
    device = params[0].device if params else torch.device("cpu")
    lr = options.joint_learning_rate if prior.trained_with_autoencoder else options.learning_rate
    optimiser = torch.optim.Adam(params, lr=lr, betas=options.adam_betas) if gradient else None
    generator = torch.Generator().manual_seed(options.seed)
    epochs = options.epochs if gradient else 1  # an EM refit on all encodings needs one call
    records, last_fit = [], {}
    prior.train()
    for epoch in range(epochs):
        losses = []
        for _ in range(options.steps_per_epoch if gradient else 0):
            idx = torch.randint(len(mean), (options.batch_size,), generator=generator)  # (B,)
            z = _sample_z(mean[idx], std[idx], generator).to(device)  # (B, d_z)
            if prior.trained_with_autoencoder:
                loss = -prior.training_log_prob(z).mean()  # maximise E_q[log p(z)] (Eq. 2, term 3)
            else:
                loss = prior.block_loss(z)  # the prior VAE's -L'(z), supplement B
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if options.grad_clip is not None:
                torch.nn.utils.clip_grad_value_(params, options.grad_clip)
            optimiser.step()
            prior.after_step()
            losses.append(loss.item())
        record = {"epoch": epoch, "loss": sum(losses) / len(losses) if losses else None}
        if refits:
            with torch.no_grad():
                z_all = _sample_z(mean, std, generator).to(device)  # (N, d_z): one draw per image
                last_fit = prior.fit(z_all, epoch)
            record["fit"] = last_fit
        log.info("post-hoc %s epoch %d: %s", type(prior).__name__, epoch, record)
        records.append(record)
    if refits and last_fit.get("fitted") is False:
        raise RuntimeError(f"post-hoc fit of {type(prior).__name__}: its mixture was never fitted ({epochs} epochs, still in "
                           "warm-up); raise figures.fig2_epochs above the method's warmup_epochs")
    prior.eval()
    return records


def fit_priors_posthoc(methods: dict[str, dict], mean: torch.Tensor, std: torch.Tensor, encoder: torch.nn.Module | None,
                       d_t: int, options: PosthocOptions = PosthocOptions(),
                       device: torch.device | str = "cpu") -> tuple[dict[str, Prior], dict[str, list[dict]]]:
    """Build each config method's prior for d_z = mean.shape[1] and fit it post hoc.

    methods: {method name: config method block {"prior": name, "options": {...}}}. The
    encoder (the VAE's, for the VampPrior) is frozen here.
    """
    if encoder is not None:
        encoder.requires_grad_(False).eval()
    priors, logs = {}, {}
    for k, (method, block) in enumerate(methods.items()):
        prior = build_prior(block["prior"], mean.shape[1], prior_options(block, d_t, options.seed)).to(device)
        if encoder is not None:
            prior.bind_encoder(encoder)
        torch.manual_seed(options.seed + k)  # the reparameterisation noise inside block_loss / log_prob
        logs[method] = fit_prior_posthoc(prior, mean, std, options)
        priors[method] = prior
    return priors, logs
