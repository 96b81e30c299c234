"""The paper's claims C1-C8 (issue 12), each checked on our per-seed results with a stated test.

Inputs: the per-run JSON files (``{"dataset", "method", "seed", "metrics": {...}}``, optionally
``"variant"``) of evaluation (``elbo``, ``rec_error``, ``cross_entropy``) and FID
(``fid_generation``, ``fid_reconstruction``, ``fid_difference``, ``d_t``), the SLP table of
Figures 5-6 and the component-alignment table of Figure 4. Outputs: PREFIX.csv (long format,
one row per claim, dataset and subject), PREFIX.md and PREFIX.provenance.json.

Claims (the paper's numbers are printed beside ours, from ``resources/paper_values.csv``;
mnist5k is compared with the paper's MNIST rows and labelled "paper (MNIST)"):

- C1 generation FID: LaDDer lowest and the normal prior highest (Table 1, supplement Table 1).
- C2 generation - reconstruction FID (signed, as the tables print it) smallest for LaDDer on
  CelebA; on MNIST and Fashion-MNIST LaDDer and GMM both below every other prior.
- C3 cross-entropy E_q(z)[log p(z)] highest for LaDDer (GMM on MNIST) (Table 2).
- C4 test ELBO highest for LaDDer (Table 3).
- C5 per-pixel reconstruction error lowest for LaDDer (Table 3; x0.01 as printed).
- C6 LaDDer's generation FID improves with d_t, with diminishing returns (supplement Table 2).
- C7 the shortest likely path (Eq. 9) has a higher mean log p along it than the straight line,
  per prior (Figures 5-6). The SLP objective rewards log p at its points, so this checks that
  the optimisation achieves what it targets, not an independent property.
- C8 LaDDer's mixture components align with classes (ARI and NMI) better than GMM's and
  VampPrior's (Figure 4).

Verdict rules (the replicate is a training seed; alpha from config ``claims.alpha``):

- "A beats B" (one comparison): one-sided Welch t-test of the per-seed values in the claimed
  direction (``scipy.stats.ttest_ind(equal_var=False)``). Where both groups have zero spread
  across seeds the t statistic is +-inf: p = 0 in the direction of the means' difference,
  1 against it, and an exact tie gives p = 1 both ways.
- "A is best" (A lower/higher than every rival; all priors present on that dataset except A
  are rivals, real images excluded) is the intersection of its comparisons. It **holds** when
  every comparison is significant at alpha: an intersection-union test, valid at level alpha
  without correction; its p-value is the largest one. It **fails** when some rival is
  significantly better than A: a union over the k comparisons of a claim, so the opposite
  one-sided p-values are Bonferroni-corrected (min p x k < alpha). Otherwise **inconclusive**.
  Claims with several parts (C1: LaDDer lowest *and* normal highest; C8: ARI *and* NMI) pool
  all their comparisons under the same rule.
- A comparison with fewer than two seeds on either side has no variance: the means are
  compared and reported, and the claim can at best be "inconclusive (1 seed)" (it can still
  fail on its other, testable comparisons).
- C6 has two parts. Improvement: Spearman's rank correlation between d_t and per-seed FID,
  one-sided (rho < 0), pooled over seeds: a trend test that does not demand strict
  monotonicity (the paper's own MNIST row rises from d_t = 8 to 16). Diminishing returns: the
  FID gain per doubling of d_t over the first step minus that over the last step, a linear
  contrast of the group means, (m1 - m2)/log2(d2/d1) - (m_{K-1} - m_K)/log2(d_K/d_{K-1}) > 0,
  tested one-sided with a Welch-Satterthwaite t statistic. It needs three d_t values or more;
  both parts need two seeds per d_t.
- C7: per seed, the mean over test pairs of (mean log p along SLP - along the straight line);
  one-sided one-sample t-test across seeds that it is > 0. With one seed, the Wilcoxon
  signed-rank test over pairs is reported in the note but the verdict stays inconclusive.
- **not run**: the DAG produced no data for the claim on that dataset (its metric is missing,
  the claimed prior or every rival is absent, fewer than two d_t values, no figure table).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from pipeline.tables import DATASET_LABELS, PAPER_DATASET, PAPER_VALUES

ALPHA = 0.05
VERDICTS = ("holds", "fails", "inconclusive", "not run")
# Files carry "variant" (default, d_t<N>, d_z<N>); older ablation files named the method <method>_dt<N>.
ABLATION_METHOD = re.compile(r"^(?P<base>[A-Za-z][A-Za-z0-9]*)_dt(?P<d_t>\d+)$")
DEFAULT_VARIANT = "default"
REAL = "real"  # real-image FID files: a reference, never a rival

# Figure tables (issue 9). Column names as the figure helpers write them; adapt here only.
SLP_DATASET, SLP_METHOD, SLP_SEED, SLP_PAIR, SLP_PATH = "dataset", "method", "seed", "pair", "path"
SLP_MEAN_LOG_P, SLP_MIN_LOG_P = "mean_log_p", "min_log_p"
SLP_PATH_SLP, SLP_PATH_STRAIGHT = "slp", "straight"
ALIGN_DATASET, ALIGN_METHOD, ALIGN_SEED, ALIGN_ARI, ALIGN_NMI = "dataset", "method", "seed", "ari", "nmi"
C6_METHOD = "ladder"                     # the prior whose d_t is ablated
C8_TARGET, C8_RIVALS = "ladder", ("gmm", "vampprior")
LADDER = "ladder"
METHOD_ORDER = ("normal", "vampprior", "gmm", "hierarchical", "ladder")  # the paper's column order

CSV_COLUMNS = ["claim", "dataset", "subject", "statement", "metric", "paper_dataset", "paper", "paper_agrees", "ours_per_seed",
               "n_seeds", "mean", "std", "effect", "test", "deciding", "statistic", "p_value", "p_opposite", "alpha", "verdict", "note"]


# -- tests -------------------------------------------------------------------------------
@dataclass
class Comparison:
    """One one-sided test. ``effect`` > 0 favours the claim; ``p`` tests the claimed direction,
    ``p_opposite`` the other; both NaN when untestable (fewer than two seeds)."""
    label: str
    effect: float
    text: str
    p: float = math.nan
    p_opposite: float = math.nan

    @property
    def testable(self) -> bool:
        return not math.isnan(self.p)


def _degenerate(effect: float) -> tuple[float, float]:
    """p-values when the standard error is 0: the sign of the effect is certain, or a tie."""
    if effect == 0:
        return 1.0, 1.0
    return (0.0, 1.0) if effect > 0 else (1.0, 0.0)


def welch(target: np.ndarray, rival: np.ndarray, direction: str, label: str = "") -> Comparison:
    """One-sided Welch t-test that ``target`` is lower ("lower") or higher ("higher") than ``rival``."""
    target, rival = np.asarray(target, float), np.asarray(rival, float)
    sign = 1.0 if direction == "higher" else -1.0
    effect = sign * (target.mean() - rival.mean())
    means = f"{target.mean():.4g} vs {rival.mean():.4g}"
    if len(target) < 2 or len(rival) < 2:
        return Comparison(label, effect, f"{label}: means {means} (1 seed, no test)")
    if target.var() == 0 and rival.var() == 0:
        p, p_opp = _degenerate(effect)
        return Comparison(label, effect, f"{label}: {means}, zero spread" + (" (tie)" if effect == 0 else ""), p, p_opp)
    claimed = "greater" if direction == "higher" else "less"
    other = "less" if direction == "higher" else "greater"
    result = stats.ttest_ind(target, rival, equal_var=False, alternative=claimed)
    p_opp = stats.ttest_ind(target, rival, equal_var=False, alternative=other).pvalue
    return Comparison(label, effect, f"{label}: {means}, t={result.statistic:.3g} (df {result.df:.1f}), p={result.pvalue:.3g}",
                      float(result.pvalue), float(p_opp))


def one_sample(values: np.ndarray, label: str) -> Comparison:
    """One-sided one-sample t-test that the mean of ``values`` is > 0."""
    values = np.asarray(values, float)
    effect = float(values.mean())
    if len(values) < 2:
        return Comparison(label, effect, f"{label}: mean {effect:.4g} (1 seed, no test)")
    if values.var() == 0:
        p, p_opp = _degenerate(effect)
        return Comparison(label, effect, f"{label}: mean {effect:.4g}, zero spread" + (" (tie)" if effect == 0 else ""), p, p_opp)
    result = stats.ttest_1samp(values, 0.0, alternative="greater")
    p_opp = stats.ttest_1samp(values, 0.0, alternative="less").pvalue
    return Comparison(label, effect, f"{label}: mean {effect:.4g}, t={result.statistic:.3g} (df {len(values) - 1}), p={result.pvalue:.3g}",
                      float(result.pvalue), float(p_opp))


def contrast(groups: list[np.ndarray], coefficients: list[float], label: str) -> Comparison:
    """One-sided Welch-Satterthwaite t-test that sum_i c_i mean_i > 0 (groups of per-seed values)."""
    groups = [np.asarray(g, float) for g in groups]
    effect = float(sum(c * g.mean() for c, g in zip(coefficients, groups)))
    if min(len(g) for g in groups) < 2:
        return Comparison(label, effect, f"{label}: {effect:.4g} (1 seed, no test)")
    parts = np.array([c * c * g.var(ddof=1) / len(g) for c, g in zip(coefficients, groups)])  # Var of each term
    if parts.sum() == 0:
        p, p_opp = _degenerate(effect)
        return Comparison(label, effect, f"{label}: {effect:.4g}, zero spread", p, p_opp)
    t = effect / math.sqrt(parts.sum())
    df = parts.sum() ** 2 / sum(v * v / (len(g) - 1) for v, g in zip(parts, groups))
    p = float(stats.t.sf(t, df))
    return Comparison(label, effect, f"{label}: {effect:.4g}, t={t:.3g} (df {df:.1f}), p={p:.3g}", p, float(stats.t.cdf(t, df)))


def rank_trend(x: np.ndarray, y: np.ndarray, groups_ok: bool, label: str) -> Comparison:
    """One-sided Spearman test that y decreases with x (effect = -rho)."""
    rho = stats.spearmanr(x, y).statistic
    if np.isnan(rho):  # constant y: no ordering at all
        return Comparison(label, 0.0, f"{label}: constant values (tie)", *((1.0, 1.0) if groups_ok else (math.nan, math.nan)))
    if not groups_ok:
        return Comparison(label, -float(rho), f"{label}: rho={rho:.3g} over {len(x)} runs (1 seed, no test)")
    p = float(stats.spearmanr(x, y, alternative="less").pvalue)
    p_opp = float(stats.spearmanr(x, y, alternative="greater").pvalue)
    return Comparison(label, -float(rho), f"{label}: rho={rho:.3g} (n={len(x)}), p={p:.3g}", p, p_opp)


def is_best(values: dict[str, np.ndarray], targets: tuple[str, ...], direction: str) -> tuple[list[Comparison], str]:
    """Comparisons of each target against every other method present; a reason when there are none."""
    missing = [t for t in targets if t not in values]
    if missing:
        return [], f"{', '.join(missing)} not run"
    rivals = [m for m in values if m not in targets]
    if not rivals:
        return [], "no rival prior run"
    return [welch(values[t], values[r], direction, f"{t} vs {r}") for t in targets for r in rivals], ""


@dataclass
class Verdict:
    verdict: str
    p: float = math.nan
    p_opposite: float = math.nan
    note: str = ""


def decide(comparisons: list[Comparison], alpha: float, reason: str = "") -> Verdict:
    """The verdict rule of the module docstring, over all comparisons of one claim."""
    if not comparisons:
        return Verdict("not run", note=reason)
    testable = [c for c in comparisons if c.testable]
    p = max(c.p for c in comparisons) if len(testable) == len(comparisons) else math.nan
    # Bonferroni over the claim's k comparisons: "fails" needs only one of them.
    p_opp = min(1.0, min(c.p_opposite for c in testable) * len(comparisons)) if testable else math.nan
    against = [c.label for c in comparisons if c.effect < 0]
    notes = [reason] if reason else []
    if testable and p_opp < alpha:
        worst = min(testable, key=lambda c: c.p_opposite)
        return Verdict("fails", p, p_opp, "; ".join(notes + [f"significantly against the claim: {worst.label}"]))
    if len(testable) < len(comparisons):
        means = "means agree with the claim" if not against else f"means against the claim: {', '.join(against)}"
        return Verdict("inconclusive", p, p_opp, "; ".join(notes + [f"1 seed: {means}"]))
    if p < alpha:
        return Verdict("holds", p, p_opp, "; ".join(notes))
    ties = [c.label for c in comparisons if c.effect == 0]
    if ties:
        notes.append(f"tie: {', '.join(ties)}")
    if against:
        notes.append(f"means against the claim (not significant): {', '.join(against)}")
    return Verdict("inconclusive", p, p_opp, "; ".join(notes))


def deciding(comparisons: list[Comparison], verdict: str) -> str:
    """The comparison that settles the verdict: the strongest against the claim when it fails,
    else the weakest for it (the largest p; the one with the smallest margin when untestable)."""
    testable = [c for c in comparisons if c.testable]
    if not comparisons:
        return ""
    if verdict == "fails":
        return min(testable, key=lambda c: c.p_opposite).text
    if len(testable) < len(comparisons):
        return min(comparisons, key=lambda c: c.effect).text
    return max(comparisons, key=lambda c: (c.p, -c.effect)).text


def verdict_label(row: dict) -> str:
    """The verdict as the Markdown prints it: 'inconclusive (1 seed)' where that is why."""
    return "inconclusive (1 seed)" if row["verdict"] == "inconclusive" and "1 seed" in str(row["note"]) else row["verdict"]


# -- inputs ------------------------------------------------------------------------------
def _paths(paths) -> list[str]:
    """One path or a list of them (None: none) as strings."""
    return [str(p) for p in ([paths] if isinstance(paths, (str, Path)) else (paths or [])) if p]


def load_records(paths) -> pd.DataFrame:
    """One row per run file: path, dataset, method (base name), variant, seed and its metrics.
    Files named twice are read once; two files for one run with different numbers are an error."""
    rows = []
    for path in dict.fromkeys(_paths(paths)):
        try:
            data = json.loads(Path(path).read_text())
            method, variant = data["method"], data.get("variant") or DEFAULT_VARIANT
            row = {"path": path, "dataset": data["dataset"], "seed": int(data["seed"]), **data["metrics"]}
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a per-run result file ({err}); rerun the rule that makes it") from err
        match = ABLATION_METHOD.match(method)
        if match and variant == DEFAULT_VARIANT:
            method, variant = match["base"], f"d_t{match['d_t']}"
            row.setdefault("d_t", int(match["d_t"]))
        rows.append({**row, "method": method, "variant": variant})
    frame = pd.DataFrame(rows, columns=None if rows else ["path", "dataset", "method", "variant", "seed"])
    keys = ["dataset", "method", "variant", "seed"]
    for key, group in frame[frame.duplicated(keys, keep=False)].groupby(keys):
        numbers = group.drop(columns=["path"]).select_dtypes("number")
        if not all(numbers.iloc[0].equals(numbers.iloc[i]) for i in range(1, len(numbers))):
            raise ValueError(f"run {dict(zip(keys, key))} has different results in {', '.join(group.path)}; delete the stale file")
    return frame.drop_duplicates(keys)


def _method_order(method: str) -> tuple[int, str]:
    """The paper's column order (normal, VampPrior, GMM, hierarchical, LaDDer), then others by name."""
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def per_seed(records: pd.DataFrame, dataset: str, metric: str, factor: float = 1.0) -> dict[str, pd.Series]:
    """Headline runs (variant default) of one dataset: method -> values indexed by seed."""
    if records.empty or metric not in records:
        return {}
    part = records[(records.dataset == dataset) & (records.variant == DEFAULT_VARIANT) & (records.method != REAL)]
    out = {}
    for method, group in part.groupby("method", sort=False):
        values = group.set_index("seed")[metric].dropna().sort_index() * factor
        if not values.empty:
            out[method] = values.astype(float)
    return dict(sorted(out.items(), key=lambda item: _method_order(item[0])))


