# Params: only the data keys this dataset depends on (pipeline.config.data_options), so changing
# another dataset's settings re-prepares nothing here. `data.allow_download` changes whether a
# download may happen, not the file: it is passed as a flag, not a param.
rule prepare_dataset:
    output:
        "data/processed/{dataset}.h5",
    log:
        "results/logs/prepare_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare_dataset/{dataset}.tsv"
    conda:
        "../../environment.yml"
    params:
        options=dataset_data_options,
        download="--allow-download" if config["data"]["allow_download"] else "",
    shell:
        "exec python -m pipeline prepare-data --dataset {wildcards.dataset} --options {params.options:q} {params.download} --out {output} > {log} 2>&1"
