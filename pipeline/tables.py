"""Paper tables from per-run metric files: mean +- std over seeds, paper values beside ours.

Inputs are the JSON files the pipeline writes per run (``{"dataset", "method", "seed",
"metrics": {...}}``). Outputs: PREFIX.csv (long format, one row per table cell, ours and the
paper's numbers side by side), PREFIX.md and PREFIX.tex (a grid per metric with a row of ours
and a row of the paper's values per dataset), and PREFIX.provenance.json.
Paper values live in ``pipeline/resources/paper_values.csv``, every row labelled source=paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.paper_values import PAPER_DATASET, PAPER_VALUES, read_paper_values  # noqa: F401  (PAPER_VALUES: re-exported)
from pipeline.provenance import atomic_path, provenance, write_json
from pipeline.run_metrics import read_run_metrics

# Column labels come from the priors (``Prior.label``); these are the columns that are not priors.
SPECIAL_LABELS = {"real": "Real image"}
DATASET_LABELS = {"mnist": "MNIST", "mnist5k": "MNIST-5k", "fashion_mnist": "Fashion-MNIST", "celeba": "CelebA"}


@dataclass(frozen=True)
class Metric:
    key: str            # column name in our tables and in paper_values.csv
    label: str
    source: str         # key in the run's metrics JSON
    factor: float = 1.0
    decimals: int = 1


@dataclass(frozen=True)
class TableSpec:
    title: str
    metrics: tuple[Metric, ...]
    notes: tuple[str, ...] = field(default=())   # metric keys shown as counts (e.g. FID sample sizes)
    by_d_t: bool = False  # columns are the prior VAE's d_t (supplement Table 2), not methods


FID_NOTES = ("fid_n_generated", "fid_n_reference", "kid_subset_size")
KID = (Metric("kid_generation", "Generation KID x1000 (mean over seeds of the per-run subset means)", "kid_generation", 1000.0, 2),
       Metric("kid_reconstruction", "Reconstruction KID x1000", "kid_reconstruction", 1000.0, 2))

TABLES = {
    "table2": TableSpec("Table 2: cross-entropy E_q(z)[log p(z)] between aggregate posterior and prior (higher is better)",
                        (Metric("cross_entropy", "E_q(z)[log p(z)]", "cross_entropy"),)),
    "table1": TableSpec("Table 1: CelebA FID of generated and reconstructed samples and their difference (lower is better)",
                        (Metric("fid_generation", "Generation FID", "fid_generation"),
                         Metric("fid_reconstruction", "Reconstruction FID", "fid_reconstruction"),
                         Metric("fid_difference", "Difference (generation - reconstruction)", "fid_difference"), *KID), FID_NOTES),
    "table_sm1": TableSpec("Supplement Table 1: FID of generated and reconstructed samples (lower is better), real-image FID",
                           (Metric("fid_generation", "Generation FID", "fid_generation"),
                            Metric("fid_reconstruction", "Reconstruction FID", "fid_reconstruction"),
                            Metric("fid_difference", "Difference (generation - reconstruction)", "fid_difference"),
                            Metric("fid_real", "Real-image FID (the images the runs reconstruct, vs the reference)", "fid_real"),
                            *KID, Metric("kid_real", "Real-image KID x1000", "kid_real", 1000.0, 2)), FID_NOTES),
    "table_sm2": TableSpec("Supplement Table 2: LaDDer generation FID versus the prior VAE's latent size d_t (lower is better)",
                           (Metric("fid_generation", "Generation FID", "fid_generation"),
                            Metric("fid_real", "Real-image FID", "fid_real"), KID[0]), FID_NOTES, by_d_t=True),
    # Beyond the paper: what Xu et al. (Table 7) and the VampPrior paper report. Continuous pixels with a
    # Laplace likelihood: not comparable with their binarised-MNIST NLLs (README).
    "table_priors": TableSpec("Priors compared on their peers' metrics (not in the LaDDer paper): test NLL by importance sampling "
                              "(nats per image, lower is better), ELBO and its two terms, active units",
                              (Metric("test_nll", "Test NLL, -log p(x) by importance sampling (S in the notes)", "test_nll"),
                               Metric("elbo", "ELBO", "elbo"),
                               Metric("rec_loglik", "Reconstruction term E_q[log p(x|z)]", "rec_loglik"),
                               Metric("kl", "KL term E_q[log q(z|x) - log p(z)]", "kl"),
                               Metric("active_units", "Active units (Var_x E_q[z_i] > 0.01)", "active_units")),
                              ("loglik_samples", "loglik_images")),
    "table3": TableSpec("Table 3: test ELBO (nats per image, higher is better) and per-pixel reconstruction error x0.01 (lower is better)",
                        (Metric("elbo", "ELBO", "elbo"), Metric("rec_error_x100", "Per-pixel rec. error (x0.01)", "rec_error", 100.0, 2),
                         # not in the paper: flags a collapsed posterior (Burda et al. 2016; Xu et al. 2019 report it)
                         Metric("active_units", "Active units (Var_x E_q[z_i] > 0.01; not in the paper)", "active_units"))),
}


def column_label(column: str, prior: str | None = None) -> str:
    """A method column's label: its prior's label (``Prior.label``), else the method name."""
    from pipeline.priors import prior_label

    if column in SPECIAL_LABELS:
        return SPECIAL_LABELS[column]
    if column.startswith("d_t="):
        return "d_t = " + column.split("=", 1)[1]
    if prior is None:
        return column
    return prior_label(prior) if column == prior else f"{column} ({prior_label(prior)})"


def load_runs(paths: list[Path]) -> pd.DataFrame:
    """One row per run: dataset, method, variant, seed, prior and its metrics (``pipeline.run_metrics``)."""
    return read_run_metrics(paths)


def summarise(name: str, runs: pd.DataFrame) -> pd.DataFrame:
    spec = TABLES[name]
    paper = read_paper_values(name)
    runs = runs.copy()
    if spec.by_d_t and "d_t" in runs:
        # supplement Table 2's columns are d_t values (the paper file names them ladder_dt<N>)
        runs["method"] = [m if m == "real" else f"d_t={int(d)}" for m, d in zip(runs.method, runs.d_t)]
    out = []
    for metric in spec.metrics:
        if metric.source not in runs:
            continue
        for (dataset, method), group in runs.groupby(["dataset", "method"], sort=False):
            values = group[metric.source].dropna() * metric.factor
            if values.empty:
                continue
            paper_dataset = PAPER_DATASET.get(dataset, dataset)
            paper_method = f"ladder_dt{method.split('=', 1)[1]}" if method.startswith("d_t=") else method
            match = paper[(paper.metric == metric.key) & (paper.dataset == paper_dataset) & (paper.method == paper_method)]
            row = {
                "table": name, "metric": metric.key, "dataset": dataset, "method": method,
                "prior": group["prior"].dropna().iloc[0] if "prior" in group and group["prior"].notna().any() else None,
                "n_seeds": len(values), "seeds": " ".join(map(str, sorted(group.seed))),
                "mean": values.mean(), "std": values.std(ddof=1) if len(values) > 1 else math.nan,
                "paper_mean": match["mean"].iloc[0] if len(match) else math.nan,
                "paper_std": match["std"].iloc[0] if len(match) else math.nan,
                "paper_dataset": paper_dataset if len(match) else "",
            }
            # Table 2's hierarchical/LaDDer cells are importance-sampled (biased low): say so, with K
            # and the same estimate from K/10 samples (how far from converged it still is).
            if metric.source == "cross_entropy" and "is_samples" in group and group["is_samples"].notna().any():
                row["estimator"] = f"IS K={int(group['is_samples'].dropna().iloc[0])}"
                if "cross_entropy_tenth" in group:
                    row["estimate_at_K_over_10"] = group["cross_entropy_tenth"].mean()
            if "protocol_notes" in group and group["protocol_notes"].notna().any():
                row["protocol_notes"] = group["protocol_notes"].dropna().iloc[0]
            replaced = int(group["nonfinite_draws_replaced"].fillna(0).sum()) if "nonfinite_draws_replaced" in group else 0
            if replaced:
                row["nonfinite_draws_replaced"] = replaced
            for note in spec.notes:
                if note in group:
                    row[note] = " ".join(str(int(v)) for v in sorted(set(group[note].dropna())))
            out.append(row)
    if not out:
        raise ValueError(f"{name}: none of the inputs has the metrics {[m.source for m in spec.metrics]}")
    return pd.DataFrame(out)


def _cell(mean: float, std: float, decimals: int) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.{decimals}f}" if math.isnan(std) else f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def grid(name: str, summary: pd.DataFrame) -> list[tuple[Metric, pd.DataFrame]]:
    """Per metric: rows (dataset, ours|paper), columns methods in config order."""
    grids = []
    for metric in TABLES[name].metrics:
        part = summary[summary.metric == metric.key]
        if part.empty:
            continue
        methods = list(dict.fromkeys(part.method))
        rows = {}
        for dataset in dict.fromkeys(part.dataset):
            cells = part[part.dataset == dataset].set_index("method")
            label = DATASET_LABELS.get(dataset, dataset)
            marked = cells["estimator"].notna() if "estimator" in cells else pd.Series(False, index=cells.index)
            rows[(label, "ours")] = [_cell(cells.loc[m, "mean"], cells.loc[m, "std"], metric.decimals) + (" †" if marked.get(m, False) else "")
                                     if m in cells.index else "-" for m in methods]
            paper_label = "paper" if PAPER_DATASET.get(dataset, dataset) == dataset else f"paper ({DATASET_LABELS[PAPER_DATASET[dataset]]})"
            rows[(label, paper_label)] = [_cell(cells.loc[m, "paper_mean"], cells.loc[m, "paper_std"], metric.decimals) if m in cells.index else "-"
                                          for m in methods]
        priors = part.drop_duplicates("method").set_index("method")["prior"]
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=[column_label(m, priors.get(m)) for m in methods])
        grids.append((metric, frame))
    return grids


def to_markdown(name: str, summary: pd.DataFrame) -> str:
    lines = [f"# {TABLES[name].title}", ""]
    for metric, frame in grid(name, summary):
        lines += [f"## {metric.label}", "", "| Dataset | Source | " + " | ".join(frame.columns) + " |",
                  "|---|---|" + "---|" * len(frame.columns)]
        lines += [f"| {d} | {s} | " + " | ".join(row) + " |" for (d, s), row in zip(frame.index, frame.values)]
        lines.append("")
    return "\n".join(lines + table_notes(name, summary)) + "\n"


def table_notes(name: str, summary: pd.DataFrame) -> list[str]:
    """The notes under a table's grids, one plain-text line each (estimators, seeds per cell, image
    counts, replaced draws, FID footing): what the Markdown and the report's HTML page print."""
    lines = []
    if "estimator" in summary and summary["estimator"].notna().any():
        marked = summary[summary["estimator"].notna()]
        detail = "; ".join(f"{r.dataset}/{r.method}: {r.estimator}, K/10 gives {r.estimate_at_K_over_10:.2f}" for r in marked.itertuples()
                           if "estimate_at_K_over_10" in marked)
        lines.append("† importance-sampled log p(z) (defensive proposal around q(t|z)): a lower-biased estimate, unlike the exact cells "
                     f"({detail}). README, 'Evaluation'.")
    seeds = summary.groupby(["dataset", "method"]).n_seeds.first()
    lines.append(f"Ours: mean ± sample standard deviation (ddof = 1) across training seeds, {'/'.join(map(str, sorted(set(seeds))))} seed(s) "
                 "per cell (± is the seeds' spread, not a confidence interval; one seed: no ±). Paper values as printed, for comparison only.")
    counts = [f"{note} = {', '.join(sorted(set(summary[note].dropna().astype(str))))}" for note in TABLES[name].notes if note in summary]
    if counts and name not in ("table1", "table_sm1", "table_sm2"):
        lines.append("Counts (all cells): " + "; ".join(counts) + ".")
    elif counts:
        lines.append("Images per FID (all cells): " + "; ".join(counts) + ". Compare FIDs only at equal counts; below 2,048 images "
                     "FID is biased upwards by a generator-dependent amount and can reorder close priors, KID is unbiased (README, FID).")
    if "nonfinite_draws_replaced" in summary and summary["nonfinite_draws_replaced"].notna().any():
        replaced = summary.dropna(subset=["nonfinite_draws_replaced"]).drop_duplicates(["dataset", "method"])
        lines.append("Non-finite prior draws replaced by further draws before decoding (README, 'Generation'), over all seeds: "
                     + "; ".join(f"{r.dataset}/{r.method}: {int(r.nonfinite_draws_replaced)}" for r in replaced.itertuples()) + ".")
    notes = summary["protocol_notes"].dropna().unique() if "protocol_notes" in summary else []
    lines += [f"Footing: {note}" for note in notes]
    return lines


