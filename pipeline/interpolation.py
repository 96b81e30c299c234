"""Shortest likely path (SLP) interpolation, LaDDer Sec. 3.4, Eq. 9, against the straight line (SP).

Between two fixed encodings s_0 = start and s_{J+1} = end, the J interior points s_1..s_J minimise

    O_SLP(s) = a * L_path(s) + b * std_j |s_{j+1} - s_j| - sum_{j=1..J} log p(s_j)      (Eq. 9)

with L_path the sum of the J+1 step lengths. The paper writes Eq. 9 without weights; the original
code (docs/original-code.md) uses a = 10, b = 100, J = 8 points initialised on the straight line
(``linspace(start, end, J+1, endpoint=False)[1:]``), Adam (lr 1e-2, betas (0.9, 0.95)) with
gradients clipped element-wise to +-1, 500 iterations. Those are the defaults here.

Three layers, each usable alone:

- ``shortest_likely_path(start, end, log_prob, ...)``: pure optimisation on tensors and a
  density callable; batched over pairs (every pair's points are separate parameters and Adam
  and the clipping act element-wise, so a batch gives the same paths as one pair at a time).
- ``latent_space(vae)``: where a trained model interpolates and with which density. Priors
  with a prior VAE (hierarchical, LaDDer: ``exact = False``) interpolate in t-space with
  log p(t) their own hyper prior (N(0, I), or LaDDer's fitted DP mixture), start/end t the
  mean of q(t|z) at the encoder mean, decoded t -> z = mean of p(z|t) -> x = decoder mean.
  Other priors interpolate in z-space with log p(z) = ``prior.log_prob`` (exact for them).
- ``interpolate_images`` / ``pair_table``: encode image pairs, run SLP and SP, decode or
  summarise; ``pair_table`` is the long table behind the "SLP stays on the data manifold" claim.

The SLP maximises the log p it is then scored with, so scoring it with that log p cannot fail
(issue 19). ``pair_table`` also scores both paths under a **held-out density**
(``fit_heldout_density``): a Gaussian mixture fitted to z-encodings (encoder means) of test
images that are no pair's endpoint, which the optimisation never sees (claim C7). It is fitted
in z for every prior, so all priors are scored in the space they share: a t-space path is mapped
to z = mean of p(z|t) first. Why not in t: a trained prior VAE leaves 8-11 of its 16 t units
nearly unused (the encodings' variance 0.01-0.05 there, 0.4-1.5 in the others, on the CPU
reference), so a density of t-encodings is a thin slab that punishes any step across those
units, which p(z|t) ignores. Scored in t, LaDDer's SLP fell 45-89 nats below the straight line;
in z it rises 1.5-1.7 nats above it, in 84-94 % of pairs (reference/README.md, C7).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

# The original code's settings (docs/original-code.md); config's ``interpolation`` block overrides them.
SLP_DEFAULTS = {
    "n_points": 8,
    "iterations": 500,
    "lr": 1e-2,
    "betas": (0.9, 0.95),
    "clip": 1.0,
    "length_weight": 10.0,
    "spread_weight": 100.0,
}
STD_FLOOR = 1e-4  # relative floor of the step-length std in the objective (see path_terms)
TABLE_COLUMNS = ["dataset", "method", "seed", "pair", "path", "mean_log_p", "min_log_p", "length", "step_std"]
# The held-out density (C7): its columns in the SLP table, its size and how many encodings it is fitted on.
HELDOUT_COLUMNS = ["heldout_mean_log_p", "heldout_min_log_p"]
HELDOUT_COMPONENTS = 10  # Gaussian mixture components: the datasets' ten classes
HELDOUT_IMAGES = 5000    # at most this many held-out test encodings
HELDOUT_REG = 1e-3       # covariance floor, relative to the encodings' mean per-dimension variance

LogProb = Callable[[torch.Tensor], torch.Tensor]  # (..., d) -> (...)


# -- paths and their terms -------------------------------------------------------------------
def straight_line(start: torch.Tensor, end: torch.Tensor, n_points: int) -> torch.Tensor:
    """The SP path: start, n_points evenly spaced interior points, end. (..., d) -> (..., J+2, d)

    Interior point j (1..J) is start + j/(J+1) (end - start): numpy's
    ``linspace(start, end, J+1, endpoint=False)[1:]`` of the original, so all J+1 steps are equal.
    """
    if n_points < 1:
        raise ValueError(f"interpolation n_points must be >= 1, got {n_points}")
    frac = torch.arange(n_points + 2, dtype=start.dtype, device=start.device) / (n_points + 1)  # (J+2,)
    path = start.unsqueeze(-2) + frac[:, None] * (end - start).unsqueeze(-2)  # (..., J+2, d)
    path[..., -1, :] = end  # exactly, not start + 1.0 * (end - start)
    return path


def step_lengths(path: torch.Tensor) -> torch.Tensor:
    """|s_{j+1} - s_j| for paths (..., J+2, d) -> (..., J+1)"""
    return torch.linalg.vector_norm(path[..., 1:, :] - path[..., :-1, :], dim=-1)


def path_terms(path: torch.Tensor, log_prob: LogProb, std_floor: float = 0.0) -> dict[str, torch.Tensor]:
    """The three terms of Eq. 9 for paths (..., J+2, d), each (...):

    ``length`` = sum of the J+1 step lengths; ``step_std`` = their standard deviation
    (population, ddof 0, as numpy/TF's reduce_std), computed as sqrt(var + (std_floor *
    mean step)^2); ``log_p_sum`` = sum of log p over the J interior points (the fixed endpoints
    add a constant).

    Why the floor: on the straight line all steps are equal, the std is 0 up to rounding and its
    gradient (l_j - mean) / (N std) is a unit-size vector pointing wherever the float32 rounding
    points; times the weight 100 and clipped, it would set the first Adam steps. A floor of
    1e-4 x the mean step makes that gradient ~1e-3 of the others and changes the value by at
    most the floor. ``std_floor = 0`` is the plain std.
    """
    steps = step_lengths(path)  # (..., J+1)
    var = steps.var(-1, correction=0)  # (...)
    if std_floor > 0:
        var = var + (std_floor * steps.mean(-1).detach()) ** 2
    log_p = log_prob(path[..., 1:-1, :])  # (..., J)
    return {"length": steps.sum(-1), "step_std": var.sqrt(), "log_p_sum": log_p.sum(-1)}


def slp_objective(terms: dict[str, torch.Tensor], length_weight: float, spread_weight: float) -> torch.Tensor:
    """Eq. 9 with the original code's weights: a L + b std - sum log p. -> (...)"""
    return length_weight * terms["length"] + spread_weight * terms["step_std"] - terms["log_p_sum"]


