"""Pages of the Snakemake report (``snakemake --report report.html``, issue 13.5).

Snakemake's report shows images and HTML in its viewer but offers a CSV or Markdown file only as
a download, so every table and the claims are also written as a small standalone HTML page,
rendered here from the table data, not from the Markdown: a paper table from its summary frame
(``pipeline.tables.summarise``; the same per-metric grids and notes the Markdown and LaTeX print),
the claims from their frame (one row per claim, dataset and subject, as ``results/claims.csv``
holds it), ours above the paper's values, verdicts coloured.

The report's viewer shows a page in a frame beside its menu, about 1,000 px wide on a 1,366-px
laptop screen: each table sits in a container that scrolls sideways, and cells never wrap, so a
six-prior grid stays one row per line. (workflow/report/style.css keeps the menu's width.)

    python -m pipeline table --name table2 --inputs ... --out-prefix results/tables/table2 --html results/tables/table2.html
    python -m pipeline claims-html --claims results/claims.csv --out results/claims.html
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path

import pandas as pd

from pipeline.provenance import atomic_path

VERDICTS = ("holds", "fails", "inconclusive", "not run")
CLAIMS_TITLE = "The paper's claims, checked on our runs"

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1f2937; margin: 12px 16px; }
h1 { font-size: 18px; margin: 0 0 10px; }
h2 { font-size: 15px; margin: 18px 0 6px; }
/* a table wider than the report's viewer scrolls sideways in its own box; its cells never wrap */
.scroll { overflow-x: auto; max-width: 100%; margin: 4px 0 10px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13px; }
th, td { white-space: nowrap; border: 1px solid #d1d5db; padding: 3px 8px; vertical-align: top; }
th { background: #f3f4f6; text-align: left; }
td.num { text-align: right; }
td.long { white-space: normal; min-width: 24ch; max-width: 60ch; }  /* claims' free-text cells: wrap, at a readable width */
tr.paper td { color: #6b7280; font-style: italic; background: #fafafa; }
tr.paper td:first-child, tr.paper td:nth-child(2) { font-style: normal; }
tr.ours + tr.paper td { border-top-style: dotted; }
.holds { background: #dcfce7; } .fails { background: #fee2e2; } .inconclusive { background: #fef9c3; }
.not-run { color: #9ca3af; }
td span.holds, td span.fails, td span.inconclusive, td span.not-run { padding: 0 3px; }
p, li { max-width: 110ch; } p.note { color: #4b5563; margin: 2px 0; }
code { background: #f3f4f6; padding: 0 3px; }
"""

# A table cell that is a number, a mean ± std, or "-" is right-aligned.
_NUMERIC = re.compile(r"^-?[\d.,]+(e[+-]?\d+)?( ± [\d.,]+(e[+-]?\d+)?)?( †)?$|^-$")


def _text(value) -> str:
    """A cell's text: '' for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _inline(text: str) -> str:
    """Escape HTML, then the two inline marks prose from our writers uses: **bold** and `code`."""
    out = html.escape(text.strip(), quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _verdict_class(verdict: str) -> str:
    return verdict.replace(" ", "-")


def _table(header: list[str], rows: list[list[str]], row_classes: list[str] | None = None,
           cell_classes: list[list[str]] | None = None) -> str:
    """A table in its sideways-scrolling box; cells are HTML already, classes '' for none."""
    out = ['<div class="scroll"><table>', "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead>", "<tbody>"]
    for i, cells in enumerate(rows):
        kind = row_classes[i] if row_classes else ""
        classes = cell_classes[i] if cell_classes else [""] * len(cells)
        tds = "".join(f'<td class="{c}">{cell}</td>' if c else f"<td>{cell}</td>" for cell, c in zip(cells, classes))
        out.append((f'<tr class="{kind}">' if kind else "<tr>") + tds + "</tr>")
    return "\n".join(out + ["</tbody>", "</table></div>"])


def page(title: str, body: list[str]) -> str:
    """A standalone HTML page: its title as the first heading, then ``body`` (HTML blocks)."""
    head = f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
    return head + f"<style>{STYLE}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n" + "\n".join(body) + "\n</body></html>\n"


# -- paper tables ---------------------------------------------------------------------------
def table_html(name: str, summary: pd.DataFrame) -> str:
    """The page of table ``name`` from its summary frame: per metric a grid with a row of ours
    and a row of the paper's values per dataset (``pipeline.tables.grid``), then its notes."""
    from pipeline.tables import TABLES, grid, table_notes

    body = []
    for metric, frame in grid(name, summary):
        rows, kinds, classes = [], [], []
        for (dataset, source), values in zip(frame.index, frame.values):
            cells = [dataset, source, *map(_text, values)]
            rows.append([html.escape(c) for c in cells])
            kinds.append("ours" if source == "ours" else "paper")
            classes.append(["", ""] + ["num" if _NUMERIC.match(c) else "" for c in cells[2:]])
        body += [f"<h2>{html.escape(metric.label)}</h2>", _table(["Dataset", "Source", *frame.columns], rows, kinds, classes)]
    body += [f'<p class="note">{html.escape(note)}</p>' for note in table_notes(name, summary)]
    return page(TABLES[name].title, body)


def write_table_html(name: str, summary: pd.DataFrame, out: Path) -> None:
    """Write table ``name``'s page (``python -m pipeline table --html``)."""
    with atomic_path(out) as tmp:
        tmp.write_text(table_html(name, summary))


