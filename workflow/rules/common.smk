# Config validation, path patterns and input functions shared by every stage.
import json
import os
import sys

from snakemake.utils import validate

from pipeline.names import VARIANT_REGEX
from pipeline.config import ConfigError, ablation_variants, cpu_training_hours, data_options, evaluation_options, run_settings, validate_config
from pipeline.memory import NETWORK_RULES, DoesNotFit, check_fits, data_on_device, job_memory, machine_budget

# The package validates first (same schema, plus the prior registry's names and options): its
# message names the key and what to do in a few lines, where Snakemake's own would print the
# whole schema. Snakemake's validate then passes and keeps the ecosystem's convention.
try:
    validate_config(config, source="config (" + " + ".join(map(str, workflow.configfiles)) + ", and any --config)")
except ConfigError as err:
    sys.exit(f"\nConfiguration error:\n{err}\n")
validate(config, schema="../schemas/config.schema.yaml")


def _warn_cpu_cost():
    """Say in one line, before anything runs, what a large config costs on a machine without a GPU."""
    import torch

    if config["training"]["device"] not in ("auto",) or torch.cuda.is_available():
        return
    hours = cpu_training_hours(config)
    if hours > 2:
        print(
            f"No CUDA GPU here: training this config takes at least ~{hours:,.0f} CPU-hours on a 2-core CPU "
            "(add --configfile config/quick.yaml for the ~15-minute quick profile).",
            file=sys.stderr,
        )


def _warn_missing_raw_data():
    """Name each dataset whose raw data is missing, with what to do (the text its prepare_dataset
    job would stop with), before the DAG is planned: a dry run tells the truth, the rest still runs."""
    from pipeline.data import raw_data_report, raw_data_warning

    warning = raw_data_warning(raw_data_report(config))
    if warning:
        print(f"\n{warning}\n", file=sys.stderr)


if workflow.is_main_process:  # not again in each cluster job's own Snakemake
    _warn_cpu_cost()
    _warn_missing_raw_data()

# Rules run `python -m pipeline`: put the interpreter running Snakemake first on PATH, so its
# environment serves the jobs too (a --use-conda environment, activated per job, still wins).
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
DATASETS = config["run"]["datasets"]
METHODS = config["run"]["methods"]
SEEDS = config["run"]["seeds"]

# A run folder: the variant is "default" (headline) or changes one setting (pipeline/names.py).
RUN = "results/runs/{dataset}/{method}/{variant}/seed{seed}"
MODEL, METRICS, FID, SAMPLES, ENCODINGS = (f"{RUN}/{name}" for name in ("model.pt", "metrics.json", "fid.json", "samples.h5", "encodings.h5"))
# Execution flags reach jobs through `threads` and `resources`, never `params`: params are rerun
# triggers, and a run's device or thread count must not retrain it (pipeline.config.EXECUTION_KEYS).
# Network jobs declare gpu=1 unless their device is 'cpu': local runs ignore it unless
# `--resources gpu=N` is given (then at most N such jobs run at once, each on a GPU of its own:
# pipeline/devices.py); the SLURM executor turns it into a GPU request (profiles/slurm bounds a
# group job's request to one GPU).
TRAIN_DEVICE = config["training"]["device"]
FID_DEVICE = config["fid"]["device"]


def gpu_need(device):
    return 0 if device == "cpu" else 1


GPU_JOB = gpu_need(FID_DEVICE)  # FID jobs follow fid.device

# Memory (issue 24): every network rule declares mem_mb (host) and gpu_mem_mb (one GPU's share), both
# from pipeline.memory.job_memory. Locally the machine's budgets are registered unless the command
# line gives them (--resources mem_mb=... gpu_mem_mb=...): host memory less a reserve and the
# datasets' shared pages, and the GPUs' memory summed; Snakemake then starts only jobs that fit.
# No GPU here (device auto on a CPU machine): jobs run on the CPU and declare no GPU memory.
# A job that cannot fit at all stops the workflow here, naming what it needs and what there is.
LOCAL_BUDGET = machine_budget(config) if workflow.local_exec else None


def _runs_on_cpu(rule):
    device = FID_DEVICE if rule.startswith("fid") else TRAIN_DEVICE
    return device == "cpu" or (LOCAL_BUDGET is not None and device == "auto" and not LOCAL_BUDGET.gpus)


