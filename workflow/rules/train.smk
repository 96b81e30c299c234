# One VAE per dataset, method and seed. The run folder also holds checkpoint.pt (not an output,
# so it survives a failed or interrupted job and the rerun resumes from it), stats.csv and
# training_options.json.
rule train_model:
    input:
        data="data/processed/{dataset}.h5",
    output:
        model=MODEL,
    params:
        settings=train_settings,
    threads: train_threads
    resources:
        gpu=GPU_JOB,
    log:
        "results/logs/train/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{method}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    shell:
        "python -m pipeline train --settings {params.settings:q} --data {input.data} --out {output.model} --threads {threads} > {log} 2>&1"
