"""Training protocol: run identity and resume, honest failure messages, the block schedule."""

import json
import math

import pytest
import torch

from pipeline.artefacts import load_model, to_float
from pipeline.models import VAE, build_vae
from pipeline.priors import PRIORS
from pipeline.priors.base import standard_normal_log_prob
from pipeline.training import TrainingDiverged, make_optimisers, set_learning_rates, train
from tests.conftest import tiny_settings


def _weights(path):
    return torch.load(path, weights_only=False)["model"]


def _assert_same_weights(a_path, b_path, what, rtol=0.0, atol=0.0):
    a, b = _weights(a_path), _weights(b_path)
    assert a.keys() == b.keys()
    for key in a:
        if torch.is_tensor(a[key]):
            torch.testing.assert_close(a[key], b[key], rtol=rtol, atol=atol, msg=f"{what}: {key} differs after resume")


@pytest.mark.parametrize("method", ["normal", "ladder", "gmm"])
def test_resume_after_interrupt_gives_the_same_weights(tmp_path, tiny_dataset, method):
    settings = tiny_settings(method, epochs=3)
    straight = train(settings, tiny_dataset, tmp_path / "a" / "model.pt", progress=False)
    # interrupted after one epoch, then rerun: resumes from the checkpoint
    train(settings, tiny_dataset, tmp_path / "b" / "model.pt", stop_after_epoch=1, progress=False)
    assert not (tmp_path / "b" / "model.pt").exists()
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["epochs_done"] == 1
    resumed = train(settings, tiny_dataset, tmp_path / "b" / "model.pt", progress=False)
    _assert_same_weights(straight, resumed, method)


def test_resume_under_other_execution_flags(tmp_path, tiny_dataset):
    """Device and threads are not part of a run's identity: an interrupted run resumes under other
    flags (other thread count, 'cpu' instead of 'auto') and ends where an uninterrupted run ends."""
    settings = tiny_settings("ladder", epochs=3)
    straight = train(settings, tiny_dataset, tmp_path / "a" / "model.pt", progress=False, device="cpu", num_threads=1)
    train(settings, tiny_dataset, tmp_path / "b" / "model.pt", stop_after_epoch=1, progress=False, device="auto", num_threads=2)
    train(settings, tiny_dataset, tmp_path / "b" / "model.pt", stop_after_epoch=2, progress=False, device="cpu", num_threads=1)
    log = (tmp_path / "b" / "train.log").read_text()
    assert "resuming" in log and "after epoch 1 of 3" in log
    resumed = train(settings, tiny_dataset, tmp_path / "b" / "model.pt", progress=False, device="auto", num_threads=1)
    assert "after epoch 2 of 3" in (tmp_path / "b" / "train.log").read_text()
    # Two threads sum in another order than one: the same run up to float rounding, not bit for bit.
    _assert_same_weights(straight, resumed, "other flags", rtol=1e-3, atol=1e-4)


def test_resume_under_other_device_flag_is_bit_identical(tmp_path, tiny_dataset):
    settings = tiny_settings("gmm", epochs=2)
    straight = train(settings, tiny_dataset, tmp_path / "a" / "model.pt", progress=False, device="cpu")
    train(settings, tiny_dataset, tmp_path / "b" / "model.pt", stop_after_epoch=1, progress=False, device="auto")
    resumed = train(settings, tiny_dataset, tmp_path / "b" / "model.pt", progress=False, device="cpu")
    _assert_same_weights(straight, resumed, "cpu vs auto")


def test_settings_carrying_execution_flags_are_the_same_run(tmp_path, tiny_dataset):
    # Older settings files held device and threads; they do not make a run different.
    settings = tiny_settings("normal", epochs=2)
    train({**settings, "device": "cpu", "num_threads": 2}, tiny_dataset, tmp_path / "model.pt", stop_after_epoch=1, progress=False)
    train(settings, tiny_dataset, tmp_path / "model.pt", progress=False)
    assert "after epoch 1 of 2" in (tmp_path / "train.log").read_text()


