"""Load and validate configuration; resolve the settings of one run.

The schema (``workflow/schemas/config.schema.yaml``) is the single description of every key.
Snakemake validates with it through ``snakemake.utils.validate``; the CLI through
``load_config`` here. Errors name the file and the dotted key path.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import yaml

from pipeline.provenance import REPO_ROOT

SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG = REPO_ROOT / "config" / "quick.yaml"
# A method name "<base>_dt<N>" is the method <base> with the prior VAE's d_t = N
# (supplement Table 2's ablation); it needs no block of its own.
ABLATION_PATTERN = re.compile(r"^(?P<base>[A-Za-z][A-Za-z0-9]*)_dt(?P<d_t>\d+)$")


class ConfigError(ValueError):
    pass


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _fill_defaults(validator_class):
    """A validator that also writes schema defaults into the instance (as Snakemake does)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _fill_defaults(jsonschema.Draft202012Validator)


def validate_config(config: dict, source: str = "config") -> dict:
    """Validate in place (filling defaults) and cross-check names; returns the config."""
    errors = sorted(_Validator(load_schema()).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {'.'.join(map(str, e.absolute_path)) or '<top level>'}: {e.message}" for e in errors[:10]]
        raise ConfigError(f"{source}: invalid configuration\n" + "\n".join(lines) + "\nFix these keys (workflow/schemas/config.schema.yaml documents each one).")
    for dataset in config["run"]["datasets"]:
        if dataset not in config["datasets"]:
            raise ConfigError(f"{source}: run.datasets names {dataset!r} but datasets.{dataset} is not defined")
    for method in config["run"]["methods"]:
        base_method(config, method, source)
    if config["sampling"]["n_samples"] < config["fid"]["n_samples"]:
        raise ConfigError(f"{source}: sampling.n_samples ({config['sampling']['n_samples']}) must be at least fid.n_samples "
                          f"({config['fid']['n_samples']}): FID uses the first fid.n_samples generated images")
    ablated = config["ablation"]["method"]
    if ablated not in config["methods"]:
        raise ConfigError(f"{source}: ablation.method {ablated!r} is not defined under methods")
    return config


def ablation_methods(config: dict, dataset: str) -> list[str]:
    """Method names of supplement Table 2's runs on a dataset; the dataset's own d_t reuses
    the headline run of ``ablation.method`` instead of training it twice."""
    base, own = config["ablation"]["method"], config["datasets"][dataset]["d_t"]
    return [base if d_t == own else f"{base}_dt{d_t}" for d_t in config["ablation"]["d_t"].get(dataset, [])]


def load_config(*paths: str | Path, overrides: dict | None = None) -> dict:
    """Merge YAML files left to right (later keys win, recursively), then validate."""
    paths = paths or (DEFAULT_CONFIG,)
    merged: dict = {}
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        merged = deep_merge(merged, data)
    if overrides:
        merged = deep_merge(merged, overrides)
    return validate_config(merged, source=" + ".join(map(str, paths)))


def deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def base_method(config: dict, method: str, source: str = "config") -> tuple[str, int | None]:
    """(method block name, d_t override) for a method name, including ``<base>_dt<N>``."""
    if method in config["methods"]:
        return method, None
    match = ABLATION_PATTERN.match(method)
    if match and match["base"] in config["methods"]:
        return match["base"], int(match["d_t"])
    raise ConfigError(f"{source}: unknown method {method!r}; defined methods: {', '.join(sorted(config['methods']))} (or <method>_dt<N> for the d_t ablation)")


def run_settings(config: dict, dataset: str, method: str, seed: int) -> dict:
    """Everything one training run needs, flat and JSON-serialisable.

    Prior options that the prior class accepts but the method leaves unset are filled from
    the dataset (``d_t``) and the run (``seed``), so one method block serves every dataset.
    """
    from pipeline.priors import PRIORS

    if dataset not in config["datasets"]:
        raise ConfigError(f"unknown dataset {dataset!r}; defined datasets: {', '.join(sorted(config['datasets']))}")
    block_name, d_t_override = base_method(config, method)
    block = config["methods"][block_name]
    ds = config["datasets"][dataset]
    options = dict(block.get("options", {}))
    accepted = PRIORS[block["prior"]].run_options
    if "d_t" in accepted:
        options["d_t"] = d_t_override if d_t_override is not None else options.get("d_t", ds["d_t"])
    elif d_t_override is not None:
        raise ConfigError(f"method {method!r}: prior {block['prior']!r} has no d_t to vary")
    if "seed" in accepted:
        options.setdefault("seed", seed)
    training = config["training"]
    return {
        "dataset": dataset,
        "method": method,
        "seed": seed,
        "architecture": ds["architecture"],
        "d_z": ds["d_z"],
        "epochs": ds["epochs"],
        "batch_size": ds["batch_size"],
        "learning_rate": ds["learning_rate"],
        "train_limit": ds.get("train_limit"),
        "test_limit": ds.get("test_limit"),
        "prior": block["prior"],
        "prior_options": options,
        **{key: training[key] for key in sorted(training)},
    }

