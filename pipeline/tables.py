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

from pipeline.evaluation import TRUNCATED_FRACTION, is_truncated
from pipeline.names import dataset_label, parse_variant, variant_label, variant_name
from pipeline.paper_values import PAPER_D_T, PAPER_DATASET, PAPER_VALUES, read_paper_values  # noqa: F401  (PAPER_VALUES: re-exported)
from pipeline.priors.mixture import COLLAPSED_COMPONENTS
from pipeline.provenance import atomic_path, provenance, write_json
from pipeline.run_metrics import read_run_metrics

# Column labels come from the priors (``Prior.label``); these are the columns that are not priors.
SPECIAL_LABELS = {"real": "Real image"}

# An importance-sampled cell whose estimate moves this much or more from S/10 to S samples is not
# converged: it is shown as a bound with its measured change, and no claim or ranking uses it.
CONVERGED_NATS = 0.5


def original_hierarchical_constant(d_t: int) -> float:
    """Nats by which the original code's hierarchical prior bound, and the ELBO containing it, are
    too low at latent size d_t: its entropy of q(t|z) (``codes/base.py`` around line 345) uses
    d_t = 2 in the constant, -(2/2)(1 + log 2 pi) in place of -(d_t/2)(1 + log 2 pi). Gradients are
    unaffected. (d_t - 2)/2 (1 + log 2 pi)."""
    return (d_t - 2) / 2 * (1 + math.log(2 * math.pi))


@dataclass(frozen=True)
class Convergence:
    """Where a run file keeps an importance-sampled metric's diagnostics: the log-density estimate
    from S samples and from the first S/10 (their difference is the change from S/10 to S), the
    effective sample size (mean and min over images) and S. ``bound`` is what a non-converged
    estimate is of the true value: ">=" for a log-density, "<=" for a negative one."""
    estimate: str
    tenth: str
    ess: str
    ess_min: str
    samples: str
    bound: str


@dataclass(frozen=True)
class Metric:
    key: str            # column name in our tables and in paper_values.csv
    label: str
    source: str         # key in the run's metrics JSON
    factor: float = 1.0
    decimals: int = 1
    paper_key: str | None = ""   # the paper_values.csv metric printed beside ours: "" = key, None = no paper row
    paper_label: str = "paper"   # how the paper's row is named
    # the paper's hierarchical value contains the original's bound with its d_t = 2 constant
    # (original_hierarchical_constant): a corrected paper row is shown beside the printed one
    hierarchical_constant: bool = False
    convergence: Convergence | None = None  # importance-sampled: ESS and change from S/10 to S

    @property
    def paper_metric(self) -> str | None:
        return self.key if self.paper_key == "" else self.paper_key


@dataclass(frozen=True)
class TableSpec:
    title: str
    metrics: tuple[Metric, ...]
    notes: tuple[str, ...] = field(default=())   # metric keys shown as counts (e.g. FID sample sizes)
    by_d_t: bool = False  # columns are the prior VAE's d_t (supplement Table 2), not methods


FID_NOTES = ("fid_n_generated", "fid_n_reference", "kid_subset_size")
# The fitted mixture's size at the end of training (LaDDer's hyper-prior, the GMM prior): issue 18's
# collapse check. Not in the paper; runs that end with COLLAPSED_COMPONENTS or fewer are named in the notes.
MIXTURE = Metric("mixture_components", "Mixture components at the end (weight > 0.01; LaDDer's p(t), GMM; not in the paper)",
                 "mixture_components", paper_key=None)
KID = (Metric("kid_generation", "Generation KID x1000 (mean over seeds of the per-run subset means)", "kid_generation", 1000.0, 2),
       Metric("kid_reconstruction", "Reconstruction KID x1000", "kid_reconstruction", 1000.0, 2))

