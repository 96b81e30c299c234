"""The Real NVP prior (Xu et al. 2019, appendix B.2): exact density, inverse, log-determinant,
sampling, state round trip and joint training through the one training protocol.

Small flows (d_z = 2 or 5, a few blocks, narrow couplings) keep each test to seconds. A fresh
flow is exactly N(0, I) (see the module docstring), so the density tests first move it away:
``shaped`` fits it briefly by maximum likelihood to three clusters, giving a skewed,
multi-modal density for the grid and histogram checks.
"""

from __future__ import annotations

import io

import pytest
import torch

from pipeline.priors import build_prior
from pipeline.priors import realnvp  # noqa: F401  (registers "realnvp" until priors/__init__ imports it)
from pipeline.priors.base import standard_normal_log_prob
from tests.conftest import clustered, grid, total_variation

SMALL = dict(n_blocks=4, hidden=32, n_layers=1)


def make(d_z: int = 2, seed: int = 0, **options):
    torch.manual_seed(seed)
    return build_prior("realnvp", d_z, dict(SMALL, **options))


def shaped(seed: int = 0, steps: int = 150):
    """A 2-D flow fitted for a few steps to three clusters: far from N(0, I)."""
    prior = make(seed=seed)
    opt = torch.optim.Adam(prior.parameters(), lr=1e-2)
    data = clustered(2000, seed)  # (2000, 2)
    for _ in range(steps):
        loss = -prior.log_prob(data).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return prior


def perturbed(d_z: int, seed: int = 0, noise: float = 0.1):
    """Every parameter moved off its init, in float64 (for the exact-arithmetic checks)."""
    prior = make(d_z, seed).double()
    g = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for p in prior.parameters():
            p.add_(noise * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return prior


def test_fresh_flow_is_standard_normal_and_registered():
    prior = make(d_z=5)
    z = torch.randn(7, 5)
    with torch.no_grad():
        assert torch.allclose(prior.log_prob(z), standard_normal_log_prob(z), atol=1e-5)
    assert prior.exact and prior.trained_with_autoencoder and not prior.has_block_step
    assert len(prior.blocks) == SMALL["n_blocks"]
    assert len(make(n_blocks=3, n_layers=2).blocks[0].coupling.body) == 4  # 2 x (Linear, LeakyReLU)


def test_inverse_undoes_forward():
    prior = perturbed(5)
    z = torch.randn(64, 5, dtype=torch.float64) * 2
    with torch.no_grad():
        w, _ = prior.forward_flow(z)
        assert not torch.allclose(w, z, atol=1e-2)  # the flow is not the identity
        assert torch.allclose(prior.inverse_flow(w), z, atol=1e-9)
        assert torch.allclose(prior.forward_flow(prior.inverse_flow(z))[0], z, atol=1e-9)


def test_log_det_matches_autograd_jacobian():
    prior = perturbed(5)  # odd d_z: halves of 2 and 3
    for z in torch.randn(4, 5, dtype=torch.float64):
        jac = torch.autograd.functional.jacobian(lambda v: prior.forward_flow(v)[0], z)  # (5, 5)
        _, log_det = prior.forward_flow(z)
        assert torch.allclose(log_det, torch.linalg.slogdet(jac).logabsdet, atol=1e-9)


def test_density_integrates_to_one_on_a_grid():
    prior = shaped()
    step = 0.05
    pts = grid(7.0, step)  # (78400, 2)
    with torch.no_grad():
        lp = prior.log_prob(pts)
        assert (lp - standard_normal_log_prob(pts)).abs().max() > 1.0, "the fit did not move the flow"
    mass = (lp.exp().sum() * step**2).item()
    assert abs(mass - 1.0) < 0.01, f"integral of the Real NVP density on the grid = {mass:.4f}"


def test_samples_match_density():
    prior = shaped()
    with torch.no_grad():
        s = prior.sample(200_000, torch.Generator().manual_seed(0))
        tv, mass = total_variation(s, prior.log_prob)
    assert mass > 0.99
    assert tv < 0.04, f"total variation between samples and density {tv:.3f}"


def test_sampling_uses_the_generator_and_checks_d_z():
    prior = make()
    with torch.no_grad():
        a = prior.sample(9, torch.Generator().manual_seed(3))
        b = prior.sample(9, torch.Generator().manual_seed(3))
        w = torch.randn(9, 2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.allclose(a, prior.inverse_flow(w))
    with pytest.raises(ValueError, match="d_z must be >= 2"):
        build_prior("realnvp", 1, {})


def test_state_dict_round_trip():
    a = shaped(seed=0, steps=20)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    b = make(seed=1)
    z = torch.randn(16, 2)
    with torch.no_grad():
        assert not torch.allclose(a.log_prob(z), b.log_prob(z))
        buf.seek(0)
        b.load_state_dict(torch.load(buf, weights_only=True))
        assert torch.equal(a.log_prob(z), b.log_prob(z))
        assert torch.equal(a.sample(5, torch.Generator().manual_seed(2)), b.sample(5, torch.Generator().manual_seed(2)))


def _settings(epochs: int):
    """tiny_settings with the Real NVP prior, options given explicitly (not through config)."""
    from tests.conftest import tiny_settings

    settings = tiny_settings("normal", epochs=epochs)
    settings.update(method="realnvp", prior="realnvp", prior_options=dict(n_blocks=3, hidden=16, n_layers=1))
    return settings


def test_joint_training_moves_the_flow_and_resumes_exactly(tmp_path, tiny_dataset):
    from pipeline.training import load_model, train

    settings = _settings(epochs=2)
    straight = train(settings, tiny_dataset, tmp_path / "a" / "model.pt", progress=False)
    train(settings, tiny_dataset, tmp_path / "b" / "model.pt", stop_after_epoch=1, progress=False)
    resumed = train(settings, tiny_dataset, tmp_path / "b" / "model.pt", progress=False)
    a = torch.load(straight, weights_only=False)["model"]
    b = torch.load(resumed, weights_only=False)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"{key} differs after resume")
    # joint training: the flow's own parameters (zero-initialised heads included) were trained
    torch.manual_seed(settings["seed"])
    fresh = build_prior("realnvp", settings["d_z"], settings["prior_options"])
    vae, _ = load_model(straight)
    assert vae.prior.blocks[0].coupling.s.weight.abs().sum() > 0
    moved = [k for k, v in vae.prior.state_dict().items() if not torch.equal(v, fresh.state_dict()[k])]
    assert any(k.endswith("actnorm.bias") for k in moved) and any(k.endswith("coupling.t.weight") for k in moved)
    rows = torch.load(straight, weights_only=False)["stats"]
    assert all(torch.isfinite(torch.tensor(r["elbo"])) for r in rows)
