"""The Snakemake workflow catalog's conventions (issue 21.8): rules in snakefmt's format, the
catalog's usage file, the rule graph's pictures, a licence and a citation file."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.provenance import REPO_ROOT

RULE_FILES = [REPO_ROOT / "Snakefile", *sorted((REPO_ROOT / "workflow" / "rules").glob("*.smk"))]


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rules_are_in_snakefmt_format(path):
    """`make format` rewrites them; this fails on any rule file snakefmt would change."""
    snakefmt = Path(sys.executable).parent / "snakefmt"
    if not snakefmt.exists() and shutil.which("snakefmt") is None:
        pytest.fail("snakefmt is not installed: pip install -e '.[test]' (make setup)")
    command = [str(snakefmt) if snakefmt.exists() else "snakefmt", "--check", str(path)]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"run `make format`:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"


def test_catalog_usage_file():
    usage = yaml.safe_load((REPO_ROOT / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert usage["mandatory-flags"]["desc"].strip()
    deployment = usage["software-stack-deployment"]
    assert any(deployment[k] for k in ("conda", "singularity", "singularity+conda"))
    assert usage["report"] is True and (REPO_ROOT / "workflow" / "report" / "workflow.rst").exists()
    if deployment["conda"]:  # every conda: directive names a file that exists
        import re

        for path in RULE_FILES:
            for env in re.findall(r"conda:\s*\n\s*\"([^\"]+)\"", path.read_text()):
                assert (path.parent / env).resolve().exists(), f"{path.name}: conda env {env}"


def test_rule_graph_pictures_and_their_make_target():
    for ext in ("png", "svg"):
        assert (REPO_ROOT / "docs" / f"rulegraph.{ext}").stat().st_size > 5000, ext
    assert "\nrulegraph:" in (REPO_ROOT / "Makefile").read_text()


def test_license_and_citation():
    assert (REPO_ROOT / "LICENSE").read_text().startswith("MIT License")
    citation = yaml.safe_load((REPO_ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "MIT"
    paper = citation["preferred-citation"]
    assert paper["title"].startswith("LaDDer: Latent Data Distribution Modelling with a Generative Prior")
    assert [a["family-names"] for a in paper["authors"]] == ["Lin", "Clark"] and paper["year"] == 2020
    assert citation["references"][0]["title"] == paper["title"]