def job_need(rule, dataset):
    """{"mem_mb", "gpu_mem_mb"} of one job of a network rule on a dataset (pipeline.memory)."""
    on_device = data_on_device(config, dataset, LOCAL_BUDGET.gpu_mb if LOCAL_BUDGET and LOCAL_BUDGET.gpus else None)
    return job_memory(rule, config, dataset, data_on_device=on_device, device="cpu" if _runs_on_cpu(rule) else "auto")


def declared_mem_mb(rule):
    def resource(wildcards):
        return job_need(rule, wildcards.dataset)["mem_mb"]

    return resource


def declared_gpu_mem_mb(rule):
    def resource(wildcards):
        return job_need(rule, wildcards.dataset)["gpu_mem_mb"]

    return resource


def train_data_on_device(wildcards):
    """training.data_on_device resolved (auto: from one GPU's memory, pipeline.memory.data_on_device)."""
    return int(data_on_device(config, wildcards.dataset, LOCAL_BUDGET.gpu_mb if LOCAL_BUDGET and LOCAL_BUDGET.gpus else None))


def _plans_only():
    """A dry run or lint (only planned, nothing runs): Snakemake's own flag is not set yet at parse time."""
    flags = [a for a in sys.argv[1:] if a.startswith("-")]
    return workflow.dryrun or any(a in ("--dry-run", "--dryrun", "--lint") or (not a.startswith("--") and "n" in a) for a in flags)


if LOCAL_BUDGET is not None and workflow.is_main_process:
    try:
        check_fits({f"{rule} ({dataset})": job_need(rule, dataset) for rule in NETWORK_RULES for dataset in DATASETS}, LOCAL_BUDGET)
    except DoesNotFit as err:
        if not _plans_only():
            sys.exit(f"\nThese jobs cannot run on this machine:\n{err}\n")
        print(f"\nThese jobs could not run on this machine (a dry run plans them anyway):\n{err}\n", file=sys.stderr)
    for name, value in (("mem_mb", LOCAL_BUDGET.mem_mb), ("gpu_mem_mb", LOCAL_BUDGET.gpu_mem_mb)):
        if name not in workflow.global_resources:
            workflow.register_resource(name, value)


wildcard_constraints:
    dataset=r"[a-z0-9_]+",
    method=r"[A-Za-z][A-Za-z0-9_]*",
    variant=VARIANT_REGEX,  # default | d_t<N> | d_z<N> (pipeline/names.py)
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
    if table in ("table2", "table3", "table_priors"):
        return runs(METRICS)
    datasets = FID_TABLE_DATASETS[table]
    if table == "table1":
        return runs(FID, datasets=datasets)
    if table == "table_sm1":
        return runs(FID, datasets=datasets) + real_fids(datasets)
    ablation = [f for d in datasets for f in runs(FID, datasets=[d], methods=[config["ablation"]["method"]], variants=ablation_variants(config, d))]
    return ablation + real_fids(datasets)


def all_tables():
    return ["table2", "table3", "table_priors"] + [t for t, datasets in FID_TABLE_DATASETS.items() if datasets]


def all_table_outputs():
    return expand("results/tables/{table}.{ext}", table=all_tables(), ext=["csv", "md", "tex", "html"])


SAMPLE_GRID = "results/figures/samples/{dataset}_{method}_{variant}_seed{seed}"


def all_sample_grids():
    return runs(f"{SAMPLE_GRID}.png")


def all_encodings():
    return runs(ENCODINGS)


# The figure tables the claims C7 (shortest likely path) and C8 (Figure 4's component alignment) read.
CLAIMS_SLP_TABLE = "results/figures/tables/slp_{dataset}.csv"
CLAIMS_ALIGNMENT_TABLE = "results/figures/tables/fig4_{dataset}.csv"


def claims_fids():
    """Headline FID files plus supplement Table 2's d_t variants (the default variant once)."""
    ablation = [
        f
        for d in DATASETS
        if config["ablation"]["d_t"].get(d)
        for f in runs(FID, datasets=[d], methods=[config["ablation"]["method"]], variants=ablation_variants(config, d))
    ]
    return list(dict.fromkeys(runs(FID) + ablation))


def claims_figure_tables(pattern):
    """The figure table per dataset, only where claims.figure_tables is on and some rule makes the
    file; otherwise none, and C7/C8 read "not run". Evaluated when the DAG is built, after every
    rule file is read, so the include order does not matter."""

    def inputs(wildcards):
        if not config["claims"]["figure_tables"]:
            return []
        figure_datasets = config.get("figures", {}).get("datasets", DATASETS)
        paths = expand(pattern, dataset=[d for d in DATASETS if d in figure_datasets])
        return [p for p in paths if any(r.is_producer(p) for r in workflow.rules)]

    return inputs


