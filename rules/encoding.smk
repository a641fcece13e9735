rule encoding_fit:
    """Cross-validated ridge from one layer's features to one subject's ROI voxels."""
    input:
        features=P.features("{model}", "{layer}"),
        responses=P.responses("{subject}"),
    output:
        scores=P.voxel_scores("{subject}", "{model}", "{layer}"),
    log:
        P.log("encoding_fit", "sub-{subject}_model-{model}_layer-{layer}"),
    conda:
        "../envs/analysis.yaml"
    container:
        CONTAINERS["analysis"]
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        ridge=CFG["encoding"]["ridge"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/encoding_fit.py"


rule encoding_summarize:
    """Per-ROI encoding scores of one subject over every model and layer."""
    input:
        scores=lambda wc: [
            P.voxel_scores(wc.subject, m, layer)
            for m, spec in MODELS.items()
            for layer in spec["layers"]
        ],
    output:
        summary=P.encoding_summary("{subject}"),
    log:
        P.log("encoding_summarize", "sub-{subject}"),
    conda:
        "../envs/analysis.yaml"
    container:
        CONTAINERS["analysis"]
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        model_layers=[
            (m, layer) for m, spec in MODELS.items() for layer in spec["layers"]
        ],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/encoding_summarize.py"
