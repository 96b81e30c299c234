"""pyproject.toml and environment.yml describe the same dependencies; the CLI answers."""

import re
import subprocess
import sys
import tomllib

import yaml

from pipeline.provenance import REPO_ROOT


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert {_name(r) for r in pip} == {_name(r) for r in wanted}
    assert set(pip) == wanted, "same names must carry the same version constraints"


def test_cli_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "pipeline", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("prepare-data", "train", "encode", "evaluate", "sample", "fid-weights", "fid-reference", "fid-real", "fid", "table"):
        assert command in out


def test_cli_reports_missing_data_with_exit_code_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pipeline", "prepare-data", "--dataset", "mnist", "--options",
                             f'{{"raw_dir": "{tmp_path}/raw"}}', "--out", str(tmp_path / "mnist.h5")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "mnist5k" in result.stderr and "raw/mnist" in result.stderr
    assert not (tmp_path / "mnist.h5").exists()
