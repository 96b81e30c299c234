#!/usr/bin/env bash
# Screenshots of a Snakemake report (issue 13.5), to look at what a reader sees:
#   scripts/screenshot_report.sh report.html [OUTDIR] [all]
# writes OUTDIR/00_landing.png (workflow description and rule graph), 01_statistics.png (job run
# times), one PNG per category listing, and one per result view: every table and the claims, the
# first result of each figure subcategory (every result with "all"). Needs Debian's `chromium`
# (apt-get install chromium) and the Python that has the pipeline package (.venv/bin/python).
#
# The report is a single-page app without URLs per view, so the script writes a copy of the page
# with a small script that opens the view named in the URL fragment (#category=..., #result=...,
# #stats), then lets headless Chromium render each one.
set -euo pipefail

report=${1:?usage: $0 report.html [outdir] [all]}
outdir=${2:-${report%.html}_screenshots}
every=${3:-}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}
[ -x "$python" ] || python=python3
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "chromium not found: apt-get install chromium" >&2; exit 1; }
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
page="$outdir/report_views.html"

# The copy with the view opener, and the list of views (file name, fragment) on stdout.
views=$(PYTHONPATH="$here" "$python" - "$report" "$page" "$every" <<'PY'
import re, sys
from urllib.parse import quote
from pipeline.report import read_report

report, page, every = sys.argv[1], sys.argv[2], sys.argv[3] == "all"
opener = """<script>
window.addEventListener("load", function () { setTimeout(function () {
  var h = decodeURIComponent(location.hash.slice(1)), k = h.split("=")[0], a = h.slice(k.length + 1);
  if (k === "stats") app.setView({ content: "stats" });
  if (k === "category") app.showCategory(a);
  if (k === "result") { var r = results[a];
    app.setView({ navbarMode: "resultinfo", resultPath: a, contentPath: r.data_uri,
                  content: r.mime_type === "text/html" ? "html" : r.mime_type === "application/pdf" ? "pdf" : "img" }); }
}, 300); });
</script>"""
text = open(report).read()
head, tag, tail = text.rpartition("</body>")  # the last one: bundled scripts hold "</body>" in strings
open(page, "w").write(head + opener + tag + tail if tag else text + opener)
contents = read_report(report)
print("00_landing\t")
print("01_statistics\tstats")
slug = lambda s: re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_")[:60]
for i, (category, subcategories) in enumerate(contents.categories.items()):
    print(f"1{i}_category_{slug(category)}\tcategory={quote(category)}")
    for sub, paths in subcategories.items():
        keep = paths if every or category in ("Tables", "Claims") else paths[:1]
        for path in keep:
            print(f"2{i}_{slug(path)}\tresult={quote(path)}")
PY
)

while IFS=$'\t' read -r name fragment; do
    # --virtual-time-budget lets the app's timers and the iframe finish before the shot
    timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,2000 \
        --virtual-time-budget=5000 --screenshot="$outdir/$name.png" "file://$page${fragment:+#$fragment}" \
        >/dev/null 2>&1 || echo "screenshot failed: $name" >&2
    echo "$outdir/$name.png"
done <<< "$views"
