"""FID and KID in pure steps: uint8 images -> Inception pool features -> one number each.

Features come from torch-fidelity's ``FeatureExtractorInceptionV3`` (its layers and weights);
``pool_features`` only feeds it faster: each image is converted to float and resized to 299 once,
on its own channels (a grey image is resized once, then replicated), and the network's own
layers are called in torch-fidelity's order (a test checks equality with its ``forward``).

- FID: ``statistics_to_fid`` is torch-fidelity's ``fid_statistics_to_metric`` (a general
  eigen-decomposition of sigma_1 @ sigma_2, ~2048^3 work per FID, whatever N is).
  ``frechet_distance`` is the same quantity from symmetric eigenvalues: the non-zero eigenvalues
  of S_ref S equal those of R S R with R = S_ref^(1/2) (precomputed once per reference), or, when
  S = Y^T Y has rank N-1 < 2048, those of the N x N matrix Y S_ref Y^T. It is checked against
  torch-fidelity on random features (tests, benchmark) and used by the pipeline.
- KID (Binkowski et al. 2018): torch-fidelity's ``kid_features_to_metric`` on the same features,
  cubic polynomial kernel, mean and std over random subsets of a size below the sample count.

Statistics files are our own ``.npz`` carrying the sha256 of the weights that made them (torch-
fidelity's cache keys ignore the weights path, so we never use that cache) and the features
themselves (KID needs them).
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

from pipeline.artefacts import quantise  # noqa: F401  (re-exported: the one float -> uint8 conversion)
from pipeline.provenance import DamagedArtefact, atomic_path, to_json_attr

FEATURE_LAYER = "2048"  # pool features: the layer FID and KID are defined on
INPUT_SIZE = 299
# torch-fidelity's forward up to the pool features (feature_extractor_inceptionv3.py, 0.4.0).
POOL_LAYERS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "MaxPool_2",
               "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
               "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool")


# -- features -------------------------------------------------------------------------------
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


def pool_features(extractor, images: torch.Tensor) -> torch.Tensor:
    """(B, 2048) float32 pool features of uint8 (B, C, H, W) images, C in {1, 3}, on the extractor's device.

    Same arithmetic as torch-fidelity's forward (TF1 bilinear resize, (x - 128) / 128), but the
    resize runs on the image's own channels: resizing is per channel, so resizing a grey image and
    then replicating it equals resizing its RGB replica, at a third of the cost.
    """
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    weight = extractor.Conv2d_1a_3x3.conv.weight
    x = images.to(weight.device, non_blocking=True).to(weight.dtype)  # (B, C, H, W)
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = interpolate_bilinear_2d_like_tensorflow1x(x, size=(INPUT_SIZE, INPUT_SIZE), align_corners=False)  # (B, C, 299, 299)
    x = ((x - 128) / 128).expand(-1, 3, -1, -1)  # (B, 3, 299, 299); grey channel repeated
    if weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous():
        x = x.contiguous(memory_format=torch.channels_last)
    for name in POOL_LAYERS:
        x = getattr(extractor, name)(x)
    return torch.flatten(x, 1).float()  # (B, 2048)


def images_to_features(images, extractor, batch_size: int = 32, device=None, progress: bool = True) -> np.ndarray:
    """Inception pool features (N, 2048) float32 of uint8 images, grey replicated to RGB.

    ``extractor`` comes from ``pipeline.fid.build_extractor`` (its device is used; ``device`` is
    accepted for compatibility). A feature depends only on its image, not on the batch it is in.
    """
    if FEATURE_LAYER not in extractor.features_list:
        raise ValueError(f"extractor must provide feature {FEATURE_LAYER!r}, has {extractor.features_list}")
    total = len(images) if torch.is_tensor(images) or isinstance(images, np.ndarray) else None
    out = []
    with torch.inference_mode(), tqdm(total=total, unit="img", desc="inception", disable=not progress) as bar:
        for batch in _batches(images, batch_size):
            out.append(pool_features(extractor, batch).cpu())  # (B, 2048)
            bar.update(len(batch))
    if not out:
        raise ValueError("images_to_features: no images")
    features = torch.cat(out).numpy()
    if not np.isfinite(features).all():
        raise FloatingPointError("Inception features are not finite: wrong or corrupt weights file?")
    return features


# -- FID ------------------------------------------------------------------------------------
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


def _symmetric(m: np.ndarray) -> np.ndarray:
    return (m + m.T) / 2  # remove float asymmetry before a symmetric eigensolver


def psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a covariance (D, D) by eigh; rounding-negative eigenvalues -> 0."""
    values, vectors = np.linalg.eigh(_symmetric(np.asarray(sigma, dtype=np.float64)))
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T  # (D, D)


