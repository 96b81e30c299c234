"""Experiments stand apart from the product (issue 21.5): each one-off experiment under
experiments/<name>/ says the question it answered, its answer and where its results are, and uses
only the package's public names (no private function, no monkeypatched module attribute)."""

import ast
from pathlib import Path

import pytest

from pipeline.provenance import REPO_ROOT

pytestmark = pytest.mark.unit

EXPERIMENTS = sorted((REPO_ROOT / "experiments").glob("*/*.py"))


def private_uses(path: Path) -> list[str]:
    """Private pipeline names imported or reached, and assignments to a pipeline module's attributes."""
    tree = ast.parse(path.read_text())
    modules = set()  # local names bound to pipeline modules
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.startswith("pipeline")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline"):
            found += [f"line {node.lineno}: from {node.module} import {a.name}" for a in node.names if a.name.startswith("_")]
            if node.module == "pipeline":  # from pipeline import training
                modules |= {a.asname or a.name for a in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            if node.attr.startswith("_") and not node.attr.startswith("__"):
                found.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
            if isinstance(node.ctx, ast.Store):
                found.append(f"line {node.lineno}: assigns {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_experiment_uses_public_names_only(path):
    assert not private_uses(path), f"{path.relative_to(REPO_ROOT)}: {private_uses(path)}"


@pytest.mark.parametrize("path", [p for p in EXPERIMENTS if p.name == "run.py" and p.parent.name not in ("fidelity",)],
                         ids=lambda p: p.parent.name)
def test_experiment_states_question_answer_and_results(path):
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert "Question" in doc and "Answer" in doc, f"{path.relative_to(REPO_ROOT)}: the docstring needs its Question and Answer"


def test_the_check_sees_a_monkeypatch_and_a_private_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import pipeline.training as training\nfrom pipeline.training import _clip\ntraining.build_vae = None\ntraining._resume(1)\n")
    assert len(private_uses(bad)) == 3
