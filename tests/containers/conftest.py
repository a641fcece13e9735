"""Fixtures of the container tests: the step images, built once per session with Podman.

Podman is installed (apt-get, when missing) and the images are built only when a test asks for
them, and only as root on Linux; elsewhere those tests skip and say why.
BRAINALIGN_CONTAINER_TESTS=skip skips them on a machine where installing packages is unwanted.
An image already in Podman's storage is reused when its label says it was built from this
checkout's sources (tests/containers/podman_harness.py: source_hash); otherwise, or with
BRAINALIGN_CONTAINER_REBUILD=1, it is rebuilt.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.containers import podman_harness as ph


def _skip_reason() -> str | None:
    if os.environ.get("BRAINALIGN_CONTAINER_TESTS", "").lower() == "skip":
        return "BRAINALIGN_CONTAINER_TESTS=skip"
    return ph.unavailable_reason()


@pytest.fixture(scope="session")
def step_images(tmp_path_factory) -> dict[str, str]:
    """{family: image name} of the five step images, built from this checkout."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    ph.install_podman()
    rebuild = os.environ.get("BRAINALIGN_CONTAINER_REBUILD") == "1"
    todo = [f for f in ph.FAMILIES if rebuild or not ph.image_is_current(f)]
    if todo:
        logs = tmp_path_factory.mktemp("image-builds")
        seconds = ph.build_images(todo, log_dir=logs)
        print("image build times (s):", {k: round(v) for k, v in seconds.items()})
    return {f: ph.image_name(f) for f in ph.FAMILIES}


def podman_run(image: str, *command: str, timeout: int = 300,
               volumes: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """``podman run --rm`` of a command in an image (binding each volume at its own path)."""
    binds = [arg for v in volumes for arg in ("-v", f"{v}:{v}")]
    return subprocess.run(["podman", "run", "--rm", *binds, image, *command],
                          capture_output=True, text=True, timeout=timeout, check=False)
