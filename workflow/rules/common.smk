# Config validation, path patterns and input functions shared by every stage.
import json
import os
import sys

from snakemake.utils import validate

from pipeline.config import ablation_methods, run_settings, validate_config


# Defaults come from the schema; the package then cross-checks names (datasets, methods).
validate(config, schema="../schemas/config.schema.yaml")
validate_config(config, source="snakemake config")

# Rules run `python -m pipeline`: put the interpreter running Snakemake first on PATH, so its
# environment serves the jobs too (a --use-conda environment, activated per job, still wins).
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
DATASETS = config["run"]["datasets"]
METHODS = config["run"]["methods"]
SEEDS = config["run"]["seeds"]

RUN = "results/runs/{dataset}/{method}/seed{seed}"
MODEL, METRICS, FID, SAMPLES, ENCODINGS = (f"{RUN}/{name}" for name in ("model.pt", "metrics.json", "fid.json", "samples.h5", "encodings.h5"))
# GPU jobs declare gpu=1: local runs ignore it unless `--resources gpu=N` is given (then at most
# N such jobs run at once); the SLURM executor turns it into a GPU request.
GPU_JOB = 0 if config["training"]["device"] == "cpu" else 1


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
    return expand(pattern, dataset=DATASETS if datasets is None else datasets, method=methods or METHODS, seed=SEEDS)


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
    ablation = [f for d in datasets for f in runs(FID, datasets=[d], methods=ablation_methods(config, d))]
    return ablation + real_fids(datasets)


def all_tables():
    return ["table2", "table3"] + [t for t, datasets in FID_TABLE_DATASETS.items() if datasets]


def all_table_outputs():
    return expand("results/tables/{table}.{ext}", table=all_tables(), ext=["csv", "md", "tex"])


def all_sample_grids():
    return runs("results/figures/samples/{dataset}_{method}_seed{seed}.png")


def all_encodings():
    return runs(ENCODINGS)
