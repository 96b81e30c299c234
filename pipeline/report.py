"""Pieces of the Snakemake report (``snakemake --report report.html``, issue 13.5).

Snakemake's report shows images and HTML in its viewer but offers a CSV or Markdown file only as
a download, so every table is also written as a small standalone HTML page: the Markdown grid
that ``pipeline.tables`` (and ``pipeline.claims``) already write, ours above the paper's values,
rendered here. The converter knows only the Markdown those writers emit (headings, paragraphs,
"- " lists, pipe tables, **bold**, `code`); it is not a general Markdown parser.

``read_report`` reads a finished report back (its results, captions and job runtimes are JSON
inside the page), so tests can check that it holds every table and figure the DAG built.

    python -m pipeline.report report-html --markdown results/tables/table2.md --out results/tables/table2.html
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes

from pipeline.provenance import atomic_path

# Rows of our tables whose "Source" cell starts with this are the paper's printed values.
PAPER_SOURCE = "paper"
VERDICTS = ("holds", "fails", "inconclusive", "not run")

STYLE = """
body { overflow-x: auto; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1f2937; margin: 12px 16px; }
h1 { font-size: 18px; margin: 0 0 10px; }
h2 { font-size: 15px; margin: 18px 0 6px; }
table { border-collapse: collapse; margin: 4px 0 10px; font-variant-numeric: tabular-nums; font-size: 13px; }
th, td { white-space: nowrap; }  /* six prior columns: scroll sideways rather than wrap cells into unreadable stacks */
th, td { border: 1px solid #d1d5db; padding: 3px 8px; vertical-align: top; }
th { background: #f3f4f6; text-align: left; }
td.num { text-align: right; white-space: nowrap; }
tr.paper td { color: #6b7280; font-style: italic; background: #fafafa; }
tr.paper td:first-child, tr.paper td:nth-child(2) { font-style: normal; }
tr.ours + tr.paper td { border-top-style: dotted; }
td.holds { background: #dcfce7; } td.fails { background: #fee2e2; } td.inconclusive { background: #fef9c3; }
td.not-run { color: #9ca3af; }
td.holds, td.fails, td.inconclusive, td.not-run { white-space: nowrap; }
p, li { max-width: 110ch; } p.note { color: #4b5563; }
code { background: #f3f4f6; padding: 0 3px; }
"""

# A table cell that is a number, a mean ± std, or "-" is right-aligned.
_NUMERIC = re.compile(r"^-?[\d.,]+(e[+-]?\d+)?( ± [\d.,]+(e[+-]?\d+)?)?$|^-$")


def _inline(text: str) -> str:
    """Escape HTML, then the two inline marks our writers use: **bold** and `code`."""
    out = html.escape(text.strip(), quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table(lines: list[str]) -> str:
    """A pipe table (header, separator, rows); the paper's rows and verdict cells get classes."""
    header = _cells(lines[0])
    source = header.index("Source") if "Source" in header else None
    # claims.md: the per-claim tables' "Verdict" column, every column but the first of its summary
    verdict_columns = {header.index("Verdict")} if "Verdict" in header else set(range(1, len(header))) if header[0] == "Claim" else set()
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in header) + "</tr></thead>", "<tbody>"]
    for line in lines[2:]:
        cells = _cells(line)
        kind = ""
        if source is not None and source < len(cells):
            kind = "paper" if cells[source].startswith(PAPER_SOURCE) else "ours"
        tds = []
        for column, cell in enumerate(cells):
            plain = cell.replace("**", "").strip()
            classes = ["num"] if _NUMERIC.match(plain) else []
            verdict = next((v for v in VERDICTS if plain.startswith(v)), None)
            if verdict and column in verdict_columns:
                classes.append(verdict.replace(" ", "-"))
            tds.append(f'<td class="{" ".join(classes)}">{_inline(cell)}</td>' if classes else f"<td>{_inline(cell)}</td>")
        out.append(f'<tr class="{kind}">' if kind else "<tr>")
        out[-1] += "".join(tds) + "</tr>"
    return "\n".join(out + ["</tbody>", "</table>"])


def markdown_html(text: str, title: str | None = None) -> str:
    """A standalone HTML page from the Markdown our table and claims writers emit.

    Paragraph lines are joined with a space, or with a line break after a line that ends a
    sentence (the writers put one note per line)."""
    lines = text.splitlines()
    body: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 3)
            heading = line.lstrip("#").strip()
            title = title or heading
            body.append(f"<h{level}>{_inline(heading)}</h{level}>")
            i += 1
        elif line.lstrip().startswith("|"):
            block = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                block.append(lines[i])
                i += 1
            body.append(_table(block))
        elif line.startswith("- "):
            items = []
            while i < len(lines) and (lines[i].startswith("- ") or (lines[i].startswith("  ") and items)):
                if lines[i].startswith("- "):
                    items.append(lines[i][2:])
                else:
                    items[-1] += " " + lines[i].strip()
                i += 1
            body.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + "</ul>")
        else:
            para = ""
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "- ")) and not lines[i].lstrip().startswith("|"):
                if para:
                    para += "<br>" if para.rstrip().endswith((".", ":")) else " "
                para += _inline(lines[i])
                i += 1
            body.append(f'<p class="note">{para}</p>')
    head = f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title or "")}</title>'
    return head + f"<style>{STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"


