"""Shortest likely path (LaDDer Eq. 9) and Figures 5-6: the optimisation on known densities,
the model-level space choice on tiny trained models, and every figure function on tiny data."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.interpolation import (HELDOUT_COLUMNS, SLP_DEFAULTS, TABLE_COLUMNS, choose_pairs, fit_heldout_density, interpolate_images,
                                    latent_space, pair_table, path_statistics, path_terms, shortest_likely_path, straight_line)
from tests.conftest import tiny_settings

# A ring of five narrow Gaussians on the upper half circle of radius 3: start and end sit in
# the two outermost modes, and the straight line between them crosses the empty centre
# (log p ~ -18 nats there), while the arc through the other modes stays likely.
RING_MEANS = torch.tensor([[3 * math.cos(a), 3 * math.sin(a)] for a in torch.linspace(0, math.pi, 5).tolist()])  # (5, 2)
RING_STD = 0.5


def ring_log_prob(x: torch.Tensor) -> torch.Tensor:
    """log of the equal-weight mixture: (..., 2) -> (...)"""
    d = (x.unsqueeze(-2) - RING_MEANS) / RING_STD  # (..., 5, 2)
    log_comp = -0.5 * d.pow(2).sum(-1) - 2 * math.log(RING_STD) - math.log(2 * math.pi)  # (..., 5)
    return torch.logsumexp(log_comp, -1) - math.log(len(RING_MEANS))


START, END = RING_MEANS[0].clone(), RING_MEANS[-1].clone()
FAST = {"iterations": SLP_DEFAULTS["iterations"]}  # lr 1e-2 moves a point ~0.01 per step: 500 steps reach the arc


def test_ring_density_normalises():
    xs = torch.linspace(-7, 7, 281)
    gy, gx = torch.meshgrid(xs, xs, indexing="ij")
    mass = ring_log_prob(torch.stack([gx, gy], -1)).exp().sum() * (xs[1] - xs[0]) ** 2
    assert abs(mass.item() - 1) < 1e-3


def test_straight_line_is_the_original_linspace():
    start, end = torch.tensor([0.5, -1.0]), torch.tensor([2.0, 3.0])
    path = straight_line(start, end, 8)  # (10, 2)
    assert path.shape == (10, 2)
    assert torch.equal(path[0], start) and torch.equal(path[-1], end)
    interior = np.linspace(start.numpy(), end.numpy(), 9, endpoint=False)[1:]  # the original's 8 interior points
    np.testing.assert_allclose(path[1:-1].numpy(), interior, rtol=1e-6)
    frac = ((path[1:-1] - start) / (end - start))[:, 0]
    assert (frac > 0).all() and (frac < 1).all()
    terms = path_terms(path, ring_log_prob)
    assert terms["length"].item() == pytest.approx(torch.linalg.vector_norm(end - start).item(), rel=1e-6)
    assert terms["step_std"].item() == pytest.approx(0.0, abs=1e-6)


def test_slp_finds_the_likely_path_and_keeps_its_endpoints():
    path, history = shortest_likely_path(START, END, ring_log_prob, **FAST)
    assert path.shape == (SLP_DEFAULTS["n_points"] + 2, 2)
    assert torch.equal(path[0], START) and torch.equal(path[-1], END)
    slp = path_statistics(path, ring_log_prob)
    sp = path_statistics(straight_line(START, END, SLP_DEFAULTS["n_points"]), ring_log_prob)
    assert slp["mean_log_p"] > sp["mean_log_p"] + 3  # nats per point (measured: -4.2 vs -7.6)
    assert slp["min_log_p"] > sp["min_log_p"] + 8  # the straight line's worst point is the empty centre (-16)
    assert slp["length"] > sp["length"]  # the price: a longer path
    assert path[1:-1, 1].min() > 0.4  # every interior point left the line y = 0 towards the arc
    # history: the three Eq. 9 terms and their weighted sum, row 0 = the straight line
    assert set(history) == {"objective", "length", "step_std", "log_p_sum"}
    assert all(v.shape == (FAST["iterations"] + 1,) for v in history.values())
    recombined = 10 * history["length"] + 100 * history["step_std"] - history["log_p_sum"]
    torch.testing.assert_close(history["objective"], recombined)
    assert history["objective"][-1] < history["objective"][0]
    assert history["length"][0].item() == pytest.approx(6.0, rel=1e-5)


def test_batched_pairs_equal_single_pairs():
    starts = torch.stack([START, torch.tensor([-1.0, 0.5])])  # (2, 2)
    ends = torch.stack([END, torch.tensor([2.5, 2.0])])
    batch, history = shortest_likely_path(starts, ends, ring_log_prob, iterations=50)
    assert history["objective"].shape == (51, 2)
    for p in range(2):
        single, _ = shortest_likely_path(starts[p], ends[p], ring_log_prob, iterations=50)
        torch.testing.assert_close(batch[p], single, rtol=1e-5, atol=1e-5)


def test_choose_pairs_is_seeded_and_distinct():
    labels = torch.arange(30) % 3
    a, b = choose_pairs(30, 20, seed=4, labels=labels), choose_pairs(30, 20, seed=4, labels=labels)
    assert torch.equal(a, b) and a.shape == (20, 2)
    assert (a[:, 0] != a[:, 1]).all() and (labels[a[:, 0]] != labels[a[:, 1]]).all()
    assert not torch.equal(a, choose_pairs(30, 20, seed=5, labels=labels))


# -- tiny trained models -----------------------------------------------------------------------
TINY_OPTIONS = {"iterations": 20, "n_pairs": 3, "figure_pairs": 3, "figure6_pairs": 2, "test_images": 24, "grid_size": 40}


@pytest.fixture(scope="module")
def tiny_models(tiny_dataset, tmp_path_factory):
    from pipeline.training import train

    root = tmp_path_factory.mktemp("runs")
    models = {}
    for method in ("ladder", "gmm", "normal"):
        settings = tiny_settings(method, epochs=1)  # ladder: d_t = 2, DP mixture fitted after epoch 1 (warmup_epochs 1)
        models[method] = train(settings, tiny_dataset, root / method / "model.pt", progress=False)
    return models


def test_latent_space_follows_the_prior(tiny_models):
    from pipeline.training import load_model

    ladder, _ = load_model(tiny_models["ladder"])
    space = latent_space(ladder)
    assert (space.name, space.dim) == ("t", 2)
    t = torch.randn(5, 2)
    torch.testing.assert_close(space.log_prob(t), ladder.prior.mixture.log_prob(t))  # the fitted DP mixture
    assert not torch.allclose(space.log_prob(t), -0.5 * (t.pow(2).sum(-1) + 2 * math.log(2 * math.pi)))
    normal, _ = load_model(tiny_models["normal"])
    space = latent_space(normal)
    assert (space.name, space.dim) == ("z", 4)
    z = torch.randn(5, 4)
    torch.testing.assert_close(space.log_prob(z), normal.prior.log_prob(z))


def test_interpolate_images_decodes_both_paths(tiny_models, tiny_dataset):
    from pipeline.data import load_split
    from pipeline.training import load_model

    images, _ = load_split(tiny_dataset, "test")
    vae, _ = load_model(tiny_models["ladder"])
    before = [p.requires_grad for p in vae.parameters()]
    result = interpolate_images(vae, images[:2], images[2:4], {"iterations": 10})
    assert result["slp"].shape == result["straight"].shape == (2, 10, 2)
    assert result["slp_images"].shape == (2, 10, 1, 28, 28) and result["slp_images"].dtype == torch.uint8
    torch.testing.assert_close(result["slp"][:, [0, -1]], result["straight"][:, [0, -1]], rtol=0, atol=0)
    assert [p.requires_grad for p in vae.parameters()] == before  # the model is left as it was


def test_pair_table_columns_and_values(tiny_models, tiny_dataset):
    from pipeline.data import load_split
    from pipeline.training import load_model

    images, _ = load_split(tiny_dataset, "test")
    vae, _ = load_model(tiny_models["gmm"])
    table = pair_table(vae, images, n_pairs=3, pair_seed=0, dataset="tiny", method="gmm", seed=0, options={"iterations": 10},
                       batch_pairs=2)
    assert list(table.columns[:len(TABLE_COLUMNS)]) == TABLE_COLUMNS
    assert len(table) == 6 and sorted(table["pair"].unique()) == [0, 1, 2]
    assert set(table["path"]) == {"slp", "straight"} and (table["space"] == "z").all()
    sp = table[table["path"] == "straight"]
    assert np.allclose(sp["step_std"], 0, atol=1e-4) and (table["min_log_p"] <= table["mean_log_p"] + 1e-9).all()


def test_make_fig5_fig6_and_table_write_files(tiny_models, tiny_dataset, tmp_path):
    from pipeline.figures.interpolation import make_fig5, make_fig6, make_slp_table

    written = make_fig5(tiny_models, tiny_dataset, "mnist5k", tmp_path / "fig5_mnist5k", TINY_OPTIONS)
    written += make_fig6(tiny_models, tiny_dataset, "mnist5k", tmp_path / "fig6_mnist5k", TINY_OPTIONS)
    for path in written:
        assert path.exists() and path.stat().st_size > 0, path
    assert {p.suffix for p in written} == {".png", ".pdf", ".csv"}
    fig5 = pd.read_csv(tmp_path / "fig5_mnist5k.csv")
    assert list(fig5.columns[:len(TABLE_COLUMNS)]) == TABLE_COLUMNS and len(fig5) == 3 * 3 * 2
    history = pd.read_csv(tmp_path / "fig6_mnist5k_history.csv")
    assert len(history) == 3 * 2 * (TINY_OPTIONS["iterations"] + 1)
    out = make_slp_table(tiny_models["normal"], tiny_dataset, tmp_path / "slp_normal.csv", TINY_OPTIONS)
    table = pd.read_csv(out)
    assert list(table.columns[:len(TABLE_COLUMNS)]) == TABLE_COLUMNS and len(table) == 2 * TINY_OPTIONS["n_pairs"]
    assert (tmp_path / "slp_normal.csv.provenance.json").exists()
    # C7's held-out density beside the model's own log p: another density, not a copy of it
    assert set(HELDOUT_COLUMNS) <= set(table.columns) and table[HELDOUT_COLUMNS].notna().all().all()
    assert not np.allclose(table["heldout_mean_log_p"], table["mean_log_p"])
    assert (table["heldout_min_log_p"] <= table["heldout_mean_log_p"] + 1e-9).all()


def test_the_held_out_density_scores_t_space_paths_in_z(tiny_models, tiny_dataset, monkeypatch):
    """C7's held-out density lives in z for every prior: fitted on encoder means, and a LaDDer path
    (in t) is scored at z = mean of p(z|t), the points the images are decoded from."""
    import pipeline.interpolation as interpolation
    from pipeline.data.store import load_split
    from pipeline.training import load_model

    images, _ = load_split(tiny_dataset, "test")
    vae, _ = load_model(tiny_models["ladder"])
    fitted, scored = [], []
    real_fit = interpolation.fit_heldout_density

    def spy_fit(points, **kwargs):
        fitted.append(points)
        density = real_fit(points, **kwargs)
        return lambda s: (scored.append(s), density(s))[1]

    monkeypatch.setattr(interpolation, "fit_heldout_density", spy_fit)
    table = pair_table(vae, images[:16], n_pairs=2, pair_seed=0, dataset="tiny", method="ladder", seed=0,
                       options={"iterations": 5}, heldout_images=images[16:])
    assert (table["space"] == "t").all() and fitted[0].shape[1] == vae.prior.d_z == 4 != vae.prior.d_t
    pairs = choose_pairs(16, 2, 0)
    straight = interpolate_images(vae, images[pairs[:, 0]], images[pairs[:, 1]], {**SLP_DEFAULTS, "iterations": 5}, decode=False)["straight"]
    torch.testing.assert_close(scored[-1], interpolation.path_in_z(vae, straight)[:, 1:-1])  # the straight line's interior, in z


def test_fig5_refuses_a_ladder_model_without_2d_t(tiny_models, tiny_dataset, tmp_path):
    from pipeline.figures.interpolation import make_fig5

    models = {**tiny_models, "ladder": tiny_models["gmm"]}  # a z-space model where the 2-D t-space belongs
    with pytest.raises(ValueError, match="2-D t-space"):
        make_fig5(models, tiny_dataset, "mnist5k", tmp_path / "fig5", TINY_OPTIONS)


def test_unknown_option_is_named(tiny_models, tiny_dataset, tmp_path):
    from pipeline.figures.interpolation import make_fig6

    with pytest.raises(ValueError, match="n_iterations"):
        make_fig6(tiny_models, tiny_dataset, "mnist5k", tmp_path / "fig6", {"n_iterations": 5})


# -- figure functions on arrays -----------------------------------------------------------------
def test_figure_functions_on_tiny_arrays(tmp_path):
    from pipeline.figures.interpolation import density_grid, figure5, figure6

    g = torch.Generator().manual_seed(0)
    pairs = torch.randint(0, 256, (3, 2, 3, 8, 8), generator=g, dtype=torch.uint8)  # RGB works too
    strip = {"slp": torch.randint(0, 256, (3, 6, 3, 8, 8), generator=g, dtype=torch.uint8),
             "straight": torch.randint(0, 256, (3, 6, 3, 8, 8), generator=g, dtype=torch.uint8)}
    slp, history = shortest_likely_path(RING_MEANS[[0, 1, 0]], RING_MEANS[[4, 3, 2]], ring_log_prob, n_points=4, iterations=15)
    sp = straight_line(RING_MEANS[[0, 1, 0]], RING_MEANS[[4, 3, 2]], 4)
    grid = density_grid(ring_log_prob, torch.cat([slp.reshape(-1, 2), sp.reshape(-1, 2)]), size=30)
    assert grid[2].shape == (30, 30)
    figure5(pairs, grid, {"slp": slp, "straight": sp}, {"A": strip, "B": strip, "C": strip}, "tiny",
            [tmp_path / "f5.png", tmp_path / "f5.pdf"], encodings=torch.randn(50, 2, generator=g))
    figure6(pairs[:2], {"A": {k: v[:2] for k, v in strip.items()}}, {k: v[:, :2] for k, v in history.items()}, "A", "tiny",
            [tmp_path / "f6.png", tmp_path / "f6.pdf"])
    for name in ("f5.png", "f5.pdf", "f6.png", "f6.pdf"):
        assert (tmp_path / name).stat().st_size > 1000


@pytest.mark.parametrize("name", ["vampprior", "realnvp", "gmm"])
def test_latent_space_log_prob_takes_paths_of_any_batch_shape(name):
    """The prior contract's log_prob takes (B, d); SLP evaluates (pairs, points, d)."""
    from pipeline.models import build_vae
    from tests.conftest import tiny_settings

    torch.manual_seed(0)
    vae = build_vae(tiny_settings(name)).eval()
    space = latent_space(vae)
    paths = torch.randn(3, 5, space.dim)
    flat = space.log_prob(paths.reshape(-1, space.dim)).reshape(3, 5)
    torch.testing.assert_close(space.log_prob(paths), flat)


