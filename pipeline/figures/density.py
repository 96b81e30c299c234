"""Figure 2: the aggregate posterior of a 2-D normal-prior VAE and five priors fitted to it post hoc.

Panels on one grid and one colour scale of log density: (a) log q(z), the exact mixture
(1/N) sum_n q(z|x_n) of the encodings the priors were fitted to (LaDDer Eq. 3), (b-f) each
prior's log p(z) (importance-sampled for the hierarchical and LaDDer priors). Beside it, a CSV
with E_q[log p(z)] and KL(q || p) of each prior as Riemann sums on the same grid.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import torch

from pipeline.figures.style import DENSITY_CMAP, PANEL_WIDTH, dataset_title, method_label, plt, save_figure, style, write_table
from pipeline.posthoc import (Grid2D, PosthocOptions, aggregate_posterior_log_prob, fit_priors_posthoc, grid_divergences,
                              grid_log_prob, monte_carlo_divergences, posterior_grid)

log = logging.getLogger(__name__)
AGGREGATE = "aggregate posterior"
TABLE_COLUMNS = ("dataset", "seed", "method", "cross_entropy", "kl", "q_mass", "p_mass", "cross_entropy_mc", "kl_mc", "n_images",
                 "grid_cells", "is_samples")
MASS_TOLERANCE = 0.05  # |sum q dA - 1| above this: the grid does not resolve q(z); the log says so


def density_rows(log_q: torch.Tensor, log_ps: dict[str, torch.Tensor], cell_area: float) -> list[dict]:
    """One row per panel: the aggregate posterior (its cross-entropy is -H[q], KL 0) then each prior."""
    return [{"method": AGGREGATE, **grid_divergences(log_q, log_q, cell_area)}] + \
        [{"method": name, **grid_divergences(log_q, log_p, cell_area)} for name, log_p in log_ps.items()]


def colour_range(log_q: torch.Tensor, dynamic_range: float, headroom: float = 1.0) -> tuple[float, float]:
    """One colour scale for every panel, anchored on the aggregate posterior: from its maximum
    + ``headroom`` nats down by ``dynamic_range`` nats. A spiky prior (VampPrior components
    narrower than the grid) then saturates in the 'over' colour instead of flattening every
    other panel; values below take the 'under' colour."""
    vmax = float(log_q[torch.isfinite(log_q)].max()) + headroom
    return vmax - dynamic_range, vmax


def plot_density_panels(grid: Grid2D, log_q: torch.Tensor, log_ps: dict[str, torch.Tensor], rows: list[dict], title: str,
                        paths: Sequence[str | Path], dynamic_range: float = 10.0, points: torch.Tensor | None = None) -> None:
    """Six (or 1 + len(log_ps)) log-density panels, two rows, one shared colour bar."""
    panels = [(AGGREGATE, log_q)] + list(log_ps.items())
    by_method = {r["method"]: r for r in rows}
    vmin, vmax = colour_range(log_q, dynamic_range)
    above = any(bool((p > vmax).any()) for _, p in panels)
    n = len(panels)
    ncols = -(-n // 2) if n > 3 else n
    nrows = -(-n // ncols)
    base = plt.get_cmap(DENSITY_CMAP)
    cmap = base.with_extremes(under=base(0.0), over="white")
    ny, nx = len(grid.ys), len(grid.xs)
    with style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(PANEL_WIDTH * ncols + 0.8, PANEL_WIDTH * nrows + 0.5),
                                 squeeze=False, sharex=True, sharey=True, constrained_layout=True)
        for k, ax in enumerate(axes.flat):
            if k >= n:
                ax.axis("off")
                continue
            name, values = panels[k]
            image = ax.imshow(values.reshape(ny, nx).float().numpy(), origin="lower", extent=grid.extent, cmap=cmap,
                              vmin=vmin, vmax=vmax, aspect="equal")
            label = "q(z), aggregate posterior" if name == AGGREGATE else method_label(name)
            row = by_method[name]
            stat = f"-H[q] = {row['cross_entropy']:.2f}" if name == AGGREGATE else f"E_q log p = {row['cross_entropy']:.2f}, KL = {row['kl']:.2f}"
            ax.set_title(f"({chr(ord('a') + k)}) {label}\n{stat}")
            if k == 0 and points is not None:
                ax.scatter(points[:, 0].numpy(), points[:, 1].numpy(), s=0.3, c="white", alpha=0.25, linewidths=0, rasterized=True)
            if k % ncols == 0:
                ax.set_ylabel("$z_2$")
            if k // ncols == nrows - 1:
                ax.set_xlabel("$z_1$")
        bar = fig.colorbar(image, ax=axes, shrink=0.8, extend="both" if above else "min")
        bar.set_label("log density (nats)" + ("; white: above the scale" if above else ""))
        fig.suptitle(title)
        save_figure(fig, paths)


def figure2_from_encodings(mean: torch.Tensor, std: torch.Tensor, priors: dict, grid_size: int, is_samples: int,
                           batch_size: int = 1024) -> tuple[Grid2D, torch.Tensor, dict[str, torch.Tensor]]:
    """The grid, log q(z) on it and each (already fitted) prior's log p(z) on it."""
    grid = posterior_grid(mean, std, grid_size)
    points = grid.points  # (G, 2)
    log_q = aggregate_posterior_log_prob(points, mean, std)  # (G,)
    log_ps = {name: grid_log_prob(prior, points, n_samples=is_samples, batch_size=batch_size) for name, prior in priors.items()}
    return grid, log_q, log_ps