# ---- from fid.smk: functions and constants its rules use (Snakemake lint: no functions in rule files) ----
def fid_options(keys):
    return as_json({key: config["fid"][key] for key in keys})


FID_REFERENCE_KEYS = ("n_reference",)
FID_SCORE_KEYS = ("n_samples", "n_reference", "real_split", "kid_subset_size", "kid_subsets")


def fid_threads(wildcards):
    return config["fid"]["num_threads"] or 1


# ---- from figures.smk: functions and constants its rules use (Snakemake lint: no functions in rule files) ----
FIGURES = config["figures"]
FIG_DATASETS = FIGURES["datasets"]
FIG_SEEDS = FIGURES["seeds"]
FIG_SEED = FIG_SEEDS[0]  # Figures 2, 3 and the sample figures draw one seed; Figure 4's table uses all
FIG2_MODEL, FIG2_ENCODINGS = expand([MODEL, ENCODINGS], method="normal", variant="d_z2", allow_missing=True)


def fig2_methods(wildcards):
    """The method blocks of the priors Figure 2 fits post hoc, as JSON, with their options resolved
    for the dataset as a run's are (dataset prior_options such as LaDDer's warm-up, std heads)."""
    blocks = {}
    for m in FIGURES["fig2_methods"]:
        options = run_settings(config, wildcards.dataset, m, int(wildcards.seed))["prior_options"]
        blocks[m] = {"prior": config["methods"][m]["prior"], "options": options}
    return as_json(blocks)


def fig3_runs(pattern):
    """One run per figures.methods entry (default variant, first figure seed) for the dataset wildcard."""

    def inputs(wildcards):
        return expand(pattern, dataset=wildcards.dataset, method=FIGURES["methods"], variant="default", seed=FIG_SEED)

    return inputs


def fig4_runs(pattern):
    """Every (method, variant) of figures.fig4_runs and every figure seed, in a fixed order."""

    def inputs(wildcards):
        return [pattern.format(dataset=wildcards.dataset, method=m, variant=v, seed=s) for m, v in FIGURES["fig4_runs"].items() for s in FIG_SEEDS]

    return inputs


def sample_runs(wildcards):
    return expand(SAMPLES, dataset=FIG_DATASETS, method=wildcards.method, variant="default", seed=FIG_SEED)


SLP_RUN_TABLE = "results/interpolation/{dataset}/{method}/{variant}/seed{seed}.csv"
# CelebA when it is run; else Fashion-MNIST (titled as such), else the first dataset
FIG6_DATASET = next((d for d in ("celeba", "fashion_mnist") if d in DATASETS), DATASETS[0])


def interpolation_models(variants):
    """Models of Figures 5/6 for the dataset wildcard, first figure seed, as method=path pairs."""

    def inputs(wildcards):
        return {m: MODEL.format(dataset=wildcards.dataset, method=m, variant=v, seed=FIG_SEED) for m, v in variants.items()}

    return inputs


def slp_run_tables(wildcards):
    return runs(SLP_RUN_TABLE, datasets=[wildcards.dataset])


def fig5_outputs():
    return expand("results/figures/fig5/{dataset}.{ext}", dataset=FIG_DATASETS, ext=["png", "pdf"]) + expand(CLAIMS_SLP_TABLE, dataset=FIG_DATASETS)


def fig6_outputs():
    return expand("results/figures/fig6/{dataset}.{ext}", dataset=FIG6_DATASET, ext=["png", "pdf"])


# ---- end of Figures 5 and 6 ----


def fig2_outputs():
    return expand("results/figures/fig2/{dataset}_seed{seed}.{ext}", dataset=FIG_DATASETS, seed=FIG_SEED, ext=["png", "pdf"])


def fig3_outputs():
    return expand("results/figures/fig3/{dataset}.{ext}", dataset=FIG_DATASETS, ext=["png", "pdf"])


def fig4_outputs():
    return expand("results/figures/fig4/{dataset}.{ext}", dataset=FIG_DATASETS, ext=["png", "pdf"])


def fig_samples_outputs():
    return expand("results/figures/supplement/samples_{method}.{ext}", method=FIGURES["methods"], ext=["png", "pdf"])


def all_figure_outputs():
    return fig2_outputs() + fig3_outputs() + fig4_outputs() + fig5_outputs() + fig6_outputs() + fig_samples_outputs()
