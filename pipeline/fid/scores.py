"""The FID measurements of the paper's tables, composed from the pure steps in metric.py.

- reference statistics: the first ``n_reference`` test images of a dataset, computed once per
  dataset and reused by every model (a file of their own, tied to the weights' sha256);
- real-image FID (supplement Table 1 and 2, "Real image"): ``n_samples`` training images drawn
  with the seed vs the reference, the floor any model can reach at that sample count;
- per model: generated samples (decoder means of z ~ p(z)) vs the reference, reconstructions
  of the test set vs the reference, and their difference (Table 1).
Every image reaches the network as uint8 through ``quantise``.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from pipeline.data import load_split
from pipeline.fid.metric import features_to_statistics, images_to_features, load_statistics, save_statistics, statistics_to_fid
from pipeline.fid.weights import build_extractor, sha256_file


class FidScorer:
    """Inception features with one set of weights; statistics carry that weights' hash."""

    def __init__(self, weights_path: str | Path, device: torch.device | str = "cpu", batch_size: int = 64, progress: bool = True):
        self.weights_path = Path(weights_path)
        self.weights_sha256 = sha256_file(self.weights_path)
        self.device = torch.device(device)
        self.extractor = build_extractor(self.weights_path, self.device)
        self.batch_size, self.progress = batch_size, progress

    def statistics(self, images: torch.Tensor) -> dict:
        return features_to_statistics(images_to_features(images, self.extractor, self.batch_size, self.device, self.progress))

    def save(self, path: str | Path, stats: dict, record: dict) -> None:
        save_statistics(path, stats, record, weights_sha256=self.weights_sha256)

    def load(self, path: str | Path) -> dict:
        return load_statistics(path, self.weights_sha256)


def reference_images(dataset_path: str | Path, n: int) -> torch.Tensor:
    images, _ = load_split(dataset_path, "test", limit=n)
    if len(images) < n:
        raise ValueError(f"fid.n_reference is {n} but {dataset_path} has only {len(images)} test images; lower it")
    return images


def real_images(dataset_path: str | Path, n: int, seed: int) -> torch.Tensor:
    images, _ = load_split(dataset_path, "train")
    if len(images) < n:
        raise ValueError(f"fid.n_samples is {n} but {dataset_path} has only {len(images)} training images; lower it")
    return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]]


def generated_images(samples_path: str | Path, n: int) -> torch.Tensor:
    with h5py.File(samples_path, "r") as h5:
        available = h5["images"].shape[0]
        if available < n:
            raise ValueError(f"{samples_path} holds {available} samples but fid.n_samples is {n}; raise sampling.n_samples")
        return torch.from_numpy(np.asarray(h5["images"][:n]))


def model_fids(scorer: FidScorer, reference: dict, generated: torch.Tensor, reconstructed: torch.Tensor) -> dict:
    """Table 1's three numbers for one model."""
    generation = statistics_to_fid(scorer.statistics(generated), reference)
    reconstruction = statistics_to_fid(scorer.statistics(reconstructed), reference)
    return {"fid_generation": generation, "fid_reconstruction": reconstruction, "fid_difference": generation - reconstruction,
            "fid_n_generated": len(generated), "fid_n_reconstructed": len(reconstructed), "fid_n_reference": reference["n"]}
