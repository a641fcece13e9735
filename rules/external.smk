rule ingest_external:
    """Check the external stimulus table and write the stimulus manifest."""
    input:
        table=EXT["stimuli"],
    output:
        stimuli=P.stimuli_manifest(),
    log:
        P.log("ingest_external", "stimuli"),
    conda:
        "../envs/fmri.yaml"
    container:
        CONTAINERS["fmri"]
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        external={k: EXT[k] for k in ("stimuli", "stimuli_dir", "stim_column")},
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/ingest_external.py"


rule rsa_import_rdms:
    """Read one external set of brain RDMs (one per subject) into the derivative format."""
    input:
        source=lambda wc: EXT["rdms"][wc.rdmset]["path"],
        stimuli=P.stimuli_manifest(),
    output:
        rdms=P.brain_rdms("{rdmset}"),
    log:
        P.log("rsa_import_rdms", "rdmset-{rdmset}"),
    conda:
        "../envs/analysis.yaml"
    container:
        CONTAINERS["analysis"]
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        spec=lambda wc: EXT["rdms"][wc.rdmset],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/rsa_import_rdms.py"


rule rsa_group_compare:
    """Compare a set of subject RDMs with every layer of a model: ceilings and bootstrap."""
    input:
        brain_rdms=P.brain_rdms("{rdmset}"),
        layer_rdms=P.layer_rdms("{model}"),
    output:
        scores=P.rsa_group_scores("{rdmset}", "{model}"),
    log:
        P.log("rsa_group_compare", "rdmset-{rdmset}_model-{model}"),
    conda:
        "../envs/analysis.yaml"
    container:
        CONTAINERS["analysis"]
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        model=lambda wc: MODEL_OF_LABEL[wc.model],
        comparison=CFG["rsa"]["comparison"],
        inference={
            k: CFG["rsa"][k]
            for k in ("n_bootstrap", "bootstrap_over", "ci_percent", "seed")
        },
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/rsa_group_compare.py"