def figure2(model_path: str | Path, encodings_path: str | Path, methods: dict[str, dict], paths: Sequence[str | Path],
            table_path: str | Path, fit_images: int = 10_000, d_t: int = 2, grid_size: int = 200, is_samples: int = 1000,
            posthoc: PosthocOptions = PosthocOptions(), dynamic_range: float = 10.0, mc_points: int = 2000,
            device: str = "cpu") -> list[dict]:
    """Figure 2 from one normal-prior d_z = 2 run: fit ``methods``' priors post hoc to up to
    ``fit_images`` training encodings (a random subset, seed = posthoc.seed), draw, write CSV.
    The CSV holds the grid sums and, as a check on the grid, Monte Carlo estimates from
    ``mc_points`` z ~ q(z|x) (columns *_mc)."""
    from pipeline.artefacts import load_model, read_encodings

    vae, settings = load_model(model_path, device)
    if settings["d_z"] != 2:
        raise ValueError(f"Figure 2 needs a d_z = 2 run; {model_path} has d_z = {settings['d_z']} (train the 'd_z2' variant)")
    train = read_encodings(encodings_path)["train"]
    keep = torch.randperm(len(train["mean"]), generator=torch.Generator().manual_seed(posthoc.seed))[:fit_images]  # (N,)
    mean, std = train["mean"][keep].float(), train["std"][keep].float()  # (N, 2) each
    priors, fit_logs = fit_priors_posthoc(methods, mean, std, vae.encoder, d_t, posthoc, device)
    grid, log_q, log_ps = figure2_from_encodings(mean, std, priors, grid_size, is_samples)
    rows = density_rows(log_q, log_ps, grid.cell_area)
    if abs(rows[0]["q_mass"] - 1) > MASS_TOLERANCE:
        log.warning("Figure 2 grid holds %.3f of q(z)'s mass (%d x %d cells): raise figures.fig2_grid_size for accurate grid sums",
                    rows[0]["q_mass"], grid_size, grid_size)
    for row in rows:
        name = row["method"]
        prior = priors.get(name)
        if prior is not None:
            row.update(monte_carlo_divergences(prior, mean, std, mc_points, is_samples, seed=posthoc.seed))
        row.update(dataset=settings["dataset"], seed=settings["seed"], n_images=len(mean), grid_cells=len(log_q),
                   is_samples=is_samples if row["method"] in priors and not priors[row["method"]].exact else None)
    title = (f"{dataset_title(settings['dataset'])}: aggregate posterior of a normal-prior VAE (d_z = 2, seed {settings['seed']}) "
             f"and priors fitted to {len(mean):,} encodings")
    plot_density_panels(grid, log_q, log_ps, rows, title, paths, dynamic_range)
    write_table(table_path, rows, TABLE_COLUMNS, inputs=[model_path, encodings_path],
                config={"figure": "fig2", "methods": methods, "d_t": d_t, "fit_images": fit_images, "grid_size": grid_size,
                        "is_samples": is_samples, "mc_points": mc_points, "posthoc": vars(posthoc) | {"adam_betas": list(posthoc.adam_betas)},
                        "fit_logs": _summarise(fit_logs)})
    return rows


def _summarise(fit_logs: dict[str, list[dict]]) -> dict:
    """The last epoch's loss and fit record per prior (the provenance keeps the fit's outcome)."""
    out = {}
    for name, records in fit_logs.items():
        if records:
            last = dict(records[-1])
            fit = last.get("fit") or {}
            last["fit"] = {k: v for k, v in fit.items() if k != "weights"} | ({"top_weights": fit["weights"][:10]} if "weights" in fit else {})
            out[name] = last
    return out


__all__ = ["figure2", "figure2_from_encodings", "plot_density_panels", "density_rows", "colour_range"]
