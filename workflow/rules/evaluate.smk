rule evaluate_model:
    input:
        model=MODEL,
        data="data/processed/{dataset}.h5",
    output:
        METRICS,
    params:
        options=as_json(config["evaluation"]),
    log:
        "results/logs/evaluate/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{method}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    shell:
        "python -m pipeline evaluate --model {input.model} --data {input.data} --options {params.options:q} --out {output} > {log} 2>&1"


rule encode:
    input:
        model=MODEL,
        data="data/processed/{dataset}.h5",
    output:
        ENCODINGS,
    log:
        "results/logs/encode/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/encode/{dataset}/{method}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    shell:
        "python -m pipeline encode --model {input.model} --data {input.data} --out {output} > {log} 2>&1"


rule sample:
    input:
        model=MODEL,
    output:
        samples=SAMPLES,
        png=report(
            "results/figures/samples/{dataset}_{method}_seed{seed}.png",
            caption="../report/samples.rst",
            category="Samples (supplement Figures 1-5)",
        ),
        pdf="results/figures/samples/{dataset}_{method}_seed{seed}.pdf",
    params:
        options=as_json(config["sampling"]),
    log:
        "results/logs/sample/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/sample/{dataset}/{method}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    shell:
        "python -m pipeline sample --model {input.model} --options {params.options:q} --out {output.samples} --grid {output.png} {output.pdf} > {log} 2>&1"
