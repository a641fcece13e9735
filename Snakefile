# brainalign: BIDS dataset -> fMRI responses -> DNN features -> encoding and RSA -> report.
# Thin on purpose: the logic lives in the `brainalign` package, the rules in rules/*.smk.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/features.smk"
include: "rules/rsa.smk"
include: "rules/report.smk"


if MODE == "bids":

    include: "rules/ingest.smk"
    include: "rules/fmri.smk"
    include: "rules/encoding.smk"

else:

    include: "rules/external.smk"


# Every output of the study: the group scores table and the HTML report.
rule all:
    default_target: True
    input:
        P.scores(),
        P.report(),
    localrule: True


# BIDS-App participant level: every per-subject output of the selected participants.
rule participant:
    input:
        participant_targets(),
    localrule: True
