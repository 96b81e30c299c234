"""Figures: sample grids (supplement F.1) and, as issues land, the paper's other figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines this runs on
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from pipeline.provenance import atomic_path  # noqa: E402


def image_grid(images: torch.Tensor, rows: int) -> torch.Tensor:
    """uint8 (N,C,H,W) -> one (rows*H, cols*W, C) image; N <= rows*cols, blanks stay black."""
    n, c, h, w = images.shape
    cols = max(1, -(-n // rows)) if n < rows * rows else rows
    canvas = torch.zeros(rows * h, cols * w, c, dtype=torch.uint8)
    for k in range(min(n, rows * cols)):
        r, col = divmod(k, cols)
        canvas[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[k].permute(1, 2, 0)
    return canvas


def save_sample_grid(images: torch.Tensor, rows: int, title: str, paths: list[Path]) -> None:
    """A rows x rows grid of uint8 images as PNG and/or PDF (supplement Figures 1-5)."""
    canvas = image_grid(images, rows)
    grey = canvas.shape[-1] == 1
    fig, ax = plt.subplots(figsize=(6, 6.4))
    ax.imshow(canvas[..., 0] if grey else canvas, cmap="gray" if grey else None, vmin=0, vmax=255, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    fig.tight_layout()
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=150, format=Path(path).suffix.lstrip("."))
    plt.close(fig)
