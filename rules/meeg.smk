# M/EEG branch: mne-bids in, MNE preprocessing and epochs, per-stimulus evoked responses,
# time-resolved RSA and encoding against the same layer RDMs / features as the fMRI branch,
# M/EEG-fMRI fusion, and group statistics over time. Code: brainalign.meeg.steps.


rule meeg_preprocess:
    """Filter, re-reference, interpolate bad channels, ICA (optional), epochs and rejection of
    one M/EEG run; a JSON log says what each step removed."""
    input:
        raw=lambda wc: meeg_run(wc).raw,
        events=lambda wc: meeg_run(wc).events,
    output:
        epochs=P.meeg_epochs("{subject}", "{datatype}", "{task}", "{run}"),
        log=P.meeg_preproc_log("{subject}", "{datatype}", "{task}", "{run}"),
    log:
        P.log("meeg_preprocess", "sub-{subject}_{datatype}_task-{task}_run-{run}"),
    conda:
        "../envs/meeg.yaml"
    container:
        CONTAINERS["meeg"]
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        stimuli=INDEX.stimuli if MODE == "bids" else [],
        meeg=CFG["meeg"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/meeg_preprocess.py"


rule meeg_responses:
    """Per-stimulus evoked patterns of one subject (repeats averaged), split halves and
    per-time split-half noise ceilings."""
    input:
        epochs=lambda wc: [
            P.meeg_epochs(wc.subject, wc.datatype, r.task, r.run)
            for r in meeg_runs_of(wc.subject, wc.datatype)
        ],
    output:
        responses=P.meeg_responses("{subject}", "{datatype}"),
    log:
        P.log("meeg_responses", "sub-{subject}_{datatype}"),
    conda:
        "../envs/meeg.yaml"
    container:
        CONTAINERS["meeg"]
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        stimuli=INDEX.stimuli if MODE == "bids" else [],
        meeg=CFG["meeg"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/meeg_responses.py"


rule meeg_rdms:
    """One RDM per time point (or sliding window) and channel group, with ceilings."""
    input:
        responses=P.meeg_responses("{subject}", "{datatype}"),
    output:
        rdms=P.meeg_rdms("{subject}", "{datatype}"),
    log:
        P.log("meeg_rdms", "sub-{subject}_{datatype}"),
    conda:
        "../envs/analysis.yaml"
    container:
        CONTAINERS["analysis"]
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        distance=CFG["meeg"]["rsa"]["distance"],
        window=CFG["meeg"]["rsa"]["window"],
        comparison=CFG["rsa"]["comparison"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/meeg_rdms.py"


rule meeg_rsa:
    """Time-resolved RSA: every time point's RDM against every layer RDM of one model."""
    input:
        rdms=P.meeg_rdms("{subject}", "{datatype}"),
        layer_rdms=P.layer_rdms("{model}"),
    output:
        scores=P.meeg_rsa_scores("{subject}", "{datatype}", "{model}"),
    log:
        P.log("meeg_rsa", "sub-{subject}_{datatype}_model-{model}"),
    conda:
        "../envs/analysis.yaml"
    container:
        CONTAINERS["analysis"]
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        model=lambda wc: MODEL_OF_LABEL[wc.model],
        comparison=CFG["rsa"]["comparison"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/meeg_rsa.py"


rule meeg_encoding:
    """Time-resolved encoding: ridge from each layer of one model to every channel and time
    point (one decomposition per fold shared by all of them)."""
    input:
        responses=P.meeg_responses("{subject}", "{datatype}"),
        features=lambda wc: [
            P.features(wc.model, l) for l in MODELS[MODEL_OF_LABEL[wc.model]]["layers"]
        ],
    output:
        scores=P.meeg_encoding_scores("{subject}", "{datatype}", "{model}"),
    log:
        P.log("meeg_encoding", "sub-{subject}_{datatype}_model-{model}"),
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
        layers=lambda wc: MODELS[MODEL_OF_LABEL[wc.model]]["layers"],
        ridge=CFG["encoding"]["ridge"],
        min_noise_ceiling=CFG["report"]["min_noise_ceiling"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/meeg_encoding.py"


rule meeg_fusion:
    """M/EEG-fMRI fusion (Cichy et al. 2014): each time point's RDM against each fMRI ROI's
    RDM (the subject's own, or the mean of every fMRI subject's)."""
    input:
        rdms=P.meeg_rdms("{subject}", "{datatype}"),
        fmri_rdms=lambda wc: fusion_fmri_rdms(wc.subject),
    output:
        scores=P.meeg_fusion_scores("{subject}", "{datatype}"),
    log:
        P.log("meeg_fusion", "sub-{subject}_{datatype}"),
    conda:
        "../envs/analysis.yaml"
    container:
        CONTAINERS["analysis"]
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        comparison=CFG["rsa"]["comparison"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/meeg_fusion.py"


rule meeg_group:
    """Group statistics over time: cluster permutation tests (MNE) and bootstrap peak
    latencies over subjects, for every layer and fMRI ROI curve."""
    input:
        tables=meeg_score_tables(),
    output:
        clusters=P.meeg_clusters(),
        peaks=P.meeg_peaks(),
    log:
        P.log("meeg_group", "group"),
    conda:
        "../envs/meeg.yaml"
    container:
        CONTAINERS["meeg"]
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        stats=CFG["meeg"]["stats"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/meeg_group.py"
