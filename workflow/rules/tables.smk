# Paper tables: mean +- std over seeds, paper values beside ours (pipeline/tables.py).
rule table:
    input:
        table_inputs,
    output:
        csv=report("results/tables/{table}.csv", caption="../report/tables.rst", category="Tables", labels={"table": "{table}"}),
        md="results/tables/{table}.md",
        tex="results/tables/{table}.tex",
    log:
        "results/logs/tables/{table}.log",
    wildcard_constraints:
        table="table1|table2|table3|table_sm1|table_sm2|table_priors",
    conda:
        "../../environment.yml"
    shell:
        "python -m pipeline table --name {wildcards.table} --inputs {input} --out-prefix results/tables/{wildcards.table} > {log} 2>&1"