def read_table(paths, columns: list[str], what: str) -> pd.DataFrame:
    """Concatenate figure tables; an empty frame when none exist."""
    frames = []
    for path in [p for p in _paths(paths) if Path(p).exists()]:
        frame = pd.read_csv(path)
        missing = [c for c in columns if c not in frame]
        if missing:
            raise ValueError(f"{path}: the {what} table lacks columns {missing} (has {list(frame.columns)}); "
                             f"adapt the column constants in pipeline/claims.py")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


# -- claims ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    targets: tuple[str, ...]
    direction: str  # the targets are "lower" or "higher" than every rival


@dataclass(frozen=True)
class RankClaim:
    """A claim that some priors beat every other on one metric of the headline runs."""
    claim: str
    statement: str
    metric: str            # key in our metrics JSON
    paper_metric: str      # key in paper_values.csv (and the column label)
    paper_table: str
    parts: tuple[Part, ...]
    source: str            # "metrics" or "fid"
    factor: float = 1.0


def rank_claims(dataset: str) -> list[RankClaim]:
    """C1-C5 as stated for one dataset (C2 and C3 differ between the paper's datasets)."""
    paper = PAPER_DATASET.get(dataset, dataset)
    fid_table = "table1" if paper == "celeba" else "table_sm1"
    c2_targets = ("ladder", "gmm") if paper in ("mnist", "fashion_mnist") else ("ladder",)
    c2_text = ("LaDDer and GMM have a smaller generation - reconstruction FID than every other prior" if len(c2_targets) > 1
               else "LaDDer has the smallest generation - reconstruction FID")
    c3_target = "gmm" if paper == "mnist" else "ladder"
    return [
        RankClaim("C1", "generation FID: LaDDer lowest, normal prior highest", "fid_generation", "fid_generation", fid_table,
                  (Part(("ladder",), "lower"), Part(("normal",), "higher")), "fid"),
        RankClaim("C2", c2_text, "fid_difference", "fid_difference", fid_table, (Part(c2_targets, "lower"),), "fid"),
        RankClaim("C3", f"cross-entropy E_q(z)[log p(z)]: {'GMM' if c3_target == 'gmm' else 'LaDDer'} highest", "cross_entropy",
                  "cross_entropy", "table2", (Part((c3_target,), "higher"),), "metrics"),
        RankClaim("C4", "test ELBO: LaDDer highest", "elbo", "elbo", "table3", (Part(("ladder",), "higher"),), "metrics"),
        RankClaim("C5", "per-pixel reconstruction error (x0.01): LaDDer lowest", "rec_error", "rec_error_x100", "table3",
                  (Part(("ladder",), "lower"),), "metrics", factor=100.0),
    ]