def shortest_likely_path(
    start: torch.Tensor,
    end: torch.Tensor,
    log_prob: LogProb,
    n_points: int = SLP_DEFAULTS["n_points"],
    iterations: int = SLP_DEFAULTS["iterations"],
    lr: float = SLP_DEFAULTS["lr"],
    betas: tuple[float, float] = SLP_DEFAULTS["betas"],
    clip: float | None = SLP_DEFAULTS["clip"],
    length_weight: float = SLP_DEFAULTS["length_weight"],
    spread_weight: float = SLP_DEFAULTS["spread_weight"],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Minimise Eq. 9 over the interior points; the endpoints stay exactly fixed.

    start, end: (d,) or (P, d) for P pairs optimised together (same result as one at a time).
    log_prob: (..., d) -> (...), differentiable in its argument.
    Returns the path (..., J+2, d) (detached) and the history: ``objective``, ``length``,
    ``step_std`` (with the STD_FLOOR of path_terms), ``log_p_sum``, each (iterations + 1, ...):
    row 0 is the straight line, row k the path after k Adam steps.
    """
    if start.shape != end.shape:
        raise ValueError(f"start {tuple(start.shape)} and end {tuple(end.shape)} must have the same shape")
    if iterations < 0:
        raise ValueError(f"interpolation iterations must be >= 0, got {iterations}")
    start, end = start.detach(), end.detach()
    init = straight_line(start, end, n_points)  # (..., J+2, d)
    points = nn.Parameter(init[..., 1:-1, :].clone())  # (..., J, d): the only parameters
    optimiser = torch.optim.Adam([points], lr=lr, betas=tuple(betas))
    rows: list[dict[str, torch.Tensor]] = []

    def current_path() -> torch.Tensor:
        return torch.cat([start.unsqueeze(-2), points, end.unsqueeze(-2)], dim=-2)  # (..., J+2, d)

    for _ in range(iterations):
        terms = path_terms(current_path(), log_prob, STD_FLOOR)  # each (...)
        objective = slp_objective(terms, length_weight, spread_weight)  # (...)
        rows.append({"objective": objective.detach(), **{k: v.detach() for k, v in terms.items()}})
        optimiser.zero_grad(set_to_none=True)
        objective.sum().backward()  # pairs are independent: the sum's gradient is each pair's own
        if clip is not None:
            torch.nn.utils.clip_grad_value_([points], clip)
        optimiser.step()
    with torch.no_grad():
        path = current_path()
        terms = path_terms(path, log_prob, STD_FLOOR)
        rows.append({"objective": slp_objective(terms, length_weight, spread_weight), **terms})
    history = {k: torch.stack([row[k] for row in rows]) for k in rows[0]}  # each (iterations+1, ...)
    return path.detach(), history


def path_statistics(path: torch.Tensor, log_prob: LogProb) -> dict[str, torch.Tensor]:
    """Summaries of paths (..., J+2, d), each (...): mean and min log p over the J interior
    points (the endpoints are shared by SLP and SP), path length and std of step lengths."""
    with torch.no_grad():
        steps = step_lengths(path)  # (..., J+1)
        log_p = log_prob(path[..., 1:-1, :])  # (..., J)
        return {"mean_log_p": log_p.mean(-1), "min_log_p": log_p.min(-1).values, "length": steps.sum(-1),
                "step_std": steps.std(-1, correction=0)}


# -- a trained model's interpolation space ------------------------------------------------------
@dataclass
class LatentSpace:
    """Where a model interpolates. ``name`` is 't' or 'z'; ``dim`` its size."""

    name: str
    dim: int
    log_prob: LogProb  # (..., dim) -> (...)
    encode: Callable[[torch.Tensor], torch.Tensor]  # float images (N,C,H,W) in [0,1] -> (N, dim)
    decode: Callable[[torch.Tensor], torch.Tensor]  # (N, dim) -> decoder means (N,C,H,W)
    to_z: Callable[[torch.Tensor], torch.Tensor]  # (N, dim) -> (N, d_z): the identity in z, the mean of p(z|t) in t


def flat_log_prob(log_prob: LogProb) -> LogProb:
    """The prior contract's log_prob takes (B, d); paths are (..., J, d): flatten and restore."""

    def wrapped(x: torch.Tensor) -> torch.Tensor:
        return log_prob(x.reshape(-1, x.shape[-1])).reshape(x.shape[:-1])

    return wrapped


def latent_space(vae: nn.Module) -> LatentSpace:
    """t-space for priors with a prior VAE (``exact = False``: hierarchical, LaDDer), z-space otherwise."""
    prior = vae.prior
    if prior.exact:
        return LatentSpace("z", prior.d_z, flat_log_prob(prior.log_prob), lambda x: vae.encode(x)[0], vae.decode, lambda z: z)
    if not (hasattr(prior, "vae") and hasattr(prior, "hyper_log_prob")):
        raise TypeError(f"prior {type(prior).__name__} has no exact log p(z) and no prior VAE with a hyper prior "
                        "(hyper_log_prob); the shortest likely path needs a density it can differentiate")
    prior_vae = prior.vae

    def encode(x: torch.Tensor) -> torch.Tensor:
        return prior_vae.encode(vae.encode(x)[0])[0]  # t = mean of q(t|z) at z = mean of q(z|x): (N, d_t)

    def decode(t: torch.Tensor) -> torch.Tensor:
        return vae.decode(prior_vae.decode(t))  # z = mean of p(z|t), x = decoder mean: (N,C,H,W)

    # log p(t): N(0, I) for the hierarchical prior, the fitted DP mixture for LaDDer (exact in t).
    return LatentSpace("t", prior.d_t, flat_log_prob(prior.hyper_log_prob), encode, decode, prior_vae.decode)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """No gradients into the model while paths are optimised; restores the flags afterwards."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def choose_pairs(n_images: int, n_pairs: int, seed: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Random (start, end) index pairs (n_pairs, 2) of distinct images, the same for every model
    given the same seed; with ``labels``, start and end have different labels where possible."""
    if n_images < 2:
        raise ValueError(f"need at least 2 images to choose interpolation pairs, got {n_images}")
    g = torch.Generator().manual_seed(int(seed))
    pairs = []
    while len(pairs) < n_pairs:
        i, j = torch.randperm(n_images, generator=g)[:2].tolist()
        if labels is not None and labels[i] == labels[j] and len(torch.unique(labels)) > 1:
            continue
        pairs.append((i, j))
    return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N,C,H,W) -> float in [0, 1] (as the training code reads images)."""
    return images.float().div(255.0)


def interpolate_images(vae: nn.Module, start_images: torch.Tensor, end_images: torch.Tensor, options: dict | None = None,
                       decode: bool = True) -> dict:
    """SLP and SP between uint8 image pairs (P,C,H,W) each, in the model's own space.

    Returns ``space`` ('t' or 'z'), ``slp`` and ``straight`` paths (P, J+2, d), ``history``
    (see shortest_likely_path), per-path ``stats`` {'slp': ..., 'straight': ...} (each (P,)),
    the ``log_prob`` used, and with ``decode`` the uint8 decoded paths ``slp_images`` and
    ``straight_images`` (P, J+2, C, H, W).
    """
    from pipeline.fid import quantise

    opts = {**SLP_DEFAULTS, **{k: v for k, v in (options or {}).items() if k in SLP_DEFAULTS}}
    device = next(vae.parameters()).device
    vae.eval()
    space = latent_space(vae)
    with frozen(vae):
        with torch.no_grad():
            start = space.encode(to_unit(start_images).to(device))  # (P, d)
            end = space.encode(to_unit(end_images).to(device))  # (P, d)
        slp, history = shortest_likely_path(start, end, space.log_prob, **opts)  # (P, J+2, d)
        straight = straight_line(start, end, opts["n_points"])  # (P, J+2, d)
        out = {"space": space.name, "slp": slp.cpu(), "straight": straight.cpu(), "log_prob": space.log_prob,
               "history": {k: v.cpu() for k, v in history.items()},
               "stats": {"slp": {k: v.cpu() for k, v in path_statistics(slp, space.log_prob).items()},
                         "straight": {k: v.cpu() for k, v in path_statistics(straight, space.log_prob).items()}}}
        if decode:
            with torch.no_grad():
                for kind, path in (("slp", slp), ("straight", straight)):
                    p, n, d = path.shape
                    images = quantise(space.decode(path.reshape(p * n, d))).cpu()  # (P*(J+2), C, H, W)
                    out[f"{kind}_images"] = images.reshape(p, n, *images.shape[1:])  # (P, J+2, C, H, W)
    return out


def stats_rows(stats: dict[str, dict[str, torch.Tensor]], dataset: str, method: str, seed: int,
               extra: dict[str, list] | None = None) -> list[dict]:
    """Long rows (TABLE_COLUMNS first, then ``extra`` per-pair columns) from interpolate_images' stats."""
    rows = []
    n = len(stats["slp"]["length"])
    for pair in range(n):
        for kind in ("slp", "straight"):
            row = {"dataset": dataset, "method": method, "seed": int(seed), "pair": pair, "path": kind}
            row.update({k: float(stats[kind][k][pair]) for k in ("mean_log_p", "min_log_p", "length", "step_std")})
            row.update({k: v[pair] for k, v in (extra or {}).items()})
            rows.append(row)
    return rows


