rule rsa_layer_rdms:
    """RDM of every configured layer of one model ({model} is its file-name label)."""
    input:
        features=lambda wc: [
            P.features(wc.model, l) for l in MODELS[MODEL_OF_LABEL[wc.model]]["layers"]
        ],
    output:
        rdms=P.layer_rdms("{model}"),
    log:
        P.log("rsa_layer_rdms", "model-{model}"),
    conda:
        "../envs/analysis.yaml"
    container:
        CONTAINERS["analysis"]
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        layers=lambda wc: MODELS[MODEL_OF_LABEL[wc.model]]["layers"],
        metric=CFG["rsa"]["feature_distance"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/rsa_layer_rdms.py"


rule rsa_roi_rdms:
    """RDM of every ROI of one subject, with its split-half noise ceiling."""
    input:
        responses=P.responses("{subject}"),
    output:
        rdms=P.roi_rdms("{subject}"),
    log:
        P.log("rsa_roi_rdms", "sub-{subject}"),
    conda:
        "../envs/analysis.yaml"
    container:
        CONTAINERS["analysis"]
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        metric=CFG["rsa"]["roi_distance"],
        comparison=CFG["rsa"]["comparison"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/rsa_roi_rdms.py"


rule rsa_compare:
    """Compare one subject's ROI RDMs with one model's layer RDMs (tables name the model)."""
    input:
        roi_rdms=P.roi_rdms("{subject}"),
        layer_rdms=P.layer_rdms("{model}"),
    output:
        scores=P.rsa_scores("{subject}", "{model}"),
    log:
        P.log("rsa_compare", "sub-{subject}_model-{model}"),
    conda:
        "../envs/analysis.yaml"
    container:
        CONTAINERS["analysis"]
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        model=lambda wc: MODEL_OF_LABEL[wc.model],
        comparison=CFG["rsa"]["comparison"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/rsa_compare.py"
