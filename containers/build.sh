#!/bin/sh
# Build brainalign's step images, one per family, tagged localhost/brainalign-<family>:<version>
# (the names rules/common.smk gives the rules). Run from anywhere:
#   containers/build.sh                 all four families
#   containers/build.sh fmri analysis   some of them
# Environment: ENGINE (podman, default, or docker); BASE (the Debian bookworm base image,
# default docker.io/library/debian:bookworm-slim); BUILD_OPTS (extra options of `ENGINE build`,
# e.g. "-v /etc/ssl/certs/ca-certificates.crt:/run/ca.crt:ro --build-arg PIP_CERT=/run/ca.crt"
# behind a TLS-intercepting proxy, or --build-arg PIP_INDEX_URL=... for a site mirror).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
engine=${ENGINE:-podman}
base=${BASE:-docker.io/library/debian:bookworm-slim}
version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$root/src/brainalign/__init__.py")
[ -n "$version" ] || { echo "build.sh: no __version__ in src/brainalign/__init__.py" >&2; exit 2; }
[ $# -gt 0 ] || set -- fmri meeg features analysis report
for family in "$@"; do
    file="$root/containers/$family.Containerfile"
    [ -f "$file" ] || { echo "build.sh: no step family '$family' ($file)" >&2; exit 2; }
    tag="localhost/brainalign-$family:$version"
    echo "build.sh: building $tag from $file"
    # shellcheck disable=SC2086
    "$engine" build --file "$file" --tag "$tag" --build-arg "BASE=$base" \
        --label "org.opencontainers.image.version=$version" ${BUILD_OPTS:-} "$root"
done
