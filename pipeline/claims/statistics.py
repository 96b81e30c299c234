"""The claims' statistics: one-sided tests, 95 % intervals of the differences, and the verdict rule.

Every test here is **one-sided**, because every claim names a direction ("LaDDer lowest", "SLP
higher"): ``p`` tests the claimed direction, ``p_opposite`` the other one (used only to decide
"fails"). For the t-tests p + p_opposite = 1; a two-sided p-value would make them equal and would
count a strong effect against the claim as evidence for it (tests/test_claims.py checks this for
every test and every claim).

``effect`` (and its interval ``low``-``high``) is oriented so that > 0 favours the claim, in the
metric's own units. The interval is a two-sided 95 % Welch (Welch-Satterthwaite) t interval over
seeds, whatever alpha is: at alpha = 0.05 a one-sided test can be significant while the 95 %
interval still touches 0 (the one-sided test at alpha matches the (1 - 2 alpha) interval's end).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
CI_LEVEL = 0.95
VERDICTS = ("holds", "fails", "inconclusive", "not run")

# The rule in one sentence (the claims' summary prints it).
RULE_SENTENCE = ("A claim **holds** when each of its one-sided comparisons is significant in the claimed direction at alpha "
                 "(largest p < alpha), **fails** when any comparison is significant against it (smallest opposite p times the "
                 "number of comparisons < alpha), and is **inconclusive** otherwise, as it is whenever a comparison has a single "
                 "seed and none fails.")


@dataclass
class Comparison:
    """One one-sided test. ``effect`` > 0 favours the claim; ``p`` tests the claimed direction,
    ``p_opposite`` the other; both NaN when untestable (fewer than two seeds). ``low``, ``high``:
    the CI_LEVEL interval of ``effect`` (NaN when untestable); ``interval`` names its method."""
    label: str
    effect: float
    text: str
    p: float = math.nan
    p_opposite: float = math.nan
    low: float = math.nan
    high: float = math.nan
    interval: str = ""

    @property
    def testable(self) -> bool:
        return not math.isnan(self.p)


def _degenerate(effect: float) -> tuple[float, float]:
    """p-values when the standard error is 0: the sign of the effect is certain, or a tie."""
    if effect == 0:
        return 1.0, 1.0
    return (0.0, 1.0) if effect > 0 else (1.0, 0.0)


def t_interval(effect: float, se: float, df: float, level: float = CI_LEVEL) -> tuple[float, float]:
    """effect +- t_{(1+level)/2, df} se: the two-sided t interval."""
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return effect - half, effect + half


def _ci_text(low: float, high: float) -> str:
    return f"95 % CI [{low:.3g}, {high:.3g}]"


def welch(target: np.ndarray, rival: np.ndarray, direction: str, label: str = "") -> Comparison:
    """One-sided Welch t-test that ``target`` is lower ("lower") or higher ("higher") than ``rival``
    (``scipy.stats.ttest_ind(equal_var=False)``): seeds of two priors are independent, their
    variances need not be equal. Interval: Welch's, with the Welch-Satterthwaite df."""
    target, rival = np.asarray(target, float), np.asarray(rival, float)
    sign = 1.0 if direction == "higher" else -1.0
    effect = sign * (target.mean() - rival.mean())
    means = f"{target.mean():.4g} vs {rival.mean():.4g}"
    if len(target) < 2 or len(rival) < 2:
        return Comparison(label, effect, f"{label}: means {means} (1 seed, no test)")
    if target.var() == 0 and rival.var() == 0:
        p, p_opp = _degenerate(effect)
        return Comparison(label, effect, f"{label}: {means}, zero spread" + (" (tie)" if effect == 0 else ""), p, p_opp,
                          effect, effect, "Welch")
    claimed = "greater" if direction == "higher" else "less"
    other = "less" if direction == "higher" else "greater"
    result = stats.ttest_ind(target, rival, equal_var=False, alternative=claimed)
    p_opp = stats.ttest_ind(target, rival, equal_var=False, alternative=other).pvalue
    vt, vr = target.var(ddof=1) / len(target), rival.var(ddof=1) / len(rival)
    df = (vt + vr) ** 2 / (vt ** 2 / (len(target) - 1) + vr ** 2 / (len(rival) - 1))
    low, high = t_interval(effect, math.sqrt(vt + vr), df)
    return Comparison(label, effect, f"{label}: {means}, t={result.statistic:.3g} (df {result.df:.1f}), p={result.pvalue:.3g}, "
                      f"difference {effect:.3g} {_ci_text(low, high)}", float(result.pvalue), float(p_opp), low, high, "Welch")


