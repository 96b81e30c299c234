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

from pipeline.names import DEFAULT_VARIANT, VARIANT_HELP, parse_variant, variant_name
from pipeline.provenance import REPO_ROOT

SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
# The one full config (the paper's values); every other file in config/ is an overlay merged over it,
# as Snakemake merges --configfile over the Snakefile's embedded config.yaml.
DEFAULT_CONFIG = REPO_ROOT / "config" / "config.yaml"
# Settings that say how a run executes, never what it computes: not part of a run's identity, so
# a run interrupted under one set of them resumes under another.
EXECUTION_KEYS = ("device", "num_threads", "data_on_device")
# Settings added after runs existed: at these values they change nothing, so they stay out of a
# run's identity and older runs keep theirs (a new switch must not retrain finished work).
NEUTRAL_SETTINGS = {"mixed_precision": "none"}


class ConfigError(ValueError):
    pass


def load_schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def schema_defaults(block: str) -> dict:
    """The schema's default for every key of a top-level config block that has one (the code's
    defaults for that block come from here, so schema and code cannot disagree)."""
    properties = load_schema()["properties"][block]["properties"]
    return {key: copy.deepcopy(sub["default"]) for key, sub in properties.items() if "default" in sub}


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
    """Validate in place (filling defaults) and cross-check names; returns the config.

    Errors name the dotted key path and what to do; at most the first ten are listed.
    """
    errors = sorted(_Validator(load_schema()).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {'.'.join(map(str, e.absolute_path)) or '<top level>'}: {_short(e.message)}" for e in errors[:10]]
        raise ConfigError(f"{source}: invalid configuration\n" + "\n".join(lines) + "\nFix these keys (workflow/schemas/config.schema.yaml documents each one).")
    for dataset in config["run"]["datasets"]:
        if dataset not in config["datasets"]:
            raise ConfigError(f"{source}: run.datasets names {dataset!r} but datasets.{dataset} is not defined")
    for method in config["run"]["methods"]:
        if method not in config["methods"]:
            raise ConfigError(f"{source}: run.methods names {method!r} but methods.{method} is not defined; "
                              f"defined methods: {', '.join(sorted(config['methods']))}")
    for method, block in config["methods"].items():
        check_prior_options(method, block, source)
    _check_dataset_prior_options(config, source)
    check_devices(config, source)
    check_resolved_prior_options(config, source)
    check_fid_sizes(config, source)
    if config["sampling"]["n_samples"] < config["fid"]["n_samples"]:
        raise ConfigError(f"{source}: sampling.n_samples ({config['sampling']['n_samples']}) must be at least fid.n_samples "
                          f"({config['fid']['n_samples']}): FID uses the first fid.n_samples generated images")
    for key, rows in (("sampling.grid_rows", config["sampling"]["grid_rows"]), ("figures.samples_grid_rows", config["figures"]["samples_grid_rows"])):
        if rows * rows > config["sampling"]["n_samples"]:
            raise ConfigError(f"{source}: {key} is {rows} but a {rows} x {rows} grid needs {rows * rows} samples and sampling.n_samples is "
                              f"{config['sampling']['n_samples']}; lower {key} or raise sampling.n_samples")
    ablated = config["ablation"]["method"]
    if ablated not in config["methods"]:
        raise ConfigError(f"{source}: ablation.method {ablated!r} is not defined under methods")
    return config


def _short(message: str, limit: int = 200) -> str:
    """jsonschema repeats whole sub-documents in some messages; keep the start."""
    return message if len(message) <= limit else message[:limit] + " ..."


def check_prior_options(method: str, block: dict, source: str = "config") -> None:
    """The method's prior must be registered and each option named and valued as the prior's
    class declares (``option_specs``: type and range, checked here before any job builds it).

    The registry is the single list of priors: nothing else enumerates them.
    """
    from pipeline.priors import PRIORS, prior_option_names

    name = block["prior"]
    if name not in PRIORS:
        raise ConfigError(f"{source}: methods.{method}.prior is {name!r}, not a registered prior; "
                          f"registered priors: {', '.join(sorted(PRIORS))} (see README, 'Adding your own prior')")
    accepted = prior_option_names(PRIORS[name])
    options = block.get("options") or {}
    for key in options:
        if key not in accepted:
            raise ConfigError(f"{source}: methods.{method}.options.{key} is not an option of prior {name!r}; "
                              f"accepted options: {', '.join(sorted(accepted)) or '(none)'}")
    for key, value in options.items():
        check_option_value(PRIORS[name], key, value, f"methods.{method}.options.{key}", source)


def check_option_value(cls, key: str, value, where: str, source: str) -> None:
    """One prior option against its declaration in ``cls.option_specs``."""
    spec = cls.option_specs.get(key)
    if spec is None:  # a constructor option nobody declared: the prior's author must say what it accepts
        raise ConfigError(f"{source}: {where}: prior {cls.registry_name!r} ({cls.__module__}.{cls.__name__}) declares no "
                          f"Option for {key!r} in option_specs; add one there")
    if not spec.accepts(value):
        hint = ""
        if isinstance(value, str) and spec.kind != "str" and _looks_numeric(value):
            hint = f" (YAML reads {value} as text: write it with a decimal point, e.g. 1.0e-6)"
        raise ConfigError(f"{source}: {where} is {value!r}; prior {cls.registry_name!r} accepts {spec.describe()}{hint}")


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_dataset_prior_options(config: dict, source: str) -> None:
    """datasets.<d>.prior_options: each key an option of some prior, each value one that every
    prior it reaches (those of the config's methods declaring the key) accepts."""
    from pipeline.priors import PRIORS, prior_option_names

    known = set().union(*(prior_option_names(cls) for cls in PRIORS.values()))
    used = [PRIORS[block["prior"]] for block in config["methods"].values()]
    for dataset, block in config["datasets"].items():
        for key, value in (block.get("prior_options") or {}).items():
            if key not in known:
                raise ConfigError(f"{source}: datasets.{dataset}.prior_options.{key} is not an option of any registered prior; "
                                  f"known options: {', '.join(sorted(known))}")
            reached = [cls for cls in used if key in prior_option_names(cls)]
            for cls in reached or [cls for cls in PRIORS.values() if key in prior_option_names(cls)][:1]:
                check_option_value(cls, key, value, f"datasets.{dataset}.prior_options.{key}", source)


def check_resolved_prior_options(config: dict, source: str) -> None:
    """The relations a prior declares between its options (``option_relations``), on the options
    every run resolves: the method's, the dataset's prior_options and d_t, the class defaults."""
    from pipeline.priors import PRIORS, prior_option_defaults

    for dataset in config["run"]["datasets"]:
        for method, block in config["methods"].items():
            cls = PRIORS[block["prior"]]
            if not cls.option_relations:
                continue
            variants = [DEFAULT_VARIANT] + (ablation_variants(config, dataset) if method == config["ablation"]["method"] else [])
            for variant in dict.fromkeys(variants):
                options = {**prior_option_defaults(cls), **run_settings(config, dataset, method, 0, variant)["prior_options"]}
                for rule in cls.option_relations:
                    if not rule.holds(options):
                        values = ", ".join(f"{_option_origin(config, dataset, method, variant, key)} = {options[key]!r}"
                                           for key in (rule.left, rule.right))
                        raise ConfigError(f"{source}: prior {block['prior']!r} of method {method} on dataset {dataset}"
                                          f"{'' if variant == DEFAULT_VARIANT else f' (variant {variant})'} needs "
                                          f"{rule.describe()}; got {values}")


def _option_origin(config: dict, dataset: str, method: str, variant: str, key: str) -> str:
    """Where a resolved prior option came from, as a key path to change."""
    if key in (config["methods"][method].get("options") or {}):
        return f"methods.{method}.options.{key}"
    if key == "d_t":
        return f"d_t of variant {variant}" if variant != DEFAULT_VARIANT else f"datasets.{dataset}.d_t"
    if key in (config["datasets"][dataset].get("prior_options") or {}):
        return f"datasets.{dataset}.prior_options.{key}"
    if key == "std_activation":
        return "training.std_activation"
    return f"{key} (the prior's default; set methods.{method}.options.{key})"


# Execution devices a job accepts (pipeline.devices.resolve_device): auto picks CUDA when present.
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:[0-9]+)?)$")


