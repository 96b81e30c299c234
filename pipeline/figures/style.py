"""One look for every figure: fonts, sizes, colour maps, and the one way figures are saved.

Every figure module draws inside ``with style():`` and writes through ``save_figure`` (PNG and
PDF, each renamed into place only when complete) and its numbers through ``write_table`` (CSV
plus ``<name>.provenance.json`` beside it, as the tables do).
"""

from __future__ import annotations

import contextlib
import csv
import logging
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines this runs on
import matplotlib.pyplot as plt  # noqa: E402

from pipeline.provenance import atomic_path, provenance, write_json  # noqa: E402

logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting logs every table at INFO

DPI = 200
DENSITY_CMAP = "viridis"  # log densities: perceptually uniform, readable in greyscale
CLASS_CMAP = "tab10"  # class labels (10 classes in MNIST and Fashion-MNIST)
COMPONENT_COLOUR = "black"  # mixture-component ellipses drawn over coloured points
PANEL_WIDTH = 2.6  # inches per panel

RC = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: identical glyphs on every machine
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 10,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.03,
    "image.cmap": DENSITY_CMAP,
    "image.interpolation": "nearest",
    "axes.linewidth": 0.6,
    "pdf.fonttype": 42,  # embed TrueType so PDF text stays text
}


def method_label(method: str) -> str:
    """Display name of a method in figures: its prior's short label (``Prior.short_label``, else
    ``label``: one home, the prior class); a method named <prior>_<suffix> keeps its suffix
    (ladder_big -> LaDDer (big))."""
    from pipeline.priors import PRIORS

    def short(name: str) -> str:
        cls = PRIORS[name]
        return cls.short_label or cls.label or name

    if method in PRIORS:
        return short(method)
    base, _, rest = method.partition("_")
    return f"{short(base)} ({rest})" if base in PRIORS and rest else method


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Apply the house rcParams for the figures drawn inside the block."""
    with matplotlib.rc_context(RC):
        yield


def save_figure(fig: "plt.Figure", paths: Iterable[str | Path]) -> None:
    """Write ``fig`` to each path (format from the suffix: .png, .pdf) atomically, then close it."""
    try:
        for path in paths:
            path = Path(path)
            fmt = path.suffix.lstrip(".").lower()
            if fmt not in ("png", "pdf", "svg"):
                raise ValueError(f"figure path {path} must end in .png, .pdf or .svg")
            with atomic_path(path) as tmp:
                # metadata: no creation date in the PDF, so reruns give identical files
                fig.savefig(tmp, format=fmt, metadata={"CreationDate": None} if fmt == "pdf" else None)
    finally:
        plt.close(fig)


def write_table(path: str | Path, rows: Sequence[dict], columns: Sequence[str] | None = None,
                inputs: Iterable[str | Path] = (), config: dict | None = None) -> None:
    """Rows as CSV (atomic), and ``<path>.provenance.json`` naming the inputs that made them."""
    path = Path(path)
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})
    write_json(path.with_name(path.name + ".provenance.json"), {"table": path.name, "inputs": [str(p) for p in inputs]},
               provenance(config=config))


def _cell(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


def hide_ticks(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def dataset_title(dataset: str) -> str:
    """A dataset's name in figure titles: its label in tables too (pipeline.names)."""
    from pipeline.names import dataset_label

    return dataset_label(dataset)
