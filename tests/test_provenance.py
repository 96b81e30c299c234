"""Atomic writes leave nothing half-written behind, and clean up after killed writers."""

import os
import subprocess
import sys

from pipeline.provenance import atomic_path


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "samples.h5"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".samples.h5.{dead}.tmp"  # what kill -9 of that process would leave
    stale.write_bytes(b"partial")
    alive = tmp_path / f".samples.h5.{os.getppid()}.tmp"  # a writer that is still running: kept
    alive.write_bytes(b"in progress")
    with atomic_path(target) as tmp:
        tmp.write_text("done")
    assert target.read_text() == "done" and not stale.exists() and alive.exists()


def test_a_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "metrics.json"
    try:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    except RuntimeError:
        pass
    assert not target.exists() and not list(tmp_path.iterdir())