def one_sample(values: np.ndarray, label: str) -> Comparison:
    """One-sided one-sample t-test that the mean of ``values`` is > 0; the t interval of the mean."""
    values = np.asarray(values, float)
    effect = float(values.mean())
    if len(values) < 2:
        return Comparison(label, effect, f"{label}: mean {effect:.4g} (1 seed, no test)")
    if values.var() == 0:
        p, p_opp = _degenerate(effect)
        return Comparison(label, effect, f"{label}: mean {effect:.4g}, zero spread" + (" (tie)" if effect == 0 else ""), p, p_opp,
                          effect, effect, "one-sample t")
    result = stats.ttest_1samp(values, 0.0, alternative="greater")
    p_opp = stats.ttest_1samp(values, 0.0, alternative="less").pvalue
    low, high = t_interval(effect, values.std(ddof=1) / math.sqrt(len(values)), len(values) - 1)
    return Comparison(label, effect, f"{label}: mean {effect:.4g}, t={result.statistic:.3g} (df {len(values) - 1}), p={result.pvalue:.3g}, "
                      f"{_ci_text(low, high)}", float(result.pvalue), float(p_opp), low, high, "one-sample t")


def contrast(groups: list[np.ndarray], coefficients: list[float], label: str) -> Comparison:
    """One-sided Welch-Satterthwaite t-test that sum_i c_i mean_i > 0 (groups of per-seed values),
    with the matching t interval."""
    groups = [np.asarray(g, float) for g in groups]
    effect = float(sum(c * g.mean() for c, g in zip(coefficients, groups)))
    if min(len(g) for g in groups) < 2:
        return Comparison(label, effect, f"{label}: {effect:.4g} (1 seed, no test)")
    parts = np.array([c * c * g.var(ddof=1) / len(g) for c, g in zip(coefficients, groups)])  # Var of each term
    if parts.sum() == 0:
        p, p_opp = _degenerate(effect)
        return Comparison(label, effect, f"{label}: {effect:.4g}, zero spread", p, p_opp, effect, effect, "Welch-Satterthwaite")
    se = math.sqrt(parts.sum())
    t = effect / se
    df = parts.sum() ** 2 / sum(v * v / (len(g) - 1) for v, g in zip(parts, groups))
    p = float(stats.t.sf(t, df))
    low, high = t_interval(effect, se, df)
    return Comparison(label, effect, f"{label}: {effect:.4g}, t={t:.3g} (df {df:.1f}), p={p:.3g}, {_ci_text(low, high)}", p,
                      float(stats.t.cdf(t, df)), low, high, "Welch-Satterthwaite")


def rank_trend(x: np.ndarray, y: np.ndarray, groups_ok: bool, label: str) -> Comparison:
    """One-sided Spearman test that y decreases with x (effect = -rho). Interval of -rho: Fisher's
    z with the standard error sqrt(1.06 / (n - 3)) of Fieller, Hartley and Pearson (1957), n > 3."""
    rho = stats.spearmanr(x, y).statistic
    if np.isnan(rho):  # constant y: no ordering at all
        return Comparison(label, 0.0, f"{label}: constant values (tie)", *((1.0, 1.0) if groups_ok else (math.nan, math.nan)))
    if not groups_ok:
        return Comparison(label, -float(rho), f"{label}: rho={rho:.3g} over {len(x)} runs (1 seed, no test)")
    p = float(stats.spearmanr(x, y, alternative="less").pvalue)
    p_opp = float(stats.spearmanr(x, y, alternative="greater").pvalue)
    low = high = math.nan
    if len(x) > 3 and abs(rho) < 1:
        z, half = math.atanh(rho), float(stats.norm.ppf(0.5 + CI_LEVEL / 2)) * math.sqrt(1.06 / (len(x) - 3))
        low, high = -math.tanh(z + half), -math.tanh(z - half)
    interval = f", -rho {_ci_text(low, high)}" if not math.isnan(low) else ""
    return Comparison(label, -float(rho), f"{label}: rho={rho:.3g} (n={len(x)}), p={p:.3g}{interval}", p, p_opp, low, high,
                      "Fisher z" if not math.isnan(low) else "")


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
    """RULE_SENTENCE over all comparisons of one claim.

    holds: every comparison significant (an intersection-union test, valid at level alpha without
    correction; its p is the largest one). fails: some comparison significant against the claim, a
    union over the k comparisons, so the opposite p-values are Bonferroni-corrected (min x k).
    Otherwise inconclusive, and always so when a comparison has a single seed (it can still fail
    on its other, testable comparisons). No comparison at all: not run."""
    if not comparisons:
        return Verdict("not run", note=reason)
    testable = [c for c in comparisons if c.testable]
    p = max(c.p for c in comparisons) if len(testable) == len(comparisons) else math.nan
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


def deciding(comparisons: list[Comparison], verdict: str) -> Comparison | None:
    """The comparison that settles the verdict: the strongest against the claim when it fails,
    else the weakest for it (the largest p; the one with the smallest margin when untestable)."""
    testable = [c for c in comparisons if c.testable]
    if not comparisons:
        return None
    if verdict == "fails":
        return min(testable, key=lambda c: c.p_opposite)
    if len(testable) < len(comparisons):
        return min(comparisons, key=lambda c: c.effect)
    return max(comparisons, key=lambda c: (c.p, -c.effect))


def verdict_label(row: dict) -> str:
    """The verdict as the Markdown prints it: 'inconclusive (1 seed)' where that is why."""
    return "inconclusive (1 seed)" if row["verdict"] == "inconclusive" and "1 seed" in str(row["note"]) else row["verdict"]
