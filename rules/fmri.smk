rule fmri_preprocess:
    """Preprocess one BOLD run (backend chosen by fmri.preprocessing) in the configured mask."""
    input:
        bold=lambda wc: INDEX.run(wc.subject, f"task-{wc.task}_run-{wc.run}").bold,
        dseg=lambda wc: roi_file("dseg", wc.subject),
        labels=lambda wc: roi_file("labels", wc.subject),
        mask_file=lambda wc: mask_file(wc.subject),
    output:
        bold=P.preproc_bold("{subject}", "{task}", "{run}"),
        mask=P.brain_mask("{subject}", "{task}", "{run}"),
        mask_json=P.brain_mask_json("{subject}", "{task}", "{run}"),
        confounds=P.confounds("{subject}", "{task}", "{run}"),
        sample_mask=P.sample_mask("{subject}", "{task}", "{run}"),
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
        mask=CFG["fmri"]["mask"],
        roi_names=ROIS["names"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/fmri_preprocess.py"


rule fmri_glm:
    """Single-trial GLM (LSA or LSS, fmri.glm.method) of one run: one beta map per trial."""
    input:
        bold=P.preproc_bold("{subject}", "{task}", "{run}"),
        mask=P.brain_mask("{subject}", "{task}", "{run}"),
        confounds=P.confounds("{subject}", "{task}", "{run}"),
        sample_mask=P.sample_mask("{subject}", "{task}", "{run}"),
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
        mask_sidecars=subject_runs(P.brain_mask_json),
        stimuli=P.stimuli_manifest(),
        dseg=lambda wc: roi_file("dseg", wc.subject),
        labels=lambda wc: roi_file("labels", wc.subject),
    output:
        responses=P.responses("{subject}"),
        voxels=P.roi_voxels("{subject}"),
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
        runs=lambda wc: [r.key for r in INDEX.runs_of(wc.subject)],
        sessions=lambda wc: [r.session for r in INDEX.runs_of(wc.subject)],
        zscore_within=CFG["fmri"]["ncsnr"]["zscore_within"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/fmri_responses.py"


# fmri.preprocessing fmriprep: each run's fMRIPrep output (existing derivatives, found with
# pybids and checked in rules/common.smk; or the workflow's own fMRIPrep job's) replaces
# fmri_preprocess, with the same outputs.
if CFG["fmri"]["preprocessing"] == "fmriprep":

    ruleorder: fmri_import_fmriprep > fmri_preprocess

    rule fmri_import_fmriprep:
        """One run of fMRIPrep derivatives: percent signal change in the mask, nilearn confounds."""
        input:
            bold=fmriprep_file("bold"),
            brain_mask=fmriprep_file("mask"),
            confounds=fmriprep_file("confounds"),
            confounds_json=fmriprep_file("confounds_json"),
            dseg=lambda wc: roi_file("dseg", wc.subject),
            labels=lambda wc: roi_file("labels", wc.subject),
            mask_file=lambda wc: mask_file(wc.subject),
        output:
            bold=P.preproc_bold("{subject}", "{task}", "{run}"),
            mask=P.brain_mask("{subject}", "{task}", "{run}"),
            mask_json=P.brain_mask_json("{subject}", "{task}", "{run}"),
            confounds=P.confounds("{subject}", "{task}", "{run}"),
            sample_mask=P.sample_mask("{subject}", "{task}", "{run}"),
        log:
            P.log("fmri_import_fmriprep", "sub-{subject}_task-{task}_run-{run}"),
        conda:
            "../envs/fmri.yaml"
        container:
            CONTAINERS["fmri"]
        threads: 1
        resources:
            mem_mb=4000,
            runtime=20,
        params:
            confounds=CFG["fmri"]["fmriprep"]["confounds"],
            mask=CFG["fmri"]["mask"],
            roi_names=ROIS["names"],
            version=BRAINALIGN_VERSION,
        script:
            "../scripts/fmri_import_fmriprep.py"
