from brainalign.features.checkpoints import checkpoint_families


rule report_scores:
    """The tidy group table of every encoding and RSA score."""
    input:
        tables=score_tables(),
    output:
        scores=P.scores(),
    log:
        P.log("report_scores", "group"),
    conda:
        "../envs/report.yaml"
    container:
        CONTAINERS["report"]
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        layer_order={m: spec["layers"] for m, spec in MODELS.items()},
        min_noise_ceiling=CFG["report"]["min_noise_ceiling"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/report_scores.py"


rule report_html:
    """HTML report: layer-by-ROI figures, RDM images, all scores and the run's provenance."""
    input:
        scores=P.scores(),
        brain_rdms=list(brain_rdm_files().values()),
        layer_rdms=[P.layer_rdms(m) for m in MODELS],
        stimuli=P.stimuli_manifest(),
        roi_voxels=roi_voxel_tables(),
        # per subject: split-half and NCSNR voxel ceilings (section "Noise ceilings")
        responses=expand(P.responses("{subject}"), subject=SUBJECTS),
        # M/EEG (empty without it): group statistics over time, every run's preprocessing log
        meeg_group=meeg_group_targets(),
        meeg_logs=meeg_preproc_logs(),
        # external responses: subsampling curve summaries (section "Subsampling curves")
        subsample=subsample_tables(),
        # after it, so that provenance.json has every job's environment
        description=P.description(),
    output:
        report=P.report(),
        provenance=P.provenance(),
    log:
        P.log("report_html", "group"),
    conda:
        "../envs/report.yaml"
    container:
        CONTAINERS["report"]
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        brain_labels=list(brain_rdm_files()),
        subjects=SUBJECTS,
        models=list(MODELS),
        # model families (features.models.<name>.checkpoints): score vs checkpoint
        families=checkpoint_families(MODELS),
        logs=P.logs_dir(),
        config=CFG,
        dataset=(
            CFG["bids"]["bids_dir"] if MODE == "bids" else CFG["external"]["stimuli"]
        ),
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/report_html.py"


rule report_description:
    """The derivative dataset's dataset_description.json: source, version, and the container
    image of each step family when the run used containers."""
    output:
        description=P.description(),
    log:
        P.log("report_description", "dataset"),
    conda:
        "../envs/report.yaml"
    container:
        CONTAINERS["report"]
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        description=derivative_description(
            (
                CFG["bids"]["bids_dir"]
                if MODE == "bids"
                else CFG["external"]["stimuli_dir"]
            ),
            containers=CONTAINERS if USES_CONTAINERS else None,
        ),
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/report_description.py"
