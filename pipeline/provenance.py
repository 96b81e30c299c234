"""What made a result: config subtree, seed, code version, git commit, packages, device.

Every file the pipeline writes carries ``provenance(...)``: JSON files under a
``"provenance"`` key, HDF5 files as a JSON string attribute ``provenance``, CSV tables in a
``<name>.provenance.json`` beside them. All writes go through ``atomic_path`` so an
interrupted job never leaves a file that looks complete, and a full disk leaves nothing behind.
A file that a later job finds unreadable is reported by ``damaged_message``: the file, why, and the
Snakemake rule that remakes it (``REMAKING_RULES``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fnmatch
import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pipeline

REPO_ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def git_state() -> dict:
    """Commit and dirty flag of the checkout the package runs from (None outside git)."""
    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


@functools.lru_cache(maxsize=1)
def package_versions() -> dict:
    versions = {"python": platform.python_version(), "pipeline": pipeline.__version__}
    for name in ("torch", "numpy", "sklearn", "h5py", "torch_fidelity", "torchvision"):
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "unknown")
    return versions


def device_description(device: Any = None) -> str:
    import torch

    if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name(torch.device(device))}"
    return f"cpu:{platform.processor() or platform.machine()} x{os.cpu_count()}"


def provenance(config: dict | None = None, seed: int | None = None, device: Any = None, **extra: Any) -> dict:
    """The record written beside every result. ``config`` is the subtree that made it."""
    record = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "code_version": pipeline.__version__,
        "git": git_state(),
        "packages": package_versions(),
        "device": device_description(device),
        "host": platform.node(),
        "command": " ".join(sys.argv),
        "seed": seed,
        "config": config,
    }
    record.update(extra)
    return record


class DiskFull(OSError):
    """A write stopped by a full disk; the message names the file (its temporary is removed)."""


def _disk_full(err: BaseException, folder: Path) -> bool:
    """Whether a failed write ran out of space: ENOSPC in the error chain (Python's and h5py's
    OSError), or a file system left with under 1 MiB free (torch.save says only "unexpected pos
    ..." and carries no errno)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, OSError) and err.errno == errno.ENOSPC or "No space left on device" in str(err):
            return True
        err = err.__cause__ or err.__context__
    try:
        fs = os.statvfs(folder)
    except OSError:
        return False
    return (fs.f_bfree if os.geteuid() == 0 else fs.f_bavail) * fs.f_frsize < 1 << 20  # root may use the reserved blocks


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds. On a full
    disk the temporary is removed and ``DiskFull`` names ``path`` (whatever library was writing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except Exception as err:
        if not _disk_full(err, path.parent):
            raise
        tmp.unlink(missing_ok=True)
        raise DiskFull(errno.ENOSPC, f"No space left on device while writing {path} (nothing was left behind); "
                                     f"free space under {path.parent} and rerun") from err
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete temporaries of ``path`` left by killed writers (``kill -9`` skips every cleanup; a
    CelebA HDF5 temporary is ~10 GB). A temporary whose writer process still runs is kept."""
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:-len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# The Snakemake rule that remakes each artefact a downstream job reads, by file name (first match;
# a processed dataset is data/processed/{dataset}.h5): the one table every damaged-file message reads.
REMAKING_RULES = {
    "model.pt": "train_model",
    "metrics.json": "evaluate_model",
    "encodings.h5": "encode",
    "samples.h5": "sample",
    "fid.json": "fid_model",
    "real_seed*.json": "fid_real",
    "reference.npz": "fid_reference",
    "*.h5": "prepare_dataset",
}


def remaking_rule(path: str | os.PathLike) -> str | None:
    """The rule in REMAKING_RULES whose file name pattern ``path``'s name matches; None if none does."""
    return next((rule for pattern, rule in REMAKING_RULES.items() if fnmatch.fnmatch(Path(path).name, pattern)), None)


def damaged_message(path: str | os.PathLike, reason: Any) -> str:
    """One line for an artefact a job cannot read: the file, why, and how to get it back."""
    rule = remaking_rule(path)
    remake = f"Snakemake's rule {rule} remakes it" if rule else "the rule that made it remakes it"
    if not Path(path).exists():
        return f"{path} does not exist: {remake.replace('remakes', 'makes')} (`snakemake {path}`)"
    return f"{path} is damaged ({reason}): delete it and rerun; {remake}"


class DamagedArtefact(ValueError):
    """An artefact that cannot be read; the message (``damaged_message``) names it and its rule."""

    def __init__(self, path: str | os.PathLike, reason: Any):
        super().__init__(damaged_message(path, reason))
        self.path = Path(path)


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """sha256 of a file, read in blocks (raw-data checksums, weights identity)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json(path: str | os.PathLike, payload: dict, record: dict) -> None:
    """Write ``payload`` plus ``{"provenance": record}`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({**payload, "provenance": record}, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json_attr(record: dict) -> str:
    """A provenance record as a string for an HDF5 attribute."""
    return json.dumps(record, default=_jsonable)
