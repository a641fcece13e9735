#!/usr/bin/env python3
"""A stand-in ``apptainer`` for the tests: runs Snakemake's container jobs with rootful Podman.

There is no Apptainer here. Snakemake 9 runs rule containers only through
``--software-deployment-method apptainer`` and makes exactly three kinds of calls to the
``apptainer`` binary on PATH; this script answers them with Podman:

- ``apptainer --version``
- ``apptainer pull --name HASH.simg docker://IMAGE`` (in .snakemake/singularity/): writes a text
  marker naming the Podman image instead of a SIF file; the image must already be in Podman's
  local storage (no registry is reachable)
- ``apptainer [--quiet --silent] exec --home H [--bind SRC[:DST]]... [--pwd DIR] IMG CMD...``:
  ``podman run --rm --network=none`` of the image (no network, like an offline compute node)
  with the same binds, home and working directory, the current folder and /tmp bound as
  Apptainer does by default, and the SINGULARITYENV_/APPTAINERENV_ variables Snakemake sets

Limits, so that nobody mistakes it for Apptainer: it depends on how Snakemake calls apptainer
(not a public interface); its ``.simg`` files are markers, not images; of the host environment
it passes only locale, thread-count and BLAS kernel-selection variables (Apptainer passes
nearly everything); GPUs are not handled. Every call is appended to ``$SHIM_LOG`` when that
is set, for the tests to read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

MARK = "podman-shim-image:"
PASS_ENV = ("LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# BLAS kernel selection (e.g. OPENBLAS_CORETYPE=Haswell on a host that sets it): OpenBLAS picks
# its kernels by these, and float32 results differ between kernels (SkylakeX vs Haswell: 1e-7),
# so a job must see the host's values to compute what the host computes, as under Apptainer
PASS_PREFIXES = ("OPENBLAS_", "GOTO_", "MKL_", "NVPL_BLAS_")


def die(message: str, code: int = 255) -> None:
    """Stop with an apptainer-like error."""
    print(f"apptainer (podman shim): {message}", file=sys.stderr)
    sys.exit(code)


def image_ref(uri: str) -> str:
    """Podman image reference of a docker://, oci:// or plain image URI."""
    for prefix in ("docker://", "oci://", "podman://"):
        if uri.startswith(prefix):
            return uri[len(prefix):]
    return uri


def pull(args: list[str]) -> int:
    """``pull --name NAME URI``: write a marker file naming a local Podman image."""
    name, rest, i = None, [], 0
    while i < len(args):
        if args[i] == "--name":
            name, i = args[i + 1], i + 2
        elif args[i] in ("-F", "--force"):
            i += 1
        else:
            rest.append(args[i])
            i += 1
    if not rest or not name:
        die(f"pull needs --name NAME and an image URI, got {args}")
    ref = image_ref(rest[-1])
    if subprocess.run(["podman", "image", "exists", ref], check=False).returncode != 0:
        die(f"image {ref} is not in Podman's local storage; build it first "
            "(containers/build.sh)", 1)
    with open(name, "w") as fh:
        fh.write(MARK + ref + "\n")
    return 0


def execute(args: list[str]) -> None:
    """``exec [options] IMAGE CMD...``: replace this process with ``podman run``."""
    cwd = os.getcwd()
    pwd, home, binds = cwd, None, [cwd, "/tmp"]
    # no network, as on an offline compute node: nothing may download during a job
    opts = ["run", "--rm", "-i", "--network=none"]
    i = 0
    while i < len(args) and args[i].startswith("-"):
        opt = args[i]
        if opt in ("--bind", "-B", "--mount"):
            binds += args[i + 1].split(",")
            i += 2
        elif opt == "--home":
            home, i = args[i + 1], i + 2
        elif opt in ("--pwd", "--cwd"):
            pwd, i = args[i + 1], i + 2
        elif opt == "--env":
            opts += ["--env", args[i + 1]]
            i += 2
        elif opt in ("--quiet", "--silent", "-q", "-s", "--cleanenv", "-e", "--no-home",
                     "--writable-tmpfs"):
            i += 1
        else:
            die(f"option {opt} is not supported by this shim")
    if i >= len(args):
        die("exec needs an image")
    image, command = args[i], args[i + 1:]
    if os.path.isfile(image):
        with open(image) as fh:
            head = fh.read(512)
        if not head.startswith(MARK):
            die(f"{image} is not a marker written by this shim's pull (a real SIF file?)")
        ref = head[len(MARK):].strip()
    else:
        ref = image_ref(image)
    seen = set()
    for bind in binds:
        parts = bind.split(":")
        src, dst = parts[0], parts[1] if len(parts) > 1 else parts[0]
        mode = f":{parts[2]}" if len(parts) > 2 else ""
        if (src, dst) in seen or not os.path.exists(src):
            continue
        seen.add((src, dst))
        opts += ["-v", f"{src}:{dst}{mode}"]
    if home:
        opts += ["-e", f"HOME={home}"]
        if os.path.isdir(home) and (home, home) not in seen:
            opts += ["-v", f"{home}:{home}"]
    for key, value in os.environ.items():
        for prefix in ("APPTAINERENV_", "SINGULARITYENV_"):
            if key.startswith(prefix):
                opts += ["-e", f"{key[len(prefix):]}={value}"]
    opts += [f"--env={k}={os.environ[k]}" for k in PASS_ENV if k in os.environ]
    opts += [f"--env={k}={v}" for k, v in sorted(os.environ.items())
             if k.startswith(PASS_PREFIXES) and k not in PASS_ENV]
    argv = ["podman", *opts, "-w", pwd, ref, *command]
    if os.environ.get("SHIM_LOG"):
        with open(os.environ["SHIM_LOG"], "a") as fh:
            fh.write(json.dumps({"image": ref, "argv": argv}) + "\n")
    os.execvp("podman", argv)


def main(argv: list[str]) -> int:
    """Dispatch one apptainer call."""
    args = list(argv)
    while args and args[0] in ("--quiet", "--silent", "-q", "-s", "--debug", "-d"):
        args.pop(0)
    if not args:
        die("no command")
    if args[0] in ("--version", "version"):
        print("apptainer version 1.3.0+podman-shim")
        return 0
    if args[0] == "pull":
        return pull(args[1:])
    if args[0] in ("exec", "run"):
        execute(args[1:])
    die(f"subcommand {args[0]} is not supported by this shim")
    return 255


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
