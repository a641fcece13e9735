"""pytest plugin: with CI=true every skipped test counts as a failure.

CI has the shared data, the reference libraries, root and Debian, so a test that skips there
hides a missing piece instead of testing it. Outside CI a skip with its reason stays fine.
Expected failures (xfail) are not skips and are left alone.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    """Whether this run is CI's (``CI=true``, as GitHub Actions, GitLab and .ci/run set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        reason = str(reason).removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} was skipped in CI (CI=true), where every test must "
                           f"run: {reason}")
