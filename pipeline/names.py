"""Names and labels: the one home of the dataset labels and the run-variant grammar.

A run's *variant* changes one setting of its method (LaDDer supplement Table 2's d_t ablation,
the 2-D latent models of Figures 2, 4 and 5); ``default`` is the headline run. The grammar:

    default | d_t<N> | d_z<N>      (N >= 1: the prior VAE's or the data VAE's latent size)

It is a path component of its own (``results/runs/{dataset}/{method}/{variant}/seed{seed}``), so
method names are free. The workflow's wildcard constraint is ``VARIANT_REGEX``; the paper's
supplement Table 2 rows (``pipeline/resources/paper_values.csv``) are named by the same variant
names, and tables, claims and figures print ``variant_label``.
"""

from __future__ import annotations

import re

# Our dataset keys as tables, claims and figures print them (the config key where absent).
DATASET_LABELS = {"mnist": "MNIST", "mnist5k": "MNIST-5k", "fashion_mnist": "Fashion-MNIST", "celeba": "CelebA"}

DEFAULT_VARIANT = "default"
_KEY, _SIZE = "[tz]", "[1-9][0-9]*"  # d_t / d_z, a size >= 1
VARIANT_REGEX = f"default|d_{_KEY}{_SIZE}"  # Snakemake's wildcard constraint (no anchors)
VARIANT_PATTERN = re.compile(rf"^(?:default|d_(?P<key>{_KEY})(?P<size>{_SIZE}))$")
VARIANT_HELP = "'default', 'd_t<N>' (prior VAE latent size) or 'd_z<N>' (data latent size)"


def dataset_label(dataset: str) -> str:
    """A dataset's printed name (its config key where unknown)."""
    return DATASET_LABELS.get(dataset, dataset)


def variant_name(key: str, size: int) -> str:
    """The variant that sets ``key`` ('d_t' or 'd_z') to ``size``: variant_name('d_t', 8) -> 'd_t8'."""
    name = f"{key}{int(size)}"
    if key not in ("d_t", "d_z") or not VARIANT_PATTERN.match(name):
        raise ValueError(f"no variant sets {key} = {size}: variants are {VARIANT_HELP}")
    return name


def parse_variant(variant: str) -> dict | None:
    """What a variant changes: {} for 'default', {'d_t': N} or {'d_z': N}; None if not a variant."""
    match = VARIANT_PATTERN.match(str(variant))
    if match is None:
        return None
    return {} if match["key"] is None else {f"d_{match['key']}": int(match["size"])}


def variant_label(variant: str) -> str:
    """A variant as tables and claims print it: 'd_t8' -> 'd_t = 8' ('default' and others as given)."""
    change = parse_variant(variant) or {}
    return "; ".join(f"{key} = {size}" for key, size in change.items()) or str(variant)
