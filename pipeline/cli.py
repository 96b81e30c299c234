"""Command line: ``python -m pipeline <command> ...`` — what every Snakemake rule calls.

Each command checks its options, makes one library call and writes its outputs atomically
with provenance. Options a rule resolves from config arrive as JSON (``--settings``,
``--options``); by hand, ``--config FILE ... --dataset D --method M --seed S`` resolves the
same settings from config files.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pipeline.commands import add_command, json_arg

log = logging.getLogger("pipeline")


def _settings(args) -> dict:
    from pipeline.config import load_config, run_settings

    if args.settings is not None:
        return json_arg(args.settings)
    if not (args.dataset and args.method and args.seed is not None):
        raise SystemExit("give --settings JSON, or --dataset, --method and --seed (with --config files)")
    return run_settings(load_config(*args.config), args.dataset, args.method, args.seed, args.variant)


def _config_block(args, block: str) -> dict:
    from pipeline.config import load_config

    if args.options is not None:
        return json_arg(args.options)
    return load_config(*args.config)[block]


def _device(name: str = "auto") -> "torch.device":
    from pipeline.devices import resolve_device

    return resolve_device(name)


class ModelJob:
    """The sequence every command on a trained model shares: device -> load -> provenance."""

    def __init__(self, model_path: str, device: str, options: dict | None = None, block: str | None = None):
        from pipeline.artefacts import load_model

        self.device = _device(device)
        self.vae, self.settings = load_model(model_path, self.device)
        self.model_path, self.options, self.block = str(model_path), options, block

    def record(self, **extra) -> dict:
        from pipeline.provenance import provenance

        config = {"run": self.settings} if self.block is None else {self.block: self.options, "run": self.settings}
        return provenance(config=config, seed=self.settings["seed"], device=self.device, model=self.model_path, **extra)


# -- commands ----------------------------------------------------------------------------
def cmd_prepare_data(args) -> None:
    from pipeline.data import prepare_dataset

    options = _config_block(args, "data")
    if args.allow_download:
        options["allow_download"] = True
    prepare_dataset(args.dataset, options, args.out)


def cmd_train(args) -> None:
    from pipeline.training import train

    train(_settings(args), args.data, args.out, run_dir=args.run_dir, progress=not args.no_progress, device=args.device, num_threads=args.threads,
          data_on_device=bool(args.data_on_device))


def cmd_encode(args) -> None:
    from pipeline.artefacts import load_split, write_encodings
    from pipeline.evaluation import encode_images

    job = ModelJob(args.model, args.device)
    splits = {}
    for split in ("train", "test"):
        images, labels = load_split(args.data, split)
        mean, std = encode_images(job.vae, images, device=job.device)
        splits[split] = {"mean": mean, "std": std, "labels": labels}
    write_encodings(args.out, splits, job.record())


def cmd_evaluate(args) -> None:
    import torch

    from pipeline.artefacts import load_split, write_run_json
    from pipeline.evaluation import evaluate, log_likelihood_metrics

    options = _config_block(args, "evaluation")
    job = ModelJob(args.model, args.device, options, "evaluation")
    images, _ = load_split(args.data, "test", limit=options.get("test_limit"))
    metrics = evaluate(job.vae, images, options["mc_samples"], options["is_samples"], options["batch_size"], job.device,
                       seed=job.settings["seed"], progress=not args.no_progress)
    if options.get("loglik_samples"):
        subset = images
        if options.get("loglik_test_limit") and options["loglik_test_limit"] < len(images):
            # a seeded random subset: the first N test images can be one class (mnist5k's split is sorted)
            pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(job.settings["seed"]))[: options["loglik_test_limit"]]
            subset = images[pick.sort().values]
        metrics.update(log_likelihood_metrics(job.vae, subset, options["loglik_samples"], job.settings["seed"], job.device,
                                              refine_steps=options["loglik_refine_steps"], architecture=job.settings["architecture"]))
    write_run_json(args.out, job.settings, metrics, job.record())


def cmd_sample(args) -> None:
    from pipeline.artefacts import write_samples
    from pipeline.evaluation import TRUNCATED_FRACTION, generate, is_truncated

    options = _config_block(args, "sampling")
    job = ModelJob(args.model, args.device, options, "sampling")
    z, images, replaced = generate(job.vae, options["n_samples"], seed=job.settings["seed"], batch_size=args.batch_size, device=job.device)
    if replaced:
        log.warning("%s: %d of %d prior draws were non-finite and were replaced by further draws (evaluation.sample_latents)%s",
                    args.model, replaced, options["n_samples"],
                    f"; TRUNCATED: more than {TRUNCATED_FRACTION:.0%} of the prior's mass is missing from these images, the tables name this run"
                    if is_truncated(replaced, options["n_samples"]) else "")
    write_samples(args.out, images, z, job.record(nonfinite_draws_replaced=replaced))


def cmd_sample_grid(args) -> None:
    from pipeline.artefacts import read_record, read_samples
    from pipeline.figures import save_sample_grid

    images, _ = read_samples(args.samples, args.rows * args.rows)
    run = read_record(args.samples)["config"]["run"]
    title = f"{run['method']} prior, {run['dataset']}, seed {run['seed']}" + ("" if run.get("variant", "default") == "default" else f", {run['variant']}")
    save_sample_grid(images, args.rows, title, [Path(p) for p in args.out])


def cmd_check_config(args) -> None:
    """Load, merge and validate config files as Snakemake would (config.yaml first), naming the
    file of a YAML error with its line and column: Snakemake reads --configfile before any code of
    ours runs, and its own message for broken YAML names no file. Then, per dataset, whether its
    data is there (relative paths from the current folder, as the workflow's) and, where not, what
    to do: missing data is reported, not an error (the other datasets still run)."""
    from pipeline.config import DEFAULT_CONFIG, load_config
    from pipeline.data import PROCESSED_PATH, raw_data_report, raw_data_warning

    config = load_config(*args.files)
    print(f"ok: {' + '.join(map(str, [DEFAULT_CONFIG, *args.files]))}: {len(config['run']['datasets'])} dataset(s), "
          f"{len(config['run']['methods'])} method(s), {len(config['run']['seeds'])} seed(s)")
    report = raw_data_report(config)
    for name, problem in report.items():
        if not problem:
            found = "processed" if Path(PROCESSED_PATH.format(dataset=name)).is_file() else "raw data found"
            print(f"data {name}: {found}")
    warning = raw_data_warning(report)
    if warning:
        print(warning)


def cmd_memory_budget(args) -> None:
    """This machine's budgets as Snakemake's --resources, and per network rule and dataset what one
    job declares and how many fit at once (pipeline.memory; LADDER_HOST_MEM_MB, LADDER_GPU_MEM_MB
    and LADDER_GPU_COUNT describe another machine)."""
    from pipeline.config import load_config
    from pipeline.memory import NETWORK_RULES, data_on_device, job_memory, machine_budget

    config = load_config(*args.files)
    budget = machine_budget(config)
    print(f"--resources {budget.resources()}")
    print(f"# host {budget.mem_mb:,} MB for jobs; {budget.gpus} GPU(s) of {budget.gpu_mb:,} MB")
    print("rule | dataset | mem_mb | gpu_mem_mb | at once")
    for dataset in config["run"]["datasets"]:
        on_device = data_on_device(config, dataset, budget.gpu_mb or None)
        for rule in NETWORK_RULES:
            need = job_memory(rule, config, dataset, data_on_device=on_device, device=None if budget.gpus else "cpu")
            limits = [budget.mem_mb // need["mem_mb"]] + ([budget.gpus * (budget.gpu_mb // need["gpu_mem_mb"])] if need["gpu_mem_mb"] else [])
            print(f"{rule} | {dataset} | {need['mem_mb']:,} | {need['gpu_mem_mb']:,} | {min(limits)}")


def cmd_concat_tables(args) -> None:
    """Stack per-run CSV tables (same columns) into one, with provenance naming the inputs."""
    import pandas as pd

    from pipeline.provenance import atomic_path, provenance, write_json

    frame = pd.concat([pd.read_csv(p) for p in args.inputs], ignore_index=True)
    with atomic_path(args.out) as tmp:
        frame.to_csv(tmp, index=False)
    write_json(f"{args.out}.provenance.json", {"inputs": list(args.inputs)}, provenance())


def cmd_table(args) -> None:
    from pipeline.tables import build_table

    summary = build_table(args.name, [Path(p) for p in args.inputs], Path(args.out_prefix))
    if args.html:
        from pipeline.report import write_table_html

        write_table_html(args.name, summary, Path(args.html))


def cmd_claims_html(args) -> None:
    from pipeline.report import write_claims_html

    write_claims_html(Path(args.claims), Path(args.out))


def build_parser(extensions: bool = True) -> argparse.ArgumentParser:
    """The CLI's parser. ``extensions=False`` leaves out the commands other modules register
    (FID, claims, figures): their modules import scipy, pandas and matplotlib at the top, a second
    of start-up every job would pay (``main`` loads them only for their own commands)."""
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name, func, help_text):
        return add_command(sub, name, func, help_text)

    p = command("prepare-data", cmd_prepare_data, "raw files -> data/processed/{dataset}.h5")
    p.add_argument("--dataset", required=True)
    p.add_argument("--options", help="the dataset's data options as JSON")
    p.add_argument("--allow-download", action="store_true", help="let torchvision download MNIST / Fashion-MNIST if no local copy exists")
    p.add_argument("--out", required=True)

    p = command("train", cmd_train, "train (or resume) one VAE")
    p.add_argument("--settings", help="resolved run settings as JSON (what the train rule passes)")
    p.add_argument("--dataset")
    p.add_argument("--method")
    p.add_argument("--seed", type=int)
    p.add_argument("--variant", default="default", help="default, d_t<N> or d_z<N>")
    p.add_argument("--data", required=True, help="processed dataset HDF5")
    p.add_argument("--out", required=True, help="model file; the run folder is its parent")
    p.add_argument("--run-dir", help="folder for checkpoint and stats (default: the model's folder)")
    p.add_argument("--device", default="auto", help="execution flag: auto, cpu or cuda[:N] (not part of the run's identity)")
    p.add_argument("--threads", type=int, default=0, help="execution flag: torch CPU threads (0 = 1)")
    p.add_argument("--data-on-device", type=int, choices=[0, 1], default=1,
                   help="execution flag: 1 keeps the uint8 training set in device memory, 0 moves each minibatch there")
    p.add_argument("--no-progress", action="store_true")

    for name, func, help_text in (("encode", cmd_encode, "posterior means and stds of train and test -> HDF5"),
                                  ("evaluate", cmd_evaluate, "test ELBO, reconstruction error, cross-entropy -> JSON"),
                                  ("sample", cmd_sample, "samples from the prior -> HDF5 and a grid figure")):
        p = command(name, func, help_text)
        p.add_argument("--model", required=True)
        p.add_argument("--out", required=True)
        p.add_argument("--device", default="auto")
        if name != "sample":
            p.add_argument("--data", required=True)
        if name != "encode":
            p.add_argument("--options", help="the config's evaluation/sampling block as JSON")
        if name == "evaluate":
            p.add_argument("--no-progress", action="store_true")

    sub.choices["sample"].add_argument("--batch-size", type=int, default=500, help="execution setting: images per decoder call")

    p = command("sample-grid", cmd_sample_grid, "a rows x rows grid of a run's first samples (supplement Figures 1-5), PNG/PDF")
    p.add_argument("--samples", required=True)
    p.add_argument("--rows", type=int, default=10)
    p.add_argument("--out", nargs="+", required=True, help="figure paths (.png, .pdf)")

    parser.set_defaults(core_commands=frozenset(sub.choices))  # registered so far: this module's own
    if extensions:
        from pipeline.claims import register_commands as register_claims
        from pipeline.fid.commands import register_commands as register_fid
        from pipeline.figures.commands import register_commands as register_figures
        from pipeline.figures.interpolation import register_commands as register_interpolation

        register_fid(sub)
        register_claims(sub)
        register_figures(sub)
        register_interpolation(sub)

    p = sub.add_parser("check-config", help="validate config files as Snakemake merges them; names the file of a YAML error")
    p.set_defaults(func=cmd_check_config)
    p.add_argument("files", nargs="*", help="config files given to snakemake with --configfile")

    p = sub.add_parser("memory-budget", help="this machine's memory budgets as --resources, and what each network job declares")
    p.set_defaults(func=cmd_memory_budget)
    p.add_argument("files", nargs="*", help="config files given to snakemake with --configfile")

    p = command("concat-tables", cmd_concat_tables, "stack per-run CSV tables into one")
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--out", required=True)

    p = command("table", cmd_table, "collect per-run JSON into a paper table (CSV, Markdown, LaTeX)")
    p.add_argument("--name", required=True)
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--out-prefix", required=True, help="writes PREFIX.csv, PREFIX.md, PREFIX.tex")
    p.add_argument("--html", help="also the table's page for the Snakemake report (results/tables/{table}.html)")

    p = command("claims-html", cmd_claims_html, "the claims' verdicts as a page for the Snakemake report")
    p.add_argument("--claims", required=True, help="results/claims.csv")
    p.add_argument("--out", required=True, help="the HTML page to write")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(extensions=False)
    name = next((a for a in argv if not a.startswith("-")), None)
    if name not in parser.get_default("core_commands"):
        parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    from pipeline.config import ConfigError
    from pipeline.data import DataError
    from pipeline.provenance import DiskFull
    from pipeline.training import TrainingDiverged

    try:
        args.func(args)
    except (ConfigError, DataError, DiskFull, TrainingDiverged, ValueError) as err:  # ValueError: DamagedArtefact too
        log.error("%s", err)
        return 2
    finally:
        if not sys.stderr.isatty():  # a rule's log (or a test); not a person at a terminal
            log.info("%s", job_resources())
    return 0


JOB_RESOURCES = "pipeline-job cpu_s="


def job_resources() -> str:
    """This process's CPU seconds since it started (interpreter start-up and imports included) and peak memory.

    The line lands in the rule's log; scripts/budget.py sums it per rule, benchmarks/memory.py reads
    its peaks (with ``max_gpu_mb``, torch.cuda.max_memory_allocated, where the job used CUDA). Snakemake's benchmark files
    sample CPU time every 30 s after a job's first 30 s, so they miss part of a longer job's CPU.
    """
    import os
    import resource

    t = os.times()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    line = f"{JOB_RESOURCES}{t.user + t.system + t.children_user + t.children_system:.2f} max_rss_mb={peak_mb:.0f}"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():  # the peak of tensors, and of the caching allocator's reservation
        line += f" max_gpu_mb={torch.cuda.max_memory_allocated() / 2**20:.0f} max_gpu_reserved_mb={torch.cuda.max_memory_reserved() / 2**20:.0f}"
    return line
