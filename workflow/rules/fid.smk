# FID and KID through torch-fidelity with offline weights (docs/science.md, 'FID and KID'; pipeline/fid/scores.py
# for the footing: every set unpaired against the first n_reference test images). Reference
# features and statistics are computed once per dataset and reused by every run; they carry the
# weights' sha256 (torch-fidelity's own cache ignores the weights path, so it is never used).
#
# Params hold only what each output depends on: the reference only n_reference (changing
# fid.n_samples or the KID subsets reruns no reference). fid.device, fid.batch_size and
# fid.num_threads are execution settings: they reach the command through resources and threads,
# never params, so changing them reruns nothing.
#
# One job per run is kept (per-run files, per-run reruns); its fixed cost is Python and torch
# start-up (~2-3 s) and loading Inception (~0.5 s), measured in benchmarks/fid_throughput.py; the
# FID's matrix square roots (formerly ~2 s each) are symmetric eigenvalue problems of size
# min(N, 2048) now. On a cluster, a `group: fid` on fid_real and fid_model with
# `--group-components fid=<k>` would bundle k short jobs per submission without merging outputs.


rule prepare_fid_weights:
    output:
        config["fid"]["converted_path"],
    log:
        "results/logs/fid/prepare_fid_weights.log",
    benchmark:
        "results/benchmarks/fid/prepare_fid_weights.tsv"
    conda:
        "../../environment.yml"
    shell:
        "exec python -m pipeline fid-weights --out {output} > {log} 2>&1"


rule fid_reference:
    input:
        weights=fid_weights(),
        data="data/processed/{dataset}.h5",
    output:
        "results/fid/{dataset}/reference.npz",
    log:
        "results/logs/fid/reference_{dataset}.log",
    benchmark:
        "results/benchmarks/fid/reference_{dataset}.tsv"
    conda:
        "../../environment.yml"
    threads: fid_threads
    resources:
        mem_mb=declared_mem_mb("fid_reference"),
        gpu_mem_mb=declared_gpu_mem_mb("fid_reference"),
        gpu=gpu_need(FID_DEVICE),
        device=FID_DEVICE,
        batch_size=config["fid"]["batch_size"],
    params:
        options=fid_options(FID_REFERENCE_KEYS),
    shell:
        "exec python -m pipeline fid-reference --weights {input.weights} --data {input.data} --options {params.options:q}"
        " --device {resources.device} --batch-size {resources.batch_size} --threads {threads} --no-progress --out {output} > {log} 2>&1"


rule fid_real:
    input:
        weights=fid_weights(),
        data="data/processed/{dataset}.h5",
        reference="results/fid/{dataset}/reference.npz",
    output:
        "results/fid/{dataset}/real_seed{seed}.json",
    log:
        "results/logs/fid/real_{dataset}_seed{seed}.log",
    benchmark:
        "results/benchmarks/fid/real_{dataset}_seed{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: fid_threads
    resources:
        mem_mb=declared_mem_mb("fid_real"),
        gpu_mem_mb=declared_gpu_mem_mb("fid_real"),
        gpu=gpu_need(FID_DEVICE),
        device=FID_DEVICE,
        batch_size=config["fid"]["batch_size"],
    params:
        options=fid_options(FID_SCORE_KEYS),
    shell:
        "exec python -m pipeline fid-real --weights {input.weights} --data {input.data} --reference {input.reference}"
        " --dataset {wildcards.dataset} --seed {wildcards.seed} --options {params.options:q}"
        " --device {resources.device} --batch-size {resources.batch_size} --threads {threads} --no-progress --out {output} > {log} 2>&1"


rule fid_model:
    input:
        weights=fid_weights(),
        model=MODEL,
        samples=SAMPLES,
        data="data/processed/{dataset}.h5",
        reference="results/fid/{dataset}/reference.npz",
    output:
        FID,
    log:
        "results/logs/fid/{dataset}/{method}/{variant}/seed{seed}.log",
    benchmark:
        "results/benchmarks/fid/{dataset}/{method}/{variant}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: fid_threads
    resources:
        mem_mb=declared_mem_mb("fid_model"),
        gpu_mem_mb=declared_gpu_mem_mb("fid_model"),
        gpu=gpu_need(FID_DEVICE),
        device=FID_DEVICE,
        batch_size=config["fid"]["batch_size"],
    params:
        options=fid_options(FID_SCORE_KEYS),
    shell:
        "exec python -m pipeline fid --weights {input.weights} --model {input.model} --samples {input.samples} --data {input.data}"
        " --reference {input.reference} --options {params.options:q}"
        " --device {resources.device} --batch-size {resources.batch_size} --threads {threads} --no-progress --out {output} > {log} 2>&1"
