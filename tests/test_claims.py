"""Claims C1-C8: each verdict rule on synthetic per-seed numbers, and the written outputs."""

import argparse
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline import claims
from pipeline.claims import VERDICTS, contrast, evaluate_claims, welch, write_claims

PRIORS = ("normal", "vampprior", "gmm", "hierarchical", "ladder")


def write_runs(folder, dataset, values, metric, kind="m", **extra):
    """One JSON per (method, seed): values = {method: [per-seed values]}."""
    paths = []
    for method, per_seed in values.items():
        for seed, value in enumerate(per_seed):
            path = folder / f"{kind}_{dataset}_{method}_{seed}.json"
            path.write_text(json.dumps({"dataset": dataset, "method": method, "seed": seed, "metrics": {metric: value, **extra}}))
            paths.append(path)
    return paths


def row_of(frame, claim, dataset="fashion_mnist"):
    rows = frame[(frame.claim == claim) & (frame.dataset == dataset)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def elbo_claim(tmp_path, values, dataset="fashion_mnist", alpha=0.05):
    return row_of(evaluate_claims(write_runs(tmp_path, dataset, values, "elbo"), [], alpha=alpha), "C4", dataset)


# -- the tests themselves against scipy ---------------------------------------------------
def test_welch_matches_scipy_and_contrast_reduces_to_welch():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 4), rng.normal(1, 2, 5)
    ours = welch(a, b, "lower")
    assert math.isclose(ours.p, stats.ttest_ind(a, b, equal_var=False, alternative="less").pvalue)
    assert math.isclose(ours.p + ours.p_opposite, 1.0)
    # the Welch-Satterthwaite contrast with coefficients (-1, +1) is the two-group Welch test
    c = contrast([a, b], [-1.0, 1.0], "b - a")
    assert math.isclose(c.p, ours.p, rel_tol=1e-10) and math.isclose(c.effect, b.mean() - a.mean())


# -- "A is best" rule --------------------------------------------------------------------
def test_clear_holds(tmp_path):
    row = elbo_claim(tmp_path, {"normal": [100, 101, 102], "gmm": [110, 111, 112], "ladder": [120, 121, 122]})
    assert row.verdict == "holds" and row.p_value < 0.05 and row.p_opposite > 0.5
    assert row["mean"] == 121 and row.n_seeds == 3 and "gmm vs" not in row.statistic  # rivals only against the claimed prior
    assert "ladder vs gmm" in row.deciding  # the closest rival decides


def test_clear_fails_names_the_better_rival(tmp_path):
    row = elbo_claim(tmp_path, {"normal": [100, 101, 102], "gmm": [130, 131, 132], "ladder": [120, 121, 122]})
    assert row.verdict == "fails" and row.p_opposite < 0.05 and "gmm" in row.note


def test_overlapping_seeds_are_inconclusive(tmp_path):
    row = elbo_claim(tmp_path, {"normal": [100, 101, 102], "gmm": [118, 122, 126], "ladder": [116, 121, 129]})
    assert row.verdict == "inconclusive" and row.p_value >= 0.05


def test_one_weak_rival_blocks_holds(tmp_path):
    # significant against normal, not against gmm: the intersection-union test does not hold
    row = elbo_claim(tmp_path, {"normal": [0, 1, 2], "gmm": [110, 125, 140], "ladder": [120, 121, 122]})
    assert row.verdict == "inconclusive" and "ladder vs gmm" in row.deciding


def test_exact_ties_are_never_significant(tmp_path):
    row = elbo_claim(tmp_path, {"gmm": [110, 111, 112], "ladder": [110, 111, 112]})
    assert row.verdict == "inconclusive" and math.isclose(row.p_value, 0.5)
    (tmp_path / "flat").mkdir()
    flat = elbo_claim(tmp_path / "flat", {"gmm": [5.0, 5.0], "ladder": [5.0, 5.0]})
    assert flat.verdict == "inconclusive" and flat.p_value == 1.0 and flat.p_opposite == 1.0 and "tie" in flat.note


