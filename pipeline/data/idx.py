"""IDX file reader (the MNIST / Fashion-MNIST format), with validation.

An IDX file is a big-endian header -- magic ``0x0000TTDD`` (TT = element type, 0x08 for
uint8; DD = number of dimensions), then one uint32 per dimension -- followed by the raw
bytes. Images are ``0x00000803`` (N, rows, cols), labels ``0x00000801`` (N,). Files may be
gzipped. A file whose byte count disagrees with its header is reported as truncated or
corrupt instead of being silently reshaped.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from pipeline.data.store import DataError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (EOFError, OSError, zlib.error) as exc:  # truncated / damaged gzip stream
        raise DataError(f"{path}: cannot read ({exc}); the file is truncated or corrupt, re-download it") from exc


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read one uint8 IDX file whose magic number must equal ``magic``."""
    path = Path(path)
    data = _read_bytes(path)
    ndim = magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(f"{path}: only {len(data)} bytes, shorter than an IDX header; "
                        "the file is truncated or corrupt, re-download it")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise DataError(f"{path}: IDX magic number 0x{found:08x}, expected 0x{magic:08x}; "
                        "this is not the expected IDX file (or it is corrupt), re-download it")
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    expected = int(np.prod(dims, dtype=np.int64))
    got = len(data) - header_len
    if got != expected:
        raise DataError(f"{path}: header {dims} announces {expected} data bytes but the file has {got}; "
                        "the file is truncated or corrupt, re-download it")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims)


def read_idx_pair(images_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 (N, 1, H, W) and labels as int64 (N,), with matching counts."""
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels; "
                        "the files do not belong together, re-download both")
    return images[:, None, :, :], labels.astype(np.int64)
