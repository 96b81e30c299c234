# Config validation, path patterns and input functions shared by every stage.
import json
import sys

from snakemake.utils import validate

from pipeline.config import run_settings, validate_config


# Defaults come from the schema; the package then cross-checks names (datasets, methods).
validate(config, schema="../schemas/config.schema.yaml")
validate_config(config, source="snakemake config")

# The interpreter running Snakemake runs the rules too, so one environment serves both.
PYTHON = sys.executable
DATASETS = config["run"]["datasets"]
METHODS = config["run"]["methods"]
SEEDS = config["run"]["seeds"]

RUN = "results/runs/{dataset}/{method}/seed{seed}"


wildcard_constraints:
    dataset=r"[a-z0-9_]+",
    method=r"[A-Za-z0-9_]+",
    seed=r"\d+",


def as_json(block):
    """A config block as one shell-safe JSON argument (rules pass it with :q)."""
    return json.dumps(block, sort_keys=True, separators=(",", ":"))


def train_settings(wildcards):
    return as_json(run_settings(config, wildcards.dataset, wildcards.method, int(wildcards.seed)))


def train_threads(wildcards):
    return config["training"]["num_threads"] or 1


def runs(pattern, datasets=None, methods=None):
    return expand(pattern, dataset=datasets or DATASETS, method=methods or METHODS, seed=SEEDS)


def all_table_outputs():
    return expand("results/tables/{table}.{ext}", table=["table2", "table3"], ext=["csv", "md", "tex"])


def all_sample_grids():
    return runs("results/figures/samples/{dataset}_{method}_seed{seed}.png")


def all_encodings():
    return runs(RUN + "/encodings.h5")
