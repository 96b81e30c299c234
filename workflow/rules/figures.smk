# The paper's figures (issue 9). Each figure is a target of its own and needs only its runs:
#   snakemake fig2 | fig3 | fig4 | fig_samples | all_figures
# Inputs come from the run layout of common.smk (MODEL, ENCODINGS, SAMPLES with {variant});
# every figure is written as PNG and PDF, the numbers behind it as CSV under
# results/figures/tables/ with a .provenance.json beside each CSV.
rule figure2:
    input:
        model=FIG2_MODEL,
        encodings=FIG2_ENCODINGS,
    output:
        png=report(
            "results/figures/fig2/{dataset}_seed{seed}.png",
            caption="../report/fig2.rst",
            category="Figures",
            subcategory="Figure 2: aggregate posterior and priors",
        ),
        pdf="results/figures/fig2/{dataset}_seed{seed}.pdf",
        table="results/figures/tables/fig2_{dataset}_seed{seed}.csv",
        provenance="results/figures/tables/fig2_{dataset}_seed{seed}.csv.provenance.json",
    log:
        "results/logs/figures/fig2/{dataset}_seed{seed}.log",
    benchmark:
        "results/benchmarks/figures/fig2/{dataset}_seed{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=declared_mem_mb("figure2"),
        gpu_mem_mb=declared_gpu_mem_mb("figure2"),
        gpu=GPU_JOB,
    params:
        options=as_json(FIGURES),
        methods=fig2_methods,
    shell:
        "exec python -m pipeline figure2 --model {input.model} --encodings {input.encodings} --methods {params.methods:q}"
        " --options {params.options:q} --seed {wildcards.seed} --threads {threads}"
        " --out {output.png} {output.pdf} --table {output.table} > {log} 2>&1"


rule figure3:
    input:
        data="data/processed/{dataset}.h5",
        models=fig3_runs(MODEL),
        samples=fig3_runs(SAMPLES),
    output:
        png=report(
            "results/figures/fig3/{dataset}.png",
            caption="../report/fig3.rst",
            category="Figures",
            subcategory="Figure 3: reconstructions and generations",
        ),
        pdf="results/figures/fig3/{dataset}.pdf",
        table="results/figures/tables/fig3_{dataset}.csv",
        provenance="results/figures/tables/fig3_{dataset}.csv.provenance.json",
    log:
        "results/logs/figures/fig3/{dataset}.log",
    benchmark:
        "results/benchmarks/figures/fig3/{dataset}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=declared_mem_mb("figure3"),
        gpu_mem_mb=declared_gpu_mem_mb("figure3"),
    params:
        options=as_json(FIGURES),
    shell:
        "exec python -m pipeline figure3 --data {input.data} --models {input.models} --samples {input.samples}"
        " --options {params.options:q} --threads {threads} --out {output.png} {output.pdf} --table {output.table} > {log} 2>&1"


rule figure4:
    input:
        models=fig4_runs(MODEL),
        encodings=fig4_runs(ENCODINGS),
    output:
        png=report("results/figures/fig4/{dataset}.png", caption="../report/fig4.rst", category="Figures", subcategory="Figure 4: 2-D latent spaces"),
        pdf="results/figures/fig4/{dataset}.pdf",
        table="results/figures/tables/fig4_{dataset}.csv",
        summary="results/figures/tables/fig4_{dataset}_summary.csv",
        provenance=multiext("results/figures/tables/fig4_{dataset}", ".csv.provenance.json", "_summary.csv.provenance.json"),
    log:
        "results/logs/figures/fig4/{dataset}.log",
    benchmark:
        "results/benchmarks/figures/fig4/{dataset}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=declared_mem_mb("figure4"),
        gpu_mem_mb=declared_gpu_mem_mb("figure4"),
    params:
        options=as_json(FIGURES),
    shell:
        "exec python -m pipeline figure4 --models {input.models} --encodings {input.encodings} --options {params.options:q}"
        " --threads {threads} --out {output.png} {output.pdf} --table {output.table} --summary {output.summary} > {log} 2>&1"


rule figure_samples:
    input:
        sample_runs,
    output:
        png=report(
            "results/figures/supplement/samples_{method}.png",
            caption="../report/samples_grid.rst",
            category="Figures",
            subcategory="Supplement Figures 1-5: samples",
        ),
        pdf="results/figures/supplement/samples_{method}.pdf",
        table="results/figures/tables/samples_{method}.csv",
        provenance="results/figures/tables/samples_{method}.csv.provenance.json",
    log:
        "results/logs/figures/samples/{method}.log",
    benchmark:
        "results/benchmarks/figures/samples/{method}.tsv"
    conda:
        "../../environment.yml"
    params:
        options=as_json(FIGURES),
        datasets=FIG_DATASETS,
        seed=FIG_SEED,
    shell:
        "exec python -m pipeline figure-samples --method {wildcards.method} --datasets {params.datasets} --samples {input}"
        " --seed {params.seed} --options {params.options:q} --out {output.png} {output.pdf} --table {output.table} > {log} 2>&1"


