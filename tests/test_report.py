"""The Snakemake report (issue 13.5): tables rendered from their data with the paper's values, pages
that read at laptop width, captions whose counts follow the config, and a check that a finished
report holds every table, figure and claim the DAG built, with captions and run times.

``check_report(workdir, configfile)`` (tests/conftest.py) runs ``snakemake --report`` on a finished
workflow and is called at the end of tests/test_workflow.py's tiny end-to-end run (no second DAG run here)."""

import base64
import html
import json
import re
import subprocess
import sys
from collections import namedtuple
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote_to_bytes

import pandas as pd
import pytest

from pipeline.provenance import REPO_ROOT
from pipeline.report import claims_html, write_table_html
from pipeline.tables import PAPER_VALUES, build_table
from tests.conftest import decode_data_uri, read_report, rows

def write_run(path, dataset, method, seed, **metrics):
    path.write_text(json.dumps({"dataset": dataset, "method": method, "variant": "default", "seed": seed, "prior": method, "metrics": metrics}))
    return path


def test_table_page_shows_ours_above_the_papers_values(tmp_path):
    inputs = [write_run(tmp_path / f"{m}{s}.json", "mnist5k", m, s, elbo=e, rec_error=0.1, cross_entropy=-5.0)
              for m, s, e in [("normal", 0, 100.0), ("normal", 1, 110.0), ("ladder", 0, 120.0), ("ladder", 1, 124.0)]]
    summary = build_table("table3", inputs, tmp_path / "table3")
    write_table_html("table3", summary, tmp_path / "table3.html")
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
    # the page, rendered from the summary frame, shows every cell the Markdown shows, numbers right-aligned
    markdown_cells = [c.strip() for line in (tmp_path / "table3.md").read_text().splitlines() if line.startswith("| MNIST")
                      for c in line.strip("|").split("|")]
    assert markdown_cells == [c for _, cells in rows(page) for c in cells]
    assert '<td class="num">105.0 ± 7.1</td>' in page


def claim_row(claim, dataset, subject, verdict, note="", statement="LaDDer lowest", p=0.01):
    from pipeline.claims import CSV_COLUMNS

    row = dict.fromkeys(CSV_COLUMNS, "")
    row.update(claim=claim, dataset=dataset, subject=subject, statement=statement, paper="paper: ladder: 5.2", paper_agrees="yes",
               ours_per_seed="ladder: 4 ± 1 [3, 5]", n_seeds=2, test="Welch", deciding="ladder vs gmm", difference=1.5, ci_low=0.5,
               ci_high=2.5, interval="Welch t", p_value=p, p_opposite=1 - p, alpha=0.05, verdict=verdict, note=note)
    for key in ("mean", "std", "effect"):
        row[key] = float("nan")
    return row


def test_claims_page_renders_the_claims_frame_with_verdicts_marked_and_text_escaped(tmp_path):
    frame = pd.DataFrame([claim_row("C1", "mnist5k", "ladder", "holds"), claim_row("C1", "fashion_mnist", "ladder", "fails", "a rival <wins>"),
                          claim_row("C2", "mnist5k", "ladder", "inconclusive", "1 seed: means only", p=float("nan")),
                          claim_row("C7", "mnist5k", "gmm", "not run", statement="SLP higher"),
                          claim_row("C7", "mnist5k", "ladder", "holds", statement="SLP higher")])
    page = claims_html(frame, 0.05)
    assert "<title>The paper&#x27;s claims, checked on our runs</title>" in page and "alpha = 0.05" in page
    assert re.search(r"<li><strong>holds</strong>: every comparison of the claim is significant in the claimed direction \(one-sided", page)
    assert "a rival &lt;wins&gt;" in page and "<wins>" not in page
    summary = rows(page)[:3]  # the first grid: claim x dataset
    assert summary[0][1] == ["C1", "holds", "fails"] and summary[1][1] == ["C2", "inconclusive (1 seed)", "-"]
    assert summary[2][1][:2] == ["C7", "gmm: not run, ladder: holds"]
    assert '<td class="holds">holds</td>' in page and '<td class="inconclusive">inconclusive (1 seed)</td>' in page
    assert '<span class="not-run">not run</span>' in page  # several subjects: each verdict marked
    assert '<td class="fails"><strong>fails</strong></td>' in page and "<h2>C7: SLP higher</h2>" in page
    per_claim = [cells for _, cells in rows(page)[3:]]
    assert per_claim[0][0] == "MNIST-5k" and per_claim[0][5] == "2" and per_claim[0][8].startswith("1.5 [0.5, 2.5]")
    assert per_claim[0][9:12] == ["0.01", "0.99", "holds"] and per_claim[2][9] == "-"
    # python -m pipeline claims-html: the same page from results/claims.csv read back
    frame.to_csv(tmp_path / "claims.csv", index=False)
    from pipeline.cli import build_parser

    args = build_parser(extensions=False).parse_args(["claims-html", "--claims", str(tmp_path / "claims.csv"), "--out", str(tmp_path / "claims.html")])
    args.func(args)
    assert (tmp_path / "claims.html").read_text() == page