# -- C7's held-out density -------------------------------------------------------------------
class _RidgePrior:
    """An 'exact' prior whose log p rewards y = 1 only: -8 (y - 1)^2 for z = (x, y)."""
    exact, d_z = True, 2

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:  # (B, 2) -> (B,)
        return -8.0 * (z[:, 1] - 1.0) ** 2


class _PixelModel(torch.nn.Module):
    """Images (N, 1, 1, 2) whose two pixels are the latent point: z = (255 x - 128) / 20."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # interpolate_images reads the device from a parameter
        self.prior = _RidgePrior()

    def encode(self, x):
        z = (x.reshape(len(x), 2) * 255 - 128) / 20
        return z, torch.ones_like(z)

    def decode(self, z):
        return (z * 20 + 128).div(255).reshape(len(z), 1, 1, 2)


def _pixels(points) -> torch.Tensor:
    return (torch.as_tensor(points, dtype=torch.float32) * 20 + 128).round().clamp(0, 255).to(torch.uint8).reshape(-1, 1, 1, 2)


def test_a_path_that_raises_the_optimised_log_p_does_not_raise_the_held_out_density():
    """C7 can fail: the data (held-out encodings) lie along y = 0 between the two endpoints, the
    prior rewards y = 1. The SLP climbs towards y = 1, raising the log p it optimises, and leaves
    the data: the held-out density along it falls below the straight line's."""
    g = torch.Generator().manual_seed(0)
    ends = _pixels([[-3.0, 0.0], [3.0, 0.0]])  # the pool: both pairs join these two images
    data = torch.stack([torch.rand(3000, generator=g) * 7 - 3.5, 0.1 * torch.randn(3000, generator=g)], 1)  # (3000, 2)
    table = pair_table(_PixelModel(), ends, n_pairs=2, pair_seed=0, dataset="toy", method="ridge", seed=0,
                       options={"iterations": 300}, heldout_images=_pixels(data))
    by_path = table.groupby("path")[["mean_log_p", "heldout_mean_log_p", "heldout_min_log_p"]].mean()
    assert by_path.loc["slp", "mean_log_p"] > by_path.loc["straight", "mean_log_p"] + 1  # the objective did its job
    assert by_path.loc["slp", "heldout_mean_log_p"] < by_path.loc["straight", "heldout_mean_log_p"] - 1  # and left the data
    assert by_path.loc["slp", "heldout_min_log_p"] < by_path.loc["straight", "heldout_min_log_p"]


def test_heldout_density_recovers_a_known_gaussian_and_refuses_too_few_points():
    g = torch.Generator().manual_seed(1)
    points = torch.randn(4000, 2, generator=g) * torch.tensor([1.0, 0.5]) + torch.tensor([2.0, -1.0])
    log_prob = fit_heldout_density(points, n_components=1)
    truth = torch.distributions.Normal(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.5]))
    grid = torch.tensor([[2.0, -1.0], [3.0, -0.5], [0.5, -1.5]])  # (3, 2)
    torch.testing.assert_close(log_prob(grid), truth.log_prob(grid).sum(-1), atol=0.05, rtol=0)
    assert log_prob(grid[None]).shape == (1, 3)  # batched like the paths (..., d)
    assert fit_heldout_density(points[:5]) is None  # fewer than 2 (d + 1) points: no density
