"""Evaluation protocol: active units, estimator records, batch-size independence."""

import torch

from pipeline.evaluation import evaluate
from pipeline.models import build_vae
from tests.conftest import make_digits, tiny_settings


def _vae(method="normal"):
    torch.manual_seed(0)
    return build_vae(tiny_settings(method)).eval()


def test_active_units_count_dimensions_that_vary_across_images():
    vae = _vae()
    images = torch.from_numpy(make_digits(32, 3)[0])
    with torch.no_grad():  # make the posterior mean depend on the input in dimension 0 only
        vae.encoder.mean.weight.zero_()
        vae.encoder.mean.bias.zero_()
        vae.encoder.mean.weight[0] = 50.0 * torch.randn(vae.encoder.mean.weight.shape[1])
    metrics = evaluate(vae, images, progress=False)
    assert metrics["active_units"] == 1 and metrics["latent_dims"] == 4


def test_metrics_do_not_depend_on_the_batch_size():
    images = torch.from_numpy(make_digits(24, 4)[0])
    vae = _vae()
    small = evaluate(vae, images, batch_size=5, seed=1, progress=False)
    large = evaluate(vae, images, batch_size=24, seed=1, progress=False)
    # deterministic parts agree exactly; Monte-Carlo parts agree in distribution only
    assert abs(small["rec_error"] - large["rec_error"]) < 1e-6
    assert small["active_units"] == large["active_units"]
    assert abs(small["entropy"] - large["entropy"]) < 1e-4


def test_generative_priors_record_importance_sampling_and_bound():
    vae = _vae("hierarchical")
    metrics = evaluate(vae, torch.from_numpy(make_digits(8, 5)[0]), is_samples=16, progress=False)
    assert "K=16" in metrics["estimators"]["cross_entropy"] and metrics["is_samples"] == 16
    # the IS estimate of log p(z) is, on average, above the bound L'(z)
    assert metrics["cross_entropy"] >= metrics["cross_entropy_bound"] - 1.0
