rule report_scores:
    """The tidy group table of every encoding and RSA score."""
    input:
        encoding=expand(P.encoding_summary("{subject}"), subject=SUBJECTS),
        rsa=expand(
            P.rsa_scores("{subject}", "{model}"), subject=SUBJECTS, model=list(MODELS)
        ),
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
        roi_rdms=expand(P.roi_rdms("{subject}"), subject=SUBJECTS),
        layer_rdms=expand(P.layer_rdms("{model}"), model=list(MODELS)),
        runs=P.runs_manifest(),
    output:
        report=P.report(),
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
        subjects=SUBJECTS,
        models=list(MODELS),
        config=CFG,
        dataset_path=str(INDEX.bids_dir),
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/report_html.py"
