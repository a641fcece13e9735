rule ingest_manifest:
    """Index the BIDS dataset, check it, and write the run/stimulus manifests."""
    input:
        events=[r.events for r in INDEX.runs] + [r.events for r in INDEX.meeg_runs],
    output:
        runs=P.runs_manifest(),
        stimuli=P.stimuli_manifest(),
    log:
        P.log("ingest_manifest", "dataset"),
    conda:
        "../envs/fmri.yaml"
    container:
        CONTAINERS["fmri"]
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        bids=CFG["bids"],
        stim_column=CFG["meeg"]["stim_column"],
        version=BRAINALIGN_VERSION,
    script:
        "../scripts/ingest_manifest.py"