def check_devices(config: dict, source: str) -> None:
    for where, value in (("training.device", config["training"]["device"]), ("fid.device", config["fid"]["device"])):
        if not DEVICE_PATTERN.match(value):
            raise ConfigError(f"{source}: {where} is {value!r}; accepted: auto (CUDA when present, else CPU), cpu, cuda, "
                              "cuda:N (GPU number N), mps")


def check_fid_sizes(config: dict, source: str) -> None:
    """The FID jobs' own size checks (pipeline.fid: KID subsets, the reference and the real-image
    pool), run on the config against each dataset's split sizes where they are known before data
    preparation, so that a bad count stops the run before any job starts."""
    from pipeline.data import expected_split_sizes
    from pipeline.fid.metric import check_kid_sizes
    from pipeline.fid.scores import check_comparison_pool, check_reference_count

    fid = config["fid"]
    try:
        check_kid_sizes(fid["n_samples"], fid["n_reference"], fid["kid_subset_size"])
        for dataset in config["run"]["datasets"]:
            sizes = expected_split_sizes(dataset, config["data"])
            if sizes["test"] is not None:
                check_reference_count(sizes["test"], fid["n_reference"], dataset)
            if sizes[fid["real_split"]] is not None:
                check_comparison_pool(fid["real_split"], sizes[fid["real_split"]], fid["n_samples"], fid["n_reference"], dataset)
    except ValueError as error:
        raise ConfigError(f"{source}: {error}") from None


