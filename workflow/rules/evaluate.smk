rule evaluate_model:
    input:
        model=RUN + "/model.pt",
        data="data/processed/{dataset}.h5",
    output:
        RUN + "/metrics.json",
    params:
        options=as_json(config["evaluation"]),
    log:
        "results/logs/evaluate/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/evaluate/{dataset}/{method}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    shell:
        "{PYTHON} -m pipeline evaluate --model {input.model} --data {input.data} --options {params.options:q} --out {output} > {log} 2>&1"


rule encode:
    input:
        model=RUN + "/model.pt",
        data="data/processed/{dataset}.h5",
    output:
        RUN + "/encodings.h5",
    log:
        "results/logs/encode/{dataset}/{method}/seed{seed}.log",
    conda:
        "../../environment.yml"
    shell:
        "{PYTHON} -m pipeline encode --model {input.model} --data {input.data} --out {output} > {log} 2>&1"


rule sample:
    input:
        model=RUN + "/model.pt",
    output:
        samples=RUN + "/samples.h5",
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
        "{PYTHON} -m pipeline sample --model {input.model} --options {params.options:q} --out {output.samples} --grid {output.png} {output.pdf} > {log} 2>&1"
