"""Break the code on a scratch copy, one fault at a time, and check that the named tests fail.

    .venv/bin/python scripts/check_mutants.py            # every mutant (a few minutes on 2 cores)
    .venv/bin/python scripts/check_mutants.py entropy    # those whose name contains 'entropy'

Each mutant is (name, file, original text, broken text, tests that must catch it). The table in
tests/README.md lists the same pairs; this script is how it was checked, and how to check it again
after the code moves (a mutant whose original text is gone is reported as stale, not as caught).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MUTANTS = [
    ("ELBO entropy term sign-flipped in evaluation", "pipeline/evaluation.py",
     'per_image["elbo"].append(rec + entropy + bound)', 'per_image["elbo"].append(rec - entropy + bound)',
     ["tests/test_evaluation.py::test_normal_prior_elbo_is_reconstruction_minus_analytic_kl"]),
    ("ELBO prior term dropped in evaluation", "pipeline/evaluation.py",
     'per_image["elbo"].append(rec + entropy + bound)', 'per_image["elbo"].append(rec + entropy)',
     ["tests/test_evaluation.py::test_normal_prior_elbo_is_reconstruction_minus_analytic_kl"]),
    ("ELBO entropy term dropped in training", "pipeline/models/vae.py",
     '"elbo": rec + entropy + log_pz,', '"elbo": rec + log_pz,',
     ["tests/test_models.py::test_vae_terms_add_up"]),
    ("Laplace normaliser off by a constant", "pipeline/models/vae.py",
     "- d * torch.log(2 * scale)", "- d * torch.log(scale)",
     ["tests/test_models.py::test_laplace_log_likelihood_matches_torch_distribution",
      "tests/test_evaluation.py::test_normal_prior_elbo_is_reconstruction_minus_analytic_kl"]),
    ("Table 2 cross-entropy taken from the bound", "pipeline/evaluation.py",
     'sums["ce"] += diag["log_prob"]', 'sums["ce"] += bound',
     ["tests/test_evaluation.py::test_importance_sampled_cross_entropy_agrees_with_the_exact_one"]),
    ("prior-VAE parameters in the autoencoder optimiser", "pipeline/training.py",
     'ae_params = [p for name, p in vae.named_parameters() if not name.startswith("prior.") and p.requires_grad]',
     "ae_params = [p for name, p in vae.named_parameters() if p.requires_grad]",
     ["tests/test_training.py::test_block_coordinate_schedule"]),
    ("autoencoder gradients leak into the prior-VAE step", "pipeline/training.py",
     "                prior_opt.zero_grad(set_to_none=True)\n                prior_loss.backward()",
     "                prior_loss.backward()",
     ["tests/test_training.py::test_block_coordinate_schedule"]),
    ("the two block steps swapped", "pipeline/training.py",
     "            terms = vae.terms(x)\n",
     "            if prior_opt is not None:\n"
     "                early = vae.prior.block_loss(vae.encode(x)[0].detach())\n"
     "                prior_opt.zero_grad(set_to_none=True)\n                early.backward()\n                prior_opt.step()\n"
     "            terms = vae.terms(x)\n",
     ["tests/test_training.py::test_block_coordinate_schedule"]),
    ("mixture refit skipped", "pipeline/priors/ladder.py",
     'return {"fitted": True, **self.mixture.fit(t, self.seed + int(epoch))}', 'return {"fitted": True}',
     ["tests/test_training.py::test_ladder_refits_its_mixture_every_epoch_after_warm_up"]),
    ("LaDDer generation draws t from N(0, I) instead of the fitted mixture", "pipeline/priors/hierarchical.py",
     "return self.vae.decode(self.sample_t(n, generator))", "return self.vae.decode(randn((n, self.d_t), self.vae.sigma_in, generator))",
     ["tests/test_priors.py::test_hierarchical_samples_t_from_hyper_prior"]),
    ("run identity includes the device (resume under another device restarts)", "pipeline/config.py",
     "EXECUTION_KEYS = (\"device\", \"num_threads\")", "EXECUTION_KEYS = (\"num_threads\",)",
     ["tests/test_training.py::test_settings_carrying_execution_flags_are_the_same_run"]),
    ("generated images depend on the batch size", "pipeline/evaluation.py",
     "    z, replaced = sample_latents(vae, n, seed)\n",
     "    generator, replaced = torch.Generator().manual_seed(seed), 0\n"
     "    z = torch.cat([vae.prior.sample(p.stop - p.start, generator=generator) for p in batches(n, batch_size)])\n",
     ["tests/test_evaluation.py::test_generated_images_do_not_depend_on_the_batch_size"]),
    # the original's training protocol (issue 18)
    ("protocol: the warm-up never trains z against N(0, I)", "pipeline/priors/base.py",
     'self.warming_up = self.warmup_mode == "standard_normal" and epoch < self.warmup_epochs', "self.warming_up = False",
     ["tests/test_training.py::test_the_original_warm_up_trains_z_against_the_standard_normal_first"]),
    ("protocol: the prior trains from the first warm-up epoch", "pipeline/priors/base.py",
     'return self.warmup_mode != "standard_normal" or epoch >= self.warmup_epochs - 1', "return True",
     ["tests/test_training.py::test_the_original_warm_up_trains_z_against_the_standard_normal_first"]),
    ("protocol: the prior's own learning rate ignored", "pipeline/training.py",
     'base = base if base is not None else settings.get("prior_learning_rate")', "base = base if base is not None else None",
     ["tests/test_training.py::test_the_prior_vae_and_its_scale_have_the_original_learning_rates"]),
    ("protocol: LaDDer's mixture refitted warm whatever the option", "pipeline/priors/ladder.py",
     'warm_start=refit == "warm",', "warm_start=True,",
     ["tests/test_priors.py::test_ladder_refit_recovers_clusters_after_a_fit_on_differently_shaped_data"]),
    # a two-sided p-value used as one-sided, in each test the claims use (issue 19.6)
    ("claims: two-sided Welch p-value", "pipeline/claims/statistics.py",
     "result = stats.ttest_ind(target, rival, equal_var=False, alternative=claimed)",
     'result = stats.ttest_ind(target, rival, equal_var=False, alternative="two-sided")',
     ["tests/test_claims.py::test_every_claims_p_value_is_one_sided", "tests/test_claims.py::test_each_test_splits_its_p_values_one_sided"]),
    ("claims: two-sided one-sample t p-value (C7)", "pipeline/claims/statistics.py",
     'result = stats.ttest_1samp(values, 0.0, alternative="greater")', "result = stats.ttest_1samp(values, 0.0)",
     ["tests/test_claims.py::test_every_claims_p_value_is_one_sided", "tests/test_claims.py::test_each_test_splits_its_p_values_one_sided"]),
    ("claims: two-sided contrast p-value (C6)", "pipeline/claims/statistics.py",
     "p = float(stats.t.sf(t, df))", "p = float(2 * stats.t.sf(abs(t), df))",
     ["tests/test_claims.py::test_each_test_splits_its_p_values_one_sided"]),
    ("claims: two-sided Spearman p-value (C6)", "pipeline/claims/statistics.py",
     'p = float(stats.spearmanr(x, y, alternative="less").pvalue)', "p = float(stats.spearmanr(x, y).pvalue)",
     ["tests/test_claims.py::test_every_claims_p_value_is_one_sided", "tests/test_claims.py::test_each_test_splits_its_p_values_one_sided"]),
    ("claims: two-sided Wilcoxon p-value (C7, one seed)", "pipeline/claims/definitions.py",
     'stats.wilcoxon(diff.to_numpy(), alternative="greater")', "stats.wilcoxon(diff.to_numpy())",
     ["tests/test_claims.py::test_single_seed_wilcoxon_note_is_one_sided"]),
]


def scratch_copy() -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    tmp = Path(tempfile.mkdtemp(prefix="mutant-"))
    for name in files:
        if (ROOT / name).is_file():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, tmp / name)
    return tmp


def main(select: str = "") -> int:
    failures = 0
    for name, path, original, broken, tests in MUTANTS:
        if select and select not in name:
            continue
        tmp = scratch_copy()
        target = tmp / path
        text = target.read_text()
        if original not in text:
            print(f"STALE   {name}: the original text is no longer in {path}")
            failures += 1
            continue
        target.write_text(text.replace(original, broken, 1))
        started = time.time()
        result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests], cwd=tmp, capture_output=True, text=True)
        caught = result.returncode != 0
        print(f"{'caught ' if caught else 'MISSED '} {name} ({time.time() - started:.0f} s) by {', '.join(t.split('::')[-1] for t in tests)}")
        failures += not caught
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