def css_rules(css: str) -> dict[str, str]:
    """selector -> declarations of a stylesheet (comments dropped)."""
    return {sel.strip(): body for sel, body in re.findall(r"([^{}]+)\{([^}]*)\}", re.sub(r"/\*.*?\*/", "", css, flags=re.S))}


def test_table_pages_scroll_sideways_and_the_menu_keeps_its_width(tmp_path):
    """Issue 20.5: at 1,280-1,440 px a table scrolls in its own box rather than wrapping one word per
    line, and Snakemake's menu keeps its width whatever the labels (checked by screenshots too)."""
    inputs = [write_run(tmp_path / f"{m}{s}.json", "mnist5k", m, s, elbo=100.0 + s, rec_error=0.1, cross_entropy=-5.0)
              for m in ("normal", "vampprior", "gmm", "hierarchical", "ladder") for s in (0, 1)]
    write_table_html("table3", build_table("table3", inputs, tmp_path / "table3"), tmp_path / "table3.html")
    page = (tmp_path / "table3.html").read_text()
    tables = re.findall(r"(.{0,40})<table>", page)
    assert len(tables) == page.count("<h2>") == 2 and all(before.endswith('<div class="scroll">') for before in tables), tables
    style = css_rules(re.search(r"<style>(.*?)</style>", page, re.S).group(1))
    assert "overflow-x: auto" in style[".scroll"] and "white-space: nowrap" in style["th, td"]

    css = (REPO_ROOT / "workflow" / "report" / "style.css").read_text()
    nav = css_rules(css)["nav.h-screen.min-w-fit"]  # the menu, not the breadcrumb bar (also a <nav>)
    assert "min-width: 0" in nav and re.search(r"(^|;)\s*width:\s*\d+(rem|px)", nav), nav
    # the stylesheet reaches every report built from the repository root
    profile = (REPO_ROOT / "profiles" / "default" / "config.yaml").read_text()
    assert re.search(r"^report-stylesheet: workflow/report/style.css$", profile, re.M)


def render_caption(name: str, config: dict, **wildcards) -> str:
    """A caption as Snakemake renders it (snakemake/report/__init__.py: jinja2 with trim_blocks and
    lstrip_blocks, then docutils), as plain text."""
    from docutils.core import publish_parts
    from jinja2 import Environment

    category = namedtuple("Category", "name")  # Snakemake's categories are keyed by objects with a name
    categories = {category(n): {} for n in ("Tables", "Claims", "Figures", "Samples (supplement Figures 1-5)")}
    # the link targets Snakemake appends (rst_links)
    links = "".join(f"\n.. _{n}: javascript:void(0)" for n in ("Workflow", "Statistics", *(c.name for c in categories)))
    text = (REPO_ROOT / "workflow" / "report" / name).read_text() + "\n" + links + "\n"
    snakemake = SimpleNamespace(config=config, wildcards=SimpleNamespace(**wildcards))
    rst = Environment(trim_blocks=True, lstrip_blocks=True).from_string(text).render(snakemake=snakemake, categories=categories, files=[])
    body = publish_parts(rst, writer="html", settings_overrides={"report_level": 2})["html_body"]
    assert "system-message" not in body, body
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", body)))


@pytest.mark.parametrize("epochs, rows", [(1, 4), (3, 7)])
def test_caption_counts_follow_the_config(epochs, rows):
    """Issue 20.5: captions said "1 epochs" and "10 x 10 grid" whatever the run."""
    from pipeline.config import load_config

    config = load_config(REPO_ROOT / "config" / "quick.yaml")
    config["run"]["datasets"] = ["mnist5k"]
    config["datasets"]["mnist5k"]["epochs"] = epochs
    config["sampling"]["grid_rows"] = rows
    config["figures"]["samples_grid_rows"] = rows + 1
    trained = f"{epochs} epoch{'s' if epochs != 1 else ''}"
    table = render_caption("tables.rst", config, table="table3")
    assert f"mnist5k for {trained} (batch" in table
    workflow = render_caption("workflow.rst", config)
    assert f"mnist5k: {trained}, batch" in workflow and f"a {rows} x {rows} grid of generations" in workflow
    assert f"{(rows + 1) ** 2} samples ({rows + 1} x {rows + 1}" in render_caption("samples_grid.rst", config, method="ladder")
    for caption in (table, workflow):
        assert "1 epochs" not in caption and "10 x 10" not in caption


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
