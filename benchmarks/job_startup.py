"""The fixed cost every DAG job pays before its work: a fresh interpreter, imports, argument parsing.

    python benchmarks/job_startup.py --repeats 3 --out benchmarks/out/job_startup.json

Times (best of ``--repeats``, CPU seconds of the child = user + system) fresh interpreters running:
``import torch``; the CLI's parser as a training/evaluation job builds it (``build_parser(False)``:
this module's own commands); the full parser with every module's commands (what each job paid
before the CLI loaded FID, claims and figure commands only for their own jobs); and the imports of a
table job. The quick profile runs ~120 jobs, so each second here is about two minutes of CPU there.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
from pathlib import Path

from pipeline.provenance import provenance, write_json

CASES = {
    "python_only": "pass",
    "import_torch": "import torch",
    "train_job_parser": "import pipeline.cli as c; c.build_parser(extensions=False); import pipeline.training",
    "full_parser_all_commands": "import pipeline.cli as c; c.build_parser(extensions=True); import pipeline.training",
    "table_job": "import pipeline.cli as c; c.build_parser(extensions=False); import pipeline.tables",
}


def child_cpu_seconds(code: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/out/job_startup.json")
    args = parser.parse_args()
    result = {"loadavg_1min_start": os.getloadavg()[0]}
    for name, code in CASES.items():
        result[f"{name}_cpu_s"] = round(min(child_cpu_seconds(code) for _ in range(args.repeats)), 2)
    result["loadavg_1min_end"] = os.getloadavg()[0]
    print(" ".join(f"{k}={v}" for k, v in result.items()))
    write_json(Path(args.out), result, provenance(vars(args)))
    return result


if __name__ == "__main__":
    main()
