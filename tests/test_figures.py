"""The paper's figures on tiny data: files written, CSV columns, and the numbers behind them
(aggregate-posterior normalisation, post-hoc fits, ARI/NMI)."""

import csv
import math

import h5py
import numpy as np
import pytest
import torch

from pipeline.figures import image_grid, save_sample_grid
from pipeline.figures.density import figure2, figure2_from_encodings, density_rows, plot_density_panels
from pipeline.figures.latent2d import (Components, alignment_scores, class_clusters, figure4, latent_components, most_responsible, summary_rows)
from pipeline.figures.reconstructions import figure3
from pipeline.figures.samples import samples_figure_from_files
from pipeline.models import build_vae
from pipeline.posthoc import (PosthocOptions, aggregate_posterior_log_prob, fit_priors_posthoc, grid_divergences, grid_log_prob,
                              posterior_grid, square_grid)
from pipeline.priors import build_prior

from tests.conftest import make_digits

SMALL = {
    "normal": {"prior": "normal", "options": {}},
    "vampprior": {"prior": "vampprior", "options": {"n_components": 6}},
    "gmm": {"prior": "gmm", "options": {"n_components": 3, "max_iter": 50}},
    "hierarchical": {"prior": "hierarchical", "options": {"n_layers": 1, "hidden": 32}},
    "ladder": {"prior": "ladder", "options": {"n_layers": 1, "hidden": 32, "n_components": 3, "warmup_epochs": 2,
                                              "n_hyper_samples": 4, "max_iter": 50}},
}


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def toy_encodings(n=600, seed=0):
    """Three well-separated 2-D clusters of posterior means with small stds, and their labels."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[-2.0, 0.0], [2.0, 0.5], [0.0, 2.5]])
    labels = torch.randint(3, (n,), generator=g)
    mean = centres[labels] + 0.3 * torch.randn(n, 2, generator=g)  # (n, 2)
    std = 0.2 + 0.1 * torch.rand(n, 2, generator=g)  # (n, 2)
    return mean, std, labels


class ToyEncoder(torch.nn.Module):
    """x (B,1,2,2) in [0,1] -> mean = A x + b spanning about [-3, 3]^2, fixed std: enough for a VampPrior."""

    input_shape = (1, 2, 2)

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[6.0, 0.0, 0.0, 0.0], [0.0, 6.0, 0.0, 0.0]]))
            self.linear.bias.fill_(-3.0)

    def forward(self, x):
        mean = self.linear(x.flatten(1))  # (B, 2)
        return mean, torch.full_like(mean, 0.4)


# -- the numbers -----------------------------------------------------------------------------
def test_aggregate_posterior_integrates_to_one_on_its_grid():
    mean, std, _ = toy_encodings(200)
    grid = posterior_grid(mean, std, 120)
    log_q = aggregate_posterior_log_prob(grid.points, mean, std)
    assert math.isclose(float(log_q.exp().sum() * grid.cell_area), 1.0, abs_tol=2e-3)
    # and it is the mixture: one component alone is that Gaussian's density
    one = aggregate_posterior_log_prob(torch.zeros(1, 2), torch.tensor([[1.0, -1.0]]), torch.tensor([[0.5, 2.0]]))
    expected = torch.distributions.Normal(torch.tensor([1.0, -1.0]), torch.tensor([0.5, 2.0])).log_prob(torch.zeros(2)).sum()
    assert torch.allclose(one.float(), expected[None], atol=1e-6)


def test_grid_divergences_match_closed_form_gaussians():
    grid = square_grid(-8, 8, 200)
    q = torch.distributions.Normal(torch.zeros(2), torch.ones(2))
    p = torch.distributions.Normal(torch.tensor([1.0, 0.0]), torch.tensor([2.0, 2.0]))
    log_q, log_p = q.log_prob(grid.points.float()).sum(-1), p.log_prob(grid.points.float()).sum(-1)
    out = grid_divergences(log_q, log_p, grid.cell_area)
    kl = float(torch.distributions.kl_divergence(q, p).sum())
    assert math.isclose(out["kl"], kl, rel_tol=1e-3)
    assert math.isclose(out["cross_entropy"], -(q.entropy().sum().item() + kl), rel_tol=1e-3)
    assert math.isclose(out["q_mass"], 1.0, abs_tol=1e-3)


def test_posthoc_fit_improves_every_prior_on_toy_2d_data():
    mean, std, _ = toy_encodings(600)
    grid = posterior_grid(mean, std, 48)
    log_q = aggregate_posterior_log_prob(grid.points, mean, std)
    encoder = ToyEncoder()
    options = PosthocOptions(epochs=3, steps_per_epoch=60, batch_size=128, learning_rate=3e-3, seed=0)
    methods = {k: v for k, v in SMALL.items() if k != "normal"}
    torch.manual_seed(0)
    before = {}
    for name, block in methods.items():
        prior = build_prior(block["prior"], 2, dict(block["options"], **({"d_t": 2} if name in ("hierarchical", "ladder") else {})))
        prior.bind_encoder(encoder)
        before[name] = grid_divergences(log_q, grid_log_prob(prior, grid.points, n_samples=32), grid.cell_area)["cross_entropy"]
    priors, logs = fit_priors_posthoc(methods, mean, std, encoder, d_t=2, options=options)
    assert all(not p.requires_grad for p in encoder.parameters())  # the encoder stays frozen
    for name, prior in priors.items():
        after = grid_divergences(log_q, grid_log_prob(prior, grid.points, n_samples=32), grid.cell_area)
        assert after["cross_entropy"] > before[name] + 0.1, (name, before[name], after)
        assert after["kl"] > -0.05, (name, after)  # KL >= 0 up to grid and IS error
    assert logs["ladder"][-1]["fit"]["fitted"] and not logs["ladder"][0]["fit"]["fitted"]  # warm-up kept, then DP fitted
    assert priors["gmm"].mixture.n_fits == 1


def test_ari_nmi_equal_scikit_learn_on_a_labelled_toy_case():
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    # three components; points drawn near their centres, so the most-responsible component is known
    comps = Components(torch.log(torch.tensor([0.5, 0.3, 0.2])), torch.tensor([[-3.0, 0.0], [3.0, 0.0], [0.0, 3.0]]),
                       0.5 * torch.eye(2).repeat(3, 1, 1), "z")
    g = torch.Generator().manual_seed(1)
    truth = torch.randint(3, (300,), generator=g)
    points = comps.means[truth] + 0.3 * torch.randn(300, 2, generator=g)
    assignment = most_responsible(points, comps)
    assert torch.equal(assignment, truth)
    # labels that agree with the components on most but not all points (a relabelled, noisy class)
    labels = (truth + 1) % 3
    labels[:40] = torch.randint(3, (40,), generator=g)
    scores = alignment_scores(assignment, labels)
    assert scores["ari"] == pytest.approx(adjusted_rand_score(labels.numpy(), truth.numpy()))
    assert scores["nmi"] == pytest.approx(normalized_mutual_info_score(labels.numpy(), truth.numpy()))
    assert 0.5 < scores["ari"] < 1.0
    assert alignment_scores(assignment, (truth + 2) % 3) == {"ari": 1.0, "nmi": 1.0}  # label names do not matter


def test_summary_rows_mean_and_sample_std():
    rows = [{"dataset": "d", "method": "gmm", "seed": s, "ari": a, "nmi": 0.5} for s, a in enumerate([0.2, 0.4, 0.6])]
    (out,) = summary_rows(rows)
    assert out["ari_mean"] == pytest.approx(0.4) and out["ari_std"] == pytest.approx(0.2) and out["n_seeds"] == 3


# -- the figure functions on tiny runs -----------------------------------------------------------
def save_run(folder, method, seed=0, d_z=2, prior_options=None, fit_z=None, dataset="mnist5k", images=None):
    """A tiny run folder: model.pt (untrained MNIST-architecture VAE), encodings.h5, samples.h5."""
    folder.mkdir(parents=True, exist_ok=True)
    block = SMALL[method]
    settings = {"dataset": dataset, "method": method, "seed": seed, "architecture": "mnist", "d_z": d_z,
                "prior": block["prior"], "prior_options": dict(block["options"], **(prior_options or {}))}
    torch.manual_seed(seed)
    vae = build_vae(settings).eval()
    if fit_z is not None:
        vae.prior.fit(fit_z, 10)
    torch.save({"settings": settings, "model": vae.state_dict()}, folder / "model.pt")
    imgs, labels = images if images is not None else make_digits(64, seed)
    with torch.no_grad():
        mean, std = vae.encode(torch.from_numpy(imgs).float() / 255)
    # spread the untrained encoder's means and widen its stds so every panel has structure
    mean, std = mean + torch.randn_like(mean), std + 0.3
    with h5py.File(folder / "encodings.h5", "w") as h5:
        for split in ("train", "test"):
            grp = h5.create_group(split)
            grp["mean"], grp["std"], grp["labels"] = mean.numpy(), std.numpy(), labels
        h5.attrs["complete"] = True  # as every writer marks a finished file (pipeline.artefacts)
    samples = torch.randint(0, 256, (100, 1, 28, 28), dtype=torch.uint8)
    with h5py.File(folder / "samples.h5", "w") as h5:
        h5["images"], h5["z"] = samples.numpy(), torch.zeros(100, d_z).numpy()
        h5.attrs["complete"] = True
    return folder


def assert_figure(paths):
    for path in paths:
        assert path.exists() and path.stat().st_size > 1000, path
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[1].read_bytes()[:4] == b"%PDF"


def test_figure2_writes_png_pdf_and_csv(tmp_path):
    run = save_run(tmp_path / "run", "normal")
    paths = [tmp_path / "fig2.png", tmp_path / "fig2.pdf"]
    table = tmp_path / "fig2.csv"
    rows = figure2(run / "model.pt", run / "encodings.h5", SMALL, paths, table, fit_images=50, d_t=2, grid_size=24,
                   is_samples=8, posthoc=PosthocOptions(epochs=2, steps_per_epoch=3, batch_size=16))
    assert_figure(paths)
    got = read_csv(table)
    assert [r["method"] for r in got] == ["aggregate posterior", *SMALL]
    assert set(got[0]) == {"dataset", "seed", "method", "cross_entropy", "kl", "q_mass", "p_mass", "cross_entropy_mc", "kl_mc", "n_images",
                           "grid_cells", "is_samples"}
    assert float(got[0]["kl"]) == 0.0 and abs(float(got[0]["q_mass"]) - 1) < 0.02
    assert got[-1]["is_samples"] == "8" and got[1]["is_samples"] == ""
    assert (tmp_path / "fig2.csv.provenance.json").exists()
    assert len(rows) == 6


def test_figure2_refuses_a_run_that_is_not_2d(tmp_path):
    run = save_run(tmp_path / "run", "normal", d_z=3)
    with pytest.raises(ValueError, match="d_z = 2"):
        figure2(run / "model.pt", run / "encodings.h5", SMALL, [tmp_path / "f.png"], tmp_path / "f.csv")


def test_figure3_writes_png_pdf_and_csv(tmp_path, tiny_dataset):
    runs = [save_run(tmp_path / m, m, d_z=4) for m in ("normal", "gmm")]
    paths = [tmp_path / "fig3.png", tmp_path / "fig3.pdf"]
    figure3(tiny_dataset, [r / "model.pt" for r in runs], [r / "samples.h5" for r in runs], paths, tmp_path / "fig3.csv", n_images=5)
    assert_figure(paths)
    got = read_csv(tmp_path / "fig3.csv")
    assert [r["method"] for r in got] == ["normal", "gmm"] and set(got[0]) == {"dataset", "method", "seed", "n_shown", "rec_mae_shown"}
    assert all(0 <= float(r["rec_mae_shown"]) <= 1 for r in got)


def test_figure4_writes_png_pdf_and_the_claims_columns(tmp_path):
    fit_z = toy_encodings(200)[0]
    ladder = {"d_t": 2, "warmup_epochs": 0}
    runs = [save_run(tmp_path / "v0", "vampprior"), save_run(tmp_path / "g0", "gmm", fit_z=fit_z),
            save_run(tmp_path / "l0", "ladder", prior_options=ladder, fit_z=fit_z), save_run(tmp_path / "g1", "gmm", seed=1, fit_z=fit_z)]
    paths = [tmp_path / "fig4.png", tmp_path / "fig4.pdf"]
    figure4([r / "model.pt" for r in runs], [r / "encodings.h5" for r in runs], paths, tmp_path / "fig4.csv", tmp_path / "fig4_summary.csv",
            max_points=40)
    assert_figure(paths)
    got = read_csv(tmp_path / "fig4.csv")
    assert list(got[0])[:5] == ["dataset", "method", "seed", "ari", "nmi"]
    assert len(got) == 4 and [r["space"] for r in got] == ["z", "z", "t", "z"]
    assert all(-1 <= float(r["ari"]) <= 1 and 0 <= float(r["nmi"]) <= 1 for r in got)
    summary = read_csv(tmp_path / "fig4_summary.csv")
    assert [(r["method"], r["n_seeds"]) for r in summary] == [("vampprior", "1"), ("gmm", "2"), ("ladder", "1")]
    assert summary[0]["ari_std"] == "" and summary[1]["ari_std"] != ""
    # C8 like with like: every prior also scored at K = number of classes, in its own space
    assert len({r["n_classes"] for r in got}) == 1 and all(-1 <= float(r["ari_classes"]) <= 1 for r in got)
    assert summary[1]["ari_classes_std"] != "" and summary[1]["nmi_classes_mean"] != ""


def test_alignment_at_k_classes_does_not_depend_on_the_priors_component_count():
    """Three well-separated classes: a prior with 12 small components splits each class and
    scores a low ARI on its own components; clusters fitted at K = 3 recover the classes."""
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = torch.arange(3).repeat_interleave(200)  # (600,)
    points = centres[labels] + torch.randn(600, 2, generator=g)  # (600, 2)
    many = Components(torch.full((12,), -math.log(12)), (centres[:, None] + torch.tensor([[-1.0, -1], [-1, 1], [1, -1], [1, 1]])).reshape(12, 2),
                      (0.5 * torch.eye(2)).expand(12, 2, 2), "z")
    own = alignment_scores(most_responsible(points, many), labels)
    at_k = class_clusters(points, labels, seed=0)
    assert own["ari"] < 0.5 and at_k["ari_classes"] == pytest.approx(1.0, abs=1e-3) and at_k["n_classes"] == 3
    assert at_k["nmi_classes"] > own["nmi"]


def test_latent_components_of_each_mixture_prior():
    encoder = ToyEncoder()
    vamp = build_prior("vampprior", 2, {"n_components": 5})
    vamp.bind_encoder(encoder)
    c = latent_components(vamp)
    assert c.space == "z" and c.means.shape == (5, 2) and torch.allclose(c.log_weights.exp().sum(), torch.tensor(1.0))
    ladder = build_prior("ladder", 2, {"d_t": 2, "n_layers": 1, "hidden": 8, "n_components": 4})
    assert latent_components(ladder).space == "t" and int(latent_components(ladder).active.sum()) == 1  # N(0, I) before a fit
    assert latent_components(build_prior("normal", 2, {})).means.shape == (1, 2)


def test_sample_figures(tmp_path):
    runs = [save_run(tmp_path / d, "normal", d_z=4, dataset=d) for d in ("mnist5k", "fashion_mnist")]
    paths = [tmp_path / "s.png", tmp_path / "s.pdf"]
    samples_figure_from_files("normal", ["mnist5k", "fashion_mnist"], [r / "samples.h5" for r in runs], 10, paths, tmp_path / "s.csv", seed=0)
    assert_figure(paths)
    assert [r["dataset"] for r in read_csv(tmp_path / "s.csv")] == ["mnist5k", "fashion_mnist"]
    # the per-run grid keeps its old import path and behaviour
    grid = image_grid(torch.full((3, 1, 2, 2), 7, dtype=torch.uint8), rows=2)
    assert grid.shape == (4, 4, 1) and int(grid.sum()) == 7 * 12
    save_sample_grid(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), 2, "t", [tmp_path / "g.png"])
    assert (tmp_path / "g.png").exists()
