rule prepare_dataset:
    output:
        "data/processed/{dataset}.h5",
    params:
        options=as_json(config["data"]),
    log:
        "results/logs/prepare_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare_dataset/{dataset}.tsv"
    conda:
        "../../environment.yml"
    shell:
        "python -m pipeline prepare-data --dataset {wildcards.dataset} --options {params.options:q} --out {output} > {log} 2>&1"
