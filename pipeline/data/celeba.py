"""CelebA (aligned) from ``{raw_dir}/celeba``: the ``img_align_celeba/`` folder or its zip.

Preprocessing. The paper says only "resize to 128x128". The aligned images are 178 x 218
(width x height); resizing them straight to a square would squash faces. We take the largest
centred square, 178 x 178 (``crop_size``; rows 20..197), which keeps the face and hair, then
resize it to ``image_size`` with PIL's antialiased BICUBIC filter, as RGB uint8.

Split. The supplement holds out 20,000 random test images; which ones is not published. We sort
the file names and draw ``test_size`` of them with ``numpy.random.default_rng(split_seed)``;
``/{split}/filenames`` in the HDF5 file records the result. CelebA's aligned set has no class
labels: labels are stored as -1.

The 202,599 images (~9 GB at 128^2) are decoded and written in batches into preallocated
chunked datasets, never all in memory. The folder checksum is a sha256 over the sorted
(file name, file sha256) pairs, computed from the bytes read for decoding (one read per file).
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import Path

import h5py
import numpy as np
from PIL import Image
from tqdm import tqdm

from pipeline.data.store import CHUNK_IMAGES, DataError, create_split, h5_writer, set_sources
from pipeline.provenance import sha256_file

FOLDER = "img_align_celeba"
# a JPEG directly inside an img_align_celeba/ folder, at any depth of the zip
ZIP_MEMBER = re.compile(rf"(?:^|/){FOLDER}/([^/]+\.jpe?g)$", re.IGNORECASE)


class FolderSource:
    def __init__(self, folder: Path):
        self.folder = folder
        self.names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))

    def where(self, name: str) -> str:
        return str(self.folder / name)

    def read(self, name: str) -> bytes:
        return (self.folder / name).read_bytes()

    def record(self, digests: dict[str, str]) -> tuple[dict, dict]:
        combined = hashlib.sha256()
        for name in sorted(digests):
            combined.update(f"{name}\t{digests[name]}\n".encode())
        return {"path": str(self.folder), "how": "user folder"}, {str(self.folder): combined.hexdigest()}

    def close(self) -> None:
        pass


class ZipSource:
    def __init__(self, path: Path, members: dict[str, str]):
        self.path, self.members = path, members
        self.names = sorted(members)
        self.zip = zipfile.ZipFile(path)

    def where(self, name: str) -> str:
        return f"{self.path}:{self.members[name]}"

    def read(self, name: str) -> bytes:
        try:
            return self.zip.read(self.members[name])
        except (zipfile.BadZipFile, OSError, EOFError) as exc:  # e.g. CRC mismatch, truncated zip
            raise DataError(f"{self.where(name)}: cannot read from the zip ({exc}); re-download {self.path}") from exc

    def record(self, digests: dict[str, str]) -> tuple[dict, dict]:
        return {"path": str(self.path), "how": "user folder"}, {str(self.path): sha256_file(self.path)}

    def close(self) -> None:
        self.zip.close()


def _zip_members(path: Path) -> dict[str, str]:
    """file name -> member name of the img_align_celeba JPEGs in a zip."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path} is not a readable zip ({exc}); re-download it") from exc
    members = {}
    for member in names:
        match = ZIP_MEMBER.search(member)
        if match:
            if match.group(1) in members:
                raise DataError(f"{path} holds {match.group(1)} twice ({members[match.group(1)]}, {member}); "
                                "keep one img_align_celeba/ folder in the zip")
            members[match.group(1)] = member
    return members


def open_source(celeba_dir: Path) -> FolderSource | ZipSource:
    """The extracted folder if it has JPEGs, else img_align_celeba.zip, else any zip holding them."""
    folder = celeba_dir / FOLDER
    if folder.is_dir():
        source = FolderSource(folder)
        if source.names:
            return source
    zips = [celeba_dir / f"{FOLDER}.zip"] if (celeba_dir / f"{FOLDER}.zip").is_file() else []
    zips += sorted(p for p in celeba_dir.glob("*.zip") if p.name != f"{FOLDER}.zip")
    for path in zips:
        members = _zip_members(path)
        if members:
            return ZipSource(path, members)
    raise DataError(f"CelebA not found: put the aligned images (img_align_celeba/*.jpg, 202,599 files) into "
                    f"{folder}, or their zip (e.g. img_align_celeba.zip) into {celeba_dir}. "
                    "CelebA cannot be downloaded automatically here.")


def preprocess(data: bytes, where: str, crop_size: int, image_size: int) -> np.ndarray:
    """JPEG bytes -> uint8 (3, image_size, image_size): centre square crop, then bicubic resize."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("RGB")  # forces the full decode, so corrupt data fails here
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{where}: cannot decode this JPEG ({exc}); re-extract or re-download it") from exc
    width, height = img.size
    if width < crop_size or height < crop_size:
        raise DataError(f"{where}: image is {width}x{height}, smaller than crop_size={crop_size}; "
                        "is this the aligned CelebA (178x218)?")
    left, top = (width - crop_size) // 2, (height - crop_size) // 2
    img = img.crop((left, top, left + crop_size, top + crop_size))
    img = img.resize((image_size, image_size), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def split_names(names: list[str], test_size: int, seed: int) -> dict[str, list[str]]:
    """Random test split of ``test_size`` names; each split keeps the sorted order."""
    n = len(names)
    if n == 0:
        raise DataError("no CelebA images found")
    if not 0 < test_size < n:
        raise DataError(f"celeba.test_size={test_size} must be between 1 and {n - 1} (there are {n} images)")
    is_test = np.zeros(n, dtype=bool)
    is_test[np.random.default_rng(seed).choice(n, size=test_size, replace=False)] = True
    return {"train": [nm for nm, t in zip(names, is_test) if not t],
            "test": [nm for nm, t in zip(names, is_test) if t]}


def prepare_celeba(cfg: dict, out_path: Path) -> Path:
    c = cfg["celeba"]
    crop_size, image_size, test_size = int(c["crop_size"]), int(c["image_size"]), int(c["test_size"])
    seed = int(cfg["split_seed"])
    source = open_source(Path(cfg["raw_dir"]) / "celeba")
    try:
        splits = split_names(source.names, test_size, seed)
        digests: dict[str, str] = {}
        with h5_writer(out_path, name="celeba", split_seed=seed, data_cfg=cfg) as f, \
                tqdm(total=len(source.names), desc="celeba", unit="img") as bar:
            for split, names in splits.items():
                images_ds, _ = create_split(f, split, len(names), (3, image_size, image_size))
                f.create_dataset(f"{split}/filenames", data=names, dtype=h5py.string_dtype())
                for start in range(0, len(names), CHUNK_IMAGES):  # a block of images per write
                    batch = []
                    for name in names[start:start + CHUNK_IMAGES]:
                        data = source.read(name)
                        digests[name] = hashlib.sha256(data).hexdigest()
                        batch.append(preprocess(data, source.where(name), crop_size, image_size))
                    images_ds[start:start + len(batch)] = np.stack(batch)
                    bar.update(len(batch))
            src, checksums = source.record(digests)
            set_sources(f, [{**src, "n_images": len(source.names)}], checksums)
    finally:
        source.close()
    return Path(out_path)