def _num(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3g}"


def _ours_text(values: dict[str, pd.Series]) -> str:
    parts = []
    for method, series in values.items():
        spread = f" ± {_num(series.std(ddof=1))}" if len(series) > 1 else ""
        parts.append(f"{method}: {_num(series.mean())}{spread} [{', '.join(_num(v) for v in series)}]")
    return "; ".join(parts)


def _paper_label(dataset: str) -> str:
    paper = PAPER_DATASET.get(dataset, dataset)
    return "paper" if paper == dataset else f"paper ({DATASET_LABELS.get(paper, paper)})"


def paper_values(table: str, metric: str, dataset: str) -> dict[str, tuple[float, float]]:
    paper = pd.read_csv(PAPER_VALUES, comment="#")
    rows = paper[(paper.table == table) & (paper.metric == metric) & (paper.dataset == PAPER_DATASET.get(dataset, dataset))]
    return {m: (mu, sd) for m, mu, sd in zip(rows.method, rows["mean"], rows["std"])}


def _paper_text(dataset: str, values: dict[str, tuple[float, float]]) -> str:
    if not values:
        return ""
    return f"{_paper_label(dataset)}: " + "; ".join(f"{m}: {mu} ± {sd}" for m, (mu, sd) in values.items())  # as printed


def _row(claim: str, dataset: str, subject: str, statement: str, metric: str, alpha: float, comparisons: list[Comparison],
         verdict: Verdict, **extra) -> dict:
    row = dict.fromkeys(CSV_COLUMNS, "")
    row.update(claim=claim, dataset=dataset, subject=subject, statement=statement, metric=metric, alpha=alpha,
               paper_dataset=PAPER_DATASET.get(dataset, dataset), n_seeds=0, mean=math.nan, std=math.nan,
               effect=min((c.effect for c in comparisons), default=math.nan),
               statistic="; ".join(c.text for c in comparisons), deciding=deciding(comparisons, verdict.verdict),
               p_value=verdict.p, p_opposite=verdict.p_opposite,
               verdict=verdict.verdict, note=verdict.note)
    row.update(extra)
    return row