def test_checkpoint_of_other_settings_is_moved_aside_with_the_keys_named(tmp_path, tiny_dataset, caplog):
    settings = tiny_settings("normal", epochs=2)
    train(settings, tiny_dataset, tmp_path / "model.pt", stop_after_epoch=1, progress=False)
    other = {**settings, "learning_rate": settings["learning_rate"] / 2}
    train(other, tiny_dataset, tmp_path / "model.pt", progress=False)
    assert "differing keys: learning_rate" in caplog.text and "starting from epoch 1" in caplog.text
    aside = list(tmp_path.glob("checkpoint.superseded-*.pt"))
    assert len(aside) == 1 and torch.load(aside[0], weights_only=False)["settings"]["learning_rate"] == settings["learning_rate"]


def test_run_folder_explains_itself(tmp_path, tiny_dataset):
    settings = tiny_settings("ladder", epochs=2)
    model = train(settings, tiny_dataset, tmp_path / "model.pt", progress=False)
    options = json.loads((tmp_path / "training_options.json").read_text())
    assert options["settings"] == settings
    assert "device" not in options["settings"] and "num_threads" not in options["settings"]
    assert options["provenance"]["seed"] == settings["seed"] and "commit" in options["provenance"]["git"]
    stats = (tmp_path / "stats.csv").read_text().splitlines()
    header = stats[0].split(",")
    for column in ("epoch", "elbo", "rec_loglik", "entropy", "log_prior", "mae", "scale", "prior_loss", "prior_health"):
        assert column in header
    assert len(stats) == 3  # header + 2 epochs
    fits = [json.loads(line) for line in (tmp_path / "prior_fit.jsonl").read_text().splitlines()]
    assert [f["epoch"] for f in fits] == [1, 2] and "n_active" in fits[-1] and "weights" in fits[-1]
    vae, loaded = load_model(model)
    assert loaded == settings and vae.prior.d_z == settings["d_z"]


def test_laplace_scale_is_the_training_set_mle(tmp_path, tiny_dataset):
    """Issue 8.5: the stored scale is the mean |x - decoder(z)| over the whole training set, not the
    last minibatch's (recomputed here with the same generator)."""
    from pipeline.data import load_split
    from pipeline.training import training_set_scale

    settings = tiny_settings("normal", epochs=2)
    model = train(settings, tiny_dataset, tmp_path / "model.pt", progress=False)
    vae, _ = load_model(model)
    images, _ = load_split(tiny_dataset, "train")
    expected = training_set_scale(vae, images, torch.device("cpu"), settings["seed"])
    assert vae.scale.item() == pytest.approx(expected, rel=1e-5)
    with torch.no_grad():  # and it is the MLE: the mean absolute error with posterior samples is close
        x = to_float(images)
        mean, _ = vae.encode(x)
        assert abs((x - vae.decode(mean)).abs().mean().item() - expected) < 0.05
    assert "training images" in torch.load(model, weights_only=False)["scale_source"]
    last_batch = torch.load(model, weights_only=False)["stats"][-1]["scale"]
    assert vae.scale.item() != last_batch


def test_non_finite_loss_says_what_was_kept_and_what_a_rerun_does(tmp_path, tiny_dataset, monkeypatch):
    settings = tiny_settings("normal", epochs=3)
    from pipeline.models.vae import VAE

    original, calls = VAE.terms, {"n": 0}
    steps_per_epoch = 64 // settings["batch_size"]

    def poisoned(self, x):
        calls["n"] += 1
        terms = original(self, x)
        if calls["n"] == steps_per_epoch + 2:  # epoch 2, step 2
            terms["elbo"] = terms["elbo"] * float("nan")
        return terms

    monkeypatch.setattr(VAE, "terms", poisoned)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 2 of 4\. Kept: .*checkpoint.pt \(this run's settings, after epoch 1\)\. "
                                               r"A rerun with the same settings resumes from epoch 2"):
        train(settings, tiny_dataset, tmp_path / "model.pt", progress=False)
    assert not (tmp_path / "model.pt").exists()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["epochs_done"] == 1
    assert "attempt failed" in (tmp_path / "train.log").read_text()


