"""The numbers printed in the paper, from their one home ``pipeline/resources/paper_values.csv``.

Every table and claim that puts a paper value beside ours reads it through ``read_paper_values``
(or ``paper_values``), so a transcription is fixed in one file and a dataset of ours is matched
to the paper's row in one place (``PAPER_DATASET``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PAPER_VALUES = Path(__file__).parent / "resources" / "paper_values.csv"
# Our datasets whose closest paper row is another dataset's (mnist5k is a 5,000-digit MNIST subset).
PAPER_DATASET = {"mnist5k": "mnist"}
# The paper's d_t per dataset for its headline numbers: supplement Table 2's cells at d_t = 8 / 16 /
# 32 equal the MNIST / Fashion-MNIST / CelebA headline cells of Tables 1 and supplement 1.
PAPER_D_T = {"mnist": 8, "fashion_mnist": 16, "celeba": 32}


def paper_dataset(dataset: str) -> str:
    """The paper's dataset whose printed values ours are compared with."""
    return PAPER_DATASET.get(dataset, dataset)


def read_paper_values(table: str | None = None, metric: str | None = None, dataset: str | None = None) -> pd.DataFrame:
    """Rows of paper_values.csv (source, table, metric, dataset, method, mean, std), filtered by
    whichever of table, metric and dataset are given (``dataset`` is ours: mapped by PAPER_DATASET)."""
    frame = pd.read_csv(PAPER_VALUES, comment="#")
    for column, value in (("table", table), ("metric", metric), ("dataset", None if dataset is None else paper_dataset(dataset))):
        if value is not None:
            frame = frame[frame[column] == value]
    return frame.reset_index(drop=True)


def paper_values(table: str, metric: str, dataset: str) -> dict[str, tuple[float, float]]:
    """method -> (mean, std) as printed, for one table, metric and (our) dataset."""
    rows = read_paper_values(table, metric, dataset)
    return {m: (mu, sd) for m, mu, sd in zip(rows.method, rows["mean"], rows["std"])}