def evaluate_rank_claim(spec: RankClaim, dataset: str, records: pd.DataFrame, alpha: float) -> dict:
    values = per_seed(records, dataset, spec.metric, spec.factor)
    if spec.metric == "fid_difference" and not values:  # older FID files: derive it
        gen, rec = per_seed(records, dataset, "fid_generation"), per_seed(records, dataset, "fid_reconstruction")
        values = {m: (gen[m] - rec[m]).dropna() for m in gen if m in rec}
    comparisons, reasons, seen = [], [], set()
    for part in spec.parts:
        found, reason = is_best({m: v.to_numpy() for m, v in values.items()}, part.targets, part.direction)
        # "normal highest" repeats "ladder lowest"'s ladder-normal comparison: count it once
        comparisons += [c for c in found if frozenset(c.label.split(" vs ")) not in seen]
        seen |= {frozenset(c.label.split(" vs ")) for c in found}
        reasons += [reason] if reason else []
    if not values:
        reasons = [f"no {spec.source} results with {spec.metric} for {dataset}"]
    verdict = decide(comparisons, alpha, "; ".join(reasons))
    if reasons and verdict.verdict == "holds":  # a part could not be tested: it can fail, not hold
        verdict = Verdict("inconclusive", math.nan, verdict.p_opposite, verdict.note)
    paper = paper_values(spec.paper_table, spec.paper_metric, dataset)
    paper_effects = [welch([paper[t][0]], [paper[r][0]], part.direction).effect
                     for part in spec.parts for t in part.targets if t in paper for r in paper if r not in part.targets]
    subject = spec.parts[0].targets[0]
    own = values.get(subject, pd.Series(dtype=float))
    return _row(spec.claim, dataset, " and ".join("+".join(p.targets) for p in spec.parts), spec.statement, spec.paper_metric, alpha,
                comparisons, verdict, paper=_paper_text(dataset, paper),
                paper_agrees=("yes" if all(e > 0 for e in paper_effects) else "no") if paper_effects else "",
                ours_per_seed=_ours_text(values), n_seeds=len(own), mean=own.mean() if len(own) else math.nan,
                std=own.std(ddof=1) if len(own) > 1 else math.nan,
                test=f"one-sided Welch t-test per rival ({spec.paper_table})")