def test_divergence_before_any_epoch_keeps_nothing(tmp_path, tiny_dataset, monkeypatch):
    from pipeline.models.vae import VAE

    original = VAE.terms
    def poisoned(self, x):
        terms = original(self, x)
        return {**terms, "elbo": terms["elbo"] * math.nan}

    monkeypatch.setattr(VAE, "terms", poisoned)
    with pytest.raises(TrainingDiverged, match="No epoch finished, so nothing was kept; a rerun starts from epoch 1"):
        train(tiny_settings("normal"), tiny_dataset, tmp_path / "model.pt", progress=False)


def test_reruns_append_to_the_training_log(tmp_path, tiny_dataset):
    settings = tiny_settings("normal", epochs=2)
    train(settings, tiny_dataset, tmp_path / "model.pt", stop_after_epoch=1, progress=False)
    train(settings, tiny_dataset, tmp_path / "model.pt", progress=False)
    assert (tmp_path / "train.log").read_text().count("==== attempt started") == 2


# -- supplement B's block coordinate ascent ---------------------------------------------------
def _spy_optimiser_steps(monkeypatch, vae_holder):
    """Record, at every Adam step, which parameters it updates and their gradients."""
    steps = []
    original_step = torch.optim.Adam.step

    def adam_step(self, *args, **kwargs):
        params = [p for group in self.param_groups for p in group["params"]]
        steps.append({"ids": {id(p) for p in params}, "grads": {id(p): p.grad.clone() for p in params if p.grad is not None}})
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", adam_step)
    return steps


