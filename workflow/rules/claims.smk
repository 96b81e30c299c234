# The paper's claims C1-C8 checked on our per-seed results (pipeline/claims/, issue 12):
#   snakemake results/claims.md     (all_tables builds it)
# Input functions (claims_fids, claims_figure_tables) live in common.smk: C7 and C8 read the
# figure tables only where a figure rule makes them and claims.figure_tables is on.
rule claims:
    input:
        metrics=runs(METRICS),
        fid=claims_fids(),
        slp=claims_figure_tables(CLAIMS_SLP_TABLE),
        alignment=claims_figure_tables(CLAIMS_ALIGNMENT_TABLE),
    output:
        csv="results/claims.csv",
        md="results/claims.md",
    log:
        "results/logs/claims.log",
    benchmark:
        "results/benchmarks/claims.tsv"
    conda:
        "../../environment.yml"
    params:
        datasets=DATASETS,
        alpha=config.get("claims", {}).get("alpha", 0.05),
        ablation_method=config["ablation"]["method"],
    shell:
        "exec python -m pipeline claims --metrics {input.metrics} --fid {input.fid} --slp {input.slp} --alignment {input.alignment}"
        " --datasets {params.datasets} --alpha {params.alpha} --ablation-method {params.ablation_method}"
        " --out-prefix results/claims > {log} 2>&1"