def _c6_tests(groups: dict[int, np.ndarray]) -> list[Comparison]:
    """Trend (Spearman) and diminishing returns (first vs last gain per doubling) over d_t groups."""
    d_ts = sorted(groups)
    ok = min(len(groups[d]) for d in d_ts) >= 2
    x = np.concatenate([np.full(len(groups[d]), d) for d in d_ts])
    y = np.concatenate([groups[d] for d in d_ts])
    tests = [rank_trend(x, y, ok, "FID falls with d_t")]
    if len(d_ts) >= 3:
        coefficients = dict.fromkeys(d_ts, 0.0)
        first, last = math.log2(d_ts[1] / d_ts[0]), math.log2(d_ts[-1] / d_ts[-2])
        # gain per doubling: (m_1 - m_2)/L_1 over the first step minus (m_{K-1} - m_K)/L_{K-1} over the last
        coefficients[d_ts[0]] += 1 / first
        coefficients[d_ts[1]] -= 1 / first
        coefficients[d_ts[-2]] -= 1 / last
        coefficients[d_ts[-1]] += 1 / last
        tests.append(contrast([groups[d] for d in d_ts], [coefficients[d] for d in d_ts], "first gain - last gain per doubling"))
    return tests


def evaluate_c6(dataset: str, records: pd.DataFrame, alpha: float, method: str = C6_METHOD) -> dict:
    statement = f"{method} generation FID improves with d_t, with diminishing returns"
    groups: dict[int, np.ndarray] = {}
    if not records.empty and {"d_t", "fid_generation"} <= set(records):
        # headline run and d_t variants only: other variants (Figure 4's 2-D models) are not the ablation
        ablation = (records.variant == DEFAULT_VARIANT) | records.variant.str.startswith("d_t")
        part = records[(records.dataset == dataset) & (records.method == method) & ablation].dropna(subset=["d_t", "fid_generation"])
        groups = {int(d): g.fid_generation.to_numpy(float) for d, g in part.groupby("d_t")}
    reason = "" if len(groups) >= 2 else f"{len(groups)} d_t value(s) of {method} with generation FID for {dataset}"
    tests = _c6_tests(groups) if not reason else []
    if len(groups) == 2:
        reason = "diminishing returns needs three d_t values"
    verdict = decide(tests, alpha, reason)
    if len(groups) == 2 and verdict.verdict == "holds":
        verdict = Verdict("inconclusive", verdict.p, verdict.p_opposite, verdict.note)
    paper = {int(m.rsplit("_dt", 1)[1]): v for m, v in paper_values("table_sm2", "fid_generation", dataset).items() if "_dt" in m}
    agrees = ""
    if len(paper) >= 3:
        paper_tests = _c6_tests({d: np.array([paper[d][0]]) for d in paper})
        agrees = "yes" if all(t.effect > 0 for t in paper_tests) else "no"
    ours = {f"d_t={d}": pd.Series(groups[d]) for d in sorted(groups)}
    return _row("C6", dataset, f"{method} over d_t", statement, "fid_generation", alpha, tests, verdict, effect=math.nan,
                paper=_paper_text(dataset, {f"d_t={d}": paper[d] for d in sorted(paper)}), paper_agrees=agrees,
                ours_per_seed=_ours_text(ours), n_seeds=min((len(g) for g in groups.values()), default=0),
                test="one-sided Spearman (d_t vs FID) and Welch-Satterthwaite contrast (supplement Table 2)")


