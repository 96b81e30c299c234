"""FID in pure steps: uint8 images -> Inception features -> (mu, sigma) -> one number.

Every number comes from torch-fidelity (its extractor, ``fid_features_to_statistics`` and
``fid_statistics_to_metric``); this module only feeds it and stores statistics. Statistics are
our own ``.npz`` files that carry the sha256 of the weights that made them: torch-fidelity's
cache keys ignore the weights path, so we never use that cache.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

from pipeline.provenance import atomic_path, to_json_attr

FEATURE_LAYER = "2048"  # pool features: the layer FID is defined on


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


def _batches(images, batch_size: int) -> Iterable[torch.Tensor]:
    """A uint8 (N, C, H, W) tensor or an iterable of them, re-cut into at most ``batch_size``."""
    chunks = [images] if torch.is_tensor(images) or isinstance(images, np.ndarray) else images
    for chunk in chunks:
        chunk = torch.as_tensor(chunk)
        if chunk.dtype != torch.uint8:
            raise TypeError(f"images must be uint8 (use pipeline.fid.quantise for floats in [0, 1]), got {chunk.dtype}")
        if chunk.dim() != 4 or chunk.shape[1] not in (1, 3):
            raise ValueError(f"images must be (N, C, H, W) with C in {{1, 3}}, got {tuple(chunk.shape)}")
        yield from chunk.split(batch_size)


def images_to_features(images, extractor, batch_size: int = 64, device="cpu", progress: bool = True) -> np.ndarray:
    """Inception pool features (N, 2048) float32 of uint8 images, grey replicated to RGB.

    ``extractor`` comes from ``pipeline.fid.build_extractor``; torch-fidelity resizes to 299x299
    (TF1-compatible bilinear) and normalises inside it.
    """
    if FEATURE_LAYER not in extractor.features_list:
        raise ValueError(f"extractor must provide feature {FEATURE_LAYER!r}, has {extractor.features_list}")
    index = list(extractor.features_list).index(FEATURE_LAYER)
    total = len(images) if torch.is_tensor(images) or isinstance(images, np.ndarray) else None
    out = []
    with torch.inference_mode(), tqdm(total=total, unit="img", desc="inception", disable=not progress) as bar:
        for batch in _batches(images, batch_size):
            batch = batch.to(device).expand(-1, 3, -1, -1)  # (B, 3, H, W); grey channel repeated
            features = extractor(batch)[index]  # (B, 2048)
            out.append(features.float().cpu())
            bar.update(len(batch))
    if not out:
        raise ValueError("images_to_features: no images")
    features = torch.cat(out).numpy()
    if not np.isfinite(features).all():
        raise FloatingPointError("Inception features are not finite: wrong or corrupt weights file?")
    return features


def features_to_statistics(features) -> dict:
    """(mu, sigma, n) of features (N, D) through torch-fidelity, in float64."""
    from torch_fidelity.metric_fid import fid_features_to_statistics

    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need features (N >= 2, D), got shape {features.shape}")
    stats = fid_features_to_statistics(torch.from_numpy(features))
    return {"mu": stats["mu"], "sigma": stats["sigma"], "n": len(features)}


def statistics_to_fid(stats_a: dict, stats_b: dict) -> float:
    """Fréchet distance between two statistics, by torch-fidelity's ``fid_statistics_to_metric``."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

    # torch-fidelity asserts equal dtypes; statistics from any source are compared in float64.
    a, b = ({k: np.asarray(s[k], dtype=np.float64) for k in ("mu", "sigma")} for s in (stats_a, stats_b))
    if a["mu"].shape != b["mu"].shape:
        raise ValueError(f"statistics of different feature sizes: {a['mu'].shape} vs {b['mu'].shape}")
    return float(fid_statistics_to_metric(a, b, verbose=False)[KEY_METRIC_FID])


def save_statistics(path: str | os.PathLike, stats: dict, record: dict, *, weights_sha256: str) -> Path:
    """Write statistics as ``.npz`` (mu, sigma, n, weights_sha256, provenance JSON), atomically."""
    if not re.fullmatch(r"[0-9a-f]{64}", weights_sha256 or ""):
        raise ValueError(f"weights_sha256 must be a sha256 hex digest, got {weights_sha256!r}")
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a name
        np.savez(
            f,
            mu=np.asarray(stats["mu"], dtype=np.float64),
            sigma=np.asarray(stats["sigma"], dtype=np.float64),
            n=np.int64(stats["n"]),
            feature_layer=np.str_(FEATURE_LAYER),
            weights_sha256=np.str_(weights_sha256),
            provenance=np.str_(to_json_attr(record)),
        )
    return path


def load_statistics(path: str | os.PathLike, expected_weights_sha256: str) -> dict:
    """Statistics saved by ``save_statistics``; refuses ones made with other Inception weights."""
    with np.load(path, allow_pickle=False) as data:
        stats = {
            "mu": data["mu"],
            "sigma": data["sigma"],
            "n": int(data["n"]),
            "weights_sha256": str(data["weights_sha256"]),
            "provenance": json.loads(str(data["provenance"])),
        }
    if stats["weights_sha256"] != expected_weights_sha256:
        raise ValueError(
            f"{path} was computed with Inception weights sha256 {stats['weights_sha256']}, "
            f"but the weights in use have sha256 {expected_weights_sha256}; recompute these statistics"
        )
    return stats
