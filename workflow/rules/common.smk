# Config validation, path patterns and input functions shared by every stage.
import json
import os
import sys

from snakemake.utils import validate

from pipeline.config import ConfigError, ablation_variants, data_options, evaluation_options, run_settings, validate_config


# The package validates first (same schema, plus the prior registry's names and options): its
# message names the key and what to do in a few lines, where Snakemake's own would print the
# whole schema. Snakemake's validate then passes and keeps the ecosystem's convention.
try:
    validate_config(config, source="config (config/quick.yaml merged with any --configfile/--config)")
except ConfigError as err:
    sys.exit(f"\nConfiguration error:\n{err}\n")
validate(config, schema="../schemas/config.schema.yaml")

# Rules run `python -m pipeline`: put the interpreter running Snakemake first on PATH, so its
# environment serves the jobs too (a --use-conda environment, activated per job, still wins).
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
DATASETS = config["run"]["datasets"]
METHODS = config["run"]["methods"]
SEEDS = config["run"]["seeds"]

# A run folder: the variant is "default" (headline) or changes one setting (d_t<N>, d_z<N>).
RUN = "results/runs/{dataset}/{method}/{variant}/seed{seed}"
MODEL, METRICS, FID, SAMPLES, ENCODINGS = (f"{RUN}/{name}" for name in ("model.pt", "metrics.json", "fid.json", "samples.h5", "encodings.h5"))
# Execution flags reach jobs through `threads` and `resources`, never `params`: params are rerun
# triggers, and a run's device or thread count must not retrain it (pipeline.config.EXECUTION_KEYS).
# Network jobs declare gpu=1 unless their device is 'cpu': local runs ignore it unless
# `--resources gpu=N` is given (then at most N such jobs run at once); the SLURM executor turns it
# into a GPU request.
TRAIN_DEVICE = config["training"]["device"]
FID_DEVICE = config["fid"]["device"]


def gpu_need(device):
    return 0 if device == "cpu" else 1


GPU_JOB = gpu_need(FID_DEVICE)  # FID jobs follow fid.device


wildcard_constraints:
    dataset=r"[a-z0-9_]+",
    method=r"[A-Za-z][A-Za-z0-9_]*",
    variant=r"default|d_[tz][1-9][0-9]*",
    seed=r"\d+",


def as_json(block):
    """A config block as one shell-safe JSON argument (rules pass it with :q)."""
    return json.dumps(block, sort_keys=True, separators=(",", ":"))


def train_settings(wildcards):
    """The run's identity (the train rule's only param: changing it retrains, nothing else does)."""
    return as_json(run_settings(config, wildcards.dataset, wildcards.method, int(wildcards.seed), wildcards.variant))


def train_threads(wildcards):
    return config["training"]["num_threads"] or 1


def dataset_data_options(wildcards):
    return as_json(data_options(config, wildcards.dataset))


def dataset_evaluation_options(wildcards):
    return as_json(evaluation_options(config, wildcards.dataset))


def runs(pattern, datasets=None, methods=None, variants=("default",)):
    return expand(pattern, dataset=DATASETS if datasets is None else datasets, method=methods or METHODS, variant=variants, seed=SEEDS)


def fid_weights():
    return config["fid"]["weights_path"] or config["fid"]["converted_path"]


# Table 1 is CelebA's FID table; supplement Table 1 holds the other datasets.
FID_TABLE_DATASETS = {
    "table1": [d for d in DATASETS if d == "celeba"],
    "table_sm1": [d for d in DATASETS if d != "celeba"],
    "table_sm2": [d for d in DATASETS if config["ablation"]["d_t"].get(d)],
}


def real_fids(datasets):
    return expand("results/fid/{dataset}/real_seed{seed}.json", dataset=datasets, seed=SEEDS)


def table_inputs(wildcards):
    """Per-run JSON files a table is built from."""
    table = wildcards.table
    if table in ("table2", "table3"):
        return runs(METRICS)
    datasets = FID_TABLE_DATASETS[table]
    if table == "table1":
        return runs(FID, datasets=datasets)
    if table == "table_sm1":
        return runs(FID, datasets=datasets) + real_fids(datasets)
    ablation = [f for d in datasets for f in runs(FID, datasets=[d], methods=[config["ablation"]["method"]], variants=ablation_variants(config, d))]
    return ablation + real_fids(datasets)


def all_tables():
    return ["table2", "table3"] + [t for t, datasets in FID_TABLE_DATASETS.items() if datasets]


def all_table_outputs():
    return expand("results/tables/{table}.{ext}", table=all_tables(), ext=["csv", "md", "tex"])


SAMPLE_GRID = "results/figures/samples/{dataset}_{method}_{variant}_seed{seed}"


def all_sample_grids():
    return runs(SAMPLE_GRID + ".png")


def all_encodings():
    return runs(ENCODINGS)