TABLES = {
    # The paper labels Table 2 "cross-entropy E_q(z)[log p(z)]"; its normal-prior cells can only be -KL (docs/science.md, 'Table 2: which
    # quantity'), so -KL stands beside the paper's values first, the original code's "cross entropy z" second, ours by IS third.
    "table2": TableSpec("Table 2: the paper's \"cross-entropy\" (nats per image, higher is better) beside the quantities it can be",
                        (Metric("neg_kl", "-KL = E_q[log p(z)] + H[q(z|x)] per image, the ELBO's regulariser: the reading the evidence "
                                "supports (docs/science.md), beside the paper's values", "kl", factor=-1.0, paper_key="cross_entropy",
                                paper_label="paper (read as -KL)", hierarchical_constant=True),
                         Metric("cross_entropy_bound", "The original code's \"cross entropy z\": E_q[log p(z)] with the prior-VAE bound for "
                                "Hierarchical and LaDDer, exact for the others", "cross_entropy_bound", paper_key="cross_entropy",
                                paper_label="paper (read as the code's cross entropy)", hierarchical_constant=True),
                         Metric("cross_entropy", "E_q[log p(z)], importance-sampled for Hierarchical and LaDDer (ours; no paper value "
                                "measures it)", "cross_entropy", paper_key=None,
                                convergence=Convergence("cross_entropy", "cross_entropy_tenth", "is_ess", "is_ess_min", "is_samples", ">=")))),
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
    # Laplace likelihood: not comparable with their binarised-MNIST NLLs (docs/science.md).
    "table_priors": TableSpec("Priors compared on their peers' metrics (not in the LaDDer paper): test NLL by importance sampling "
                              "(nats per image, lower is better), ELBO and its two terms, active units",
                              (Metric("test_nll", "Test NLL, -log p(x) by importance sampling (S in the notes)", "test_nll",
                                      convergence=Convergence("test_log_likelihood", "test_log_likelihood_tenth", "loglik_ess_mean",
                                                              "loglik_ess_min", "loglik_samples", "<=")),
                               Metric("elbo", "ELBO", "elbo"),
                               Metric("rec_loglik", "Reconstruction term E_q[log p(x|z)]", "rec_loglik"),
                               Metric("kl", "KL term E_q[log q(z|x) - log p(z)]", "kl"),
                               Metric("active_units", "Active units (Var_x E_q[z_i] > 0.01)", "active_units"), MIXTURE),
                              ("loglik_samples", "loglik_images")),
    "table3": TableSpec("Table 3: test ELBO (nats per image, higher is better) and per-pixel reconstruction error x0.01 (lower is better)",
                        (Metric("elbo", "ELBO", "elbo", hierarchical_constant=True), Metric("rec_error_x100", "Per-pixel rec. error (x0.01)", "rec_error", 100.0, 2),
                         # not in the paper: flags a collapsed posterior (Burda et al. 2016; Xu et al. 2019 report it)
                         Metric("active_units", "Active units (Var_x E_q[z_i] > 0.01; not in the paper)", "active_units"), MIXTURE)),
}


def column_label(column: str, prior: str | None = None) -> str:
    """A method column's label: its prior's label (``Prior.label``), else the method name."""
    from pipeline.priors import prior_label

    if column in SPECIAL_LABELS:
        return SPECIAL_LABELS[column]
    if parse_variant(column):  # supplement Table 2's columns: d_t<N> -> "d_t = N"
        return variant_label(column)
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
        # supplement Table 2's columns are d_t values, named as variants (d_t<N>), as in the paper file
        runs["method"] = [m if m == "real" else variant_name("d_t", d) for m, d in zip(runs.method, runs.d_t)]
    out = []
    for metric in spec.metrics:
        if metric.source not in runs:
            continue
        for (dataset, method), group in runs.groupby(["dataset", "method"], sort=False):
            values = group[metric.source].dropna() * metric.factor
            if values.empty:
                continue
            paper_dataset = PAPER_DATASET.get(dataset, dataset)
            match = paper[(paper.metric == metric.paper_metric) & (paper.dataset == paper_dataset) & (paper.method == method)]
            row = {
                "table": name, "metric": metric.key, "dataset": dataset, "method": method,
                "prior": group["prior"].dropna().iloc[0] if "prior" in group and group["prior"].notna().any() else None,
                "n_seeds": len(values), "seeds": " ".join(map(str, sorted(group.seed))),
                "mean": values.mean(), "std": values.std(ddof=1) if len(values) > 1 else math.nan,
                "paper_mean": match["mean"].iloc[0] if len(match) else math.nan,
                "paper_std": match["std"].iloc[0] if len(match) else math.nan,
                "paper_dataset": paper_dataset if len(match) else "",
            }
            if metric.hierarchical_constant and method == "hierarchical" and len(match) and paper_dataset in PAPER_D_T:
                # the original's d_t = 2 entropy constant removed from the paper's value (a correction under that reading)
                row["paper_correction"] = original_hierarchical_constant(PAPER_D_T[paper_dataset])
                row["paper_d_t"] = PAPER_D_T[paper_dataset]
            row.update(_convergence(metric.convergence, group))
            if metric is MIXTURE:
                collapsed = group.seed[group[metric.source] <= COLLAPSED_COMPONENTS]
                row["collapsed_seeds"] = " ".join(map(str, sorted(collapsed))) or None
            if "protocol_notes" in group and group["protocol_notes"].notna().any():
                row["protocol_notes"] = group["protocol_notes"].dropna().iloc[0]
            replaced = int(group["nonfinite_draws_replaced"].fillna(0).sum()) if "nonfinite_draws_replaced" in group else 0
            if replaced:
                row["nonfinite_draws_replaced"] = replaced
                row["truncated_seeds"] = " ".join(map(str, truncated_seeds(group))) or None
            for note in spec.notes:
                if note in group:
                    row[note] = " ".join(str(int(v)) for v in sorted(set(group[note].dropna())))
            out.append(row)
    if not out:
        raise ValueError(f"{name}: none of the inputs has the metrics {[m.source for m in spec.metrics]}")
    return pd.DataFrame(out)