def evaluate_c7(dataset: str, slp: pd.DataFrame, alpha: float) -> list[dict]:
    statement = "the shortest likely path has a higher mean log p than the straight line"
    part = slp[slp[SLP_DATASET] == dataset]
    if part.empty:
        return [_row("C7", dataset, "", statement, SLP_MEAN_LOG_P, alpha, [], decide([], alpha, f"no SLP table for {dataset}"),
                     paper="Figures 5-6 (no numbers printed)")]
    rows = []
    methods = list(dict.fromkeys(part[SLP_METHOD]))
    for method in sorted(methods, key=lambda m: m != LADDER):  # LaDDer (the paper's SLP) first
        wide = part[part[SLP_METHOD] == method].pivot_table(index=[SLP_SEED, SLP_PAIR], columns=SLP_PATH, values=SLP_MEAN_LOG_P)
        if not {SLP_PATH_SLP, SLP_PATH_STRAIGHT} <= set(wide.columns):
            rows.append(_row("C7", dataset, method, statement, SLP_MEAN_LOG_P, alpha, [],
                             decide([], alpha, f"SLP table lacks {SLP_PATH_SLP!r} or {SLP_PATH_STRAIGHT!r} rows for {method}")))
            continue
        diff = (wide[SLP_PATH_SLP] - wide[SLP_PATH_STRAIGHT]).dropna()  # per (seed, pair)
        by_seed = diff.groupby(level=SLP_SEED).mean()
        test = one_sample(by_seed.to_numpy(), "SLP - straight mean log p")
        verdict = decide([test], alpha)
        if len(by_seed) < 2 and len(diff) > 1 and (diff != 0).any():
            wilcoxon = stats.wilcoxon(diff.to_numpy(), alternative="greater").pvalue
            verdict.note += f"; within the seed, Wilcoxon over {len(diff)} pairs p={wilcoxon:.3g}"
        facts = [f"SLP above the straight line in {(diff > 0).mean():.0%} of {len(diff)} pairs"]
        if SLP_MIN_LOG_P in part:  # the paper's "stays on the manifold": the lowest log p met along each path
            lowest = part[part[SLP_METHOD] == method].groupby(SLP_PATH)[SLP_MIN_LOG_P].mean()
            facts.append(f"mean min log p: SLP {_num(lowest.get(SLP_PATH_SLP, math.nan))}, straight {_num(lowest.get(SLP_PATH_STRAIGHT, math.nan))}")
        verdict.note = "; ".join(filter(None, [verdict.note, *facts]))
        rows.append(_row("C7", dataset, method, statement, SLP_MEAN_LOG_P, alpha, [test], verdict, paper="Figures 5-6 (no numbers printed)",
                         ours_per_seed="; ".join(f"seed {s}: {_num(v)}" for s, v in by_seed.items()), n_seeds=len(by_seed),
                         mean=by_seed.mean(), std=by_seed.std(ddof=1) if len(by_seed) > 1 else math.nan,
                         test="one-sided one-sample t-test across seeds of the mean paired difference over pairs"))
    return rows


