"""The processed-data HDF5 file: writing (atomic, marked complete last) and reading.

Layout of ``data/processed/{dataset}.h5``::

    /train/images  uint8 (N, C, H, W), contiguous and uncompressed (load_split maps it)
    /train/labels  int64 (N,)        (-1 where the dataset has no labels: CelebA)
    /test/images, /test/labels       the same for the test split
    attrs: name, sources (JSON), checksums (JSON), split_seed, provenance (JSON), complete

``complete = True`` is the last thing written, and the file is written under a temporary
name renamed into place only on success, so a crash never leaves a file that looks usable.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
import torch

from pipeline.provenance import atomic_path, damaged_message, provenance, to_json_attr

SPLITS = ("train", "test")
CHUNK_IMAGES = 256  # images per write when a split is streamed in (CelebA)


class DataError(Exception):
    """A user-facing data problem; the message names the file/folder/key and what to do."""


def create_split(f: h5py.File, split: str, n: int, image_shape: tuple[int, int, int]) -> tuple[h5py.Dataset, h5py.Dataset]:
    """Preallocate ``/{split}/images`` and ``/{split}/labels`` (labels filled with -1)."""
    # Contiguous and uncompressed: readers map the images straight from the page cache
    # (load_split), so every job of a dataset shares one copy in host memory (issue 24).
    images = f.create_dataset(f"{split}/images", shape=(n, *image_shape), dtype=np.uint8)
    labels = f.create_dataset(f"{split}/labels", shape=(n,), dtype=np.int64, fillvalue=-1)
    return images, labels


def set_sources(f: h5py.File, sources: list[dict], checksums: dict[str, str]) -> None:
    """Record which raw files/folders were used and how (``sources``), and their sha256."""
    f.attrs["sources"] = json.dumps(sources)
    f.attrs["checksums"] = json.dumps(checksums, sort_keys=True)


@contextlib.contextmanager
def h5_writer(out_path: str | Path, *, name: str, split_seed: int, data_cfg: dict) -> Iterator[h5py.File]:
    """Yield an open HDF5 file at a temporary path. The block writes both splits and calls
    ``set_sources``; then the remaining attributes are written, ``complete`` last, and the file
    is renamed onto ``out_path``. On any exception nothing appears at ``out_path``."""
    with atomic_path(out_path) as tmp:
        with h5py.File(tmp, "w") as f:
            yield f
            missing = [f"/{s}/images" for s in SPLITS if f"{s}/images" not in f]
            missing += [f"attr {a}" for a in ("sources", "checksums") if a not in f.attrs]
            if missing:
                raise RuntimeError(f"bug: {out_path} written without {missing}")
            f.attrs["name"] = name
            f.attrs["split_seed"] = int(split_seed)
            f.attrs["provenance"] = to_json_attr(provenance(config=data_cfg, seed=int(split_seed)))
            f.attrs["complete"] = True  # last: readers refuse files without it


def write_arrays(out_path: str | Path, splits: dict[str, tuple[np.ndarray, np.ndarray]], *, name: str,
                 sources: list[dict], checksums: dict[str, str], split_seed: int, data_cfg: dict) -> Path:
    """Write in-memory splits ``{split: (images uint8 NCHW, labels)}`` (the small datasets)."""
    with h5_writer(out_path, name=name, split_seed=split_seed, data_cfg=data_cfg) as f:
        for split, (images, labels) in splits.items():
            images_ds, labels_ds = create_split(f, split, len(images), images.shape[1:])
            images_ds[...] = images
            labels_ds[...] = labels
        set_sources(f, sources, checksums)
    return Path(out_path)


def _open_complete(path: str | Path) -> h5py.File:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist: run the prepare_dataset rule first "
                        f"(e.g. `snakemake {path}`), which calls pipeline.data.prepare_dataset")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(damaged_message(path, f"not a readable HDF5 file: {exc}")) from exc
    if not f.attrs.get("complete", False):
        f.close()
        raise DataError(damaged_message(path, "incomplete: no 'complete' attribute; an interrupted write?"))
    return f


def _mapped_images(path: Path, images: h5py.Dataset, rows: slice) -> np.ndarray | None:
    """The images of a contiguous, unfiltered uint8 dataset as a copy-on-write memory map of the
    HDF5 file at the dataset's offset, or None where the layout does not allow it (files written
    before issue 24 are chunked: they are read into a private array, as before)."""
    offset = images.id.get_offset()
    if images.chunks is not None or images.compression or images.dtype != np.uint8 or offset is None or images.size == 0:
        return None
    # mode "c": pages come from the page cache, shared by every process that maps the file; a
    # write (none is made) would copy only the page it touches.
    return np.memmap(path, dtype=np.uint8, mode="c", offset=offset, shape=images.shape)[rows]


def load_split(path: str | Path, split: str, limit: int | None = None, shared: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 (N, C, H, W) and labels int64 (N,) of one split; ``limit`` keeps the first rows.

    ``shared``: the images are a memory map of the file (read through the page cache, one copy in
    host memory for all the jobs of a dataset) where its layout allows; False reads them into a
    private array. The values are the same either way."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} for {path}: use one of {SPLITS}")
    if limit is not None and limit < 0:
        raise DataError(f"limit must be >= 0 or None, got {limit}")
    with _open_complete(path) as f:
        rows = slice(None) if limit is None else slice(0, limit)
        images = _mapped_images(Path(path), f[f"{split}/images"], rows) if shared else None
        if images is None:
            images = f[f"{split}/images"][rows]
        labels = f[f"{split}/labels"][rows]
    return torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))


def dataset_info(path: str | Path) -> dict:
    """The file's metadata: name, shape (C, H, W), n_train, n_test, sources, checksums, split_seed, provenance."""
    with _open_complete(path) as f:
        return {
            "name": str(f.attrs["name"]),
            "shape": tuple(int(d) for d in f["train/images"].shape[1:]),
            "n_train": int(f["train/images"].shape[0]),
            "n_test": int(f["test/images"].shape[0]),
            "sources": json.loads(f.attrs["sources"]),
            "checksums": json.loads(f.attrs["checksums"]),
            "split_seed": int(f.attrs["split_seed"]),
            "provenance": json.loads(f.attrs["provenance"]),
        }
