# FID through torch-fidelity with offline weights (NOTES section 6). Reference statistics are
# computed once per dataset and reused; they carry the weights' sha256 (torch-fidelity's own
# cache ignores the weights path, so it is never used).


rule prepare_fid_weights:
    output:
        config["fid"]["converted_path"],
    log:
        "results/logs/fid/prepare_fid_weights.log",
    conda:
        "../../environment.yml"
    shell:
        "python -m pipeline fid-weights --out {output} > {log} 2>&1"


rule fid_reference:
    input:
        weights=fid_weights(),
        data="data/processed/{dataset}.h5",
    output:
        "results/fid/{dataset}/reference.npz",
    resources:
        gpu=GPU_JOB,
    params:
        options=as_json(config["fid"]),
    log:
        "results/logs/fid/reference_{dataset}.log",
    benchmark:
        "results/benchmarks/fid/reference_{dataset}.tsv"
    conda:
        "../../environment.yml"
    shell:
        "python -m pipeline fid-reference --weights {input.weights} --data {input.data} --options {params.options:q} --out {output} > {log} 2>&1"


rule fid_real:
    input:
        weights=fid_weights(),
        data="data/processed/{dataset}.h5",
        reference="results/fid/{dataset}/reference.npz",
    output:
        "results/fid/{dataset}/real_seed{seed}.json",
    params:
        options=as_json(config["fid"]),
    log:
        "results/logs/fid/real_{dataset}_seed{seed}.log",
    conda:
        "../../environment.yml"
    shell:
        "python -m pipeline fid-real --weights {input.weights} --data {input.data} --reference {input.reference}"
        " --dataset {wildcards.dataset} --seed {wildcards.seed} --options {params.options:q} --out {output} > {log} 2>&1"


rule fid_model:
    input:
        weights=fid_weights(),
        model=MODEL,
        samples=SAMPLES,
        data="data/processed/{dataset}.h5",
        reference="results/fid/{dataset}/reference.npz",
    output:
        FID,
    resources:
        gpu=GPU_JOB,
    params:
        options=as_json(config["fid"]),
    log:
        "results/logs/fid/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/fid/{dataset}/{method}/seed{seed}.tsv"
    conda:
        "../../environment.yml"
    shell:
        "python -m pipeline fid --weights {input.weights} --model {input.model} --samples {input.samples} --data {input.data}"
        " --reference {input.reference} --options {params.options:q} --out {output} > {log} 2>&1"
