"""Fixtures of the SLURM tests: one real single-node cluster for the whole session.

The cluster is installed (apt-get, when something is missing) and started only when a test asks
for it, and only as root on Debian; elsewhere those tests skip and say why.
BRAINALIGN_SLURM_TESTS=skip skips them on a machine where installing packages is unwanted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import yaml

from tests.conftest import REPO
from tests.slurm.local_slurm import LocalSlurmCluster, install_packages, unavailable_reason

PROFILE = REPO / "profiles" / "slurm"


def profile_partition() -> str:
    """The partition the cluster profile submits to (the test cluster gets that name)."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    return str(profile["default-resources"]["slurm_partition"])


@pytest.fixture(scope="session")
def slurm_session_cluster() -> Iterator[LocalSlurmCluster]:
    """A running one-node SLURM cluster with accounting, started once per session."""
    if os.environ.get("BRAINALIGN_SLURM_TESTS", "").lower() == "skip":
        pytest.skip("BRAINALIGN_SLURM_TESTS=skip")
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    pytest.importorskip(
        "snakemake_executor_plugin_slurm",
        reason="snakemake-executor-plugin-slurm is not installed: "
               ".venv/bin/pip install -r requirements-slurm.txt")
    install_packages()
    cluster = LocalSlurmCluster(partition=profile_partition())
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def slurm_cluster(slurm_session_cluster, monkeypatch) -> LocalSlurmCluster:
    """The session's cluster, with SLURM_CONF and PATH pointing at it during the test.

    Snakemake, sbatch and sacct run as subprocesses and inherit this environment; variables of
    an enclosing SLURM job would confuse them, so they are removed.
    """
    for name in list(os.environ):
        if name.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_")):
            monkeypatch.delenv(name)
    for name, value in slurm_session_cluster.env.items():
        monkeypatch.setenv(name, value)
    return slurm_session_cluster