def fit_heldout_density(points: torch.Tensor, n_components: int = HELDOUT_COMPONENTS, seed: int = 0) -> LogProb | None:
    """The log density (..., d) -> (...) of a Gaussian mixture (full covariances, EM by
    scikit-learn) fitted to ``points`` (N, d), encodings the SLP never saw. K = min(n_components,
    N // (2 (d + 1))) so that every component has data; covariances are floored at HELDOUT_REG
    times the points' mean per-dimension variance (a dead latent unit would otherwise make the
    density a spike). None when there are fewer than 2 (d + 1) points."""
    from sklearn.mixture import GaussianMixture

    x = points.detach().double().cpu().numpy()  # (N, d)
    n, d = x.shape
    k = min(n_components, n // (2 * (d + 1)))
    if k < 1:
        return None
    reg = HELDOUT_REG * float(x.var(0).mean()) or HELDOUT_REG
    gm = GaussianMixture(k, covariance_type="full", reg_covar=reg, random_state=int(seed)).fit(x)
    mixture = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(probs=torch.from_numpy(gm.weights_)),
        torch.distributions.MultivariateNormal(torch.from_numpy(gm.means_), covariance_matrix=torch.from_numpy(gm.covariances_)))

    def log_prob(s: torch.Tensor) -> torch.Tensor:
        return mixture.log_prob(s.detach().double().cpu()).to(s.dtype)  # (..., d) -> (...)

    return log_prob