def test_block_coordinate_schedule(tmp_path, tiny_dataset, monkeypatch):
    """Per minibatch an autoencoder step (encoder + decoder only) THEN a prior-VAE step whose
    gradients come from the prior loss alone; a mixture refit at each epoch end."""
    settings = tiny_settings("ladder", epochs=2)
    cls = PRIORS["ladder"]
    log, block_grads = [], []
    original_block_loss, original_fit = cls.block_loss, cls.fit

    def block_loss(self, z):
        log.append("block_loss")
        loss = original_block_loss(self, z)
        params = [p for p in self.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        clip = settings["grad_clip_value"] or float("inf")
        block_grads.append({id(p): (g if g is not None else torch.zeros_like(p)).clamp(-clip, clip) for p, g in zip(params, grads)})
        return loss

    def fit(self, z, epoch):
        log.append("fit")
        return original_fit(self, z, epoch)

    monkeypatch.setattr(cls, "block_loss", block_loss)
    monkeypatch.setattr(cls, "fit", fit)
    steps = _spy_optimiser_steps(monkeypatch, None)
    model = train(settings, tiny_dataset, tmp_path / "model.pt", progress=False)
    vae, _ = load_model(model)
    n_batches = 2 * (64 // settings["batch_size"])
    assert log.count("block_loss") == n_batches and log.count("fit") == 2
    first_epoch = log[: log.index("fit") + 1]
    assert first_epoch.count("block_loss") == n_batches // 2 and first_epoch[-1] == "fit"
    assert len(steps) == 2 * n_batches
    ae_ids, prior_ids = steps[0]["ids"], steps[1]["ids"]
    # the two optimisers alternate, the autoencoder's first
    assert all(s["ids"] == ae_ids for s in steps[0::2]) and all(s["ids"] == prior_ids for s in steps[1::2])
    n_encoder = sum(1 for _ in vae.encoder.parameters())
    assert len(ae_ids) == sum(1 for n, p in vae.named_parameters() if not n.startswith("prior.") and p.requires_grad)
    assert len(ae_ids & prior_ids) == 0 and len(prior_ids) == sum(1 for _ in vae.prior.parameters())
    assert n_encoder > 0
    # no autoencoder gradient reaches the prior-VAE step: its gradients are the block loss's own
    for step, expected in zip(steps[1::2], block_grads):
        for pid, grad in step["grads"].items():
            torch.testing.assert_close(grad, expected[pid], msg="autoencoder gradient leaked into the prior-VAE step")


@pytest.mark.parametrize("own_rate", [None, 3e-4])
def test_prior_trained_with_the_autoencoder_joins_its_optimiser(tmp_path, tiny_dataset, monkeypatch, own_rate):
    """The VampPrior's pseudo-inputs are stepped with the autoencoder, by the same ELBO gradient; with
    training.prior_learning_rate set (the original) in a group of their own with the prior's rate."""
    settings = {**tiny_settings("vampprior", epochs=2), "prior_learning_rate": own_rate}
    settings["prior_options"]["warmup_epochs"] = 0
    steps = _spy_optimiser_steps(monkeypatch, None)
    model = train(settings, tiny_dataset, tmp_path / "model.pt", progress=False)
    vae, _ = load_model(model)
    assert len({frozenset(s["ids"]) for s in steps}) == 1  # one optimiser only
    assert len(steps[0]["ids"]) == sum(1 for p in vae.parameters() if p.requires_grad)
    ae_opt, _ = make_optimisers(vae, settings)
    roles = {group["role"]: len(group["params"]) for group in ae_opt.param_groups}
    assert roles == ({"autoencoder": len(steps[0]["ids"])} if own_rate is None else {"autoencoder": len(steps[0]["ids"]) - 1, "prior": 1})
    set_learning_rates(ae_opt, None, settings, epoch=2)
    rates = {group["role"]: group["lr"] for group in ae_opt.param_groups}
    assert rates["autoencoder"] == pytest.approx(settings["learning_rate"] * 0.99 ** 2)
    if own_rate is not None:
        assert rates["prior"] == pytest.approx(own_rate * 1.01 ** 2)


def test_the_prior_vae_and_its_scale_have_the_original_learning_rates(tiny_dataset):
    settings = {**tiny_settings("ladder"), "prior_learning_rate": 3e-4, "prior_scale_learning_rate": 2e-4}
    vae = build_vae(settings)
    _, prior_opt = make_optimisers(vae, settings)
    set_learning_rates(*make_optimisers(vae, settings)[:1], prior_opt, settings, epoch=3)
    groups = {group["role"]: group for group in prior_opt.param_groups}
    assert [p is vae.prior.vae.sigma_in for p in groups["prior_scale"]["params"]] == [True]
    assert groups["prior"]["lr"] == pytest.approx(3e-4 * 1.01 ** 3) and groups["prior_scale"]["lr"] == pytest.approx(2e-4 * 1.01 ** 3)
    assert sum(len(g["params"]) for g in groups.values()) == sum(1 for _ in vae.prior.parameters())
    # null rates: the old protocol, one group at the autoencoder's base rate
    old = {**settings, "prior_learning_rate": None, "prior_scale_learning_rate": None}
    _, prior_opt = make_optimisers(vae, old)
    set_learning_rates(*make_optimisers(vae, old)[:1], prior_opt, old, epoch=3)
    assert [g["role"] for g in prior_opt.param_groups] == ["prior"]
    assert prior_opt.param_groups[0]["lr"] == pytest.approx(old["learning_rate"] * 1.01 ** 3)


@pytest.mark.parametrize("method", ["hierarchical", "ladder", "vampprior"])
def test_the_original_warm_up_trains_z_against_the_standard_normal_first(tmp_path, tiny_dataset, monkeypatch, method):
    """The original's 'sg_pretraining' with W = 2: in epoch 1 the encoder's log p(z) term is
    log N(z; 0, I) and the prior's parameters do not move; the prior trains from epoch 2 (the last
    warm-up epoch) and the mixture is first fitted at its end; from epoch 3 the encoder sees the prior."""
    settings = tiny_settings(method, epochs=3)
    settings["prior_options"].update(warmup_epochs=2, **({"warmup_mode": "standard_normal"} if method != "vampprior" else {}))
    seen = []
    original = VAE.terms

    def terms(self, x):
        out = original(self, x)
        seen.append((self.prior.warming_up, torch.allclose(out["log_prior"], standard_normal_log_prob(out["z"]))))
        return out

    monkeypatch.setattr(VAE, "terms", terms)
    run = tmp_path / "run"
    train(settings, tiny_dataset, run / "model.pt", progress=False, stop_after_epoch=1)
    after_one = torch.load(run / "checkpoint.pt", weights_only=False)["model"]
    torch.manual_seed(settings["seed"])
    initial = build_vae(settings).state_dict()  # the same seed builds the same initial weights
    prior_keys = [k for k in after_one if k.startswith("prior.") and "mixture" not in k and k in initial and initial[k].is_floating_point()]
    assert prior_keys and all(torch.equal(after_one[k], initial[k]) for k in prior_keys)  # untouched in epoch 1
    train(settings, tiny_dataset, run / "model.pt", progress=False)
    per_epoch = len(seen) // 3
    assert all(warm and standard for warm, standard in seen[: 2 * per_epoch])
    assert not any(warm for warm, _ in seen[2 * per_epoch:]) and not all(standard for _, standard in seen[2 * per_epoch:])
    stats = (run / "stats.csv").read_text().splitlines()
    assert [line.split(",")[stats[0].split(",").index("against_standard_normal")] for line in stats[1:]] == ["True", "True", "False"]
    if method == "ladder":
        fits = [json.loads(line) for line in (run / "prior_fit.jsonl").read_text().splitlines()]
        assert [f["fitted"] for f in fits] == [False, True, True]


def test_ladder_refits_its_mixture_every_epoch_after_warm_up(tmp_path, tiny_dataset):
    settings = tiny_settings("ladder", epochs=3)
    model = train(settings, tiny_dataset, tmp_path / "model.pt", progress=False)
    vae, _ = load_model(model)
    assert int(vae.prior.mixture.n_fits) == 3
    assert vae.prior.mixture.weights.max() < 1.0  # no longer the N(0, I) start (weight 1 on component 0)


# -- GPU switches, tested on the CPU path (issue 11.5) ----------------------------------------------
def test_data_on_host_is_an_execution_flag_with_the_same_result(tmp_path, tiny_dataset):
    settings = tiny_settings("normal", epochs=2)
    a = train(settings, tiny_dataset, tmp_path / "a" / "model.pt", progress=False, data_on_device=True)
    b = train(settings, tiny_dataset, tmp_path / "b" / "model.pt", progress=False, data_on_device=False)
    _assert_same_weights(a, b, "data on host")


def test_bf16_mixed_precision_trains_with_float32_densities(tmp_path, tiny_dataset):
    settings = {**tiny_settings("ladder", epochs=2), "mixed_precision": "bf16"}
    model = train(settings, tiny_dataset, tmp_path / "model.pt", progress=False)
    vae, loaded = load_model(model)
    assert loaded["mixed_precision"] == "bf16" and vae.amp_dtype == torch.bfloat16
    x = to_float(torch.from_numpy(__import__("tests.conftest", fromlist=["make_digits"]).make_digits(4, 9)[0]))
    terms = vae.terms(x)
    assert all(terms[k].dtype == torch.float32 for k in ("rec_loglik", "entropy", "log_prior", "elbo"))
    stats = torch.load(model, weights_only=False)["stats"]
    reference = torch.load(train(tiny_settings("ladder", epochs=2), tiny_dataset, tmp_path / "fp32" / "model.pt", progress=False),
                           weights_only=False)["stats"]
    assert abs(stats[-1]["elbo"] - reference[-1]["elbo"]) < 0.1 * abs(reference[-1]["elbo"])
