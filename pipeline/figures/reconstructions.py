"""Figure 3: real test images, each prior's reconstructions of them, and fresh generations.

Left block: a column of test images (a seeded random choice), then one column of reconstructions (decoder mean at the
posterior mean) per prior's model; right block: one column of generations per prior (the
first images of each run's samples.h5: decoder means of z ~ p(z)). CSV beside it: the mean
absolute pixel error of the reconstructions shown, per prior.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from pipeline.figures.samples import show_images
from pipeline.figures.style import dataset_title, method_label, plt, save_figure, style, write_table

POOL = 2000  # test images the shown ones are drawn from
TABLE_COLUMNS = ("dataset", "method", "seed", "n_shown", "rec_mae_shown")


def column_canvas(columns: Sequence[torch.Tensor]) -> torch.Tensor:
    """Columns of uint8 images, each (n, C, H, W) with the same n -> one (n*H, len*W, C) canvas
    (1 px black gap between columns is left out: images tile as in the paper's grids)."""
    n, c, h, w = columns[0].shape
    for col in columns:
        if col.shape != columns[0].shape:
            raise ValueError(f"figure 3 columns differ in shape: {tuple(col.shape)} vs {tuple(columns[0].shape)}")
    stacked = torch.stack(list(columns), dim=1)  # (n, M, C, H, W)
    return stacked.permute(0, 3, 1, 4, 2).reshape(n * h, len(columns) * w, c)  # (n*H, M*W, C)


def label_columns(ax, labels: Sequence[str], width: int) -> None:
    ax.set_xticks([width * (k + 0.5) - 0.5 for k in range(len(labels))])
    ax.set_xticklabels(labels, rotation=45, ha="left")
    ax.xaxis.tick_top()
    ax.tick_params(length=0)


def plot_reconstructions(real: torch.Tensor, reconstructions: dict[str, torch.Tensor], generations: dict[str, torch.Tensor],
                         title: str, paths: Sequence[str | Path]) -> None:
    """real (n,C,H,W) uint8; reconstructions/generations: {method: (n,C,H,W) uint8}."""
    n, _, h, w = real.shape
    left = column_canvas([real, *reconstructions.values()])
    right = column_canvas(list(generations.values()))
    height = min(9.0, 0.42 * n + 1.6)
    with style():
        fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(0.42 * (left.shape[1] + right.shape[1]) / w + 1.0, height),
                                         gridspec_kw={"width_ratios": [left.shape[1], right.shape[1]]})
        show_images(ax_l, left)
        label_columns(ax_l, ["test image"] + [method_label(m) for m in reconstructions], w)
        ax_l.set_xlabel("reconstructions")
        show_images(ax_r, right)
        label_columns(ax_r, [method_label(m) for m in generations], w)
        ax_r.set_xlabel("generations, z ~ p(z)")
        fig.suptitle(title)
        fig.tight_layout()
        save_figure(fig, paths)


def reconstruction_rows(real: torch.Tensor, reconstructions: dict[str, torch.Tensor]) -> list[dict]:
    """Mean |x - x_rec| over the shown images, pixels in [0, 1] (uint8 / 255)."""
    return [{"method": m, "n_shown": len(real), "rec_mae_shown": float((rec.float() - real.float()).abs().mean() / 255.0)}
            for m, rec in reconstructions.items()]


def figure3(data_path: str | Path, models: Sequence[str | Path], samples: Sequence[str | Path], paths: Sequence[str | Path],
            table_path: str | Path, n_images: int = 8, device: str = "cpu") -> list[dict]:
    """Figure 3 for one dataset from aligned lists of model files and samples files (one run per method)."""
    from pipeline.artefacts import load_model, load_split, read_samples
    from pipeline.evaluation import reconstruct

    if len(models) != len(samples):
        raise ValueError(f"figure3: {len(models)} model files but {len(samples)} samples files")
    # A seeded random choice among the first POOL test images: some test splits are sorted by
    # class (mnist5k), and CelebA's is too large to load whole.
    pool, _ = load_split(data_path, "test", limit=POOL)  # (P, C, H, W) uint8
    pick = torch.randperm(len(pool), generator=torch.Generator().manual_seed(0))[:n_images]  # (n,)
    real = pool[pick]  # (n, C, H, W)
    recs, gens, meta = {}, {}, {}
    for model_path, sample_path in zip(models, samples):
        vae, settings = load_model(model_path, device)
        method = settings["method"]
        recs[method] = reconstruct(vae, real, device=device)  # (n, C, H, W) uint8
        gens[method], _ = read_samples(sample_path, n_images)
        if len(gens[method]) < n_images:
            raise ValueError(f"{sample_path} holds {len(gens[method])} samples; Figure 3 shows {n_images}")
        meta[method] = settings
    dataset = next(iter(meta.values()))["dataset"]
    seeds = sorted({s["seed"] for s in meta.values()})
    rows = [{"dataset": dataset, "seed": meta[r["method"]]["seed"], **r} for r in reconstruction_rows(real, recs)]
    plot_reconstructions(real, recs, gens, f"{dataset_title(dataset)}: test images, reconstructions and generations (seed {', '.join(map(str, seeds))})", paths)
    write_table(table_path, rows, TABLE_COLUMNS, inputs=[str(data_path), *map(str, models), *map(str, samples)],
                config={"figure": "fig3", "n_images": n_images})
    return rows
