# LaDDer reproduction: the table of contents of the workflow.
#
#   snakemake --cores 8 all_tables                                  # the paper (config/config.yaml)
#   snakemake --cores 2 all --configfile config/quick.yaml          # quick profile (make quick)
#   snakemake all_tables --profile profiles/slurm                   # the paper on SLURM
# Files given with --configfile are overlays merged over config/config.yaml. Name targets before
# --configfile: it takes several files and would swallow them.
#
# Stages, one file each under workflow/rules/: data -> train -> evaluate/encode/sample -> tables.
import os

from snakemake.utils import min_version

min_version("9.0")


# workflow/rules/common.smk puts this interpreter's bin folder first on PATH for the jobs.
envvars:
    "PATH",


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# On a cluster these run on the submit host: cheap, and they read many small files.
localrules:
    all,
    all_tables,
    all_figures,
    fig2,
    fig3,
    fig4,
    fig5,
    fig6,
    fig_samples,
    table,
    claims,
    claims_html,
    slp_table,
    sample_grid,
    figure3,
    figure4,
    figure_samples,


include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/fid.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/claims.smk"


rule all_tables:
    input:
        all_table_outputs(),
        "results/claims.csv",
        "results/claims.md",
        "results/claims.html",


rule all:
    default_target: True
    input:
        all_table_outputs(),
        "results/claims.csv",
        "results/claims.md",
        "results/claims.html",
        all_sample_grids(),
        all_encodings(),
        all_figure_outputs(),