# ---- Figures 5 and 6 (shortest likely path, pipeline/interpolation.py) ----
# Figure 5 draws LaDDer's 2-D t-space (variant d_t2) and the GMM and normal headline runs; Figure 6
# (with supplement Figures 6-7) is CelebA's when CelebA is run, else Fashion-MNIST's, titled as such.
rule figure5:
    input:
        unpack(interpolation_models({"ladder": "d_t2", "gmm": "default", "normal": "default"})),
        data="data/processed/{dataset}.h5",
    output:
        png=report(
            "results/figures/fig5/{dataset}.png", caption="../report/fig5.rst", category="Figures", subcategory="Figure 5: shortest likely path"
        ),
        pdf="results/figures/fig5/{dataset}.pdf",
        csv="results/figures/fig5/{dataset}.csv",
    log:
        "results/logs/figures/fig5/{dataset}.log",
    benchmark:
        "results/benchmarks/figures/fig5/{dataset}.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=declared_mem_mb("figure5"),
        gpu_mem_mb=declared_gpu_mem_mb("figure5"),
    params:
        options=as_json(config["interpolation"]),
    shell:
        "exec python -m pipeline figure-interpolation --figure 5 --dataset {wildcards.dataset} --data {input.data}"
        " --model ladder={input.ladder} gmm={input.gmm} normal={input.normal} --options {params.options:q}"
        " --out-prefix results/figures/fig5/{wildcards.dataset} > {log} 2>&1"


rule figure6:
    input:
        unpack(interpolation_models({"ladder": "default", "gmm": "default", "normal": "default"})),
        data="data/processed/{dataset}.h5",
    output:
        png=report(
            "results/figures/fig6/{dataset}.png",
            caption="../report/fig6.rst",
            category="Figures",
            subcategory="Figure 6 and supplement Figures 6-7: interpolations",
        ),
        pdf="results/figures/fig6/{dataset}.pdf",
        csv="results/figures/fig6/{dataset}.csv",
        history="results/figures/fig6/{dataset}_history.csv",
    log:
        "results/logs/figures/fig6/{dataset}.log",
    benchmark:
        "results/benchmarks/figures/fig6/{dataset}.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=declared_mem_mb("figure6"),
        gpu_mem_mb=declared_gpu_mem_mb("figure6"),
    params:
        options=as_json(config["interpolation"]),
    shell:
        "exec python -m pipeline figure-interpolation --figure 6 --dataset {wildcards.dataset} --data {input.data}"
        " --model ladder={input.ladder} gmm={input.gmm} normal={input.normal} --options {params.options:q}"
        " --out-prefix results/figures/fig6/{wildcards.dataset} > {log} 2>&1"


rule slp_run:
    input:
        model=MODEL,
        data="data/processed/{dataset}.h5",
    output:
        SLP_RUN_TABLE,
    log:
        "results/logs/slp/{dataset}/{method}/{variant}/seed{seed}.log",
    benchmark:
        "results/benchmarks/slp/{dataset}/{method}/{variant}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=declared_mem_mb("slp_run"),
        gpu_mem_mb=declared_gpu_mem_mb("slp_run"),
        gpu=gpu_need(TRAIN_DEVICE),
    params:
        options=as_json(config["interpolation"]),
    shell:
        "exec python -m pipeline slp-table --model {input.model} --data {input.data} --options {params.options:q} --out {output} > {log} 2>&1"


rule slp_table:
    input:
        slp_run_tables,
    output:
        report(CLAIMS_SLP_TABLE, caption="../report/fig5.rst", category="Figures", subcategory="Figure 5: shortest likely path"),
    log:
        "results/logs/slp/{dataset}.log",
    benchmark:
        "results/benchmarks/slp/{dataset}.tsv"
    conda:
        "../../environment.yml"
    shell:
        "exec python -m pipeline concat-tables --inputs {input} --out {output} > {log} 2>&1"


rule fig2:
    input:
        fig2_outputs(),


rule fig3:
    input:
        fig3_outputs(),


rule fig4:
    input:
        fig4_outputs(),


rule fig5:
    input:
        fig5_outputs(),


rule fig6:
    input:
        fig6_outputs(),


rule fig_samples:
    input:
        fig_samples_outputs(),


rule all_figures:
    input:
        all_figure_outputs(),