def to_latex(name: str, summary: pd.DataFrame) -> str:
    def esc(text: str) -> str:
        return str(text).replace("_", r"\_").replace("±", r"$\pm$").replace("%", r"\%").replace("†", r"$^\dagger$")

    parts = [f"% {esc(TABLES[name].title)}"]
    for metric, frame in grid(name, summary):
        parts += [r"\begin{tabular}{ll" + "r" * len(frame.columns) + "}", r"\toprule",
                  f"\\multicolumn{{{2 + len(frame.columns)}}}{{l}}{{{esc(metric.label)}}} \\\\",
                  "Dataset & Source & " + " & ".join(esc(c) for c in frame.columns) + r" \\", r"\midrule"]
        parts += [f"{esc(d)} & {esc(s)} & " + " & ".join(esc(v) for v in row) + r" \\" for (d, s), row in zip(frame.index, frame.values)]
        parts += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(parts)


def build_table(name: str, inputs: list[Path], out_prefix: Path) -> pd.DataFrame:
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; known tables: {', '.join(sorted(TABLES))}")
    summary = summarise(name, load_runs(inputs))
    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    for suffix, text in ((".csv", summary.to_csv(index=False)), (".md", to_markdown(name, summary)), (".tex", to_latex(name, summary))):
        with atomic_path(out_prefix.with_name(out_prefix.name + suffix)) as tmp:
            tmp.write_text(text)
    write_json(out_prefix.with_name(out_prefix.name + ".provenance.json"), {"table": name, "inputs": [str(p) for p in inputs]},
               provenance(config={"table": name}))
    return summary
