"""Sample grids: one per run (written by ``python -m pipeline sample``) and supplement
Figures 1-5 (one figure per prior, a 10 x 10 grid per dataset side by side)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from pipeline.figures.style import PANEL_WIDTH, hide_ticks, method_label, plt, save_figure, style, write_table


def image_grid(images: torch.Tensor, rows: int) -> torch.Tensor:
    """uint8 (N,C,H,W) -> one (rows*H, cols*W, C) image; N <= rows*cols, blanks stay black."""
    n, c, h, w = images.shape
    cols = max(1, -(-n // rows)) if n < rows * rows else rows
    canvas = torch.zeros(rows * h, cols * w, c, dtype=torch.uint8)
    for k in range(min(n, rows * cols)):
        r, col = divmod(k, cols)
        canvas[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[k].permute(1, 2, 0)
    return canvas


def show_images(ax, canvas: torch.Tensor) -> None:
    """Draw a (H, W, C) uint8 canvas: grey for one channel, RGB otherwise; no ticks."""
    grey = canvas.shape[-1] == 1
    canvas = canvas.numpy()
    ax.imshow(canvas[..., 0] if grey else canvas, cmap="gray" if grey else None, vmin=0, vmax=255, interpolation="nearest")
    hide_ticks(ax)


def save_sample_grid(images: torch.Tensor, rows: int, title: str, paths: list[Path]) -> None:
    """A rows x rows grid of uint8 images as PNG and/or PDF (one run's samples)."""
    with style():
        fig, ax = plt.subplots(figsize=(6, 6.4))
        show_images(ax, image_grid(images, rows))
        ax.set_title(title)
        ax.axis("off")
        save_figure(fig, paths)


def supplement_samples_figure(method: str, grids: Sequence[tuple[str, torch.Tensor]], rows: int,
                              paths: Sequence[str | Path], seed: int | None = None) -> None:
    """Supplement Figures 1-5: for one prior, a rows x rows grid of samples per dataset.

    grids: (dataset name, uint8 images (N,C,H,W)) in display order; N >= rows*rows.
    """
    if not grids:
        raise ValueError(f"supplement samples figure for {method!r}: no datasets given")
    with style():
        fig, axes = plt.subplots(1, len(grids), figsize=(PANEL_WIDTH * 1.4 * len(grids), PANEL_WIDTH * 1.4 + 0.4), squeeze=False)
        for ax, (dataset, images) in zip(axes[0], grids):
            if len(images) < rows * rows:
                raise ValueError(f"{method} on {dataset}: {len(images)} samples, the grid needs {rows * rows}")
            show_images(ax, image_grid(images[: rows * rows], rows))
            ax.set_title(dataset)
        seed_text = f", seed {seed}" if seed is not None else ""
        fig.suptitle(f"Samples from the {method_label(method)} prior{seed_text}: decoder means of z ~ p(z)")
        save_figure(fig, paths)


def samples_figure_from_files(method: str, datasets: Sequence[str], sample_files: Sequence[str | Path], rows: int,
                              paths: Sequence[str | Path], table: str | Path, seed: int | None = None) -> None:
    """Read each dataset's samples.h5 and draw the supplement figure; CSV: what was shown."""
    from pipeline.artefacts import read_samples

    if len(datasets) != len(sample_files):
        raise ValueError(f"{len(datasets)} datasets but {len(sample_files)} sample files")
    grids, rows_out = [], []
    for dataset, path in zip(datasets, sample_files):
        images, _ = read_samples(path, rows * rows)  # (rows^2, C, H, W)
        grids.append((dataset, images))
        rows_out.append({"dataset": dataset, "method": method, "seed": seed, "n_shown": len(images),
                         "mean_intensity": float(images.float().mean() / 255.0), "samples": str(path)})
    supplement_samples_figure(method, grids, rows, paths, seed=seed)
    write_table(table, rows_out, inputs=sample_files, config={"figure": "supplement samples", "method": method, "rows": rows})