def encode_images(vae: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """uint8 images (N,C,H,W) -> their points (N, dim) in the model's interpolation space (CPU)."""
    device = next(vae.parameters()).device
    space = latent_space(vae)
    with torch.no_grad():
        return torch.cat([space.encode(to_unit(images[i:i + batch_size]).to(device)).cpu()
                          for i in range(0, len(images), batch_size)]) if len(images) else torch.zeros(0, space.dim)


def path_in_z(vae: nn.Module, path: torch.Tensor) -> torch.Tensor:
    """A path (P, J+2, dim) in the model's interpolation space -> the same points in z (P, J+2, d_z)."""
    space = latent_space(vae)
    device = next(vae.parameters()).device
    with torch.no_grad():
        return space.to_z(path.reshape(-1, path.shape[-1]).to(device)).reshape(*path.shape[:-1], -1).cpu()


def pair_table(vae: nn.Module, images: torch.Tensor, n_pairs: int, pair_seed: int, dataset: str, method: str, seed: int,
               options: dict | None = None, batch_pairs: int = 200, heldout_images: torch.Tensor | None = None):
    """SLP against SP over ``n_pairs`` random test pairs (seeded by ``pair_seed`` only, so every
    model sees the same pairs): a pandas DataFrame with TABLE_COLUMNS plus ``space``,
    ``start_index``, ``end_index``, ``objective`` (the final Eq. 9 value; SP: its value at the
    straight line). log p values are in the model's own space (t or z) and comparable only
    between SLP and SP of one model.

    With ``heldout_images`` (uint8, images that are never endpoints) the table adds
    HELDOUT_COLUMNS: mean and min over the interior points, mapped to z (``path_in_z``), of the
    held-out density (``fit_heldout_density``), fitted on the z-encodings of the ``images`` that are
    no pair's endpoint followed by ``heldout_images``, at most HELDOUT_IMAGES of them (NaN when too few)."""
    import pandas as pd

    opts = {**SLP_DEFAULTS, **(options or {})}
    pairs = choose_pairs(len(images), n_pairs, pair_seed)  # (P, 2)
    heldout = None
    if heldout_images is not None:
        endpoint = torch.zeros(len(images), dtype=torch.bool)
        endpoint[pairs.flatten()] = True
        unseen = torch.cat([images[~endpoint], heldout_images])[:HELDOUT_IMAGES]
        from pipeline.evaluation import encode_images as posterior_means_and_stds

        means, _ = posterior_means_and_stds(vae, unseen, device=next(vae.parameters()).device)  # z-encodings
        heldout = fit_heldout_density(means, seed=pair_seed)
    rows = []
    for first in range(0, len(pairs), batch_pairs):
        chunk = pairs[first:first + batch_pairs]
        result = interpolate_images(vae, images[chunk[:, 0]], images[chunk[:, 1]], opts, decode=False)
        history = result["history"]["objective"]  # (iterations+1, P)
        extra = {"space": [result["space"]] * len(chunk), "start_index": chunk[:, 0].tolist(), "end_index": chunk[:, 1].tolist()}
        chunk_rows = stats_rows(result["stats"], dataset, method, seed, extra)
        held = {kind: path_statistics(path_in_z(vae, result[kind]), heldout) for kind in ("slp", "straight")} if heldout else None
        for row in chunk_rows:
            row["pair"] += first
            local = row["pair"] - first
            row["objective"] = float(history[-1, local] if row["path"] == "slp" else history[0, local])
            if heldout_images is not None:
                for column, stat in zip(HELDOUT_COLUMNS, ("mean_log_p", "min_log_p")):
                    row[column] = float(held[row["path"]][stat][local]) if held else float("nan")
        rows += chunk_rows
    return pd.DataFrame(rows)
