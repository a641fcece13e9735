"""Rootful Podman for the container tests: install it, make a local Debian base, build images.

No image registry is reachable here, so the base image is made from scratch:
``debootstrap --variant=minbase bookworm`` into a folder, then ``podman import`` as
``localhost/debian:bookworm``. The step images are built by the project's own
``containers/build.sh`` from that base. pip inside a build gets this machine's pip settings
(local wheel mirrors, CA bundle, constraints): a merged ``pip.conf`` and every local path it
names are mounted into the build, read-only, for the build only; the images keep none of it.

This machine's quirks (see ../shared/reference/containers/README.md): crun refuses the host's
hybrid cgroup-v1 mode, so the runtime is ``runc``; root cannot raise its ulimits, so containers
get ``nofile=20000``/``nproc=32768`` by default. Both go to /etc/containers/containers.conf,
written only when that file does not exist yet.

Run as a script it builds every image the tests use (for a manual check)::

    .venv/bin/python -m tests.containers.podman_harness [FAMILY ...]
"""

from __future__ import annotations

import configparser
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APT_PACKAGES = ("podman", "debootstrap", "runc", "uidmap")
BASE_IMAGE = "localhost/debian:bookworm"
CONTAINERS_CONF = Path("/etc/containers/containers.conf")
CONTAINERS_CONF_TEXT = """\
# written by brainalign's container tests (tests/containers/podman_harness.py)
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
"""
FAMILIES = ("fmri", "meeg", "features", "analysis", "report")

logger = logging.getLogger(__name__)


class ContainerError(RuntimeError):
    """Podman could not be installed, or an image could not be made."""


def unavailable_reason() -> str | None:
    """Why this machine cannot build and run the images, or None if it can.

    Returns
    -------
    reason : str or None
        A sentence suitable as a pytest skip reason.
    """
    if not sys.platform.startswith("linux"):
        return f"the container tests need Linux, this is {sys.platform}"
    if os.geteuid() != 0:
        return ("the container tests need root (rootful Podman, installed with apt-get); run the "
                "tests as root, as CI does")
    if shutil.which("podman") is None and shutil.which("apt-get") is None:
        return "podman is not installed and this is not Debian/Ubuntu (no apt-get)"
    return None


def _run(cmd: Sequence[str], *, timeout_s: float, **kwargs) -> subprocess.CompletedProcess:
    res = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout_s,
                         check=False, **kwargs)
    if res.returncode != 0:
        raise ContainerError(f"`{' '.join(cmd)}` failed with exit code {res.returncode}:\n"
                             f"{(res.stdout + res.stderr)[-4000:]}")
    return res


def install_podman(*, timeout_s: float = 900) -> None:
    """Install Podman, debootstrap and runc with apt-get when missing; write containers.conf."""
    if not all(shutil.which(p) for p in ("podman", "debootstrap", "runc")):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        lock = ["-o", "DPkg::Lock::Timeout=600"]
        _run(["apt-get", *lock, "update", "-q"], timeout_s=timeout_s, env=env)
        _run(["apt-get", *lock, "install", "-y", "-q", "--no-install-recommends",
              *APT_PACKAGES], timeout_s=timeout_s, env=env)
    if not CONTAINERS_CONF.exists():
        CONTAINERS_CONF.parent.mkdir(parents=True, exist_ok=True)
        CONTAINERS_CONF.write_text(CONTAINERS_CONF_TEXT)


def image_exists(ref: str) -> bool:
    """Whether Podman's local storage holds image ``ref``."""
    return subprocess.run(["podman", "image", "exists", ref], check=False).returncode == 0


def debian_mirror() -> str:
    """The Debian mirror apt uses on this machine (debootstrap takes the same)."""
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for path in sources:
        if not path.is_file():
            continue
        for url in re.findall(r"(?:URIs:|^deb)\s+(\S+/debian)\s*$", path.read_text(), re.M):
            return url
    return "http://deb.debian.org/debian"


def ensure_base_image(*, timeout_s: float = 900) -> str:
    """Make ``localhost/debian:bookworm`` with debootstrap unless it exists; return its name."""
    if image_exists(BASE_IMAGE):
        return BASE_IMAGE
    with tempfile.TemporaryDirectory(prefix="brainalign-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        # python3 is in the base already: the step builds then need no Debian package download
        _run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
              "bookworm", str(rootfs), debian_mirror()], timeout_s=timeout_s)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            _run(["podman", "import", "-", BASE_IMAGE], timeout_s=timeout_s, stdin=tar.stdout)
        finally:
            tar.stdout.close()
            tar.wait()
    return BASE_IMAGE


def _local_paths(value: str) -> list[str]:
    """Local files or folders named by a pip setting (paths and file:// URLs)."""
    out = []
    for item in value.split():
        path = item[len("file://"):] if item.startswith("file://") else item
        path = path.rstrip("/")
        if path.endswith("/simple"):  # a file:// index: its pages link to files beside it
            path = str(Path(path).parent)
        if path.startswith("/") and Path(path).exists():
            out.append(path)
    return out


