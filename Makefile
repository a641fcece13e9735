# Two commands (see README.md):
#   make demo   set up .venv with pinned dependencies, write the demo dataset, run the workflow
#   make test   set up .venv (+ test tools), then ruff, snakefmt --check, snakemake --lint, pytest
#               (as root it also starts a one-node SLURM cluster and builds the step images
#               with Podman, installing their Debian packages; see tests/slurm, tests/containers)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all
STAMP := $(VENV)/.brainalign-installed

.PHONY: venv demo demo-data rerun test lint bench clean

venv: $(STAMP)

# torch and torchvision are pinned in requirements.txt and installed in this one pip command;
# requirements-slurm.txt adds Snakemake's SLURM executor (profiles/slurm, tests/slurm).
$(STAMP): requirements.txt requirements-test.txt requirements-slurm.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-test.txt \
		-r requirements-slurm.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

demo/truth.json: | $(STAMP)
	rm -rf demo
	$(BIN)/brainalign demo-data demo

demo-data: demo/truth.json

demo: demo/truth.json
	$(BIN)/snakemake --cores $(CORES)

# After a crash, a kill or a failed job: release Snakemake's lock (only if no other snakemake
# runs in this folder!), then run again; jobs that were cut off are redone (rerun-incomplete).
rerun: demo/truth.json
	$(BIN)/snakemake --unlock
	$(BIN)/snakemake --cores $(CORES)

lint: demo/truth.json
	$(BIN)/ruff check src scripts tests benchmarks
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/snakemake --lint

test: lint
	$(BIN)/python -m pytest

# Issue-3 benchmarks and the single-trial GLM's (about 17 minutes on 2 idle cores); figures
# print as ratios.
bench: venv
	$(BIN)/python benchmarks/bench_ridge.py
	$(BIN)/python benchmarks/bench_rsa.py --n-boot 1000
	$(BIN)/python benchmarks/bench_memory.py
	$(BIN)/python benchmarks/bench_dag.py
	$(BIN)/python benchmarks/bench_glm.py --flm

clean:
	rm -rf results demo .snakemake