def test_zero_spread_with_different_means_is_decided_by_the_sign():
    assert welch([3.0, 3.0], [5.0, 5.0], "lower").p == 0.0
    assert welch([3.0, 3.0], [5.0, 5.0], "higher").p_opposite == 0.0


def test_single_seed_compares_means_but_stays_inconclusive(tmp_path):
    row = elbo_claim(tmp_path, {"normal": [100], "gmm": [110], "ladder": [120]})
    assert row.verdict == "inconclusive" and "1 seed" in row.note and "agree" in row.note and math.isnan(row.p_value)
    assert claims.verdict_label(row.to_dict()) == "inconclusive (1 seed)"
    (tmp_path / "b").mkdir()
    against = elbo_claim(tmp_path / "b", {"gmm": [130], "ladder": [120]})
    assert against.verdict == "inconclusive" and "against the claim: ladder vs gmm" in against.note


def test_missing_data_is_not_run(tmp_path):
    frame = evaluate_claims([], [], datasets=["fashion_mnist"])
    assert set(frame.verdict) == {"not run"} and set(frame.claim) == {f"C{i}" for i in range(1, 9)}
    no_ladder = elbo_claim(tmp_path, {"normal": [1, 2], "gmm": [3, 4]})
    assert no_ladder.verdict == "not run" and "ladder not run" in no_ladder.note
    (tmp_path / "b").mkdir()
    alone = elbo_claim(tmp_path / "b", {"ladder": [1, 2]})
    assert alone.verdict == "not run" and "no rival" in alone.note


def test_c1_needs_both_parts(tmp_path):
    fid = {"normal": [200, 201, 202], "gmm": [20, 21, 22], "hierarchical": [300, 301, 302], "ladder": [5, 6, 7]}
    row = row_of(evaluate_claims([], write_runs(tmp_path, "fashion_mnist", fid, "fid_generation")), "C1")
    assert row.verdict == "fails" and "hierarchical" in row.note  # LaDDer lowest, but normal is not highest
    assert row.statistic.count("ladder vs normal") + row.statistic.count("normal vs ladder") == 1  # shared pair counted once


def test_c2_uses_the_difference_and_the_dataset_statement(tmp_path):
    paths = []
    for method, gen in {"normal": 200, "vampprior": 40, "gmm": 8, "ladder": 6}.items():
        for seed in range(3):
            path = tmp_path / f"{method}{seed}.json"
            path.write_text(json.dumps({"dataset": "mnist5k", "method": method, "seed": seed,
                                        "metrics": {"fid_generation": gen + seed, "fid_reconstruction": 2.0 + 0.1 * seed,
                                                    "fid_difference": gen + seed - (2.0 + 0.1 * seed)}}))
            paths.append(path)
    row = row_of(evaluate_claims([], paths), "C2", "mnist5k")
    assert row.subject == "ladder+gmm" and row.verdict == "holds"
    assert row.paper.startswith("paper (MNIST)") and row.paper_dataset == "mnist" and row.paper_agrees == "yes"
    assert row_of(evaluate_claims([], paths), "C1", "mnist5k").paper_agrees == "no"  # the paper's own MNIST row: GMM lowest


def test_c3_claims_gmm_on_mnist(tmp_path):
    # C3 decides on -KL (each run's kl, negated: Table 2's reading the evidence supports)
    row = row_of(evaluate_claims(write_runs(tmp_path, "mnist", {"gmm": [8, 8.5, 9], "ladder": [12, 12.5, 13]}, "kl"), []),
                 "C3", "mnist")
    assert row.subject == "gmm" and row.verdict == "holds"


