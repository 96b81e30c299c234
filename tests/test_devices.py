"""GPU slots (pipeline/devices.py) on a CPU machine: the GPU count is simulated by monkeypatching
torch.cuda, and each "job" is a slot taken and kept, as a job process keeps it for its lifetime."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from pipeline import devices
from pipeline.provenance import REPO_ROOT


@pytest.fixture
def gpus(monkeypatch, tmp_path):
    """simulate(n): this process sees n CUDA devices; slots live in a folder of this test."""
    chosen = []
    monkeypatch.setenv(devices.SLOT_DIR_ENV, str(tmp_path / "slots"))
    monkeypatch.delenv(devices.GPUS_ENV, raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(devices, "_held", [])

    def simulate(n):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
        return chosen

    yield simulate
    devices.release_gpu()


class Jobs:
    """Slots held as by separate job processes: each start() is a new job's resolve_device."""

    def __init__(self):
        self.running = {}

    def start(self, name, device="auto"):
        got = devices.resolve_device(device)
        self.running[name] = devices._held.pop() if devices._held else None  # the job keeps its slot
        return got

    def finish(self, name):
        held = self.running.pop(name)
        if held is not None:
            held[1].close()  # the process ends: the kernel drops its lock

    def finish_all(self):
        for name in list(self.running):
            self.finish(name)


@pytest.fixture
def jobs():
    running = Jobs()
    yield running
    running.finish_all()


def test_with_as_many_jobs_as_gpus_each_job_gets_a_gpu_of_its_own(gpus, jobs):
    chosen = gpus(4)
    got = [jobs.start(f"job{i}") for i in range(4)]
    assert sorted(d.index for d in got) == [0, 1, 2, 3] and all(d.type == "cuda" for d in got)
    assert chosen == [0, 1, 2, 3]  # torch.cuda.set_device follows the slot
    # --resources gpu=4: a job starts only when one ends, and it takes the GPU that job freed.
    jobs.finish("job2")
    assert jobs.start("job4").index == 2
    jobs.finish("job0")
    assert jobs.start("job5", "cuda").index == 0


def test_more_jobs_than_gpus_spread_evenly(gpus, jobs):
    gpus(2)
    got = [jobs.start(f"job{i}").index for i in range(5)]
    assert sorted(got) == [0, 0, 0, 1, 1]


def test_pinned_gpus_are_the_only_ones_used(gpus, jobs, monkeypatch):
    gpus(4)
    monkeypatch.setenv(devices.GPUS_ENV, "3,1")
    assert [jobs.start(f"job{i}").index for i in range(4)] == [3, 1, 3, 1]


@pytest.mark.parametrize("pinned", ["4", "0,x", " , "])
def test_a_pin_outside_the_visible_gpus_is_an_error_naming_it(gpus, monkeypatch, pinned):
    gpus(2)
    monkeypatch.setenv(devices.GPUS_ENV, pinned)
    with pytest.raises(devices.DeviceUnavailable, match=devices.GPUS_ENV):
        devices.resolve_device("auto")


def test_one_process_holds_one_slot(gpus):
    gpus(3)
    assert devices.resolve_device("auto") == devices.resolve_device("cuda") == torch.device("cuda", 0)
    assert len(devices._held) == 1


def test_a_single_visible_gpu_is_used_without_a_slot(gpus, jobs, monkeypatch, tmp_path):
    """A SLURM job given one GPU: SLURM sets CUDA_VISIBLE_DEVICES; every job of a group uses it."""
    gpus(1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert [jobs.start(f"job{i}").index for i in range(3)] == [0, 0, 0]
    assert not (tmp_path / "slots").exists()


def test_slots_name_gpus_by_their_visible_ids(gpus, jobs, monkeypatch, tmp_path):
    """Jobs seeing different subsets of the box's GPUs count the same physical GPU once."""
    gpus(2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    jobs.start("a")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,2")  # another job's view: physical 3 is its index 0
    assert jobs.start("b").index == 0  # physical 3: physical 2 holds a's slot
    assert sorted(p.name for p in (tmp_path / "slots").iterdir()) == ["gpu-2.slot0", "gpu-3.slot0"]


def test_explicit_devices_and_no_cuda(gpus):
    gpus(4)
    assert devices.resolve_device("cuda:2") == torch.device("cuda", 2) and not devices._held
    assert devices.resolve_device("cpu") == torch.device("cpu")
    gpus(0)
    assert devices.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(devices.DeviceUnavailable, match="fid.device is 'cuda'"):
        devices.resolve_device("cuda", key="fid.device")


def test_every_command_resolves_devices_through_the_slots(gpus):
    from pipeline import cli, training
    from pipeline.config import ConfigError
    from pipeline.fid import commands as fid_commands

    assert training.resolve_device is devices.resolve_device
    gpus(2)
    assert cli._device("auto") == torch.device("cuda", 0)
    devices.release_gpu()
    assert fid_commands._device("auto") == torch.device("cuda", 0)
    gpus(0)
    with pytest.raises(ConfigError, match="fid.device"):
        fid_commands._device("cuda")


HOLDER = textwrap.dedent("""
    import sys, torch
    torch.cuda.is_available = lambda: True
    torch.cuda.device_count = lambda: 2
    torch.cuda.set_device = lambda index: None
    from pipeline.devices import resolve_device
    print(resolve_device("auto").index, flush=True)
    sys.stdin.readline()  # hold the slot until told to exit
""")


def test_a_slot_is_held_across_processes_and_freed_when_its_process_dies(gpus, jobs, tmp_path):
    gpus(2)
    env = {**os.environ, devices.SLOT_DIR_ENV: str(tmp_path / "slots"), "PYTHONPATH": str(REPO_ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "0"
        assert jobs.start("mine").index == 1
        jobs.finish("mine")
    finally:
        holder.kill()  # killed, not exited cleanly: the lock still goes
        holder.wait(timeout=30)
    assert jobs.start("next").index == 0
