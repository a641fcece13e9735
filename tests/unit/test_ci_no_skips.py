"""With CI=true a skip is a failure (tests/ci_no_skips.py); outside CI it stays a skip."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

SAMPLE = '''
import pytest

def test_passes():
    assert 1 + 1 == 2

def test_skips():
    pytest.skip("needs something absent")

@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert False
'''


def _run(tmp_path, ci: str | None):
    test = tmp_path / "test_sample.py"
    test.write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.ci_no_skips", "-q", "-p",
         "no:cacheprovider", "--rootdir", str(tmp_path), str(test)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_a_skip_fails_in_ci(tmp_path, ci):
    res = _run(tmp_path, ci)
    assert res.returncode == 1, res.stdout
    assert "1 failed, 1 passed, 1 xfailed" in res.stdout, res.stdout
    assert "was skipped in CI (CI=true), where every test must run: needs something absent" \
        in res.stdout


@pytest.mark.parametrize("ci", [None, "false", ""])
def test_a_skip_is_a_skip_outside_ci(tmp_path, ci):
    res = _run(tmp_path, ci)
    assert res.returncode == 0, res.stdout
    assert "1 passed, 1 skipped, 1 xfailed" in res.stdout, res.stdout
