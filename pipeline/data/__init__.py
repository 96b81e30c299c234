"""Data layer: raw sources -> ``data/processed/{dataset}.h5`` -> tensors.

``prepare_dataset`` reads a dataset from where the user (or a package) put it and writes the
HDF5 file described in ``pipeline.data.store``; ``load_split`` and ``dataset_info`` read it back.
Every user-facing failure is a ``DataError`` whose message says which file/folder/key is wrong
and what to do.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.data.celeba import prepare_celeba
from pipeline.data.idx import read_idx, read_idx_pair
from pipeline.data.sources import DEFAULT_CFG, prepare_idx, prepare_mnist5k, with_defaults
from pipeline.data.store import DataError, dataset_info, load_split

DATASETS = ("mnist", "mnist5k", "fashion_mnist", "celeba")

__all__ = ["DATASETS", "DEFAULT_CFG", "DataError", "dataset_info", "load_split", "prepare_dataset",
           "read_idx", "read_idx_pair", "with_defaults"]


def prepare_dataset(name: str, data_cfg: dict, out_path: str | Path) -> Path:
    """Write ``out_path`` (HDF5) for dataset ``name`` from its raw files; returns ``out_path``."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}: use one of {', '.join(DATASETS)}")
    cfg = with_defaults(data_cfg)  # the filled-in config is what the provenance records
    out_path = Path(out_path)
    if name == "mnist5k":
        return prepare_mnist5k(cfg, out_path)
    if name == "celeba":
        return prepare_celeba(cfg, out_path)
    return prepare_idx(name, cfg, out_path)
