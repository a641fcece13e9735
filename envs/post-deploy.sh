#!/usr/bin/env bash
# Post-deploy script of every step env (envs/<family>.post-deploy.sh links here). Snakemake runs
# it inside a conda env right after creating it (--software-deployment-method conda), and it
# installs brainalign from the workflow's own checkout, at the workflow's version, without
# touching the env's pins. rules/common.smk sets BRAINALIGN_SOURCE to that checkout.
set -euo pipefail
: "${BRAINALIGN_SOURCE:?is not set: run the brainalign Snakefile, which sets it in rules/common.smk}"
python -m pip install --no-deps --no-cache-dir "$BRAINALIGN_SOURCE"
python -c "import brainalign; print('brainalign', brainalign.__version__, 'installed in', brainalign.__file__)"