def table_labels(wildcards) -> dict[str, str]:
    """Report labels of a table (its number and what it shows), from pipeline.tables' titles."""
    from pipeline.tables import TABLES

    title = TABLES[wildcards.table].title
    number, _, contents = title.partition(": ")
    if "Table" not in number:  # a table beyond the paper's: its file name, and the whole title
        number, contents = wildcards.table, title
    # the report lists label columns in alphabetical order: "table" before "what it shows"
    return {"table": number, "what it shows": contents}


# -- the claims -----------------------------------------------------------------------------
def _rules_html(text: str) -> list[str]:
    """The claims' verdict rules (prose with "- " items, continuation lines indented) as HTML; prose
    lines join with a space, or with a line break after a line that ends a sentence."""
    def paragraph(lines: list[str]) -> str:
        return '<p class="note">' + "".join(line + ("<br>" if line.endswith((".", ":")) else " ") for line in lines[:-1]) + lines[-1] + "</p>"

    blocks, items, para = [], [], []
    for line in text.splitlines() + [""]:
        if line.startswith("- "):
            if para:
                blocks.append(paragraph(para))
                para = []
            items.append(line[2:])
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
        else:
            if items:
                blocks.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
                items = []
            if line.strip():
                para.append(_inline(line))
            elif para:
                blocks.append(paragraph(para))
                para = []
    return blocks


def claims_html(claims: pd.DataFrame, alpha: float) -> str:
    """The claims' page from their frame (``pipeline.claims.evaluate_claims``, or results/claims.csv
    read back): the verdict rules, a grid of verdicts (claim x dataset), then per claim its
    comparisons; the same cells as pipeline.claims.render's Markdown, verdicts coloured."""
    from pipeline.claims.definitions import format_number
    from pipeline.claims.render import RULES_TEXT, difference_text
    from pipeline.claims.statistics import RULE_SENTENCE, verdict_label
    from pipeline.names import dataset_label

    records = [{k: ("" if isinstance(v, float) and math.isnan(v) and k not in _NUMBER_COLUMNS else v) for k, v in r.items()}
               for r in claims.to_dict("records")]  # a CSV read back has NaN where the frame had ""
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    claim_names = list(dict.fromkeys(r["claim"] for r in records))
    body = _rules_html(RULES_TEXT.format(alpha=alpha))
    if datasets:
        rows, classes = [], []
        for claim in claim_names:
            cells, cell_classes = [html.escape(claim)], [""]
            for dataset in datasets:
                part = [r for r in records if r["claim"] == claim and r["dataset"] == dataset]
                if len(part) == 1:
                    cells.append(html.escape(verdict_label(part[0])))
                    cell_classes.append(_verdict_class(part[0]["verdict"]))
                else:  # C7 per prior and density, C8 per score: each subject's verdict marked on its own
                    cells.append(", ".join(f'{html.escape(_text(r["subject"]))}: <span class="{_verdict_class(r["verdict"])}">'
                                           f"{html.escape(verdict_label(r))}</span>" for r in part) or "-")
                    cell_classes.append("")
            rows.append(cells)
            classes.append(cell_classes)
        body += ["<h2>Summary</h2>", f'<p class="note">{_inline(RULE_SENTENCE)}</p>',
                 _table(["Claim", *(dataset_label(d) for d in datasets)], rows, cell_classes=classes)]
    header = ["Dataset", "Subject", "Paper", "Paper agrees", "Ours: mean ± sd [per seed]", "Seeds", "Test", "Deciding comparison",
              "Difference [95 % CI]", "p", "p (opposite)", "Verdict", "Note"]
    column_classes = ["", "", "long", "", "long", "num", "long", "long", "", "num", "num"]
    for claim in claim_names:
        part = [r for r in records if r["claim"] == claim]
        rows, classes = [], []
        for r in part:
            cells = [dataset_label(r["dataset"]), _text(r["subject"]), _text(r["paper"]) or "-", _text(r["paper_agrees"]) or "-",
                     _text(r["ours_per_seed"]) or "-", _text(r["n_seeds"]), _text(r["test"]) or "-", _text(r["deciding"]) or "-", difference_text(r),
                     format_number(r["p_value"]), format_number(r["p_opposite"])]
            rows.append([html.escape(c) for c in cells] + [f"<strong>{html.escape(verdict_label(r))}</strong>", html.escape(_text(r["note"]))])
            classes.append([*column_classes, _verdict_class(r["verdict"]), "long"])
        body += [f"<h2>{html.escape(claim)}: {html.escape(_text(part[0]['statement']))}</h2>", _table(header, rows, cell_classes=classes)]
    return page(CLAIMS_TITLE, body)


# the claims' numeric columns: NaN there means "no value" to the formatters, not ""
_NUMBER_COLUMNS = {"n_seeds", "mean", "std", "effect", "difference", "ci_low", "ci_high", "p_value", "p_opposite", "alpha"}


def write_claims_html(claims_csv: Path, out: Path) -> None:
    """Write the claims' page from results/claims.csv (``python -m pipeline claims-html``)."""
    from pipeline.claims.statistics import ALPHA

    try:
        claims = pd.read_csv(claims_csv)
    except (OSError, ValueError) as err:
        raise ValueError(f"{claims_csv}: cannot read the claims table ({err}); rerun the claims rule that makes it") from err
    alpha = claims["alpha"].dropna().iloc[0] if "alpha" in claims and claims["alpha"].notna().any() else ALPHA
    with atomic_path(out) as tmp:
        tmp.write_text(claims_html(claims, float(alpha)))
