# One VAE per dataset, method, variant and seed. The run folder also holds checkpoint.pt (not an
# output, so it survives a failed or interrupted job and the rerun resumes from it), stats.csv,
# train.log (every attempt appended) and training_options.json. Params hold the run's identity
# only; device and threads are execution flags (threads, resources).
rule train_model:
    input:
        data="data/processed/{dataset}.h5",
    output:
        model=MODEL,
    log:
        "results/logs/train/{dataset}/{method}/{variant}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{method}/{variant}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: train_threads
    resources:
        mem_mb=declared_mem_mb("train_model"),
        gpu_mem_mb=declared_gpu_mem_mb("train_model"),
        gpu=gpu_need(TRAIN_DEVICE),
        device=TRAIN_DEVICE,
        data_on_device=train_data_on_device,
    params:
        settings=train_settings,
    shell:
        "exec python -m pipeline train --settings {params.settings:q} --data {input.data} --out {output.model}"
        " --device {resources.device} --threads {threads} --data-on-device {resources.data_on_device} --no-progress > {log} 2>&1"
