#!/bin/sh
# Installs one step family of brainalign into /opt/venv of an image. Both recipes of a family
# call it, so they install exactly the same thing:
#   containers/<family>.Containerfile (podman/docker build)   containers/<family>.def (apptainer build)
# Usage: sh /opt/brainalign-src/containers/install.sh FAMILY
# Expects the build context at /opt/brainalign-src: envs/FAMILY.txt (the pins), pyproject.toml,
# README.md and src/. pip settings come from the environment (PIP_INDEX_URL, PIP_FIND_LINKS,
# PIP_EXTRA_INDEX_URL, PIP_CERT, ...), e.g. a site mirror or a CA bundle mounted at build time.
set -eu
family="$1"
src=/opt/brainalign-src
pins="$src/envs/$family.txt"
[ -f "$pins" ] || { echo "install.sh: no pins for step family '$family' ($pins)" >&2; exit 2; }
apt-get update
apt-get install -y --no-install-recommends python3 python3-venv ca-certificates
rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
python3 -m venv /opt/venv
# one pip command for all pins (torch and torchvision resolve together), then the package alone
/opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r "$pins"
/opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps "$src"
# record what the image holds, for provenance and for `brainalign prepare`
mkdir -p /opt/brainalign
/opt/venv/bin/pip freeze --disable-pip-version-check > /opt/brainalign/pip-freeze.txt
/opt/venv/bin/python -c "import brainalign; print(brainalign.__version__)" > /opt/brainalign/version
echo "$family" > /opt/brainalign/family
rm -rf "$src"
echo "brainalign $(cat /opt/brainalign/version), step family $family, installed in /opt/venv"