def evaluate_c8(dataset: str, alignment: pd.DataFrame, alpha: float) -> dict:
    statement = f"{C8_TARGET} components align with classes better (ARI and NMI) than {' and '.join(C8_RIVALS)}"
    part = alignment[(alignment[ALIGN_DATASET] == dataset) & alignment[ALIGN_METHOD].isin((C8_TARGET, *C8_RIVALS))]
    comparisons, reasons, ours = [], [], []
    for metric in (ALIGN_ARI, ALIGN_NMI):
        values = {m: g.set_index(ALIGN_SEED)[metric].dropna().sort_index().astype(float)
                  for m, g in sorted(part.groupby(ALIGN_METHOD), key=lambda item: _method_order(item[0]))}
        found, reason = is_best({m: v.to_numpy() for m, v in values.items()}, (C8_TARGET,), "higher")
        for c in found:
            c.label, c.text = f"{metric.upper()} {c.label}", f"{metric.upper()} {c.text}"
        comparisons += found
        reasons += [reason] if reason else []
        if values:
            ours.append(f"{metric.upper()} " + _ours_text(values))
    if part.empty:
        reasons = [f"no component-alignment table for {dataset}"]
    verdict = decide([] if reasons else comparisons, alpha, "; ".join(dict.fromkeys(reasons)))
    own = part[part[ALIGN_METHOD] == C8_TARGET][ALIGN_ARI].dropna()
    return _row("C8", dataset, C8_TARGET, statement, "ari, nmi", alpha, [] if reasons else comparisons, verdict,
                paper="Figure 4 (no numbers printed)", ours_per_seed=" | ".join(ours), n_seeds=len(own),
                mean=own.mean() if len(own) else math.nan, std=own.std(ddof=1) if len(own) > 1 else math.nan,
                test="one-sided Welch t-test per rival, ARI and NMI (mean/std: ARI)")


def evaluate_claims(metric_files, fid_files, slp_tables=None, alignment_tables=None, alpha: float = ALPHA,
                    datasets: list[str] | None = None, ablation_method: str = C6_METHOD) -> pd.DataFrame:
    """Every claim on every dataset: one row per claim, dataset and subject (CSV_COLUMNS)."""
    if not 0 < alpha < 1:
        raise ValueError(f"claims.alpha must lie in (0, 1), got {alpha}")
    metrics, fids = load_records(metric_files), load_records(fid_files)
    slp = read_table(slp_tables, [SLP_DATASET, SLP_METHOD, SLP_SEED, SLP_PAIR, SLP_PATH, SLP_MEAN_LOG_P], "SLP")
    alignment = read_table(alignment_tables, [ALIGN_DATASET, ALIGN_METHOD, ALIGN_SEED, ALIGN_ARI, ALIGN_NMI], "component-alignment")
    if datasets is None:
        found = [*metrics.get("dataset", []), *fids.get("dataset", []), *slp[SLP_DATASET], *alignment[ALIGN_DATASET]]
        datasets = list(dict.fromkeys(found))
    rows = []
    for dataset in datasets:
        for spec in rank_claims(dataset):
            rows.append(evaluate_rank_claim(spec, dataset, metrics if spec.source == "metrics" else fids, alpha))
        rows.append(evaluate_c6(dataset, fids, alpha, ablation_method))
        rows += evaluate_c7(dataset, slp, alpha)
        rows.append(evaluate_c8(dataset, alignment, alpha))
    frame = pd.DataFrame(rows, columns=CSV_COLUMNS)
    return frame.sort_values("claim", kind="stable").reset_index(drop=True)


# -- outputs -----------------------------------------------------------------------------
RULES_TEXT = """\
Verdicts (a training seed is the replicate; alpha = {alpha}):
- **holds**: every comparison of the claim is significant in the claimed direction (one-sided Welch t-tests of
  per-seed values against each rival: an intersection-union test, p = the largest p-value).
- **fails**: some rival is significantly better than the claimed prior (opposite one-sided p-values,
  Bonferroni-corrected over the claim's comparisons).
- **inconclusive**: neither; "(1 seed)" where a side has a single seed, so only the means could be compared.
- **not run**: the DAG has no data for this claim on this dataset.
- C6: one-sided Spearman test of FID falling with d_t, and a Welch-Satterthwaite contrast that the FID gain per
  doubling of d_t is larger over the first step than over the last (diminishing returns). C7: one-sided t-test
  across seeds of the mean (over test pairs) of SLP minus straight-line mean log p.
Zero spread on both sides gives p = 0 or 1 by the sign of the difference; an exact tie is never significant.
"Paper agrees": whether the paper's own printed means order the priors as the claim says. The deciding comparison is
the weakest one for the claim (or the strongest against it); results/claims.csv lists every comparison."""