def test_c5_uses_the_papers_x100_scale(tmp_path):
    row = row_of(evaluate_claims(write_runs(tmp_path, "fashion_mnist", {"gmm": [0.040, 0.041], "ladder": [0.036, 0.0365]}, "rec_error"), []), "C5")
    assert math.isclose(row["mean"], 3.625) and row.verdict == "holds"


def test_only_headline_runs_and_no_real_images_enter_c1_to_c5(tmp_path):
    paths = write_runs(tmp_path, "fashion_mnist", {"gmm": [20, 21], "ladder": [5, 6]}, "fid_generation")
    (tmp_path / "real.json").write_text(json.dumps({"dataset": "fashion_mnist", "method": "real", "seed": 0, "metrics": {"fid_generation": 0.1}}))
    (tmp_path / "v.json").write_text(json.dumps({"dataset": "fashion_mnist", "method": "ladder", "variant": "d_t2", "seed": 0,
                                                 "metrics": {"fid_generation": 99.0, "d_t": 2}}))
    row = row_of(evaluate_claims([], paths + [tmp_path / "real.json", tmp_path / "v.json"]), "C1")
    assert "real" not in row.ours_per_seed and "99" not in row.ours_per_seed and row.n_seeds == 2


def test_conflicting_duplicate_runs_are_an_error(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    paths = write_runs(a, "fashion_mnist", {"ladder": [1.0]}, "elbo") + write_runs(b, "fashion_mnist", {"ladder": [2.0]}, "elbo")
    with pytest.raises(ValueError, match="different results"):
        evaluate_claims(paths, [])
    assert len(claims.load_records(paths[:1] * 2)) == 1  # the same file named twice is read once


# -- C6 ----------------------------------------------------------------------------------
def ablation(tmp_path, means, seeds=3, spread=0.3):
    rng = np.random.default_rng(1)
    paths = []
    for d_t, mean in means.items():
        for seed in range(seeds):
            path = tmp_path / f"dt{d_t}_{seed}.json"
            path.write_text(json.dumps({"dataset": "fashion_mnist", "method": "ladder", "variant": f"d_t{d_t}", "seed": seed,
                                        "metrics": {"fid_generation": mean + spread * rng.standard_normal(), "d_t": d_t}}))
            paths.append(path)
    return row_of(evaluate_claims([], paths), "C6")


def test_c6_diminishing_returns_hold(tmp_path):
    row = ablation(tmp_path, {2: 25.0, 4: 10.0, 8: 6.0, 16: 5.0})
    assert row.verdict == "holds" and "rho" in row.statistic and "first gain - last gain" in row.statistic
    assert row.paper_agrees == "yes" and "d_t = 2: 25.3" in row.paper


def test_c6_constant_gain_per_doubling_is_not_diminishing(tmp_path):
    row = ablation(tmp_path, {2: 40.0, 4: 30.0, 8: 20.0, 16: 10.0})  # monotone, but linear in log2 d_t
    assert row.verdict == "inconclusive"


def test_c6_worsening_with_d_t_fails(tmp_path):
    assert ablation(tmp_path, {2: 5.0, 4: 6.0, 8: 10.0, 16: 25.0}).verdict == "fails"


def test_c6_accelerating_gains_fail(tmp_path):
    # improves with d_t, but the last doubling gains most: returns increase
    assert ablation(tmp_path, {2: 30.0, 4: 29.0, 8: 27.0, 16: 10.0}).verdict == "fails"


def test_c6_single_seed_two_values_and_none(tmp_path):
    one = ablation(tmp_path, {2: 25.0, 4: 10.0, 8: 6.0}, seeds=1)
    assert one.verdict == "inconclusive" and "1 seed" in one.note
    (tmp_path / "b").mkdir()
    two = ablation(tmp_path / "b", {2: 25.0, 16: 5.0})
    assert two.verdict == "inconclusive" and "three d_t" in two.note
    assert row_of(evaluate_claims([], [], datasets=["fashion_mnist"]), "C6").verdict == "not run"


# -- C7, C8 ------------------------------------------------------------------------------
def slp_table(path, gains, pairs=5, heldout=None):
    """gains = {method: [per-seed SLP - straight gain]} under the optimised log p; ``heldout``
    likewise under the held-out density (no held-out columns when None); values vary by pair."""
    rows = []
    for method, per_seed in gains.items():
        for seed, gain in enumerate(per_seed):
            for pair in range(pairs):
                base, jitter = -10.0 - pair, 0.1 * ((pair * 7 + seed) % 3)
                for kind, value in (("slp", base + gain + jitter), ("straight", base)):
                    row = {"dataset": "mnist5k", "method": method, "seed": seed, "pair": pair, "path": kind,
                           "mean_log_p": value, "min_log_p": value - 1, "length": 1.0, "step_std": 0.1}
                    if heldout is not None:
                        held = base - 5 + (heldout[method][seed] + jitter if kind == "slp" else 0.0)
                        row.update(heldout_mean_log_p=held, heldout_min_log_p=held - 2)
                    rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def c7_rows(frame, score="held-out density"):
    c7 = frame[(frame.claim == "C7") & frame.subject.str.endswith(f"({score})")]
    return c7.set_index(c7.subject.str.split(" ").str[0])


def test_c7_per_prior_verdicts(tmp_path):
    gains = {"ladder": [2.0, 2.5, 3.0], "normal": [-1.0, -1.2, -0.9], "gmm": [0.5]}
    table = slp_table(tmp_path / "slp.csv", gains, heldout=gains)
    frame = evaluate_claims([], [], slp_tables=[table, tmp_path / "missing.csv"])
    c7 = c7_rows(frame)
    assert list(frame[frame.claim == "C7"].subject)[:2] == ["ladder (held-out density)", "ladder (own log p, optimised)"]
    assert c7.loc["ladder", "verdict"] == "holds" and c7.loc["normal", "verdict"] == "fails"
    assert c7.loc["gmm", "verdict"] == "inconclusive" and "Wilcoxon" in c7.loc["gmm", "note"]
    assert (frame[frame.claim == "C8"].verdict == "not run").all()


def test_c7_is_decided_by_the_held_out_density_not_the_optimised_one(tmp_path):
    """The SLP raises the log p it optimises in every pair, but lowers the held-out density: the
    held-out row fails while the optimised row holds. Without held-out columns, that row is not run."""
    table = slp_table(tmp_path / "slp.csv", {"ladder": [2.0, 2.5, 3.0]}, heldout={"ladder": [-1.0, -1.5, -1.2]})
    frame = evaluate_claims([], [], slp_tables=[table])
    assert c7_rows(frame).loc["ladder", "verdict"] == "fails"
    assert c7_rows(frame, "own log p, optimised").loc["ladder", "verdict"] == "holds"
    assert "checks the optimiser" in c7_rows(frame, "own log p, optimised").loc["ladder", "note"]
    old = evaluate_claims([], [], slp_tables=[slp_table(tmp_path / "old.csv", {"ladder": [2.0, 2.5, 3.0]})])
    assert c7_rows(old).loc["ladder", "verdict"] == "not run" and "held-out" in c7_rows(old).loc["ladder", "note"]


def test_c7_wrong_columns_name_the_file_and_the_constants(tmp_path):
    path = tmp_path / "slp.csv"
    pd.DataFrame({"dataset": ["mnist5k"], "prior": ["ladder"]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="slp.csv.*column constants"):
        evaluate_claims([], [], slp_tables=[path])


def test_c8_alignment(tmp_path):
    # own components: LaDDer ahead; at K = classes for every prior, GMM ahead
    rows = [{"dataset": "mnist5k", "method": m, "seed": s, "ari": ari + 0.01 * s, "nmi": ari + 0.1 + 0.01 * s,
             "ari_classes": k + 0.01 * s, "nmi_classes": k + 0.1 + 0.02 * s}
            for m, ari, k in (("ladder", 0.6, 0.5), ("gmm", 0.3, 0.7), ("vampprior", 0.2, 0.4), ("normal", 0.9, 0.9)) for s in range(3)]
    path = tmp_path / "align.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    c8 = evaluate_claims([], [], alignment_tables=[path]).query("claim == 'C8'").set_index("subject")
    assert list(c8.index) == ["ladder (K = classes)", "ladder (own components)"]
    own = c8.loc["ladder (own components)"]
    assert own.verdict == "holds" and "normal" not in own.statistic  # rivals are GMM and VampPrior only
    assert own.statistic.count("ladder vs") == 4 and "NMI ladder vs gmm" in own.statistic  # ARI and NMI against both rivals
    at_k = c8.loc["ladder (K = classes)"]
    assert at_k.verdict == "fails" and "ladder vs gmm" in at_k.note and at_k.metric == "ari_classes, nmi_classes"
    pd.DataFrame(rows).drop(columns=["ari_classes", "nmi_classes"]).to_csv(path, index=False)  # a table from before the K-column
    old = evaluate_claims([], [], alignment_tables=[path]).query("claim == 'C8'").set_index("subject")
    assert old.loc["ladder (K = classes)", "verdict"] == "not run" and old.loc["ladder (own components)", "verdict"] == "holds"


# -- outputs -----------------------------------------------------------------------------
def test_markdown_csv_provenance_and_cli(tmp_path):
    metrics = write_runs(tmp_path, "fashion_mnist", {"gmm": [110, 111], "ladder": [120]}, "elbo")
    args = argparse.ArgumentParser()
    claims.register_commands(args.add_subparsers(dest="command"))
    parsed = args.parse_args(["claims", "--metrics", *map(str, metrics), "--slp", str(tmp_path / "none.csv"),
                              "--datasets", "fashion_mnist", "mnist5k", "--alpha", "0.1", "--out-prefix", str(tmp_path / "out" / "claims")])
    parsed.func(parsed)
    csv = pd.read_csv(tmp_path / "out" / "claims.csv")
    assert list(csv.columns) == claims.CSV_COLUMNS and set(csv.verdict) <= set(VERDICTS)
    assert set(csv.dataset) == {"fashion_mnist", "mnist5k"} and (csv.alpha == 0.1).all()
    md = (tmp_path / "out" / "claims.md").read_text()
    assert "alpha = 0.1" in md and "inconclusive (1 seed)" in md and "paper (MNIST)" in md and "## C8" in md
    assert json.loads((tmp_path / "out" / "claims.provenance.json").read_text())["inputs"]["metrics"] == list(map(str, metrics))


def test_alpha_out_of_range_is_an_error():
    with pytest.raises(ValueError, match="claims.alpha"):
        write_claims([], [], [], [], "unused", alpha=5)


def test_fails_is_bonferroni_corrected_over_the_claims_comparisons():
    against = claims.Comparison("ladder vs gmm", -1.0, "", p=0.97, p_opposite=0.03)
    assert claims.decide([against], 0.05).verdict == "fails"
    strong = claims.Comparison("ladder vs normal", 5.0, "", p=0.001, p_opposite=0.999)
    assert claims.decide([against, strong], 0.05).verdict == "inconclusive"  # 0.03 x 2 comparisons > alpha


def test_c6_reads_variant_files_and_ignores_other_variants(tmp_path):
    paths = []
    for variant, d_t, fid in (("d_t2", 2, 25.0), ("d_t4", 4, 10.0), ("default", 8, 6.0), ("d_z2", 2, 500.0)):
        for seed in range(2):
            path = tmp_path / f"{variant}_{seed}.json"
            path.write_text(json.dumps({"dataset": "fashion_mnist", "method": "ladder", "variant": variant, "seed": seed,
                                        "metrics": {"fid_generation": fid + 0.2 * seed, "d_t": d_t}}))
            paths.append(path)
    row = row_of(evaluate_claims([], paths), "C6")
    assert "500" not in row.ours_per_seed and row.ours_per_seed.startswith("d_t = 2: 25.1") and row.verdict == "holds"


def test_a_part_without_data_cannot_hold_but_can_fail(tmp_path):
    fid = {"gmm": [20, 21, 22], "ladder": [5, 6, 7]}  # no normal prior: "normal highest" is untested
    row = row_of(evaluate_claims([], write_runs(tmp_path, "fashion_mnist", fid, "fid_generation")), "C1")
    assert row.verdict == "inconclusive" and "normal not run" in row.note
    (tmp_path / "b").mkdir()
    worse = row_of(evaluate_claims([], write_runs(tmp_path / "b", "fashion_mnist", {"gmm": [5, 6, 7], "ladder": [20, 21, 22]},
                                                  "fid_generation")), "C1")
    assert worse.verdict == "fails"


# -- intervals ---------------------------------------------------------------------------
def test_intervals_are_welch_and_one_sample_t_intervals_of_the_oriented_difference():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 4), rng.normal(1, 2, 6)
    lower = welch(a, b, "lower")  # effect = mean(b) - mean(a): > 0 favours "a lower"
    ci = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert math.isclose(lower.low, ci.low) and math.isclose(lower.high, ci.high) and lower.interval == "Welch"
    higher = welch(a, b, "higher")
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert math.isclose(higher.low, ci.low) and math.isclose(higher.high, ci.high)
    single = claims.one_sample(a, "x")
    ci = stats.ttest_1samp(a, 0.0).confidence_interval(0.95)
    assert math.isclose(single.low, ci.low) and math.isclose(single.high, ci.high)
    c = contrast([a, b], [-1.0, 1.0], "b - a")  # the two-group contrast is Welch's interval too
    assert math.isclose(c.low, lower.low) and math.isclose(c.high, lower.high)
    assert math.isnan(welch(a[:1], b, "lower").low)  # one seed: no interval


def test_each_row_gives_the_deciding_difference_with_its_interval_and_the_markdown_says_what_it_means(tmp_path):
    row = elbo_claim(tmp_path, {"normal": [100, 101, 102], "gmm": [110, 111.5, 112], "ladder": [120, 121, 123]})
    decider = welch(np.array([120, 121, 123.0]), np.array([110, 111.5, 112.0]), "higher")  # the closest rival decides
    assert "ladder vs gmm" in row.deciding and math.isclose(row.difference, decider.effect)
    assert (row.ci_low, row.ci_high) == (decider.low, decider.high) and row.ci_low < row.difference < row.ci_high
    assert row.interval == "Welch"
    frame = evaluate_claims(write_runs(tmp_path, "fashion_mnist", {"gmm": [110, 111], "ladder": [120, 122]}, "elbo"), [])
    md = claims.to_markdown(frame, 0.05)
    assert claims.statistics.RULE_SENTENCE in md.split("## Summary")[1]  # the rule, in one sentence, in the summary
    assert "Difference [95 % CI]" in md and "Welch" in md and "| Seeds |" in md
    assert "sample standard deviation (ddof = 1) across the training seeds" in md


# -- one-sided everywhere ------------------------------------------------------------------
AGAINST = {  # per claim, per-seed data strongly against it (three seeds each)
    "C1": ("fid", "fid_generation", {"normal": [200, 201, 202], "gmm": [5, 6, 7], "ladder": [50, 51, 53]}),
    "C2": ("fid", "fid_difference", {"normal": [30, 31, 32], "gmm": [60, 61, 62], "ladder": [80, 81, 83]}),
    "C3": ("metrics", "kl", {"normal": [20, 21, 22], "gmm": [30, 31, 30.5], "ladder": [40, 41, 42]}),  # -KL decides C3
    "C4": ("metrics", "elbo", {"normal": [100, 101, 102], "gmm": [130, 131, 132], "ladder": [120, 121, 123]}),
    "C5": ("metrics", "rec_error", {"normal": [0.05, 0.051, 0.052], "gmm": [0.03, 0.031, 0.0305], "ladder": [0.06, 0.061, 0.063]}),
}


@pytest.mark.parametrize("claim", ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C7 optimised", "C8", "C8 own"])
def test_every_claims_p_value_is_one_sided(tmp_path, claim):
    """A two-sided p-value used as one-sided would call a strong effect *against* the claim
    significant *for* it: here every claim's data go clearly against it, so its p (claimed
    direction) must be > 0.5, its opposite p small and the verdict 'fails'."""
    if claim in AGAINST:
        kind, metric, values = AGAINST[claim]
        paths = write_runs(tmp_path, "fashion_mnist", values, metric)
        row = row_of(evaluate_claims(paths if kind == "metrics" else [], paths if kind == "fid" else []), claim)
    elif claim == "C6":
        row = ablation(tmp_path, {2: 5.0, 4: 10.0, 8: 16.0, 16: 30.0})  # FID rises with d_t, ever faster
    elif claim.startswith("C7"):
        table = slp_table(tmp_path / "slp.csv", {"ladder": [-2.0, -2.5, -3.0]}, heldout={"ladder": [-2.0, -2.6, -3.1]})
        score = "held-out density" if claim == "C7" else "own log p, optimised"
        row = c7_rows(evaluate_claims([], [], slp_tables=[table]), score).loc["ladder"]
    else:
        rows = [{"dataset": "mnist5k", "method": m, "seed": s, "ari": v + 0.01 * s, "nmi": v + 0.015 * s,
                 "ari_classes": v + 0.02 * s, "nmi_classes": v + 0.01 * s}
                for m, v in (("ladder", 0.2), ("gmm", 0.6), ("vampprior", 0.7)) for s in range(3)]
        pd.DataFrame(rows).to_csv(tmp_path / "align.csv", index=False)
        c8 = evaluate_claims([], [], alignment_tables=[tmp_path / "align.csv"]).query("claim == 'C8'").set_index("subject")
        row = c8.loc["ladder (K = classes)" if claim == "C8" else "ladder (own components)"]
    assert row.p_value > 0.5, f"{claim}: p = {row.p_value} for data against the claim (two-sided?)"
    assert row.p_opposite < 0.05 and row.verdict == "fails"


def test_each_test_splits_its_p_values_one_sided():
    """p (claimed direction) + p (opposite) = 1 for every continuous one-sided test; a two-sided
    p-value in either place would make the two equal."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 5), rng.normal(2, 1, 5)
    x = np.repeat([2, 4, 8, 16], 3)
    for c in (welch(a, b, "lower"), welch(a, b, "higher"), claims.one_sample(b, "b > 0"), claims.one_sample(-b, "-b > 0"),
              contrast([a, b], [-1.0, 1.0], "b - a"), contrast([a, b], [1.0, -1.0], "a - b"),
              claims.rank_trend(x, x + rng.normal(0, 3, len(x)), True, "falls"), claims.rank_trend(x, -x + rng.normal(0, 3, len(x)), True, "falls")):
        assert math.isclose(c.p + c.p_opposite, 1.0, rel_tol=1e-9), c.text
        assert (c.p < 0.5) == (c.effect > 0), c.text


def test_single_seed_wilcoxon_note_is_one_sided(tmp_path):
    """With one seed, C7's note reports a Wilcoxon test over pairs: against the claim its p must be > 0.5."""
    table = slp_table(tmp_path / "slp.csv", {"ladder": [-2.0]}, pairs=12, heldout={"ladder": [-2.0]})
    note = c7_rows(evaluate_claims([], [], slp_tables=[table])).loc["ladder", "note"]
    p = float(note.split("Wilcoxon over 12 pairs p=")[1].split(";")[0])
    assert p > 0.5, note
