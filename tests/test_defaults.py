"""One home for each default and name (issue 21.3): the schema's defaults are config/config.yaml's
values and the code's, and the variant grammar and dataset labels are defined once."""

import inspect

import pytest
import yaml

from pipeline.config import DEFAULT_CONFIG, load_schema, schema_defaults

pytestmark = pytest.mark.unit


def _schema_defaults(schema: dict, path: tuple = ()):
    """(dotted path, default) for every property with a default, at any depth."""
    for key, sub in (schema.get("properties") or {}).items():
        if "default" in sub:
            yield path + (key,), sub["default"]
        yield from _schema_defaults(sub, path + (key,))


def _lookup(config: dict, path: tuple):
    for key in path:
        if not isinstance(config, dict) or key not in config:
            return KeyError
        config = config[key]
    return config


def test_every_schema_default_is_the_full_configs_value():
    """config/config.yaml (every key, the paper's values) and the schema's defaults agree; a key
    the full config leaves out takes the default, so there is nothing to disagree with."""
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    pairs = list(_schema_defaults(load_schema()))
    assert len(pairs) > 50
    differ = {".".join(path): (default, _lookup(config, path)) for path, default in pairs
              if _lookup(config, path) is not KeyError and _lookup(config, path) != default}
    assert not differ, f"schema default != config/config.yaml value (schema, config): {differ}"


def test_std_head_default_is_the_schemas():
    """Every constructor with a std head defaults to training.std_activation's schema default."""
    from pipeline.layers import STD_ACTIVATION, StdHead
    from pipeline.models.celeba import CelebaEncoder
    from pipeline.models.mnist import MnistCodeEncoder, MnistEncoder
    from pipeline.priors.hierarchical import HierarchicalPrior
    from pipeline.priors.prior_vae import PriorVAE

    expected = schema_defaults("training")["std_activation"]
    assert STD_ACTIVATION == expected
    for cls, name in ((StdHead, "activation"), (CelebaEncoder, "std_activation"), (MnistEncoder, "std_activation"),
                      (MnistCodeEncoder, "std_activation"), (PriorVAE, "std_activation"), (HierarchicalPrior, "std_activation")):
        assert inspect.signature(cls.__init__).parameters[name].default == expected, cls.__name__


def test_figure_defaults_are_the_schemas():
    """The figure commands' defaults are the schema's figures block (figure2's keyword defaults too)."""
    from argparse import Namespace

    from pipeline.figures.commands import KEYS, _options
    from pipeline.figures.density import figure2

    defaults = schema_defaults("figures")
    assert _options(Namespace(options="{}")) == {key: defaults[key] for key in KEYS}
    params = inspect.signature(figure2).parameters
    for key in ("fit_images", "d_t", "grid_size", "is_samples", "dynamic_range", "mc_points"):
        assert params[key].default == defaults[f"fig2_{key}"], key


def test_slp_defaults_are_the_schemas():
    from pipeline.interpolation import SLP_DEFAULTS

    defaults = schema_defaults("interpolation")
    assert {key: list(v) if isinstance(v, tuple) else v for key, v in SLP_DEFAULTS.items()} == {key: defaults[key] for key in SLP_DEFAULTS}


def test_variant_grammar_round_trips_and_matches_the_workflows_constraint():
    import re

    from pipeline.names import VARIANT_REGEX, parse_variant, variant_label, variant_name

    for name, change in (("default", {}), ("d_t8", {"d_t": 8}), ("d_z2", {"d_z": 2})):
        assert parse_variant(name) == change
        assert re.fullmatch(VARIANT_REGEX, name)
    for bad in ("d_t0", "d_t", "dt8", "ladder_dt8", "d_x2", "d_t8x"):
        assert parse_variant(bad) is None and not re.fullmatch(VARIANT_REGEX, bad), bad
    assert variant_name("d_t", 8) == "d_t8" and variant_label("d_t8") == "d_t = 8"
    with pytest.raises(ValueError):
        variant_name("d_x", 2)


def test_paper_values_name_supplement_table_2_by_variant():
    from pipeline.names import parse_variant
    from pipeline.paper_values import read_paper_values

    rows = read_paper_values("table_sm2", "fid_generation")
    assert len(rows) >= 13 and all(m == "real" or set(parse_variant(m) or {}) == {"d_t"} for m in rows.method)


def test_figures_and_tables_print_one_dataset_label():
    from pipeline.figures.style import dataset_title
    from pipeline.names import DATASET_LABELS, dataset_label

    for key, label in DATASET_LABELS.items():
        assert dataset_title(key) == dataset_label(key) == label


def test_build_vae_defaults_are_the_schemas():
    """A settings dict without the training block's model keys builds the VAE that the schema's
    defaults build (same modules, same Laplace-scale mode and start)."""
    from pipeline.models import build_vae

    training = schema_defaults("training")
    keys = ("std_activation", "decoder_output", "init_scale", "decoder_scale", "mixed_precision")
    base = {"architecture": "mnist", "d_z": 4, "prior": "normal", "prior_options": {}}
    bare, explicit = build_vae(base), build_vae({**base, **{k: training[k] for k in keys}})
    assert [type(m) for m in bare.modules()] == [type(m) for m in explicit.modules()]
    assert [m.activation for m in bare.modules() if hasattr(m, "activation")] == \
        [m.activation for m in explicit.modules() if hasattr(m, "activation")]
    assert bare.scale_mode == explicit.scale_mode and float(bare.log_scale) == float(explicit.log_scale)
    assert bare.amp_dtype == explicit.amp_dtype
