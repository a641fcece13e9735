# External response matrices (external.responses): each subject's areas are imported into the
# fMRI responses format, then analysed by rules/encoding.smk and rules/rsa.smk like fMRI ROIs.


def response_files(subject):
    """The response files of a subject's areas (and their .npy stimulus_index files)."""
    files = []
    for spec in RESPONSE_AREAS[subject].values():
        files.append(spec["path"])
        if spec["stimulus_index"] and spec["path"].lower().endswith(".npy"):
            files.append(spec["stimulus_index"])
    return files


rule responses_import:
    """Read one subject's response files (npy/h5/NWB) into per-stimulus responses with split
    halves and noise ceilings."""
    input:
        sources=lambda wc: response_files(wc.subject),
        stimuli=P.stimuli_manifest(),
    output:
        responses=P.responses("{subject}"),
    log:
        P.log("responses_import", "sub-{subject}"),
    conda:
        "../envs/analysis.yaml"
    container:
        CONTAINERS["analysis"]
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        specs=lambda wc: RESPONSE_AREAS[wc.subject],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/responses_import.py"


rule responses_subsample:
    """Best layer per area over random subsets of its units and of the stimuli (RSA), and of
    its units (encoding, from the per-unit scores)."""
    input:
        responses=P.responses("{subject}"),
        layer_rdms=P.layer_rdms("{model}"),
        # per-unit encoding r of every layer (the encoding curve over units)
        voxel_scores=lambda wc: [
            P.voxel_scores(wc.subject, wc.model, layer)
            for layer in MODELS[MODEL_OF_LABEL[wc.model]]["layers"]
        ],
    output:
        curve=P.subsample_curve("{subject}", "{model}"),
        summary=P.subsample_summary("{subject}", "{model}"),
    log:
        P.log("responses_subsample", "sub-{subject}_model-{model}"),
    conda:
        "../envs/analysis.yaml"
    container:
        CONTAINERS["analysis"]
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        model=lambda wc: MODEL_OF_LABEL[wc.model],
        layers=lambda wc: MODELS[MODEL_OF_LABEL[wc.model]]["layers"],
        spec=CFG["external"]["subsample"],
        metric=CFG["rsa"]["roi_distance"],
        comparison=CFG["rsa"]["comparison"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/responses_subsample.py"
