"""Shared fixtures: small datasets the tests make themselves."""

import numpy as np
import pytest
import torch

from pipeline.config import DEFAULT_CONFIG, load_config, merged_config, run_settings
from pipeline.data.store import write_arrays
from pipeline.provenance import REPO_ROOT


def quick_config() -> dict:
    """The quick profile merged over config/config.yaml, as a plain (unvalidated) dict to edit."""
    return merged_config(DEFAULT_CONFIG, REPO_ROOT / "config" / "quick.yaml")


def make_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Tiny stand-in for MNIST: a bright bar whose position encodes the label. uint8 (n,1,28,28)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = (rng.random((n, 1, 28, 28)) * 30).astype(np.uint8)
    for i, label in enumerate(labels):
        images[i, 0, 2 + 2 * label: 5 + 2 * label, 4:24] = 255
    return images, labels.astype(np.int64)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny.h5"
    write_arrays(path, {"train": make_digits(64, 0), "test": make_digits(24, 1)}, name="mnist5k", sources=[{"path": "generated", "how": "test"}],
                 checksums={}, split_seed=0, data_cfg={})
    return path


# Small options per registered prior, declared once: the generic contract tests (tests/test_priors.py)
# and tiny trainings use them. A prior registered without an entry here is tested with its defaults.
SMALL_PRIOR_OPTIONS = {
    "normal": {},
    "vampprior": {"n_components": 5},
    "gmm": {"n_components": 3, "fit_samples": 200, "max_iter": 30},
    "mog": {"n_components": 4},
    "realnvp": {"n_blocks": 3, "hidden": 16},
    "hierarchical": {"d_t": 2, "n_layers": 1, "hidden": 16, "n_is_samples": 64},
    "ladder": {"d_t": 2, "n_layers": 1, "hidden": 16, "n_is_samples": 64, "n_components": 3, "fit_samples": 200,
               "warmup_epochs": 0, "n_hyper_samples": 10, "max_iter": 30},
}
TINY_PRIOR_OPTIONS = SMALL_PRIOR_OPTIONS  # the name older tests import


def tiny_settings(method: str, epochs: int = 3, seed: int = 0) -> dict:
    config = load_config(REPO_ROOT / "config" / "quick.yaml")
    config["methods"] = {method: {"prior": method, "options": TINY_PRIOR_OPTIONS.get(method, {})}}
    settings = run_settings(config, "mnist5k", method, seed)
    settings.update(epochs=epochs, batch_size=16, train_limit=None, d_z=4)
    if "d_t" in settings["prior_options"]:
        settings["prior_options"]["d_t"] = 2
    return settings


@pytest.fixture(autouse=True)
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
