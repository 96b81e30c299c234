"""The FID/KID measurements of the paper's tables, composed from the pure steps in metric.py.

Footing (issue 8.6). Every image set is scored *unpaired* against one reference set per dataset,
so the columns of a table differ only in where their images come from:

- reference: the first ``n_reference`` test images (features and statistics computed once per
  dataset and weights; ``reference.npz``);
- real images: ``n_samples`` images drawn with the seed from the *comparison pool*, disjoint from
  the reference: the training set (``real_split: train``, the default) or the test images after
  the first ``n_reference`` (``real_split: test``);
- reconstructions: decoder means at the posterior means of *the same* real images (the run's
  seed draws the same rows as ``real_seed{seed}.json``);
- generations: ``n_samples`` decoder means of z ~ p(z).

Why this footing. The paper compares reconstruction FID with generation FID (Table 1) and with the
real-image floor (supplement Table 1); reconstructing the reference images themselves (paired,
the old code) scores an image against its own reconstruction and is not comparable with the
unpaired generation and real-image columns. With one pool for real images and reconstructions,
"reconstruction - real" is the autoencoder's loss alone (same images, before and after), and
"generation - reconstruction" the prior's mismatch with the aggregate posterior. The training set
is the default pool because it exists at every scale: at paper scale MNIST and Fashion-MNIST have
10,000 test images, all of them in the reference, so no disjoint test images remain; it is also
the set the aggregate posterior (which the prior is fitted to) is defined on. ``real_split: test``
gives held-out reconstructions where the test set is large enough (CelebA's 20,000; small
references). ``fid_notes`` states the footing in words for the tables.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from pipeline.fid.metric import (
    check_kid_sizes,
    features_to_statistics,
    frechet_distance,
    images_to_features,
    kernel_inception_distance,
    load_statistics,
    save_statistics,
)
from pipeline.fid.weights import build_extractor, sha256_file

REAL_SPLITS = ("train", "test")


class FidScorer:
    """Inception features with one set of weights, loaded once per process; statistics carry its hash."""

    def __init__(self, weights_path: str | Path, device: torch.device | str = "cpu", batch_size: int = 32, progress: bool = True,
                 channels_last: bool = True):
        self.weights_path = Path(weights_path)
        self.weights_sha256 = sha256_file(self.weights_path)
        self.device = torch.device(device)
        self.extractor = build_extractor(self.weights_path, self.device, channels_last=channels_last)
        self.batch_size, self.progress = batch_size, progress

    def features(self, images: torch.Tensor) -> np.ndarray:
        return images_to_features(images, self.extractor, self.batch_size, progress=self.progress)  # (N, 2048)

    def save_reference(self, path: str | Path, features: np.ndarray, record: dict) -> None:
        save_statistics(path, features_to_statistics(features), record, weights_sha256=self.weights_sha256, features=features)

    def load_reference(self, path: str | Path) -> dict:
        reference = load_statistics(path, self.weights_sha256)
        if reference["features"] is None:
            raise ValueError(f"{path} holds no features (made before KID was added); delete it so the fid_reference rule remakes it")
        return reference


def scores(reference: dict, features: np.ndarray, kid_subset_size: int, kid_subsets: int, seed: int) -> dict:
    """FID and KID (mean, std) of features (N, 2048) against a loaded reference."""
    kid = kernel_inception_distance(features, reference["features"], kid_subset_size, kid_subsets, seed=seed)
    return {"fid": frechet_distance(reference, features), "kid": kid["mean"], "kid_std": kid["std"]}


# -- image sets -----------------------------------------------------------------------------
def _split_sizes(dataset_path: str | Path) -> dict:
    from pipeline.data import dataset_info  # checks the file is complete

    info = dataset_info(dataset_path)
    return {"train": info["n_train"], "test": info["n_test"]}


def comparison_rows(split: str, n_available: int, n: int, n_reference: int, seed: int) -> np.ndarray:
    """Sorted rows of ``split`` for the real-image set: n drawn with ``seed`` from the pool.

    The pool is the whole training split, or the test rows after the first ``n_reference`` (the
    reference), so real images and reconstructions never include a reference image.
    """
    check_comparison_pool(split, n_available, n, n_reference)
    start = n_reference if split == "test" else 0
    order = torch.randperm(n_available - start, generator=torch.Generator().manual_seed(seed))[:n]
    return np.sort(order.numpy()) + start  # (n,)


def check_comparison_pool(split: str, n_available: int, n: int, n_reference: int, dataset: str = "the dataset") -> None:
    """Refuse a real-image set larger than its pool (``n_available`` images in ``split``); the config
    check calls this before any job runs, the FID jobs again on the file they read."""
    if split not in REAL_SPLITS:
        raise ValueError(f"fid.real_split is {split!r}; use one of {REAL_SPLITS}")
    pool = n_available - (n_reference if split == "test" else 0)
    if pool < n:
        where = (f"test images after the {n_reference} reference images" if split == "test" else "training images")
        raise ValueError(f"fid.n_samples is {n} but {dataset} has {max(pool, 0)} {where} (fid.real_split: {split}); lower fid.n_samples"
                         + (" or fid.n_reference, or use fid.real_split: train" if split == "test" else ""))


def check_reference_count(n_test: int, n_reference: int, dataset: str = "the dataset") -> None:
    if n_test < n_reference:
        raise ValueError(f"fid.n_reference is {n_reference} but {dataset} has {n_test} test images; lower fid.n_reference")


def _read_rows(dataset_path: str | Path, split: str, rows: np.ndarray) -> torch.Tensor:
    """uint8 images (len(rows), C, H, W) of the given sorted rows, without reading the whole split."""
    with h5py.File(dataset_path, "r") as h5:
        return torch.from_numpy(np.asarray(h5[f"{split}/images"][rows]))


def reference_images(dataset_path: str | Path, n: int) -> torch.Tensor:
    check_reference_count(_split_sizes(dataset_path)["test"], n, str(dataset_path))
    return _read_rows(dataset_path, "test", np.arange(n))


def real_images(dataset_path: str | Path, n: int, n_reference: int, seed: int, split: str = "train") -> tuple[torch.Tensor, dict]:
    """The real-image set of a seed (also the images a model of that seed reconstructs) and its description."""
    rows = comparison_rows(split, _split_sizes(dataset_path)[split], n, n_reference, seed)
    return _read_rows(dataset_path, split, rows), footing(split, n, n_reference, seed)


def footing(split: str, n: int, n_reference: int, seed: int) -> dict:
    """What was compared with what, as data and as a sentence for table notes."""
    pool = "training images" if split == "train" else f"test images after the first {n_reference}"
    notes = (f"All sets unpaired against the first {n_reference} test images. Real images and reconstructions: the same "
             f"{n} {pool}, drawn with the run's seed ({seed}); generations: {n} samples of the prior.")
    return {"reference": f"test[0:{n_reference}]", "real_split": split, "real_pool": pool, "n_reference": n_reference,
            "n_samples": n, "draw_seed": seed, "paired": False, "notes": notes}


def check_sizes(options: dict) -> None:
    """Refuse option combinations before any network is loaded (KID subsets vs sample counts)."""
    check_kid_sizes(options["n_samples"], options["n_reference"], options["kid_subset_size"])
