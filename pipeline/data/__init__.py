"""Data layer: raw sources -> ``data/processed/{dataset}.h5`` -> tensors.

``prepare_dataset`` reads a dataset from where the user (or a package) put it and writes the
HDF5 file described in ``pipeline.data.store``; ``load_split`` and ``dataset_info`` read it back.
Every user-facing failure is a ``DataError`` whose message says which file/folder/key is wrong
and what to do.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.data.celeba import open_source, prepare_celeba
from pipeline.data.idx import read_idx, read_idx_pair
from pipeline.data.sources import (DEFAULT_CFG, IDX_SPLIT_SIZES, MNIST5K_IMAGES, find_idx_source, idx_not_found, mnist5k_csv_path,
                                   prepare_idx, prepare_mnist5k, with_defaults)
from pipeline.data.store import DataError, dataset_info, load_split

DATASETS = ("mnist", "mnist5k", "fashion_mnist", "celeba")

__all__ = ["DATASETS", "DEFAULT_CFG", "DataError", "dataset_info", "expected_split_sizes", "load_split", "prepare_dataset",
           "raw_data_problem", "raw_data_report", "raw_data_warning", "read_idx", "read_idx_pair", "with_defaults"]


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


def raw_data_problem(name: str, data_cfg: dict) -> str | None:
    """Why ``prepare_dataset`` would stop for want of raw data, in the words its error would use;
    None when it would find the data (or may download it). Looks, converts nothing: what the dry
    run and ``check-config`` report per dataset."""
    cfg = with_defaults(data_cfg)
    try:
        if name == "mnist5k":
            mnist5k_csv_path()
        elif name == "celeba":
            open_source(Path(cfg["raw_dir"]) / "celeba").close()
        elif find_idx_source(name, cfg) is None and not cfg["allow_download"]:
            return idx_not_found(name, cfg)
    except DataError as err:
        return str(err)
    return None


PROCESSED_PATH = "data/processed/{dataset}.h5"  # the prepare_dataset rule's output, relative to the working directory


def raw_data_report(config: dict) -> dict[str, str | None]:
    """Per dataset of ``config["run"]["datasets"]``: None when its prepare_dataset job has what it
    needs (the processed file already exists, or the raw data is there), else ``raw_data_problem``'s
    text. Paths are relative to the working directory, as the workflow's are."""
    return {name: None if Path(PROCESSED_PATH.format(dataset=name)).is_file() else raw_data_problem(name, config["data"])
            for name in config["run"]["datasets"]}


def raw_data_warning(report: dict[str, str | None]) -> str | None:
    """The block the dry run and ``check-config`` print for the datasets ``raw_data_report`` found
    without data; None when none is missing."""
    missing = {name: problem for name, problem in report.items() if problem}
    if not missing:
        return None
    lines = [f"Raw data missing for {len(missing)} of {len(report)} dataset(s): their prepare_dataset jobs will stop "
             "with the message below (the other datasets still run):"]
    lines += [f"  - {name}: {problem}" for name, problem in missing.items()]
    return "\n".join(lines)


def expected_split_sizes(name: str, data_cfg: dict) -> dict[str, int | None]:
    """Train and test images the prepared dataset will hold, known from the data config alone
    (None where it depends on the raw copy: CelebA's training split)."""
    cfg = with_defaults(data_cfg)
    if name == "mnist5k":
        return {"train": MNIST5K_IMAGES - int(cfg["mnist5k_test_size"]), "test": int(cfg["mnist5k_test_size"])}
    if name == "celeba":
        return {"train": None, "test": int(cfg["celeba"]["test_size"])}
    return dict(IDX_SPLIT_SIZES[name])
