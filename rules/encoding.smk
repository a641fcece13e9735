from brainalign.workflow import encoding_parts

# One encoding job per layer and part of the subjects (encoding.subjects_per_job): the job
# decomposes the layer's features once per fold and fits every subject of its part from them.
ENCODING_PARTS = encoding_parts(SUBJECTS, CFG["encoding"]["subjects_per_job"])
PART_OF = {s: part for part, subjects in ENCODING_PARTS.items() for s in subjects}
MODEL_LAYERS = [(m, layer) for m, spec in MODELS.items() for layer in spec["layers"]]


rule encoding_fit:
    """One layer's cross-validated ridge for the ROI voxels of one part of the subjects.

    Each fold's decomposition is shared by the subjects who saw the same stimuli.
    """
    input:
        features=P.features("{model}", "{layer}"),
        responses=lambda wc: [P.responses(s) for s in ENCODING_PARTS[wc.part]],
    output:
        scores=P.encoding_part_scores("{model}", "{layer}", "{part}"),
    log:
        P.log("encoding_fit", "model-{model}_layer-{layer}_part-{part}"),
    wildcard_constraints:
        part="[0-9]+",
    conda:
        "../envs/analysis.yaml"
    container:
        CONTAINERS["analysis"]
    threads: 1
    resources:
        # Y, its copy and the held-out predictions: a few MB per subject for ROI-sized data
        mem_mb=lambda wc: 2000 + 500 * len(ENCODING_PARTS[wc.part]),
        runtime=lambda wc: 20 + 5 * len(ENCODING_PARTS[wc.part]),
    params:
        subjects=lambda wc: ENCODING_PARTS[wc.part],
        ridge=CFG["encoding"]["ridge"],
        noise_ceiling=CFG["encoding"]["noise_ceiling"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/encoding_fit.py"


rule encoding_summarize:
    """Per-voxel tables and per-ROI encoding scores of one subject over every model and layer."""
    input:
        scores=lambda wc: [
            P.encoding_part_scores(m, layer, PART_OF[wc.subject])
            for m, layer in MODEL_LAYERS
        ],
    output:
        summary=P.encoding_summary("{subject}"),
        voxel_scores=[
            P.voxel_scores("{subject}", m, layer) for m, layer in MODEL_LAYERS
        ],
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
        model_layers=MODEL_LAYERS,
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/encoding_summarize.py"
