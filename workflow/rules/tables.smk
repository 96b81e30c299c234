rule table2:
    input:
        runs(RUN + "/metrics.json"),
    output:
        csv=report("results/tables/table2.csv", caption="../report/table2.rst", category="Tables"),
        md="results/tables/table2.md",
        tex="results/tables/table2.tex",
    log:
        "results/logs/tables/table2.log",
    conda:
        "../../environment.yml"
    shell:
        "{PYTHON} -m pipeline table --name table2 --inputs {input} --out-prefix results/tables/table2 > {log} 2>&1"


rule table3:
    input:
        runs(RUN + "/metrics.json"),
    output:
        csv=report("results/tables/table3.csv", caption="../report/table3.rst", category="Tables"),
        md="results/tables/table3.md",
        tex="results/tables/table3.tex",
    log:
        "results/logs/tables/table3.log",
    conda:
        "../../environment.yml"
    shell:
        "{PYTHON} -m pipeline table --name table3 --inputs {input} --out-prefix results/tables/table3 > {log} 2>&1"