def truncated_seeds(group: pd.DataFrame) -> list[int]:
    """Seeds whose generated images miss more than TRUNCATED_FRACTION of the prior's draws
    (pipeline.evaluation.is_truncated), from the FID files' counts."""
    counts = group.dropna(subset=["nonfinite_draws_replaced", "fid_n_generated"])
    return sorted(int(r.seed) for r in counts.itertuples() if is_truncated(r.nonfinite_draws_replaced, r.fid_n_generated))


def _convergence(conv: Convergence | None, group: pd.DataFrame) -> dict:
    """An importance-sampled cell's diagnostics over its seeds: S, the change from S/10 to S (mean over
    images per run; the largest run's), the ESS (mean of the runs' means, smallest per-image value)
    and whether it converged (change < CONVERGED_NATS in every run). Empty for exact cells."""
    if conv is None or conv.samples not in group or group[conv.samples].isna().all() or conv.tenth not in group:
        return {}
    change = (group[conv.estimate] - group[conv.tenth]).dropna()
    return {"estimator": f"IS S={int(group[conv.samples].dropna().iloc[0])}", "is_change_tenth_to_all": change.abs().max(),
            "is_ess_mean": group[conv.ess].mean() if conv.ess in group else math.nan,
            "is_ess_min": group[conv.ess_min].min() if conv.ess_min in group else math.nan,
            "converged": bool(change.abs().max() < CONVERGED_NATS), "bound": conv.bound}


def _marked_cell(cell: pd.Series, decimals: int) -> str:
    """Our cell; importance-sampled ones marked: converged † (change from S/10 to S below
    CONVERGED_NATS), else shown as the bound it is (>= or <=) with ‡."""
    text = mean_std_cell(cell["mean"], cell["std"], decimals)
    if pd.isna(cell.get("estimator")) or text == "-":
        return text
    return f"{text} †" if cell["converged"] else f"{'≥' if cell['bound'] == '>=' else '≤'} {text} ‡"


