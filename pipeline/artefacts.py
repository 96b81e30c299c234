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
atomic (``pipeline.provenance.atomic_path``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
import torch

from pipeline.data import load_split  # noqa: F401  (re-exported: uint8 (N,C,H,W), labels (N,))
from pipeline.provenance import atomic_path, to_json_attr, write_json


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


def load_model(path: str | Path, device: torch.device | str = "cpu"):
    """Rebuild a trained VAE from its model file -> (vae in eval mode, settings)."""
    from pipeline.config import identity
    from pipeline.models import build_vae

    state = torch.load(path, map_location=device, weights_only=False)
    settings = identity(state["settings"])
    settings.setdefault("variant", "default")
    vae = build_vae(settings).to(device)
    vae.load_state_dict(state["model"])
    vae.eval()
    return vae, settings


# -- HDF5 artefacts ---------------------------------------------------------------------------
def _finish(h5: h5py.File, record: dict) -> None:
    h5.attrs["provenance"] = to_json_attr(record)
    h5.attrs["complete"] = True


def write_encodings(path: str | Path, splits: dict[str, dict[str, torch.Tensor]], record: dict) -> None:
    """splits: {"train": {"mean", "std", "labels"}, "test": {...}}."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        for split, arrays in splits.items():
            group = h5.create_group(split)
            for key in ("mean", "std", "labels"):
                group[key] = arrays[key].numpy()
        _finish(h5, record)


def read_encodings(path: str | Path) -> dict:
    """encodings.h5 -> {"train": {"mean", "std", "labels"}, "test": {...}} as tensors."""
    with h5py.File(path, "r") as h5:
        return {split: {k: torch.from_numpy(np.asarray(h5[split][k])) for k in ("mean", "std", "labels")} for split in h5.keys()}


def write_samples(path: str | Path, images: torch.Tensor, z: torch.Tensor, record: dict) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("images", data=images.numpy(), chunks=(min(len(images), 256), *images.shape[1:]))
        h5["z"] = z.numpy()
        _finish(h5, record)


def read_samples(path: str | Path, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """samples.h5 -> (uint8 images (n,C,H,W), z (n,d_z)); all when n is None."""
    with h5py.File(path, "r") as h5:
        available = h5["images"].shape[0]
        if n is not None and available < n:
            raise ValueError(f"{path} holds {available} samples but {n} are needed; raise sampling.n_samples")
        stop = available if n is None else n
        return torch.from_numpy(np.asarray(h5["images"][:stop])), torch.from_numpy(np.asarray(h5["z"][:stop]))


def read_record(path: str | Path) -> dict:
    """The provenance record an HDF5 artefact carries (``run`` holds the run's settings)."""
    import json

    with h5py.File(path, "r") as h5:
        return json.loads(h5.attrs["provenance"])


# -- per-run JSON ------------------------------------------------------------------------------
def run_record(settings: dict, metrics: dict) -> dict:
    """The payload of every per-run JSON file (metrics.json, fid.json): who made the numbers."""
    return {"dataset": settings["dataset"], "method": settings["method"], "variant": settings.get("variant", "default"),
            "seed": settings["seed"], "prior": settings.get("prior"), "metrics": metrics}


def write_run_json(path: str | Path, settings: dict, metrics: dict, record: dict) -> None:
    write_json(path, run_record(settings, metrics), record)
