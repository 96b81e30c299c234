# Paper tables: mean +- std over seeds, paper values beside ours (pipeline/tables.py). Each table is
# also rendered as an HTML page from the table data (pipeline/report.py): Snakemake's report shows HTML
# in its viewer but offers CSV and Markdown only as downloads, so the HTML is what `snakemake --report` displays.
from pipeline.report import table_labels
from pipeline.tables import TABLES


rule table:
    input:
        table_inputs,
    output:
        csv="results/tables/{table}.csv",
        md="results/tables/{table}.md",
        tex="results/tables/{table}.tex",
        html=report("results/tables/{table}.html", caption="../report/tables.rst", category="Tables", labels=table_labels),
    log:
        "results/logs/tables/{table}.log",
    benchmark:
        "results/benchmarks/tables/{table}.tsv"
    wildcard_constraints:
        table="|".join(TABLES),  # the tables pipeline/tables.py defines
    conda:
        "../../environment.yml"
    shell:
        "exec python -m pipeline table --name {wildcards.table} --inputs {input} --out-prefix results/tables/{wildcards.table}"
        " --html {output.html} > {log} 2>&1"


# The claims' verdicts as a page of the report, rendered from the claims table (results/claims.csv).
rule claims_html:
    input:
        "results/claims.csv",
    output:
        report("results/claims.html", caption="../report/claims.rst", category="Claims", labels={"claims": "C1-C8 verdicts"}),
    log:
        "results/logs/claims_html.log",
    benchmark:
        "results/benchmarks/claims_html.tsv"
    conda:
        "../../environment.yml"
    shell:
        "exec python -m pipeline claims-html --claims {input} --out {output} > {log} 2>&1"
