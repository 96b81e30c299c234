"""Command-line entry points of the figures: ``python -m pipeline figure2|figure3|figure4|figure-samples``.

``register_commands(subparsers)`` adds them to the pipeline's argparse parser; each sets
``func``. Options a rule resolves from config arrive as JSON: ``--options`` is the config's
``figures`` block (keys below, with their defaults), ``--methods`` (Figure 2) the config's
``methods`` blocks of the priors to fit.
"""

from __future__ import annotations

from pipeline.commands import json_arg

# The figures block's keys read here; a key absent from --options takes its schema default.
KEYS = ("fig2_fit_images", "fig2_d_t", "fig2_grid_size", "fig2_is_samples", "fig2_mc_points", "fig2_epochs", "fig2_steps_per_epoch",
        "fig2_batch_size", "fig2_learning_rate", "fig2_joint_learning_rate", "fig2_dynamic_range", "fig3_images", "fig4_max_points",
        "samples_grid_rows")


def _options(args) -> dict:
    from pipeline.config import schema_defaults

    given, defaults = json_arg(args.options), schema_defaults("figures")
    return {key: given.get(key, defaults[key]) for key in KEYS}


def _device(name: str) -> str:
    from pipeline.devices import resolve_device

    return str(resolve_device(name))


def _threads(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def cmd_figure2(args) -> None:
    from pipeline.figures.density import figure2
    from pipeline.posthoc import PosthocOptions

    _threads(args)
    o = _options(args)
    methods = json_arg(args.methods)
    # rules pass JSON with sorted keys: restore the panel order of figures.fig2_methods (the paper's)
    order = [m for m in json_arg(args.options).get("fig2_methods", []) if m in methods]
    methods = {m: methods[m] for m in order + [m for m in methods if m not in order]}
    if args.only:
        missing = [m for m in args.only if m not in methods]
        if missing:
            raise SystemExit(f"figure2: --only names {missing}, not in --methods ({', '.join(methods)})")
        methods = {m: methods[m] for m in args.only}
    posthoc = PosthocOptions(epochs=o["fig2_epochs"], steps_per_epoch=o["fig2_steps_per_epoch"], batch_size=o["fig2_batch_size"],
                             learning_rate=o["fig2_learning_rate"], joint_learning_rate=o["fig2_joint_learning_rate"], seed=args.seed)
    figure2(args.model, args.encodings, methods, args.out, args.table, fit_images=o["fig2_fit_images"], d_t=o["fig2_d_t"],
            grid_size=o["fig2_grid_size"], is_samples=o["fig2_is_samples"], posthoc=posthoc, dynamic_range=o["fig2_dynamic_range"],
            mc_points=o["fig2_mc_points"], device=_device(args.device))


def cmd_figure3(args) -> None:
    from pipeline.figures.reconstructions import figure3

    _threads(args)
    figure3(args.data, args.models, args.samples, args.out, args.table, n_images=_options(args)["fig3_images"], device=_device(args.device))


def cmd_figure4(args) -> None:
    from pipeline.figures.latent2d import figure4

    _threads(args)
    figure4(args.models, args.encodings, args.out, args.table, args.summary, max_points=_options(args)["fig4_max_points"],
            device=_device(args.device))


def cmd_figure_samples(args) -> None:
    from pipeline.figures.samples import samples_figure_from_files

    samples_figure_from_files(args.method, args.datasets, args.samples, _options(args)["samples_grid_rows"], args.out, args.table,
                              seed=args.seed)


def register_commands(subparsers) -> None:
    """Add the figure commands to ``subparsers`` (from ``parser.add_subparsers``)."""

    def command(name, func, help_text):
        p = subparsers.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--options", help="the config's figures block as JSON (or @file)")
        p.add_argument("--out", nargs="+", required=True, help="figure paths (.png, .pdf)")
        p.add_argument("--table", required=True, help="CSV of the numbers behind the figure")
        return p

    def compute(p):
        p.add_argument("--device", default="auto")
        p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")

    p = command("figure2", cmd_figure2, "Figure 2: aggregate posterior of a d_z=2 normal-prior VAE and priors fitted post hoc")
    compute(p)
    p.add_argument("--model", required=True, help="model.pt of the normal-prior d_z=2 run")
    p.add_argument("--encodings", required=True, help="encodings.h5 of the same run")
    p.add_argument("--methods", required=True, help="config methods blocks of the priors to fit, as JSON {name: {prior, options}}")
    p.add_argument("--only", nargs="+", help="fit only these of --methods")
    p.add_argument("--seed", type=int, default=0, help="subset of encodings, noise and mixture fits")

    p = command("figure3", cmd_figure3, "Figure 3: test images, reconstructions and generations per prior")
    compute(p)
    p.add_argument("--data", required=True, help="processed dataset HDF5")
    p.add_argument("--models", nargs="+", required=True, help="model.pt per method")
    p.add_argument("--samples", nargs="+", required=True, help="samples.h5 per method, same order")

    p = command("figure4", cmd_figure4, "Figure 4: 2-D latents by class, mixture components, ARI/NMI")
    compute(p)
    p.add_argument("--models", nargs="+", required=True, help="model.pt per method and seed")
    p.add_argument("--encodings", nargs="+", required=True, help="encodings.h5 per model, same order")
    p.add_argument("--summary", required=True, help="CSV: mean and std of ARI/NMI over seeds")

    p = command("figure-samples", cmd_figure_samples, "supplement Figures 1-5: one prior's sample grids, one per dataset")
    p.add_argument("--method", required=True)
    p.add_argument("--datasets", nargs="+", required=True)
    p.add_argument("--samples", nargs="+", required=True, help="samples.h5 per dataset, same order")
    p.add_argument("--seed", type=int, help="the runs' seed (for the title)")
