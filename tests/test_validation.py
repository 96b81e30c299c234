"""Every value a job would reject is rejected by config validation first, naming its key (issue 20).

Each prior declares what its options accept (``option_specs``, ``option_relations``); these tests
walk every declaration with a bad value, so a prior that gains an option without a declaration,
or a declaration that stops being checked, fails here.
"""

import copy

import pytest
import yaml

from pipeline.config import ConfigError, validate_config
from pipeline.priors import PRIORS, prior_option_defaults, prior_option_names
from pipeline.provenance import REPO_ROOT

FULL = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())


def full_config() -> dict:
    return copy.deepcopy(FULL)


def bad_values(spec):
    """Values the declaration must refuse: the wrong type, null, and each side of its range."""
    out = [3] if spec.kind == "str" else ["text", True]
    if not spec.nullable:
        out.append(None)
    if spec.choices:
        out.append("not-" + spec.choices[0])
    for bound, step in ((spec.minimum, -1), (spec.above, 0), (spec.maximum, 1), (spec.below, 0)):
        if bound is not None:
            out.append(int(bound + step) if spec.kind == "int" else bound + step)
    return out


DECLARED = [(name, key, bad) for name, cls in sorted(PRIORS.items()) for key, spec in sorted(cls.option_specs.items())
            for bad in bad_values(spec)]


@pytest.mark.parametrize("name", sorted(PRIORS))
def test_every_constructor_option_is_declared_and_its_default_accepted(name):
    cls = PRIORS[name]
    assert set(cls.option_specs) == prior_option_names(cls), f"{cls.__name__}.option_specs must declare every constructor option"
    for key, default in prior_option_defaults(cls).items():
        assert cls.option_specs[key].accepts(default), f"{name}.{key}: the constructor default {default!r} is refused"


@pytest.mark.parametrize("name,key,bad", DECLARED, ids=[f"{n}-{k}-{b!r}" for n, k, b in DECLARED])
def test_every_declared_option_refuses_a_bad_value_naming_its_key(name, key, bad):
    config = full_config()
    config["methods"]["probe"] = {"prior": name, "options": {key: bad}}
    with pytest.raises(ConfigError, match=rf"methods\.probe\.options\.{key} is {bad!r}.*accepts"):
        validate_config(config, source="mine.yaml")


@pytest.mark.parametrize("value", [-3, 0, "three"])
def test_the_issues_n_components_values_name_the_key(value):
    config = full_config()
    config["methods"]["gmm"]["options"]["n_components"] = value
    with pytest.raises(ConfigError, match=r"mine.yaml: methods\.gmm\.options\.n_components is .*an integer >= 1"):
        validate_config(config, source="mine.yaml")


def test_negative_weight_concentration_prior_is_refused():
    config = full_config()
    config["methods"]["ladder"]["options"]["weight_concentration_prior"] = -1
    with pytest.raises(ConfigError, match=r"methods\.ladder\.options\.weight_concentration_prior is -1.*a number > 0 or null"):
        validate_config(config)


def test_yaml_exponent_without_a_point_is_explained():
    config = full_config()
    config["methods"]["gmm"]["options"]["reg_covar"] = "1e-6"  # what YAML makes of `reg_covar: 1e-6`
    with pytest.raises(ConfigError, match=r"reg_covar is '1e-6'.*YAML reads 1e-6 as text"):
        validate_config(config)


def test_dataset_prior_options_are_checked_against_the_priors_they_reach():
    config = full_config()
    dataset = config["run"]["datasets"][0]
    config["datasets"][dataset]["prior_options"] = {"warmup_epochs": -2}
    with pytest.raises(ConfigError, match=rf"datasets\.{dataset}\.prior_options\.warmup_epochs is -2.*an integer >= 0"):
        validate_config(config)


def test_relations_between_options_name_both_keys_and_where_they_come_from():
    config = full_config()
    config["methods"]["gmm"]["options"].update(n_components=60, fit_samples=50)
    with pytest.raises(ConfigError, match=r"n_components <= fit_samples.*methods\.gmm\.options\.n_components = 60, "
                                          r"methods\.gmm\.options\.fit_samples = 50"):
        validate_config(config)
    config = full_config()
    config["methods"]["ladder"]["options"]["sigma_min"] = 0.5  # above the default sigma_max 0.1
    with pytest.raises(ConfigError, match=r"sigma_min <= sigma_max.*sigma_max \(the prior's default"):
        validate_config(config)


def test_wishart_degrees_of_freedom_are_checked_against_each_datasets_d_t():
    config = full_config()
    config["methods"]["ladder"]["options"]["degrees_of_freedom_prior"] = 1.5
    with pytest.raises(ConfigError, match=r"degrees_of_freedom_prior > d_t - 1.*datasets\.\w+\.d_t = "):
        validate_config(config)


@pytest.mark.parametrize("block", ["training", "fid"])
@pytest.mark.parametrize("value", ["gpu", "cuda0", "CPU", "cuda:"])
def test_device_typos_are_refused_with_the_accepted_strings(block, value):
    config = full_config()
    config[block]["device"] = value
    with pytest.raises(ConfigError, match=rf"{block}\.device is '{value}'; accepted: auto .*cpu, cuda, cuda:N .*mps"):
        validate_config(config)


@pytest.mark.parametrize("value", ["auto", "cpu", "cuda", "cuda:1", "mps"])
def test_every_accepted_device_passes(value):
    config = full_config()
    config["training"]["device"] = config["fid"]["device"] = value
    validate_config(config)


def test_kid_subset_larger_than_the_image_counts_is_refused():
    config = full_config()
    config["fid"].update(n_samples=500, n_reference=1000, kid_subset_size=800)
    config["sampling"]["n_samples"] = max(config["sampling"]["n_samples"], 500)
    with pytest.raises(ConfigError, match=r"fid\.kid_subset_size is 800 .*fid\.n_samples 500.*at most 500"):
        validate_config(config)
    config["fid"].update(n_samples=1000, kid_subset_size=1000)
    with pytest.raises(ConfigError, match=r"kid_subset_size equals fid\.n_samples and fid\.n_reference"):
        validate_config(config)


def test_fid_counts_are_checked_against_the_datasets_split_sizes():
    config = full_config()
    config["run"]["datasets"] = ["mnist5k"]
    config["data"]["mnist5k_test_size"] = 1000
    config["fid"].update(n_reference=2000, kid_subset_size=100)
    with pytest.raises(ConfigError, match=r"fid\.n_reference is 2000 but mnist5k has 1000 test images"):
        validate_config(config)
    config["fid"].update(n_reference=500, n_samples=600, real_split="test")
    with pytest.raises(ConfigError, match=r"fid\.n_samples is 600 but mnist5k has 500 test images after the 500 reference"):
        validate_config(config)
