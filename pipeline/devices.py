"""Which device a job runs on: the one home of ``auto`` / ``cpu`` / ``cuda[:K]`` (issue 21), and
a GPU slot per job on a box with several GPUs (issue 23).

Snakemake never sets ``CUDA_VISIBLE_DEVICES`` (docs/cluster.md): with ``--resources gpu=N`` on a
box with N GPUs it runs N GPU jobs at once, and each of them would take ``cuda:0``. So a job whose
device is ``auto`` or ``cuda`` (no index) takes a *slot*: it locks the file
``gpu-<id>.slot<rank>`` in a shared folder with ``flock`` and keeps it open until the process
ends (the kernel releases the lock however it ends, so a killed job leaves no stale slot). The
job tries rank 0 of every candidate GPU before rank 1 of any: with at most N GPU jobs running
(``--resources gpu=N``), a free rank-0 slot always exists, so every job has a GPU of its own;
with more jobs than GPUs (no ``--resources gpu``, the small MNIST networks share a GPU well),
they spread evenly instead of piling onto the first.

- ``LADDER_GPUS=1,3`` pins the set of GPUs slots are drawn from (indices as this process sees
  them, i.e. within ``CUDA_VISIBLE_DEVICES`` where that is set).
- ``LADDER_GPU_SLOT_DIR`` is the slot folder (default: ``ladder-gpu-slots-<uid>`` in the
  system's temporary folder; every workflow of one user on the box shares it).
- A GPU is named in lock files by its ``CUDA_VISIBLE_DEVICES`` entry where that is set (a
  physical index or UUID), so jobs that see different subsets still count the same GPU once.
- One visible candidate (a SLURM job given one GPU: SLURM sets ``CUDA_VISIBLE_DEVICES``) needs
  no slot: the job uses the GPU its allocation gave it.
- ``cuda:K`` is used as given, without a slot.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import re
import tempfile
from pathlib import Path

import torch

log = logging.getLogger(__name__)

GPUS_ENV = "LADDER_GPUS"
SLOT_DIR_ENV = "LADDER_GPU_SLOT_DIR"

# The slot this process holds: (device index, open locked file), kept until the process exits.
_held: list[tuple[int, object]] = []


class DeviceUnavailable(RuntimeError):
    pass


def _visible() -> str:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "unset")


def resolve_device(name: str = "auto", key: str = "training.device") -> torch.device:
    """``auto`` -> a GPU slot if CUDA is available, else ``cpu``; ``cuda`` -> a GPU slot;
    ``cuda:K`` and ``cpu`` as given. ``key`` names the config key in errors and in the log line."""
    if name == "auto" and not torch.cuda.is_available():
        log.info("device cpu (%s auto: no CUDA device; CUDA_VISIBLE_DEVICES=%s)", key, _visible())
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(f"{key} is {name!r} but no CUDA device is available; use 'auto' or 'cpu'")
    if name in ("auto", "cuda"):
        index = acquire_gpu()
        torch.cuda.set_device(index)  # stray allocations without a device go there too
        log.info("device cuda:%d (%s %s; CUDA_VISIBLE_DEVICES=%s)", index, key, name, _visible())
        return torch.device("cuda", index)
    return torch.device(name)


def gpu_candidates() -> list[int]:
    """Indices of the visible GPUs slots are drawn from: all, or those ``LADDER_GPUS`` names."""
    count = torch.cuda.device_count()
    pinned = os.environ.get(GPUS_ENV, "").strip()
    if not pinned:
        return list(range(count))
    try:
        indices = [int(item) for item in pinned.split(",") if item.strip()]
    except ValueError:
        raise DeviceUnavailable(f"{GPUS_ENV}={pinned!r}: give GPU indices separated by commas, e.g. {GPUS_ENV}=0,2") from None
    outside = [i for i in indices if not 0 <= i < count]
    if not indices or outside:
        raise DeviceUnavailable(f"{GPUS_ENV}={pinned!r} names GPUs {outside or indices} but this process sees {count} "
                                f"(indices 0..{count - 1}; CUDA_VISIBLE_DEVICES={_visible()})")
    return list(dict.fromkeys(indices))


def slot_dir() -> Path:
    return Path(os.environ.get(SLOT_DIR_ENV) or Path(tempfile.gettempdir()) / f"ladder-gpu-slots-{os.getuid()}")


def _gpu_ids(count: int) -> list[str]:
    """A name per visible index for lock files: the CUDA_VISIBLE_DEVICES entry, else the index."""
    visible = [item.strip() for item in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if item.strip()]
    ids = visible if len(visible) >= count else [str(i) for i in range(count)]
    return [re.sub(r"[^A-Za-z0-9_.-]", "_", name) for name in ids[:count]]


def acquire_gpu() -> int:
    """The index of this process's GPU slot, taken on the first call and held until exit."""
    if _held:
        return _held[0][0]
    candidates = gpu_candidates()
    if len(candidates) == 1:
        return candidates[0]
    ids = _gpu_ids(torch.cuda.device_count())
    directory = slot_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for rank in itertools.count():  # ends: a rank no job holds yet is always free
        for index in candidates:
            handle = open(directory / f"gpu-{ids[index]}.slot{rank}", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            _held.append((index, handle))
            log.info("GPU slot %s/gpu-%s.slot%d: cuda:%d of candidates %s", directory, ids[index], rank, index, candidates)
            return index


def release_gpu() -> None:
    """Give the slot back before the process ends (tests; a process's exit does it anyway)."""
    while _held:
        _, handle = _held.pop()
        handle.close()