def to_markdown(frame: pd.DataFrame, alpha: float) -> str:
    lines = ["# The paper's claims, checked on our runs", "", RULES_TEXT.format(alpha=alpha), ""]
    datasets = list(dict.fromkeys(frame.dataset))
    if datasets:
        lines += ["## Summary", "", "| Claim | " + " | ".join(DATASET_LABELS.get(d, d) for d in datasets) + " |",
                  "|---|" + "---|" * len(datasets)]
        for claim, group in frame.groupby("claim", sort=False):
            cells = []
            for dataset in datasets:
                part = group[group.dataset == dataset]
                cells.append(", ".join(f"{r['subject']}: {verdict_label(r)}" if claim == "C7" and r["subject"] else verdict_label(r)
                                       for r in part.to_dict("records")) or "-")
            lines.append(f"| {claim} | " + " | ".join(cells) + " |")
        lines.append("")
    for claim, group in frame.groupby("claim", sort=False):
        lines += [f"## {claim}: {group.statement.iloc[0]}", "", "| Dataset | Subject | Paper | Paper agrees | Ours: mean ± std [per seed] | "
                  "Test | Deciding comparison | p | p (opposite) | Verdict | Note |", "|---|" * 1 + "---|" * 10]
        for r in group.to_dict("records"):
            cells = [DATASET_LABELS.get(r["dataset"], r["dataset"]), r["subject"], r["paper"] or "-", r["paper_agrees"] or "-",
                     r["ours_per_seed"] or "-", r["test"] or "-", r["deciding"] or "-", _num(r["p_value"]), _num(r["p_opposite"]),
                     f"**{verdict_label(r)}**", r["note"] or ""]
            lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_claims(metric_files, fid_files, slp_tables, alignment_tables, out_prefix, alpha: float = ALPHA,
                 datasets: list[str] | None = None, ablation_method: str = C6_METHOD) -> pd.DataFrame:
    """Evaluate every claim and write OUT_PREFIX.csv, .md and .provenance.json."""
    from pipeline.provenance import atomic_path, provenance, write_json

    frame = evaluate_claims(metric_files, fid_files, slp_tables, alignment_tables, alpha, datasets, ablation_method)
    out_prefix = Path(out_prefix)
    for suffix, text in ((".csv", frame.to_csv(index=False)), (".md", to_markdown(frame, alpha))):
        with atomic_path(out_prefix.with_name(out_prefix.name + suffix)) as tmp:
            tmp.write_text(text)
    inputs = {"metrics": _paths(metric_files), "fid": _paths(fid_files), "slp": _paths(slp_tables), "alignment": _paths(alignment_tables)}
    record = provenance(config={"claims": {"alpha": alpha, "ablation_method": ablation_method}})
    write_json(out_prefix.with_name(out_prefix.name + ".provenance.json"), {"inputs": inputs}, record)
    return frame


def cmd_claims(args) -> None:
    write_claims(args.metrics, args.fid, args.slp, args.alignment, args.out_prefix, args.alpha, args.datasets, args.ablation_method)


def register_commands(subparsers) -> None:
    """Add ``python -m pipeline claims`` to the CLI's subparsers."""
    p = subparsers.add_parser("claims", help="check the paper's claims C1-C8 on per-seed results", description=__doc__.split("\n")[0])
    p.set_defaults(func=cmd_claims)
    p.add_argument("--metrics", nargs="*", default=[], help="per-run metrics.json files")
    p.add_argument("--fid", nargs="*", default=[], help="per-run fid.json files (headline and d_t ablation)")
    p.add_argument("--slp", nargs="*", default=[], help="SLP tables (Figures 5-6); missing files are skipped")
    p.add_argument("--alignment", nargs="*", default=[], help="component-alignment tables (Figure 4); missing files are skipped")
    p.add_argument("--datasets", nargs="*", help="datasets to report, 'not run' where empty (default: those in the inputs)")
    p.add_argument("--ablation-method", default=C6_METHOD, help="the method whose d_t is ablated (config ablation.method)")
    p.add_argument("--alpha", type=float, default=ALPHA, help="significance level of every one-sided test")
    p.add_argument("--out-prefix", required=True, help="writes PREFIX.csv, PREFIX.md, PREFIX.provenance.json")


if __name__ == "__main__":  # standalone use before the CLI wires it in
    parser = argparse.ArgumentParser(prog="python -m pipeline.claims")
    register_commands(parser.add_subparsers(dest="command", required=True))
    arguments = parser.parse_args()
    arguments.func(arguments)
