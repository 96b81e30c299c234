"""The claims' outputs: PREFIX.csv (the DataFrame of ``evaluate_claims`` as it is), PREFIX.md and
PREFIX.provenance.json. The HTML report renders from the same DataFrame (``pipeline.report``)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from pipeline.claims.definitions import C6_METHOD, format_number, evaluate_claims
from pipeline.claims.statistics import ALPHA, RULE_SENTENCE, verdict_label
from pipeline.run_metrics import as_paths
from pipeline.names import dataset_label

RULES_TEXT = """\
Verdicts (a training seed is the replicate; alpha = {alpha}; every test one-sided, in the claim's direction):
- **holds**: every comparison of the claim is significant in the claimed direction (one-sided Welch t-tests of
  per-seed values against each rival: an intersection-union test, p = the largest p-value).
- **fails**: some rival is significantly better than the claimed prior (opposite one-sided p-values,
  Bonferroni-corrected over the claim's comparisons).
- **inconclusive**: neither; "(1 seed)" where a side has a single seed, so only the means could be compared.
- **not run**: the DAG has no data for this claim on this dataset.
- C6: one-sided Spearman test of FID falling with d_t, and a Welch-Satterthwaite contrast that the FID gain per
  doubling of d_t is larger over the first step than over the last (diminishing returns). C7: one-sided t-test
  across seeds of the mean (over test pairs) of SLP minus straight-line mean log density, under a density fitted
  on held-out test encodings in z (LaDDer's and the hierarchical prior's t-space paths mapped to z) and, as a check of the optimiser only, under the prior's own log p, which the SLP
  maximises. C8: at K = number of classes clusters for every prior (like with like), and on each prior's own
  components.
Zero spread on both sides gives p = 0 or 1 by the sign of the difference; an exact tie is never significant.
"Paper agrees": whether the paper's own printed means order the priors as the claim says. The deciding comparison is
the weakest one for the claim (or the strongest against it); results/claims.csv lists every comparison.
"Ours": mean ± sample standard deviation (ddof = 1) across the training seeds in "Seeds", per-seed values in brackets.
"Difference": the deciding comparison's difference, signed so that > 0 favours the claim, with its two-sided 95 %
interval over seeds: Welch's t interval (Welch-Satterthwaite df; C7: the one-sample t interval; C6's trend: Fisher's z
for -rho). It is 95 % whatever alpha is: a one-sided test at alpha = 0.05 can hold while this interval touches 0."""


def difference_text(row: dict) -> str:
    """A claim row's deciding difference with its 95 % interval, as the tables print it."""
    value, low, high = row["difference"], row["ci_low"], row["ci_high"]
    if value == "" or value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(low, float) and math.isnan(low):
        return f"{format_number(value)} (no interval)"
    return f"{format_number(value)} [{format_number(low)}, {format_number(high)}] ({row['interval']})"


def to_markdown(frame: pd.DataFrame, alpha: float) -> str:
    lines = ["# The paper's claims, checked on our runs", "", RULES_TEXT.format(alpha=alpha), ""]
    datasets = list(dict.fromkeys(frame.dataset))
    if datasets:
        lines += ["## Summary", "", RULE_SENTENCE, "", "| Claim | " + " | ".join(dataset_label(d) for d in datasets) + " |",
                  "|---|" + "---|" * len(datasets)]
        for claim, group in frame.groupby("claim", sort=False):
            cells = []
            for dataset in datasets:
                part = group[group.dataset == dataset]
                several = len(part) > 1  # C7 per prior and density, C8 per score: name the subject
                cells.append(", ".join(f"{r['subject']}: {verdict_label(r)}" if several and r["subject"] else verdict_label(r)
                                       for r in part.to_dict("records")) or "-")
            lines.append(f"| {claim} | " + " | ".join(cells) + " |")
        lines.append("")
    for claim, group in frame.groupby("claim", sort=False):
        lines += [f"## {claim}: {group.statement.iloc[0]}", "", "| Dataset | Subject | Paper | Paper agrees | Ours: mean ± sd [per seed] | "
                  "Seeds | Test | Deciding comparison | Difference [95 % CI] | p | p (opposite) | Verdict | Note |", "|---|" * 1 + "---|" * 12]
        for r in group.to_dict("records"):
            cells = [dataset_label(r["dataset"]), r["subject"], r["paper"] or "-", r["paper_agrees"] or "-",
                     r["ours_per_seed"] or "-", r["n_seeds"], r["test"] or "-", r["deciding"] or "-", difference_text(r),
                     format_number(r["p_value"]), format_number(r["p_opposite"]), f"**{verdict_label(r)}**", r["note"] or ""]
            lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_claims(metric_files, fid_files, slp_tables, alignment_tables, out_prefix, alpha: float = ALPHA,
                 datasets: list[str] | None = None, ablation_method: str = C6_METHOD) -> pd.DataFrame:
    """Evaluate every claim and write OUT_PREFIX.csv, .md and .provenance.json; returns the DataFrame."""
    from pipeline.provenance import atomic_path, provenance, write_json

    frame = evaluate_claims(metric_files, fid_files, slp_tables, alignment_tables, alpha, datasets, ablation_method)
    out_prefix = Path(out_prefix)
    for suffix, text in ((".csv", frame.to_csv(index=False)), (".md", to_markdown(frame, alpha))):
        with atomic_path(out_prefix.with_name(out_prefix.name + suffix)) as tmp:
            tmp.write_text(text)
    inputs = {"metrics": as_paths(metric_files), "fid": as_paths(fid_files), "slp": as_paths(slp_tables),
              "alignment": as_paths(alignment_tables)}
    record = provenance(config={"claims": {"alpha": alpha, "ablation_method": ablation_method}})
    write_json(out_prefix.with_name(out_prefix.name + ".provenance.json"), {"inputs": inputs}, record)
    return frame