def mean_std_cell(mean: float, std: float, decimals: int) -> str:
    """A cell as the tables print it: mean ± std at ``decimals`` ("-" for no value, no ± for one seed)."""
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
            label = dataset_label(dataset)
            rows[(label, "ours")] = [_marked_cell(cells.loc[m], metric.decimals) if m in cells.index else "-" for m in methods]
            if metric.paper_metric is None:
                continue
            paper_label = metric.paper_label + ("" if PAPER_DATASET.get(dataset, dataset) == dataset
                                                else f" ({dataset_label(PAPER_DATASET[dataset])})")
            rows[(label, paper_label)] = [mean_std_cell(cells.loc[m, "paper_mean"], cells.loc[m, "paper_std"], metric.decimals) if m in cells.index else "-"
                                          for m in methods]
            if "paper_correction" in cells and cells["paper_correction"].notna().any():
                fix = cells["paper_correction"].fillna(0.0)
                rows[(label, f"{paper_label}, Hierarchical corrected ‖")] = [
                    mean_std_cell(cells.loc[m, "paper_mean"] + fix[m], cells.loc[m, "paper_std"], metric.decimals) if m in cells.index else "-"
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
        detail = "; ".join(f"{r.metric} {r.dataset}/{r.method}: {r.estimator}, ESS mean {r.is_ess_mean:.1f} (min {r.is_ess_min:.1f}), "
                           f"change from S/10 to S {r.is_change_tenth_to_all:.2f} nats" for r in marked.itertuples())
        lines.append(f"Importance-sampled cells (docs/science.md, 'Evaluation'): † converged (the estimate moves less than {CONVERGED_NATS} nats from "
                     "S/10 to S samples in every seed); ‡ not converged: the estimate is biased towards a worse value, so the cell is a "
                     "bound on the true value (≥ for a log-density, ≤ for an NLL) and no claim or ranking uses it. "
                     f"Per cell: {detail}.")
    if "paper_correction" in summary and summary["paper_correction"].notna().any():
        fixed = summary.dropna(subset=["paper_correction"]).drop_duplicates("paper_dataset")
        sizes = "; ".join(f"{dataset_label(r.paper_dataset)}: +{r.paper_correction:.2f} nats at d_t = {int(r.paper_d_t)}"
                          for r in fixed.itertuples())
        lines.append("‖ The original code computes the entropy of q(t|z) for its hierarchical prior with d_t = 2 in the constant "
                     "(codes/base.py, around line 345), so that prior's bound, and the ELBO containing it, are (d_t - 2)/2 (1 + log 2 pi) "
                     f"nats too low at the paper's d_t ({sizes}). The corrected row adds it to the paper's Hierarchical value, the other "
                     "columns as printed: a correction under the reading that the paper's numbers come from that code at d_t = 8 / 16 / 32 "
                     "(MNIST / Fashion-MNIST / CelebA), not a number the paper prints.")
    seeds = summary.groupby(["dataset", "method"]).n_seeds.first()
    lines.append(f"Ours: mean ± sample standard deviation (ddof = 1) across training seeds, {'/'.join(map(str, sorted(set(seeds))))} seed(s) "
                 "per cell (± is the seeds' spread, not a confidence interval; one seed: no ±). Paper values as printed, for comparison only.")
    counts = [f"{note} = {', '.join(sorted(set(summary[note].dropna().astype(str))))}" for note in TABLES[name].notes if note in summary]
    if counts and name not in ("table1", "table_sm1", "table_sm2"):
        lines.append("Counts (all cells): " + "; ".join(counts) + ".")
    elif counts:
        lines.append("Images per FID (all cells): " + "; ".join(counts) + ". Compare FIDs only at equal counts; below 2,048 images "
                     "FID is biased upwards by a generator-dependent amount and can reorder close priors, KID is unbiased (docs/science.md, 'FID and KID').")
    if "nonfinite_draws_replaced" in summary and summary["nonfinite_draws_replaced"].notna().any():
        replaced = summary.dropna(subset=["nonfinite_draws_replaced"]).drop_duplicates(["dataset", "method"])
        lines.append("Non-finite prior draws replaced by further draws before decoding (docs/science.md, 'Generation'), over all seeds: "
                     + "; ".join(f"{r.dataset}/{r.method}: {int(r.nonfinite_draws_replaced)}" for r in replaced.itertuples()) + ".")
        truncated = replaced.dropna(subset=["truncated_seeds"]) if "truncated_seeds" in replaced else replaced.iloc[:0]
        if len(truncated):
            lines.append(f"Truncated generations (more than {TRUNCATED_FRACTION:.0%} of the prior draws non-finite, so the images and their "
                         "FID and KID sample the prior restricted to where its inverse is finite): "
                         + "; ".join(f"{r.dataset}/{r.method} seed(s) {r.truncated_seeds}" for r in truncated.itertuples()) + ".")
    if "collapsed_seeds" in summary and summary["collapsed_seeds"].notna().any():
        collapsed = summary.dropna(subset=["collapsed_seeds"]).drop_duplicates(["dataset", "method"])
        lines.append(f"Collapsed mixtures (at most {COLLAPSED_COMPONENTS} active components at the end of training; the prior is then "
                     "close to one Gaussian, docs/science.md): " + "; ".join(f"{r.dataset}/{r.method} seed(s) {r.collapsed_seeds}"
                                                                             for r in collapsed.itertuples()) + ".")
    notes = summary["protocol_notes"].dropna().unique() if "protocol_notes" in summary else []
    lines += [f"Footing: {note}" for note in notes]
    return lines


def to_latex(name: str, summary: pd.DataFrame) -> str:
    def esc(text: str) -> str:
        return (str(text).replace("_", r"\_").replace("±", r"$\pm$").replace("%", r"\%").replace("†", r"$^\dagger$")
                .replace("‡", r"$^\ddagger$").replace("‖", r"$^\|$").replace("≥", r"$\geq$").replace("≤", r"$\leq$"))

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
