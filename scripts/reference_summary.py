"""The compact ours-against-paper table of reference/README.md, printed from a reference folder's
table CSVs (the DAG's own tables), so the README's numbers are never typed by hand.

    .venv/bin/python scripts/reference_summary.py reference/cpu_fashion_mnist [--dataset fashion_mnist]

One row pair (ours, paper) per headline quantity: Table 2's -KL, Table 3's ELBO and error,
supplement Table 1's generation FID and generation - reconstruction gap; then LaDDer's and GMM's
final mixture components where the runs recorded them. Mean ± std over the seeds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import yaml

from pipeline.config import DEFAULT_CONFIG
from pipeline.tables import column_label, mean_std_cell as cell

ROWS = [  # (table, metric, label, decimals, has a paper value)
    ("table2", "neg_kl", "-KL (Table 2)", 1, True),
    ("table3", "elbo", "ELBO", 1, True),
    ("table3", "rec_error_x100", "rec. error x0.01", 2, True),
    ("table_sm1", "fid_generation", "generation FID", 1, True),
    ("table_sm1", "fid_difference", "gen. - rec. FID", 1, True),
    ("table3", "mixture_components", "final mixture components", 1, False),
]


def summary(reference: Path, dataset: str) -> str:
    frames = {name: pd.read_csv(reference / "tables" / f"{name}.csv") for name in dict.fromkeys(row[0] for row in ROWS)
              if (reference / "tables" / f"{name}.csv").exists()}
    if not frames:
        raise SystemExit(f"{reference}/tables: no table CSVs (run the DAG's tables, then scripts/collect_reference.py)")
    present = pd.concat(frames.values())
    present = present[present.dataset == dataset]
    order = yaml.safe_load(DEFAULT_CONFIG.read_text())["run"]["methods"]  # the paper's column order, then ours (as collect_reference)
    methods = [m for m in order if m in set(present.method)] + sorted(set(present.method) - set(order))
    priors = present.drop_duplicates("method").set_index("method")["prior"]
    rows = []
    for table, metric, label, decimals, has_paper in ROWS:
        part = frames.get(table)
        part = None if part is None else part[(part.metric == metric) & (part.dataset == dataset)].set_index("method")
        if part is None or part.empty:
            continue
        ours = [cell(part.loc[m, "mean"], part.loc[m, "std"], decimals) if m in part.index else "-" for m in methods]
        rows.append((f"{label}, ours", ours))
        if has_paper:
            rows.append((f"{label}, paper", [cell(part.loc[m, "paper_mean"], part.loc[m, "paper_std"], decimals) if m in part.index else "-"
                                             for m in methods]))
    shown = [i for i, m in enumerate(methods) if any(cells[i] != "-" for label, cells in rows if label.endswith("ours"))]  # not the real-image FID
    lines = ["| | " + " | ".join(column_label(methods[i], priors.get(methods[i])) for i in shown) + " |", "|---" * (len(shown) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(cells[i] for i in shown) + " |" for label, cells in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="a reference folder (its tables/ holds the DAG's table CSVs)")
    parser.add_argument("--dataset", default="fashion_mnist")
    args = parser.parse_args()
    print(summary(args.reference, args.dataset))


if __name__ == "__main__":
    main()