def write_markdown_html(markdown: Path, out: Path) -> None:
    """Render one of our Markdown tables (results/tables/*.md, results/claims.md) to ``out``."""
    try:
        text = Path(markdown).read_text()
    except OSError as err:
        raise ValueError(f"{markdown}: cannot read the Markdown table ({err}); rerun the rule that makes it") from err
    with atomic_path(out) as tmp:
        tmp.write_text(markdown_html(text))


def write_table_html(name: str, summary, out: Path) -> None:
    """The HTML page of table ``name`` from its summary frame (``pipeline.tables.summarise``):
    for ``python -m pipeline table --html``."""
    from pipeline.tables import to_markdown

    with atomic_path(out) as tmp:
        tmp.write_text(markdown_html(to_markdown(name, summary)))


def table_labels(wildcards) -> dict[str, str]:
    """Report labels of a table (its number and what it shows), from pipeline.tables' titles."""
    from pipeline.tables import TABLES

    title = TABLES[wildcards.table].title
    number, _, contents = title.partition(": ")
    # the report lists label columns in alphabetical order: "table" before "what it shows"
    return {"table": number if contents else wildcards.table, "what it shows": contents or title}


# -- reading a finished report back --------------------------------------------------------
@dataclass(frozen=True)
class ReportContents:
    results: dict      # result path -> {"name", "caption" (HTML), "mime_type", "data_uri", "job_properties", ...}
    categories: dict   # category -> subcategory -> list of result paths
    runtimes: list     # [{"rule", "runtime" (s)}], one per job Snakemake has metadata for
    description: str   # the workflow description (Snakefile ``report:`` text) as HTML

    def in_category(self, category: str) -> list[str]:
        return [path for sub in self.categories.get(category, {}).values() for path in sub]


def _script_json(page: str, name: str, script_id: str):
    # anchored on the script element's id: the bundled libraries hold "var results = ..." too
    match = re.search(rf'<script id="{script_id}">\s*var {name} = (.*?);\s*</script>', page, re.S)
    if match is None:
        raise ValueError(f"no `var {name}` in the page: not a Snakemake (>= 8) HTML report")
    return json.loads(match.group(1))


def read_report(path: Path) -> ReportContents:
    """Parse the JSON that Snakemake's self-contained report page embeds."""
    page = Path(path).read_text()
    categories = _script_json(page, "categories", "categories")
    runtimes = _script_json(page, "runtimes_spec", "runtimes")["data"]["values"]
    return ReportContents(_script_json(page, "results", "results"), categories, runtimes, _script_json(page, "workflow_desc", "workflow-desc"))


def decode_data_uri(uri: str) -> bytes:
    """The bytes of an embedded result (``data:<mime>;charset=..;filename=..;base64,<data>``)."""
    header, _, data = uri.partition(",")
    return base64.b64decode(data) if header.endswith(";base64") else unquote_to_bytes(data)


# -- command line ---------------------------------------------------------------------------
def cmd_html(args) -> None:
    write_markdown_html(Path(args.markdown), Path(args.out))


def register_commands(subparsers) -> None:
    """Add ``report-html`` to ``python -m pipeline``'s subparsers."""
    p = subparsers.add_parser("report-html", help="render one of our Markdown tables as an HTML page for the Snakemake report")
    p.set_defaults(func=cmd_html)
    p.add_argument("--markdown", required=True, help="results/tables/{table}.md or results/claims.md")
    p.add_argument("--out", required=True, help="the HTML page to write")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.report", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    register_commands(sub)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
