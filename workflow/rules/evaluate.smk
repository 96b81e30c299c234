# Per-run work on a trained model, on training.device (gpu resource unless it is 'cpu').
rule evaluate_model:
    input:
        model=MODEL,
        data="data/processed/{dataset}.h5",
    output:
        METRICS,
    log:
        "results/logs/evaluate/{dataset}/{method}/{variant}/seed{seed}.log",
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{method}/{variant}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=declared_mem_mb("evaluate_model"),
        gpu_mem_mb=declared_gpu_mem_mb("evaluate_model"),
        gpu=gpu_need(TRAIN_DEVICE),
        device=TRAIN_DEVICE,
    params:
        options=dataset_evaluation_options,
    shell:
        "exec python -m pipeline evaluate --model {input.model} --data {input.data} --options {params.options:q} --device {resources.device}"
        " --no-progress --out {output} > {log} 2>&1"


rule encode:
    input:
        model=MODEL,
        data="data/processed/{dataset}.h5",
    output:
        ENCODINGS,
    log:
        "results/logs/encode/{dataset}/{method}/{variant}/seed{seed}.log",
    benchmark:
        "results/benchmarks/encode/{dataset}/{method}/{variant}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=declared_mem_mb("encode"),
        gpu_mem_mb=declared_gpu_mem_mb("encode"),
        gpu=gpu_need(TRAIN_DEVICE),
        device=TRAIN_DEVICE,
    shell:
        "exec python -m pipeline encode --model {input.model} --data {input.data} --device {resources.device} --out {output} > {log} 2>&1"


# Image k of a run is a function of (seed, k) only: sampling.batch_size is an execution setting.
rule sample:
    input:
        model=MODEL,
    output:
        SAMPLES,
    log:
        "results/logs/sample/{dataset}/{method}/{variant}/seed{seed}.log",
    benchmark:
        "results/benchmarks/sample/{dataset}/{method}/{variant}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=declared_mem_mb("sample"),
        gpu_mem_mb=declared_gpu_mem_mb("sample"),
        gpu=gpu_need(TRAIN_DEVICE),
        device=TRAIN_DEVICE,
        batch_size=config["sampling"]["batch_size"],
    params:
        options=as_json({"n_samples": config["sampling"]["n_samples"]}),
    shell:
        "exec python -m pipeline sample --model {input.model} --options {params.options:q} --batch-size {resources.batch_size}"
        " --device {resources.device} --out {output} > {log} 2>&1"


rule sample_grid:
    input:
        SAMPLES,
    output:
        png=report(f"{SAMPLE_GRID}.png", caption="../report/samples.rst", category="Samples (supplement Figures 1-5)"),
        pdf=f"{SAMPLE_GRID}.pdf",
    log:
        "results/logs/sample_grid/{dataset}/{method}/{variant}/seed{seed}.log",
    benchmark:
        "results/benchmarks/sample_grid/{dataset}/{method}/{variant}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    params:
        rows=config["sampling"]["grid_rows"],
    shell:
        "exec python -m pipeline sample-grid --samples {input} --rows {params.rows} --out {output.png} {output.pdf} > {log} 2>&1"