def variant_overrides(variant: str) -> dict:
    """What a variant changes: {} for "default", {"d_t": N} or {"d_z": N}."""
    change = parse_variant(variant)
    if change is None:
        raise ConfigError(f"unknown run variant {variant!r}: use {VARIANT_HELP}")
    return change


def ablation_variants(config: dict, dataset: str) -> list[str]:
    """Variants of ``ablation.method`` behind supplement Table 2 on a dataset; the dataset's own
    d_t is the headline run (variant "default"), not trained twice."""
    own = config["datasets"][dataset]["d_t"]
    return [DEFAULT_VARIANT if d_t == own else variant_name("d_t", d_t) for d_t in config["ablation"]["d_t"].get(dataset, [])]


def load_config(*paths: str | Path, overrides: dict | None = None) -> dict:
    """config/config.yaml, then each overlay in ``paths`` merged over it left to right (later keys
    win, recursively), then ``overrides``; validated. Snakemake does the same with --configfile."""
    paths = _with_base(paths)
    merged = merged_config(*paths)
    if overrides:
        merged = deep_merge(merged, overrides)
    return validate_config(merged, source=" + ".join(map(str, paths)))


def _with_base(paths) -> tuple[Path, ...]:
    paths = tuple(Path(p) for p in paths)
    if not paths or paths[0].resolve() != DEFAULT_CONFIG.resolve():
        paths = (DEFAULT_CONFIG, *paths)
    return paths


def merged_config(*paths: str | Path) -> dict:
    """The YAML files merged left to right, not validated (give config/config.yaml first)."""
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
    return merged


def deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def run_settings(config: dict, dataset: str, method: str, seed: int, variant: str = DEFAULT_VARIANT) -> dict:
    """A run's identity: every scientific setting its model depends on, flat and JSON-serialisable.

    Data (dataset, training subset), architecture, prior and its options, optimisation, epochs,
    seed. Execution flags (``EXECUTION_KEYS``: device, threads) are not part of it. Test-set settings are not either: only evaluation reads them.
    Prior options that the prior class accepts but the method leaves unset are filled from the
    dataset (``d_t``) and the run (``seed``), so one method block serves every dataset.
    """
    from pipeline.priors import PRIORS, prior_option_names

    if dataset not in config["datasets"]:
        raise ConfigError(f"unknown dataset {dataset!r}; defined datasets: {', '.join(sorted(config['datasets']))}")
    if method not in config["methods"]:
        raise ConfigError(f"unknown method {method!r}; defined methods: {', '.join(sorted(config['methods']))}")
    block = config["methods"][method]
    ds = config["datasets"][dataset]
    overrides = variant_overrides(variant)
    options = dict(block.get("options", {}))
    accepted = PRIORS[block["prior"]].run_options
    if "d_t" in accepted:
        options["d_t"] = overrides.get("d_t", options.get("d_t", ds["d_t"]))
    elif "d_t" in overrides:
        raise ConfigError(f"variant {variant!r} of method {method!r}: prior {block['prior']!r} has no d_t to vary")
    if "seed" in accepted:
        options.setdefault("seed", seed)
    option_names = prior_option_names(PRIORS[block["prior"]])
    if "std_activation" in option_names:  # one std-head activation for q(z|x) and q(t|z) unless a method says otherwise
        options.setdefault("std_activation", config["training"]["std_activation"])
    for key, value in (ds.get("prior_options") or {}).items():
        if key in option_names:
            options.setdefault(key, value)
    training = config["training"]
    return {
        "dataset": dataset,
        "method": method,
        "variant": variant,
        "seed": seed,
        "architecture": ds["architecture"],
        "d_z": overrides.get("d_z", ds["d_z"]),
        "epochs": ds["epochs"],
        "batch_size": ds["batch_size"],
        "learning_rate": ds["learning_rate"],
        "train_limit": ds.get("train_limit"),
        "prior": block["prior"],
        "prior_options": options,
        **{key: training[key] for key in sorted(training) if key not in EXECUTION_KEYS and NEUTRAL_SETTINGS.get(key, ()) != training[key]},
    }


def identity(settings: dict) -> dict:
    """The scientific part of a settings dict: without execution flags (a --settings JSON given by
    hand may carry them) and switches at their neutral value (NEUTRAL_SETTINGS)."""
    return {key: value for key, value in settings.items() if key not in EXECUTION_KEYS and NEUTRAL_SETTINGS.get(key, ()) != value}


def data_options(config: dict, dataset: str) -> dict:
    """The data keys a processed dataset depends on (the rule's params): nothing of the others'."""
    data = config["data"]
    keys = {"mnist": ("raw_dir",), "fashion_mnist": ("raw_dir", "fashion_mnist_system_dirs"),
            "mnist5k": ("split_seed", "mnist5k_test_size"), "celeba": ("raw_dir", "split_seed", "celeba")}[dataset]
    return {key: data[key] for key in keys}


def evaluation_options(config: dict, dataset: str) -> dict:
    """What a metrics file depends on beyond the model: the evaluation block and the test subset."""
    return {**config["evaluation"], "test_limit": config["datasets"][dataset].get("test_limit")}


# Training images per second on the project's 2-core CPU with the normal prior at batch 256
# (docs/measurements.md: ~52 s per 60,000-image epoch); the CelebA network costs ~470x the FLOPs per
# image (44 GFLOP against 0.093). Other priors are slower: the estimate is a lower bound.
CPU_IMAGES_PER_SECOND = {"mnist": 1150.0, "mnist_code": 1150.0, "celeba": 1150.0 * 0.093 / 44}


def cpu_training_hours(config: dict) -> float:
    """A lower bound on the CPU-hours the headline and ablation runs need to train."""
    from pipeline.memory import train_images  # the one home of a run's training-set size

    seconds = 0.0
    for dataset in config["run"]["datasets"]:
        ds = config["datasets"][dataset]
        n_runs = len(config["run"]["methods"]) + max(0, len(ablation_variants(config, dataset)) - 1)
        images = n_runs * len(config["run"]["seeds"]) * ds["epochs"] * train_images(config, dataset)
        seconds += images / CPU_IMAGES_PER_SECOND.get(ds["architecture"], CPU_IMAGES_PER_SECOND["mnist"])
    return seconds / 3600
