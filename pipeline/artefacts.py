"""The run artefacts: one module owns their formats, the uint8/float conversion and batching.

A run folder ``results/runs/{dataset}/{method}/{variant}/seed{seed}/`` holds:

- ``model.pt``: a plain dict ``{"settings" (the run's identity), "model" (state dict), "epochs",
  "stats", "scale_source", "provenance"}``; the architecture is rebuilt from the settings.
- ``encodings.h5``: groups ``train`` and ``test`` with ``mean``, ``std`` (N, d_z) and ``labels`` (N,).
- ``samples.h5``: ``images`` uint8 (N, C, H, W) and ``z`` (N, d_z); image k is a function of
  (seed, k) only.
- ``metrics.json`` / ``fid.json``: ``{"dataset", "method", "variant", "seed", "prior", "metrics": {...},
  "provenance": {...}}`` (``run_record``), what every table reads.

Every HDF5 file carries a ``provenance`` JSON attribute and ``complete = True``; every write is
atomic (``pipeline.provenance.atomic_path``). Every read goes through ``read_model_file`` or
``open_h5``: a file that cannot be read raises ``DamagedArtefact``, one message naming the file and
the Snakemake rule that remakes it (``pipeline.provenance.REMAKING_RULES``), not a library traceback.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import zipfile
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
import torch

from pipeline.data import load_split  # noqa: F401  (re-exported: uint8 (N,C,H,W), labels (N,))
from pipeline.provenance import DamagedArtefact, atomic_path, to_json_attr, write_json


# -- pixels -------------------------------------------------------------------------------
def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B,C,H,W) -> float in [0, 1]."""
    return images.float().div_(255.0)


def quantise(x):
    """Float images in [0, 1] -> uint8 as round(x * 255), clamped to [0, 255].

    The one place this happens, so data, reconstructions and samples are quantised alike.
    Accepts a torch tensor (returns one) or a numpy array (returns one).
    """
    if isinstance(x, np.ndarray):
        return quantise(torch.from_numpy(x)).numpy()
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise TypeError(f"quantise expects float images in [0, 1], got {getattr(x, 'dtype', type(x))}")
    if torch.isnan(x).any():
        raise ValueError("quantise: images contain NaN")
    return (x * 255).round().clamp(0, 255).to(torch.uint8)


def batches(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices covering range(n)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


# -- model ----------------------------------------------------------------------------------
def save_model(path: str | Path, vae, settings: dict, stats: list[dict], record: dict, scale_source: str) -> None:
    with atomic_path(path) as tmp:
        torch.save({"settings": settings, "model": vae.state_dict(), "epochs": settings["epochs"], "stats": stats,
                    "scale_source": scale_source, "provenance": record}, tmp)


def read_model_file(path: str | Path, device: torch.device | str = "cpu") -> dict:
    """The model file's dict (``save_model``); a missing, truncated or foreign file raises DamagedArtefact."""
    try:
        state = torch.load(path, map_location=device, weights_only=False)
        for key in ("settings", "model"):
            state[key]
    except (OSError, EOFError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, KeyError, TypeError, IndexError) as err:
        raise DamagedArtefact(path, f"{type(err).__name__}: {err}") from err
    return state


def load_model(path: str | Path, device: torch.device | str = "cpu"):
    """Rebuild a trained VAE from its model file -> (vae in eval mode, settings)."""
    from pipeline.config import identity
    from pipeline.models import build_vae

    state = read_model_file(path, device)
    settings = identity(state["settings"])
    vae = build_vae(settings).to(device)
    vae.load_state_dict(state["model"])
    vae.eval()
    return vae, settings


# -- HDF5 artefacts ---------------------------------------------------------------------------
@contextlib.contextmanager
def open_h5(path: str | Path) -> Iterator[h5py.File]:
    """An HDF5 artefact open for reading. One that cannot be opened or read (truncated, overwritten),
    lacks a dataset or attribute its readers take, or lacks the ``complete`` mark every writer sets
    last raises DamagedArtefact."""
    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise DamagedArtefact(path, err) from err
    with h5:
        if not h5.attrs.get("complete", False):
            raise DamagedArtefact(path, "no 'complete' mark: an interrupted write?")
        try:
            yield h5
        except (OSError, KeyError) as err:
            raise DamagedArtefact(path, f"{type(err).__name__}: {err}") from err


@contextlib.contextmanager
def _h5_written(path: str | Path) -> Iterator[h5py.File]:
    """An HDF5 file built in memory, then written to ``path`` atomically in one plain write: when the
    disk fills during HDF5's own writes it crashes the process on close (segmentation fault, h5py
    3.x), where Python's write raises ENOSPC and ``atomic_path`` names the file."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        yield h5
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def _finish(h5: h5py.File, record: dict) -> None:
    h5.attrs["provenance"] = to_json_attr(record)
    h5.attrs["complete"] = True


def write_encodings(path: str | Path, splits: dict[str, dict[str, torch.Tensor]], record: dict) -> None:
    """splits: {"train": {"mean", "std", "labels"}, "test": {...}}."""
    with _h5_written(path) as h5:
        for split, arrays in splits.items():
            group = h5.create_group(split)
            for key in ("mean", "std", "labels"):
                group[key] = arrays[key].numpy()
        _finish(h5, record)


def read_encodings(path: str | Path) -> dict:
    """encodings.h5 -> {"train": {"mean", "std", "labels"}, "test": {...}} as tensors."""
    with open_h5(path) as h5:
        return {split: {k: torch.from_numpy(np.asarray(h5[split][k])) for k in ("mean", "std", "labels")} for split in h5.keys()}


def write_samples(path: str | Path, images: torch.Tensor, z: torch.Tensor, record: dict) -> None:
    with _h5_written(path) as h5:
        h5.create_dataset("images", data=images.numpy(), chunks=(min(len(images), 256), *images.shape[1:]))
        h5["z"] = z.numpy()
        _finish(h5, record)


def read_samples(path: str | Path, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """samples.h5 -> (uint8 images (n,C,H,W), z (n,d_z)); all when n is None."""
    with open_h5(path) as h5:
        available = h5["images"].shape[0]
        if n is not None and available < n:
            raise ValueError(f"{path} holds {available} samples but {n} are needed; raise sampling.n_samples")
        stop = available if n is None else n
        return torch.from_numpy(np.asarray(h5["images"][:stop])), torch.from_numpy(np.asarray(h5["z"][:stop]))


def read_record(path: str | Path) -> dict:
    """The provenance record an HDF5 artefact carries (``run`` holds the run's settings)."""
    import json

    with open_h5(path) as h5:
        try:
            return json.loads(h5.attrs["provenance"])
        except ValueError as err:
            raise DamagedArtefact(path, f"provenance attribute: {err}") from err


# -- per-run JSON ------------------------------------------------------------------------------
def run_record(settings: dict, metrics: dict) -> dict:
    """The payload of every per-run JSON file (metrics.json, fid.json): who made the numbers, with
    the prior VAE's latent size d_t where the prior has one (supplement Table 2 and claim C6 group by it)."""
    return {"dataset": settings["dataset"], "method": settings["method"], "variant": settings.get("variant", "default"),
            "seed": settings["seed"], "prior": settings.get("prior"), "d_t": (settings.get("prior_options") or {}).get("d_t"),
            "metrics": metrics}


def write_run_json(path: str | Path, settings: dict, metrics: dict, record: dict) -> None:
    write_json(path, run_record(settings, metrics), record)