def frechet_distance(reference: dict, features) -> float:
    """FID of features (N, D) against reference statistics {"mu", "sigma"[, "sigma_sqrt"]}.

    FID = |mu_r - mu|^2 + tr S_r + tr S - 2 tr (S_r S)^(1/2) (Heusel et al. 2017). With
    S = Y^T Y, Y = (X - mu) / sqrt(N - 1), the non-zero eigenvalues of S_r S are those of the
    symmetric PSD matrices Y S_r Y^T (N x N) and R S R (D x D, R = S_r^(1/2)); the smaller is
    decomposed. ``reference["sigma_sqrt"]`` (``psd_sqrt``) is computed on first need and kept in
    the dict, so every FID against one reference in a process shares it.
    """
    x = np.asarray(features, dtype=np.float64)  # (N, D)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need features (N >= 2, D), got shape {x.shape}")
    n, d = x.shape
    mu_r, sigma_r = np.asarray(reference["mu"], dtype=np.float64), np.asarray(reference["sigma"], dtype=np.float64)
    if mu_r.shape != (d,):
        raise ValueError(f"reference statistics have {mu_r.shape[0]} features, these have {d}")
    mu = x.mean(axis=0)  # (D,)
    y = (x - mu) / np.sqrt(n - 1)  # (N, D); S = y.T @ y, np.cov's normalisation
    if n <= d:
        inner = y @ sigma_r @ y.T  # (N, N)
    else:
        if reference.get("sigma_sqrt") is None:
            reference["sigma_sqrt"] = psd_sqrt(sigma_r)
        ry = y @ reference["sigma_sqrt"]  # (N, D)
        inner = ry.T @ ry  # (D, D) = R S R
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(_symmetric(inner)), 0, None)).sum()
    diff = mu_r - mu
    return float(diff @ diff + np.trace(sigma_r) + np.einsum("nd,nd->", y, y) - 2 * tr_covmean)


# -- KID ------------------------------------------------------------------------------------
def check_kid_sizes(n_a: int, n_b: int, subset_size: int) -> None:
    """Refuse subset sizes that torch-fidelity cannot draw, or whose spread would mean nothing."""
    if subset_size < 2:
        raise ValueError(f"fid.kid_subset_size is {subset_size}; the unbiased MMD needs at least 2 images per subset")
    if subset_size > min(n_a, n_b):
        raise ValueError(f"fid.kid_subset_size is {subset_size} but only {min(n_a, n_b)} images are compared "
                         f"(fid.n_samples {n_a} vs fid.n_reference {n_b}); lower fid.kid_subset_size to at most {min(n_a, n_b)} (e.g. half of it)")
    if subset_size == n_a == n_b:
        raise ValueError(f"fid.kid_subset_size equals fid.n_samples and fid.n_reference ({subset_size}): every subset would be the whole "
                         "set and the reported std 0; lower fid.kid_subset_size (e.g. half of it)")


def kernel_inception_distance(features_a, features_b, subset_size: int, subsets: int, seed: int = 0) -> dict:
    """KID mean and std over ``subsets`` random subsets of ``subset_size`` (torch-fidelity's estimator)."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    a, b = (torch.from_numpy(np.ascontiguousarray(f, dtype=np.float32)) for f in (features_a, features_b))
    check_kid_sizes(len(a), len(b), subset_size)
    if subsets < 2:
        raise ValueError(f"fid.kid_subsets is {subsets}; at least 2 subsets are needed for a std")
    out = kid_features_to_metric(a, b, kid_subsets=subsets, kid_subset_size=subset_size, rng_seed=seed, verbose=False)
    return {"mean": out[KEY_METRIC_KID_MEAN], "std": out[KEY_METRIC_KID_STD]}


# -- statistics files -----------------------------------------------------------------------
def save_statistics(path: str | os.PathLike, stats: dict, record: dict, *, weights_sha256: str, features=None) -> Path:
    """Write statistics as ``.npz`` (mu, sigma, n, weights_sha256, provenance JSON[, features]), atomically."""
    if not re.fullmatch(r"[0-9a-f]{64}", weights_sha256 or ""):
        raise ValueError(f"weights_sha256 must be a sha256 hex digest, got {weights_sha256!r}")
    extra = {} if features is None else {"features": np.asarray(features, dtype=np.float32)}
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
            **extra,
        )
    return path


def load_statistics(path: str | os.PathLike, expected_weights_sha256: str) -> dict:
    """Statistics saved by ``save_statistics`` (with "features" when saved); refuses other weights' files."""
    try:
        with np.load(path, allow_pickle=False) as data:
            stats = {
                "mu": data["mu"],
                "sigma": data["sigma"],
                "n": int(data["n"]),
                "weights_sha256": str(data["weights_sha256"]),
                "provenance": json.loads(str(data["provenance"])),
                "features": data["features"] if "features" in data.files else None,
            }
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as err:  # truncated or not save_statistics' file
        raise DamagedArtefact(path, f"{type(err).__name__}: {err}") from err
    if stats["weights_sha256"] != expected_weights_sha256:
        raise ValueError(
            f"{path} was computed with Inception weights sha256 {stats['weights_sha256']}, "
            f"but the weights in use have sha256 {expected_weights_sha256}; recompute these statistics"
        )
    return stats
