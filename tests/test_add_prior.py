"""Adding a prior means one module, one import and one config block (README, "Adding your own prior").

A toy prior registered here goes through config validation, a tiny training and evaluation, and
its label reaches the tables, without any other list being edited.
"""

import textwrap

import pytest
import torch
import yaml
from torch import nn

from pipeline.config import ConfigError, load_config, run_settings, validate_config
from pipeline.evaluation import evaluate
from pipeline.priors import PRIORS, Option, Prior, register_prior
from pipeline.priors.base import randn
from pipeline.provenance import REPO_ROOT
from pipeline.tables import column_label
from pipeline.training import load_model, train
from tests.conftest import make_digits, quick_config

README = REPO_ROOT / "README.md"


class ShiftedNormal(Prior):
    """p(z) = N(mu, I) with a learned mean, trained with the autoencoder."""

    label = "Shifted normal (toy)"
    option_specs = {"init_shift": Option("float")}  # what config may give each constructor option
    trained_with_autoencoder = True

    def __init__(self, d_z: int, init_shift: float = 0.0):
        super().__init__(d_z)
        if init_shift != init_shift:  # NaN
            raise ValueError("init_shift must be a number")
        self.mu = nn.Parameter(torch.full((d_z,), float(init_shift)))

    def log_prob(self, z, n_samples=None):
        return torch.distributions.Normal(self.mu, 1.0).log_prob(z).sum(-1)

    def sample(self, n, generator=None):
        return self.mu + randn((n, self.d_z), self.mu, generator)


@pytest.fixture
def toy_prior():
    register_prior("toy_shifted")(ShiftedNormal)
    yield "toy_shifted"
    PRIORS.pop("toy_shifted")


def _config(options):
    config = quick_config()
    config["methods"]["my_toy"] = {"prior": "toy_shifted", "options": options}
    config["run"]["methods"] = ["normal", "my_toy"]
    return config


def test_a_registered_prior_validates_trains_and_evaluates(toy_prior, tmp_path, tiny_dataset):
    config = validate_config(_config({"init_shift": 0.5}))
    settings = run_settings(config, "mnist5k", "my_toy", 0)
    settings.update(epochs=2, batch_size=16, train_limit=None, d_z=4)
    model = train(settings, tiny_dataset, tmp_path / "model.pt", progress=False)
    vae, loaded = load_model(model)
    assert loaded["prior"] == "toy_shifted" and not torch.allclose(vae.prior.mu, torch.full((4,), 0.5))  # it trained
    metrics = evaluate(vae, torch.from_numpy(make_digits(8, 3)[0]), progress=False)
    assert metrics["estimators"]["cross_entropy"] == "exact log p(z)"
    assert column_label("my_toy", "toy_shifted") == "my_toy (Shifted normal (toy))"


def test_its_options_are_checked_before_any_job(toy_prior):
    with pytest.raises(ConfigError, match=r"methods\.my_toy\.options\.init_shfit .*accepted options: init_shift"):
        validate_config(_config({"init_shfit": 0.5}))
    with pytest.raises(ConfigError, match=r"methods\.my_toy\.options\.init_shift is nan; prior 'toy_shifted' accepts a number"):
        validate_config(_config({"init_shift": float("nan")}))


def test_an_unregistered_prior_is_refused(toy_prior):
    config = _config({})
    config["methods"]["my_toy"]["prior"] = "toy_shiftd"
    with pytest.raises(ConfigError, match="toy_shiftd.*registered priors: .*toy_shifted"):
        validate_config(config)
    assert load_config()  # the shipped config is unaffected


@pytest.mark.slow
def test_the_readme_recipe_followed_literally_passes_the_tests_it_touches(tmp_path):
    """Issue 21.2: the README's three steps, copied from its code blocks onto a scratch copy of the
    repository, give a prior that validates and passes the config, validation and contract tests."""
    import re
    import shutil
    import subprocess
    import sys

    section = README.read_text().split("## Adding your own prior", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(python|yaml)\n(.*?)```", section, flags=re.S)
    module, import_line, method = (textwrap.dedent(code) for _, code in blocks)
    files = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (REPO_ROOT / name).is_file() and not name.startswith("reference/"):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, tmp_path / name)
    (tmp_path / "pipeline/priors/shifted_normal.py").write_text(module)
    init = tmp_path / "pipeline/priors/__init__.py"
    init.write_text(init.read_text().replace("\n__all__", import_line + "\n__all__", 1))
    config = tmp_path / "config/config.yaml"
    text = config.read_text()
    text = text.replace("\nmethods:\n", "\nmethods:\n" + textwrap.indent(method, "  "), 1)  # "under methods:"
    text = re.sub(r"(\n  methods: \[)([^\]]*)\]", lambda m: f"{m.group(1)}{m.group(2)}, shifted]", text, count=1)
    config.write_text(text)
    check = subprocess.run([sys.executable, "-m", "pipeline", "check-config"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0 and "7 method(s)" in check.stdout, check.stdout + check.stderr
    # what step 3 used to break (every config file's keys) and what a new prior must satisfy: the
    # config tests, its option declarations, the generic contract tests over the registry
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/test_config.py",
                             "tests/test_validation.py::test_every_constructor_option_is_declared_and_its_default_accepted",
                             "tests/test_priors.py", "-k", "shifted_normal or config or overlay or shipped"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "shifted_normal" in subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/test_priors.py"], cwd=tmp_path,
                                              capture_output=True, text=True).stdout
