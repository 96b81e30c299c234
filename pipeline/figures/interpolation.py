"""Figures 5 and 6 (and supplement Figures 6-7): shortest likely path (SLP) against the
straight line (SP), LaDDer Sec. 3.4 / 4.3; the SLP itself is ``pipeline.interpolation``.

- Figure 5 (per dataset): (a) three test pairs; (b) SLP and (c) SP paths drawn over log p(t)
  in the 2-D t-space of a LaDDer model with d_t = 2; (d-f) the decoded paths, SLP row above
  SP row for each pair, with LaDDer (t-space), GMM and normal priors (z-space).
- Figure 6 with supplement Figures 6-7: test pairs interpolated by LaDDer, GMM and normal
  models (CelebA in the paper; another dataset's figure says which it is), and the SLP
  objective's terms over the iterations for LaDDer (Fig. 6c-f), SP's value dashed.

Drawing functions take arrays (uint8 images, paths, density grids, histories) and output
paths; ``make_fig5`` / ``make_fig6`` load models and data and write PNG, PDF and CSV files;
``register_commands`` adds ``figure-interpolation`` and ``slp-table`` to the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from pipeline.commands import json_arg
from pipeline.figures.style import DENSITY_CMAP, dataset_title, hide_ticks, method_label, plt, save_figure, style, write_table
from pipeline.interpolation import (HELDOUT_COMPONENTS, HELDOUT_IMAGES, HELDOUT_REG, SLP_DEFAULTS, TABLE_COLUMNS, choose_pairs,
                                    interpolate_images, latent_space, pair_table, stats_rows)

DENSITY_RANGE = 14.0  # nats of log density shown below the grid's maximum (the original's -14..0)
PAIR_COLOURS = ["tab:red", "tab:orange", "white", "tab:pink", "tab:cyan"]
GAP = 2  # pixels of white between images in a strip
HISTORY_TERMS = [("objective", "Eq. 9 objective"), ("length", "path length"), ("step_std", "std of step lengths"),
                 ("neg_log_p", "-sum log p at the points")]

# Options a figure or table reads from config's ``interpolation`` block, beyond SLP_DEFAULTS.
FIGURE_DEFAULTS = {"pair_seed": 0, "n_pairs": 200, "figure_pairs": 3, "figure6_pairs": 2, "test_images": 2000,
                   "grid_size": 200}


# -- drawing on arrays --------------------------------------------------------------------------
def strip_canvas(rows: Sequence[torch.Tensor], group: int = 2, gap: int = GAP) -> tuple[np.ndarray, list[float]]:
    """Rows of uint8 images, each (n, C, H, W), as one uint8 canvas (height, width, C) with white
    gaps between images, a wider gap after every ``group`` rows (SLP/SP pairs), and the row centres."""
    n, c, h, w = rows[0].shape
    row_gaps = [gap * (3 if (r + 1) % group == 0 else 1) for r in range(len(rows) - 1)] + [0]
    canvas = np.full((len(rows) * h + sum(row_gaps), n * w + (n - 1) * gap, c), 255, dtype=np.uint8)
    y, centres = 0, []
    for row, row_gap in zip(rows, row_gaps):
        for k in range(n):
            canvas[y:y + h, k * (w + gap):k * (w + gap) + w] = row[k].permute(1, 2, 0).numpy()  # (H, W, C)
        centres.append(y + h / 2)
        y += h + row_gap
    return canvas, centres


def _show(ax, canvas: np.ndarray) -> None:
    grey = canvas.shape[-1] == 1
    ax.imshow(canvas[..., 0] if grey else canvas, cmap="gray" if grey else None, vmin=0, vmax=255, interpolation="nearest")
    hide_ticks(ax)
    for side in ax.spines.values():
        side.set_visible(False)


def draw_pairs(ax, pair_images: torch.Tensor) -> None:
    """(a): start and end image of each pair, one pair per row. pair_images uint8 (P, 2, C, H, W)."""
    canvas, centres = strip_canvas(list(pair_images), group=1)
    _show(ax, canvas)
    ax.set_yticks(centres)
    ax.set_yticklabels([f"pair {p + 1}" for p in range(len(pair_images))])
    ax.tick_params(axis="y", length=0)


def draw_strips(ax, slp_images: torch.Tensor, sp_images: torch.Tensor, title: str) -> None:
    """For each pair an SLP row above an SP row of decoded path images (P, J+2, C, H, W) each;
    the first and last columns are the decoded endpoints."""
    rows = [row for p in range(len(slp_images)) for row in (slp_images[p], sp_images[p])]
    canvas, centres = strip_canvas(rows, group=2)
    _show(ax, canvas)
    ax.set_yticks(centres)
    ax.set_yticklabels([f"{p + 1} {kind}" for p in range(len(slp_images)) for kind in ("SLP", "SP")])
    ax.tick_params(axis="y", length=0)
    ax.set_title(title)


def density_grid(log_prob: Callable[[torch.Tensor], torch.Tensor], points: torch.Tensor, size: int = 200,
                 margin: float = 0.15) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """log p on a square 2-D grid covering ``points`` (N, 2) with a relative margin.
    -> xs (size,), ys (size,), log_p (size, size) indexed [y, x] (imshow's order)."""
    lo, hi = points.min(0).values, points.max(0).values  # (2,), (2,)
    centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 * (1 + margin) + 1e-3
    xs = torch.linspace(float(centre[0]) - half, float(centre[0]) + half, size)
    ys = torch.linspace(float(centre[1]) - half, float(centre[1]) + half, size)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # (size, size) each
    with torch.no_grad():
        log_p = log_prob(torch.stack([gx, gy], -1).to(points))  # (size, size)
    return xs.numpy(), ys.numpy(), log_p.cpu().double().numpy()


def draw_paths(ax, xs: np.ndarray, ys: np.ndarray, log_p: np.ndarray, paths: torch.Tensor, title: str,
               encodings: torch.Tensor | None = None):
    """Paths (P, J+2, 2) over imshow(log p), the colour range the top DENSITY_RANGE nats;
    ``encodings`` (N, 2), the test images' encodings, as small grey dots."""
    vmax = float(np.max(log_p))
    im = ax.imshow(log_p, origin="lower", extent=(xs[0], xs[-1], ys[0], ys[-1]), cmap=DENSITY_CMAP,
                   vmin=vmax - DENSITY_RANGE, vmax=vmax, interpolation="bilinear")
    if encodings is not None:
        ax.scatter(encodings[:, 0], encodings[:, 1], s=1.5, c="lightgrey", alpha=0.6, lw=0, label="test encodings")
    for p, path in enumerate(paths.numpy()):
        colour = PAIR_COLOURS[p % len(PAIR_COLOURS)]
        ax.plot(path[:, 0], path[:, 1], "-o", color=colour, lw=1.2, ms=2.5, label=f"pair {p + 1}")
        ax.plot(path[0, 0], path[0, 1], "s", color=colour, mec="black", ms=5)
        ax.plot(path[-1, 0], path[-1, 1], "*", color=colour, mec="black", ms=8)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_xlabel("$t_1$")
    ax.set_ylabel("$t_2$")
    ax.set_title(title)
    return im


def figure5(pair_images: torch.Tensor, grid: tuple[np.ndarray, np.ndarray, np.ndarray], t_paths: dict[str, torch.Tensor],
            strips: dict[str, dict[str, torch.Tensor]], title: str, paths: Sequence[str | Path],
            encodings: torch.Tensor | None = None) -> None:
    """Figure 5. pair_images uint8 (P, 2, C, H, W); grid (xs, ys, log p(t)) from density_grid;
    t_paths {'slp', 'straight'}: (P, J+2, 2); strips {label: {'slp', 'straight'}: uint8
    (P, J+2, C, H, W)}, one panel per label (LaDDer, GMM, normal); encodings (N, 2) optional dots."""
    xs, ys, log_p = grid
    n_strip = len(strips)
    width = 3.2 * max(n_strip, 3)
    first_strip = next(iter(strips.values()))["slp"]  # (P, J+2, C, H, W)
    strip_height = width / n_strip * 2 * first_strip.shape[0] / first_strip.shape[1] + 0.5  # inches, + titles
    with style():
        fig = plt.figure(figsize=(width, 3.6 + strip_height), layout="constrained")
        top, bottom = fig.subfigures(2, 1, height_ratios=[3.6, strip_height])
        ax_pairs, ax_slp, ax_sp = top.subplots(1, 3, width_ratios=[0.45, 1, 1])
        draw_pairs(ax_pairs, pair_images)
        ax_pairs.set_title("(a) test pairs\n(start, end)")
        draw_paths(ax_slp, xs, ys, log_p, t_paths["slp"], "(b) SLP in LaDDer's t-space", encodings)
        im = draw_paths(ax_sp, xs, ys, log_p, t_paths["straight"], "(c) SP (straight line)", encodings)
        ax_slp.legend(loc="lower left", framealpha=0.8, markerscale=1.5)
        top.colorbar(im, ax=[ax_slp, ax_sp], label="log p(t)", shrink=0.9)
        axes = np.atleast_1d(bottom.subplots(1, n_strip))
        for k, (ax, (label, s)) in enumerate(zip(axes, strips.items())):
            draw_strips(ax, s["slp"], s["straight"], f"({chr(ord('d') + k)}) {label}")
        fig.suptitle(title)
        save_figure(fig, paths)


def figure6(pair_images: torch.Tensor, strips: dict[str, dict[str, torch.Tensor]], history: dict[str, torch.Tensor],
            history_label: str, title: str, paths: Sequence[str | Path]) -> None:
    """Figure 6 / supplement Figures 6-7. pair_images uint8 (P, 2, C, H, W); strips as figure5;
    history: 'objective', 'length', 'step_std', 'log_p_sum' each (iterations + 1, P) of the
    model named ``history_label`` (row 0 = the straight line, drawn dashed)."""
    n_strip = len(strips)
    width = 3.2 * max(n_strip, 3)
    first_strip = next(iter(strips.values()))["slp"]  # (P, J+2, C, H, W)
    strip_height = width / (n_strip + 0.3) * 2 * first_strip.shape[0] / first_strip.shape[1] + 0.6  # inches, + titles
    with style():
        fig = plt.figure(figsize=(width, strip_height + 2.6), layout="constrained")
        top, bottom = fig.subfigures(2, 1, height_ratios=[strip_height, 2.6])
        axes = np.atleast_1d(top.subplots(1, n_strip + 1, width_ratios=[0.3] + [1] * n_strip))
        draw_pairs(axes[0], pair_images)
        axes[0].set_title("(a) test pairs\n(start, end)")
        for k, (ax, (label, s)) in enumerate(zip(axes[1:], strips.items())):
            draw_strips(ax, s["slp"], s["straight"], f"({chr(ord('b') + k)}) {label}")
        first = chr(ord("b") + n_strip)
        curves = {**history, "neg_log_p": -history["log_p_sum"]}
        term_axes = bottom.subplots(1, len(HISTORY_TERMS))
        for k, (ax, (key, name)) in enumerate(zip(term_axes, HISTORY_TERMS)):
            values = curves[key].numpy()  # (iterations + 1, P)
            for p in range(values.shape[1]):
                colour = f"C{p}"
                ax.plot(values[:, p], color=colour, lw=1.2, label=f"pair {p + 1} SLP")
                ax.axhline(values[0, p], color=colour, ls="--", lw=0.9, label=f"pair {p + 1} SP")
            ax.set_xlabel("iteration")
            ax.set_title(f"({chr(ord(first) + k)}) {name}")
            ax.grid(True, lw=0.3)
        term_axes[0].legend()
        bottom.suptitle(f"SLP objective terms during optimisation, {history_label}", fontsize=9)
        fig.suptitle(title)
        save_figure(fig, paths)


# -- from model files ----------------------------------------------------------------------------
def _options(options: dict | None) -> tuple[dict, dict]:
    """Split config's interpolation block into SLP settings and figure settings (with defaults)."""
    options = dict(options or {})
    unknown = set(options) - set(SLP_DEFAULTS) - set(FIGURE_DEFAULTS)
    if unknown:
        raise ValueError(f"interpolation options: unknown keys {sorted(unknown)}; known: {sorted({**SLP_DEFAULTS, **FIGURE_DEFAULTS})}")
    slp = {k: options.get(k, v) for k, v in SLP_DEFAULTS.items()}
    slp["betas"] = tuple(slp["betas"])
    return slp, {k: options.get(k, v) for k, v in FIGURE_DEFAULTS.items()}


def _load(model_path: str | Path, device: str):
    from pipeline.artefacts import load_model

    return load_model(model_path, device)


def _pairs_and_images(data_path: str | Path, n_pairs: int, fig_opts: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Test images (pool of the first test_images), the chosen (start, end) indices (P, 2) and
    the pair images (P, 2, C, H, W); pairs have different labels where the data allow."""
    from pipeline.artefacts import load_split

    images, labels = load_split(data_path, "test", limit=fig_opts["test_images"])
    pairs = choose_pairs(len(images), n_pairs, fig_opts["pair_seed"], labels)  # (P, 2)
    return images, pairs, torch.stack([images[pairs[:, 0]], images[pairs[:, 1]]], 1)


def _interpolate_models(models: dict[str, str | Path], images: torch.Tensor, pairs: torch.Tensor, slp: dict, device: str,
                        dataset: str) -> tuple[dict, list[dict], dict]:
    """Run SLP and SP for each model -> ({method: result}, stats rows, {method: settings})."""
    results, rows, settings = {}, [], {}
    for method, path in models.items():
        vae, run_settings = _load(path, device)
        result = interpolate_images(vae, images[pairs[:, 0]], images[pairs[:, 1]], slp)
        results[method], settings[method] = result, run_settings
        extra = {"space": [result["space"]] * len(pairs), "start_index": pairs[:, 0].tolist(), "end_index": pairs[:, 1].tolist(),
                 "model": [str(path)] * len(pairs)}
        rows += stats_rows(result["stats"], dataset, method, run_settings.get("seed", -1), extra)
    return results, rows, settings


def make_fig5(models: dict[str, str | Path], data_path: str | Path, dataset: str, out_prefix: str | Path,
              options: dict | None = None, device: str = "cpu") -> list[Path]:
    """Figure 5 from model files: ``models`` maps method -> model.pt; 'ladder' must be a LaDDer
    (or hierarchical) model with d_t = 2, whose t-space panels (b, c) draw. Writes PREFIX.png,
    PREFIX.pdf and PREFIX.csv (path statistics, TABLE_COLUMNS first) with its provenance."""
    slp, fig_opts = _options(options)
    if "ladder" not in models:
        raise ValueError(f"figure 5 needs a 'ladder' model with d_t = 2 (got models for {sorted(models)})")
    images, pairs, pair_images = _pairs_and_images(data_path, fig_opts["figure_pairs"], fig_opts)
    results, rows, _ = _interpolate_models(models, images, pairs, slp, device, dataset)
    ladder_vae, _ = _load(models["ladder"], device)
    space = latent_space(ladder_vae)
    if space.name != "t" or space.dim != 2:
        raise ValueError(f"figure 5 draws paths in a 2-D t-space, but {models['ladder']} interpolates in a "
                         f"{space.dim}-D {space.name}-space; give the LaDDer run with d_t = 2 (variant d_t2)")
    with torch.no_grad():
        from pipeline.interpolation import to_unit

        encodings = space.encode(to_unit(images).to(device)).cpu()  # (N, 2)
    ladder = results["ladder"]
    # The grid covers the central 99 % of the test encodings, of 2,000 draws from p(t) (so the
    # density's own structure shows even when the encodings sit in a small part of it), and
    # every path point.
    probs = torch.tensor([0.005, 0.995])
    draws = ladder_vae.prior.sample_t(2000, torch.Generator(device=device).manual_seed(fig_opts["pair_seed"])).cpu()  # (2000, 2)
    points = torch.cat([torch.quantile(encodings, probs, dim=0), torch.quantile(draws, probs, dim=0),  # (2, 2) each
                        ladder["slp"].reshape(-1, 2), ladder["straight"].reshape(-1, 2)])
    grid = density_grid(space.log_prob, points, size=fig_opts["grid_size"])
    strips = {method_label(m) + (" (t-space, d_t = 2)" if r["space"] == "t" else " (z-space)"):
              {"slp": r["slp_images"], "straight": r["straight_images"]} for m, r in results.items()}
    out_prefix = Path(out_prefix)
    outputs = [out_prefix.with_suffix(".png"), out_prefix.with_suffix(".pdf")]
    title = (f"Figure 5: {dataset_title(dataset)} interpolation, shortest likely path (SLP) vs straight line (SP), "
             f"{slp['n_points']} points")
    figure5(pair_images, grid, {"slp": ladder["slp"], "straight": ladder["straight"]}, strips, title, outputs, encodings)
    columns = TABLE_COLUMNS + ["space", "start_index", "end_index", "model"]
    write_table(out_prefix.with_suffix(".csv"), rows, columns, inputs=[*models.values(), data_path],
                config={"slp": slp, **fig_opts})
    return outputs + [out_prefix.with_suffix(".csv")]


def make_fig6(models: dict[str, str | Path], data_path: str | Path, dataset: str, out_prefix: str | Path,
              options: dict | None = None, device: str = "cpu") -> list[Path]:
    """Figure 6 / supplement Figures 6-7 from model files (method -> model.pt, LaDDer first if
    present). Writes PREFIX.png/.pdf, PREFIX.csv (path statistics) and PREFIX_history.csv (the
    SLP terms per iteration of every model and pair)."""
    slp, fig_opts = _options(options)
    images, pairs, pair_images = _pairs_and_images(data_path, fig_opts["figure6_pairs"], fig_opts)
    results, rows, _ = _interpolate_models(models, images, pairs, slp, device, dataset)
    strips = {method_label(m) + f" ({r['space']}-space)": {"slp": r["slp_images"], "straight": r["straight_images"]}
              for m, r in results.items()}
    shown = "ladder" if "ladder" in results else next(iter(results))
    name = dataset_title(dataset)
    title = f"Figure 6 and supplement Figures 6-7: {name} interpolation, SLP (upper row) vs SP (lower row)"
    if dataset != "celeba":
        title += f"\n(CelebA absent: the paper's CelebA figure drawn on {name})"
    out_prefix = Path(out_prefix)
    outputs = [out_prefix.with_suffix(".png"), out_prefix.with_suffix(".pdf")]
    figure6(pair_images, strips, results[shown]["history"], f"{method_label(shown)} ({results[shown]['space']}-space)",
            title, outputs)
    inputs = [*models.values(), data_path]
    config = {"slp": slp, **fig_opts}
    write_table(out_prefix.with_suffix(".csv"), rows, TABLE_COLUMNS + ["space", "start_index", "end_index", "model"],
                inputs=inputs, config=config)
    history_rows = []
    for method, r in results.items():
        h = r["history"]
        for p in range(len(pairs)):
            for it in range(h["objective"].shape[0]):
                history_rows.append({"dataset": dataset, "method": method, "pair": p, "iteration": it,
                                     **{k: float(h[k][it, p]) for k in ("objective", "length", "step_std", "log_p_sum")}})
    history_path = out_prefix.with_name(out_prefix.name + "_history.csv")
    write_table(history_path, history_rows, inputs=inputs, config=config)
    return outputs + [out_prefix.with_suffix(".csv"), history_path]


def make_slp_table(model_path: str | Path, data_path: str | Path, out: str | Path, options: dict | None = None,
                   device: str = "cpu", dataset: str | None = None, method: str | None = None, seed: int | None = None) -> Path:
    """The SLP-vs-SP table of one model over n_pairs random test pairs -> CSV (+ provenance).

    Pairs come from the first ``test_images`` test images; the held-out density (C7) is fitted on
    the test images that are no pair's endpoint: the rest of that pool, then the next ones."""
    from pipeline.artefacts import load_split

    slp, fig_opts = _options(options)
    vae, settings = _load(model_path, device)
    test, _ = load_split(data_path, "test", limit=fig_opts["test_images"] + HELDOUT_IMAGES)
    images, heldout = test[:fig_opts["test_images"]], test[fig_opts["test_images"]:]
    table = pair_table(vae, images, fig_opts["n_pairs"], fig_opts["pair_seed"], dataset or settings["dataset"],
                       method or settings["method"], settings["seed"] if seed is None else seed, slp, heldout_images=heldout)
    write_table(out, table.to_dict("records"), list(table.columns), inputs=[model_path, data_path],
                config={"slp": slp, **fig_opts, "heldout": {"components": HELDOUT_COMPONENTS, "max_images": HELDOUT_IMAGES,
                                                            "relative_covariance_floor": HELDOUT_REG}})
    return Path(out)


# -- command line -----------------------------------------------------------------------------
def _model_map(items: Sequence[str]) -> dict[str, str]:
    models = {}
    for item in items:
        method, sep, path = item.partition("=")
        if not sep or not method or not path:
            raise SystemExit(f"--model takes METHOD=PATH (e.g. ladder=results/runs/.../model.pt), got {item!r}")
        models[method] = path
    return models


def _device(name: str) -> str:
    from pipeline.devices import resolve_device

    return str(resolve_device(name))


def cmd_figure_interpolation(args) -> None:
    make = {"5": make_fig5, "6": make_fig6}[args.figure]
    make(_model_map(args.model), args.data, args.dataset, args.out_prefix, json_arg(args.options), _device(args.device))


def cmd_slp_table(args) -> None:
    make_slp_table(args.model, args.data, args.out, json_arg(args.options), _device(args.device), args.dataset,
                   args.method, args.seed)


def register_commands(subparsers) -> None:
    """Add ``figure-interpolation`` and ``slp-table`` to ``python -m pipeline``."""
    p = subparsers.add_parser("figure-interpolation", help="Figure 5 or 6: SLP vs straight-line interpolation",
                              description="Figure 5 (MNIST-like: paths in LaDDer's 2-D t-space) or Figure 6 "
                                          "(supplement 6-7: strips and the SLP terms) -> PREFIX.png/.pdf/.csv")
    p.set_defaults(func=cmd_figure_interpolation)
    p.add_argument("--figure", choices=["5", "6"], required=True)
    p.add_argument("--model", nargs="+", required=True, metavar="METHOD=PATH",
                   help="model files; figure 5 needs ladder=<LaDDer run with d_t = 2>")
    p.add_argument("--data", required=True, help="processed dataset HDF5")
    p.add_argument("--dataset", required=True, help="dataset name (titles and CSV)")
    p.add_argument("--options", help="config's interpolation block as JSON (or @file)")
    p.add_argument("--out-prefix", required=True, help="writes PREFIX.png, PREFIX.pdf, PREFIX.csv")
    p.add_argument("--device", default="auto")

    p = subparsers.add_parser("slp-table", help="SLP vs straight line over many random test pairs -> CSV",
                              description="mean/min log p, length and step std of SLP and SP paths for n_pairs test pairs")
    p.set_defaults(func=cmd_slp_table)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--options", help="config's interpolation block as JSON (or @file)")
    p.add_argument("--out", required=True, help="CSV path (a .provenance.json is written beside it)")
    p.add_argument("--dataset", help="default: from the model's settings")
    p.add_argument("--method", help="default: from the model's settings (give it to label variants)")
    p.add_argument("--seed", type=int, help="default: from the model's settings")
    p.add_argument("--device", default="auto")