def pip_build_options(workdir: Path) -> list[str]:
    """``podman build`` options that give pip in the build this machine's pip settings.

    Parameters
    ----------
    workdir : Path
        Where to write the merged ``pip.conf`` that is mounted into the build.

    Returns
    -------
    options : list of str
        ``-v SRC:DST:ro`` mounts of the merged pip.conf (at /etc/pip.conf) and of every local
        path it names (wheel folders, file:// indexes, the CA bundle, constraint files).
    """
    res = subprocess.run([sys.executable, "-m", "pip", "config", "debug"], capture_output=True,
                         text=True, timeout=60, check=False)
    files = [Path(m) for m in re.findall(r"^\s+(/\S+), exists: True", res.stdout, re.M)]
    merged = configparser.ConfigParser()
    for f in files:
        merged.read(f)
    env = {k[len("PIP_"):].lower().replace("_", "-"): v for k, v in os.environ.items()
           if k.startswith("PIP_")}
    if env:
        merged.read_dict({"global": env})
    conf = workdir / "pip.conf"
    with conf.open("w") as fh:
        merged.write(fh)
    opts = ["-v", f"{conf}:/etc/pip.conf:ro"]
    seen: set[str] = set()
    for section in merged.sections():
        for value in merged[section].values():
            for path in _local_paths(value):
                if path not in seen:
                    seen.add(path)
                    opts += ["-v", f"{path}:{path}:ro"]
    return opts


def version() -> str:
    """brainalign's version, as containers/build.sh reads it."""
    text = (REPO / "src" / "brainalign" / "__init__.py").read_text()
    return re.search(r'^__version__ = "(.*)"$', text, re.M).group(1)


def image_name(family: str) -> str:
    """The name rules/common.smk gives the image of a step family (without docker://)."""
    return f"localhost/brainalign-{family}:{version()}"


def source_hash(family: str) -> str:
    """Hash of everything a step image is built from (recorded as an image label).

    An image whose label differs was built from other code or pins and is rebuilt.
    """
    import hashlib

    files = [REPO / "envs" / f"{family}.txt", REPO / "containers" / "install.sh",
             REPO / "containers" / f"{family}.Containerfile", REPO / "pyproject.toml",
             *sorted((REPO / "src").rglob("*.py")), *sorted((REPO / "src").rglob("*.yaml"))]
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(REPO)).encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


def image_is_current(family: str) -> bool:
    """Whether the family's image exists and was built from this checkout's sources."""
    ref = image_name(family)
    if not image_exists(ref):
        return False
    res = subprocess.run(["podman", "image", "inspect", "--format",
                          '{{ index .Labels "brainalign.source-hash" }}', ref],
                         capture_output=True, text=True, check=False)
    return res.stdout.strip() == source_hash(family)


def build_images(families: Sequence[str], *, log_dir: Path,
                 timeout_s: float = 3600) -> dict[str, float]:
    """Build step images with ``containers/build.sh`` (podman, local Debian base).

    Parameters
    ----------
    families : sequence of str
        Step families to build.
    log_dir : Path
        Where each build's output goes (``build-<family>.log``).
    timeout_s : float
        Limit of each build.

    Returns
    -------
    seconds : dict
        Build time of each family.

    Raises
    ------
    ContainerError
        If a build fails; the message ends with the tail of its log.
    """
    install_podman()
    base = ensure_base_image()
    log_dir.mkdir(parents=True, exist_ok=True)
    opts = " ".join(pip_build_options(log_dir))
    seconds = {}
    for family in families:
        log = log_dir / f"build-{family}.log"
        start = time.monotonic()
        with log.open("w") as fh:
            res = subprocess.run(
                ["sh", str(REPO / "containers" / "build.sh"), family],
                env={**os.environ, "ENGINE": "podman", "BASE": base,
                     "BUILD_OPTS": f"{opts} --label brainalign.source-hash={source_hash(family)}"},
                stdout=fh, stderr=subprocess.STDOUT, timeout=timeout_s, check=False)
        seconds[family] = time.monotonic() - start
        if res.returncode != 0:
            raise ContainerError(f"containers/build.sh {family} failed (exit {res.returncode}); "
                                 f"end of {log}:\n{log.read_text()[-4000:]}")
    # a rebuilt image leaves its predecessor untagged: free that space (6 GB for features)
    subprocess.run(["podman", "image", "prune", "-f"], capture_output=True, check=False)
    return seconds


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    out = build_images(sys.argv[1:] or FAMILIES, log_dir=Path("/tmp/brainalign-image-builds"))
    for fam, sec in out.items():
        print(f"{fam}: {sec:.0f} s")
