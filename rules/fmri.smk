rule fmri_preprocess:
    """Preprocess one BOLD run (backend chosen by fmri.preprocessing)."""
    input:
        bold=lambda wc: INDEX.run(wc.subject, f"task-{wc.task}_run-{wc.run}").bold,
    output:
        bold=P.preproc_bold("{subject}", "{task}", "{run}"),
        mask=P.brain_mask("{subject}", "{task}", "{run}"),
        confounds=P.confounds("{subject}", "{task}", "{run}"),
    log:
        P.log("fmri_preprocess", "sub-{subject}_task-{task}_run-{run}"),
    conda:
        "../envs/fmri.yaml"
    container:
        CONTAINERS["fmri"]
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        method=CFG["fmri"]["preprocessing"],
        options=CFG["fmri"].get(CFG["fmri"]["preprocessing"], {}),
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/fmri_preprocess.py"


rule fmri_glm:
    """Single-trial (least-squares-all) GLM of one run: one beta map per trial."""
    input:
        bold=P.preproc_bold("{subject}", "{task}", "{run}"),
        mask=P.brain_mask("{subject}", "{task}", "{run}"),
        confounds=P.confounds("{subject}", "{task}", "{run}"),
        events=lambda wc: INDEX.run(wc.subject, f"task-{wc.task}_run-{wc.run}").events,
    output:
        betas=P.trial_betas("{subject}", "{task}", "{run}"),
        trials=P.trial_table("{subject}", "{task}", "{run}"),
    log:
        P.log("fmri_glm", "sub-{subject}_task-{task}_run-{run}"),
    conda:
        "../envs/fmri.yaml"
    container:
        CONTAINERS["fmri"]
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        glm=CFG["fmri"]["glm"],
        t_r_s=lambda wc: INDEX.run(wc.subject, f"task-{wc.task}_run-{wc.run}").t_r_s,
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/fmri_glm.py"


rule fmri_responses:
    """Per-stimulus ROI responses of one subject, split halves and voxel noise ceilings."""
    input:
        betas=subject_runs(P.trial_betas),
        trials=subject_runs(P.trial_table),
        masks=subject_runs(P.brain_mask),
        stimuli=P.stimuli_manifest(),
        dseg=lambda wc: roi_file("dseg", wc.subject),
        labels=roi_file("labels"),
    output:
        responses=P.responses("{subject}"),
    log:
        P.log("fmri_responses", "sub-{subject}"),
    conda:
        "../envs/fmri.yaml"
    container:
        CONTAINERS["fmri"]
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        roi_names=ROIS["names"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/fmri_responses.py"
