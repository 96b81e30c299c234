"""Training protocol: resume equals straight-through, divergence stops cleanly, block schedule."""

import json

import pytest
import torch

from pipeline.priors import PRIORS
from pipeline.training import TrainingDiverged, load_model, train
from tests.conftest import tiny_settings


def _weights(path):
    return torch.load(path, weights_only=False)["model"]


@pytest.mark.parametrize("method", ["normal", "ladder", "gmm"])
def test_resume_after_interrupt_gives_the_same_weights(tmp_path, tiny_dataset, method):
    settings = tiny_settings(method, epochs=3)
    straight = train(settings, tiny_dataset, tmp_path / "a" / "model.pt", progress=False)
    # interrupted after one epoch, then rerun: resumes from the checkpoint
    train(settings, tiny_dataset, tmp_path / "b" / "model.pt", stop_after_epoch=1, progress=False)
    assert not (tmp_path / "b" / "model.pt").exists()
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["epoch"] == 0
    resumed = train(settings, tiny_dataset, tmp_path / "b" / "model.pt", progress=False)
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        if torch.is_tensor(a[key]):
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"{method}: {key} differs after resume")


def test_run_folder_explains_itself(tmp_path, tiny_dataset):
    settings = tiny_settings("ladder", epochs=2)
    model = train(settings, tiny_dataset, tmp_path / "model.pt", progress=False)
    options = json.loads((tmp_path / "training_options.json").read_text())
    assert options["settings"] == settings
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


def test_non_finite_loss_stops_with_epoch_and_step_and_keeps_the_checkpoint(tmp_path, tiny_dataset, monkeypatch):
    settings = tiny_settings("normal", epochs=3)
    from pipeline.models.vae import VAE

    original, calls = VAE.terms, {"n": 0}
    steps_per_epoch = 64 // settings["batch_size"]

    def poisoned(self, x):
        calls["n"] += 1
        terms = original(self, x)
        if calls["n"] == steps_per_epoch + 2:  # epoch 2, step 1
            terms["elbo"] = terms["elbo"] * float("nan")
        return terms

    monkeypatch.setattr(VAE, "terms", poisoned)
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step 1.*checkpoint.*\(epoch 1\) is kept"):
        train(settings, tiny_dataset, tmp_path / "model.pt", progress=False)
    assert not (tmp_path / "model.pt").exists()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["epoch"] == 0


def test_block_coordinate_schedule_calls_each_block(tmp_path, tiny_dataset, monkeypatch):
    """Supplement B: per minibatch an autoencoder step then a prior-VAE step; a mixture refit per epoch."""
    settings = tiny_settings("ladder", epochs=2)
    cls = PRIORS["ladder"]
    log = []
    for name in ("block_loss", "fit", "after_step"):
        method = getattr(cls, name)

        def spy(self, *args, _method=method, _name=name, **kwargs):
            log.append(_name)
            return _method(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, spy)
    step_calls = []
    original_step = torch.optim.Adam.step

    def adam_step(self, *args, **kwargs):
        step_calls.append(len(self.param_groups[0]["params"]))
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", adam_step)
    train(settings, tiny_dataset, tmp_path / "model.pt", progress=False)
    steps = 2 * (64 // settings["batch_size"])
    assert log.count("block_loss") == steps and log.count("after_step") == steps and log.count("fit") == 2
    # order inside an epoch: every block step precedes that epoch's refit
    first_epoch = log[: log.index("fit") + 1]
    assert first_epoch.count("block_loss") == steps // 2 and first_epoch[-1] == "fit"
    # two optimisers alternate: autoencoder, prior VAE, autoencoder, ...
    assert len(step_calls) == 2 * steps and len(set(step_calls[0::2])) == 1 and len(set(step_calls[1::2])) == 1
    assert step_calls[0] != step_calls[1]
