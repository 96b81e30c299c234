"""The Snakemake report (issue 13.5): tables rendered with the paper's values, and a check that a
finished report holds every table, figure and claim the DAG built, with captions and run times.

``check_report(workdir, configfile)`` runs ``snakemake --report`` on a finished workflow and is
called at the end of tests/test_workflow.py's tiny end-to-end run (no second DAG run here)."""

import base64
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from pipeline.provenance import REPO_ROOT
from pipeline.report import decode_data_uri, markdown_html, read_report, write_markdown_html
from pipeline.tables import PAPER_VALUES, build_table

# Rules of the end-to-end run whose job run times the report must show (Statistics panel).
TIMED_RULES = ("prepare_dataset", "train_model", "evaluate_model", "fid_model", "table", "claims")


def write_run(path, dataset, method, seed, **metrics):
    path.write_text(json.dumps({"dataset": dataset, "method": method, "variant": "default", "seed": seed, "prior": method, "metrics": metrics}))
    return path


def rows(page: str) -> list[tuple[str, list[str]]]:
    """(row class, cell texts) of every body row of every table in a page."""
    out = []
    for cls, body in re.findall(r'<tr(?: class="([^"]*)")?>(.*?)</tr>', page, re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
        if cells:
            out.append((cls, cells))
    return out


def test_table_page_shows_ours_above_the_papers_values(tmp_path):
    inputs = [write_run(tmp_path / f"{m}{s}.json", "mnist5k", m, s, elbo=e, rec_error=0.1, cross_entropy=-5.0)
              for m, s, e in [("normal", 0, 100.0), ("normal", 1, 110.0), ("ladder", 0, 120.0), ("ladder", 1, 124.0)]]
    summary = build_table("table3", inputs, tmp_path / "table3")
    write_markdown_html(tmp_path / "table3.md", tmp_path / "table3.html")
    page = (tmp_path / "table3.html").read_text()
    assert page.startswith("<!doctype html>") and "<title>Table 3:" in page

    paper = pd.read_csv(PAPER_VALUES, comment="#").query("table == 'table3' and metric == 'elbo' and dataset == 'mnist'").set_index("method")
    ours = summary[summary.metric == "elbo"].set_index("method")
    elbo_rows = rows(page)[:2]  # the first grid is the ELBO
    assert [cls for cls, _ in elbo_rows] == ["ours", "paper"]
    (_, ours_cells), (_, paper_cells) = elbo_rows
    assert ours_cells[:2] == ["MNIST-5k", "ours"] and paper_cells[:2] == ["MNIST-5k", "paper (MNIST)"]
    for column, method in enumerate(["normal", "ladder"], start=2):
        assert ours_cells[column] == f"{ours.loc[method, 'mean']:.1f} ± {ours.loc[method, 'std']:.1f}"
        assert paper_cells[column] == f"{paper.loc[method, 'mean']:.1f} ± {paper.loc[method, 'std']:.1f}"
    # every cell of the Markdown table reaches the page, numbers right-aligned
    markdown_cells = [c.strip() for line in (tmp_path / "table3.md").read_text().splitlines() if line.startswith("| MNIST")
                      for c in line.strip("|").split("|")]
    assert markdown_cells == [c for _, cells in rows(page) for c in cells]
    assert '<td class="num">105.0 ± 7.1</td>' in page


def test_claims_verdicts_are_marked_and_text_is_escaped():
    text = ("# Claims\n\nVerdicts (alpha = 0.05):\n- **holds**: every comparison\n  continues here.\n- **fails**: a rival <wins>\n\n"
            "## Summary\n\n| Claim | MNIST |\n|---|---|\n| C1 | holds |\n| C2 | inconclusive (1 seed) |\n| C3 | not run |\n\n"
            "## C1: x\n\n| Dataset | Verdict | Note |\n|---|---|---|\n| MNIST | **fails** | holds nothing |\n")
    page = markdown_html(text)
    assert "<title>Claims</title>" in page
    assert "<li><strong>holds</strong>: every comparison continues here.</li>" in page
    assert "a rival &lt;wins&gt;" in page and "<wins>" not in page
    assert '<td class="holds">holds</td>' in page and '<td class="inconclusive">inconclusive (1 seed)</td>' in page
    assert '<td class="not-run">not run</td>' in page and '<td class="fails"><strong>fails</strong></td>' in page
    assert "<td>holds nothing</td>" in page  # a Note column is not a verdict


def test_read_report_parses_snakemake_page(tmp_path):
    png = b"\x89PNG fake"
    uri = "data:image/png;charset=utf8;filename=a.png;base64," + base64.b64encode(png).decode()
    results = {"results/a.png": {"name": "a.png", "caption": "<p>A</p>", "mime_type": "image/png", "data_uri": uri}}
    page = ('<script>var results = new Array(3);</script>'  # the bundled libraries hold such lines too
            f'<script id="workflow-desc">\nvar workflow_desc = {json.dumps("<p>desc</p>")};\n</script>'
            f'<script id="results">\nvar results = {json.dumps(results)};\n</script>'
            f'<script id="categories">\nvar categories = {json.dumps({"Figures": {"Fig": ["results/a.png"]}})};\n</script>'
            f'<script id="runtimes">\nvar runtimes_spec = {json.dumps({"data": {"values": [{"rule": "train_model", "runtime": 2.5}]}})};\n</script>')
    (tmp_path / "r.html").write_text(page)
    contents = read_report(tmp_path / "r.html")
    assert contents.in_category("Figures") == ["results/a.png"] and contents.runtimes[0]["rule"] == "train_model"
    assert decode_data_uri(contents.results["results/a.png"]["data_uri"]) == png and contents.description == "<p>desc</p>"


# -- the check on a finished workflow (called from tests/test_workflow.py) --------------------------
def _caption_ok(path: str, entry: dict) -> None:
    caption = entry.get("caption") or ""
    assert len(re.sub(r"<[^>]+>", "", caption).strip()) > 40, f"{path}: the report shows no caption"
    # docutils renders RST errors into the caption as "System Message" blocks
    assert "System Message" not in caption and "system-message" not in caption, f"{path}: caption has an RST error: {caption[:500]}"


def check_report(workdir: Path, configfile: Path, timeout: int = 600, snakefile: Path = REPO_ROOT / "Snakefile"):
    """Build ``snakemake --report`` in a finished workflow and check that it holds every table
    (as its HTML page, with the paper's rows), the claims' verdicts, every figure the DAG wrote
    under results/figures, each with a caption, and the jobs' run times. ``workdir`` must hold a
    finished run of ``configfile`` and nothing older (every PNG under results/figures is expected
    in the report). Returns the contents (pipeline.report.ReportContents)."""
    workdir = Path(workdir)
    out = workdir / "report.html"
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--report", str(out), "--configfile", str(configfile)]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    contents = read_report(out)
    assert contents.description.strip(), "no workflow description: the Snakefile needs `report: \"workflow/report/workflow.rst\"`"

    tables = sorted(workdir.glob("results/tables/*.md"))
    assert tables, "the workflow built no table"
    for md in tables:
        path = f"results/tables/{md.stem}.html"
        assert path in contents.in_category("Tables"), f"{path} is not in the report's Tables (has {contents.in_category('Tables')})"
        entry = contents.results[path]
        _caption_ok(path, entry)
        page = decode_data_uri(entry["data_uri"]).decode()
        kinds = [cls for cls, _ in rows(page)]
        assert "ours" in kinds and "paper" in kinds, f"{path}: the page lacks our rows or the paper's"
        cells = [c.strip() for line in md.read_text().splitlines() if line.startswith("|") and not line.startswith(("| Dataset", "|---"))
                 for c in line.strip("|").split("|")]
        assert cells == [c for _, row in rows(page) for c in row], f"{path}: the page's cells differ from {md.name}'s"

    if (workdir / "results" / "claims.md").exists():
        assert "results/claims.html" in contents.in_category("Claims"), "the claims' verdicts are not in the report"
        _caption_ok("results/claims.html", contents.results["results/claims.html"])
        page = decode_data_uri(contents.results["results/claims.html"]["data_uri"]).decode()
        assert re.search(r'<td class="(holds|fails|inconclusive|not-run)">', page), "the claims page shows no verdict"

    figures = sorted(str(p.relative_to(workdir)) for p in workdir.glob("results/figures/**/*.png"))
    assert figures, "the workflow built no figure"
    missing = [f for f in figures if f not in contents.results]
    assert not missing, f"figures not in the report: {missing}"
    for path in figures:
        assert contents.results[path]["mime_type"] == "image/png", path
        _caption_ok(path, contents.results[path])

    timed = {r["rule"] for r in contents.runtimes}
    assert set(TIMED_RULES) <= timed, f"no run time for rules {set(TIMED_RULES) - timed}"
    assert all(r["runtime"] >= 0 for r in contents.runtimes)
    return contents
