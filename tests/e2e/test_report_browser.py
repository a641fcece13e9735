"""The report as a user sees it: report.html and failures.html in a real headless Chromium.

Debian's Chromium (/usr/bin/chromium) is driven by Playwright (its own browser download is
never used). When Chromium is missing, the session installs it with apt-get (root on Debian,
as in CI: about a minute); elsewhere these tests skip and say why. A full-page screenshot of
the report is kept under the test's tmp folder and, when BRAINALIGN_ARTIFACTS is set, copied
there.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from brainalign.io import read_tsv
from tests.conftest import REPO

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
# as root, and on a machine whose only network is a package mirror: no sandbox, no GPU, no
# background connections (each refused connection would be a console error)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}
SECTIONS = {
    "encoding": "Encoding models (cross-validated ridge)",
    "rsa": "Representational similarity analysis",
    "rdms": "RDMs",
    "all-scores": "All scores",
    "columns": "Columns of scores.tsv",
    "provenance": "Provenance",
}
FAILURE_DATA = REPO / "tests" / "unit" / "data" / "snakemake_failures" / "capture"


def _install_reason() -> str | None:
    """Why Chromium cannot be installed here, or None if apt-get can do it."""
    if not sys.platform.startswith("linux"):
        return f"Debian's Chromium needs Linux, this is {sys.platform}"
    if not Path("/etc/debian_version").is_file() or shutil.which("apt-get") is None:
        return "Chromium is installed with apt-get: this is not Debian/Ubuntu"
    if os.geteuid() != 0:
        return ("/usr/bin/chromium is missing and installing it needs root: run "
                "`apt-get install -y chromium` or run the tests as root, as CI does")
    return None


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed with apt-get by this session when it is missing."""
    if not os.access(CHROMIUM, os.X_OK):
        reason = _install_reason()
        if reason:
            pytest.skip(reason)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        lock = ["-o", "DPkg::Lock::Timeout=600"]
        for cmd in (["apt-get", *lock, "update", "-q"],
                    ["apt-get", *lock, "install", "-y", "-q", "--no-install-recommends",
                     "chromium"]):
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200,
                                 check=False)
            assert res.returncode == 0, (
                f"`{' '.join(cmd)}` failed with exit code {res.returncode}: "
                f"{(res.stdout + res.stderr)[-2000:]}")
        assert os.access(CHROMIUM, os.X_OK), f"apt-get installed chromium but {CHROMIUM} is absent"
    return CHROMIUM


@pytest.fixture(scope="session")
def playwright_driver():
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="playwright is not installed: .venv/bin/pip install -r requirements-test.txt")
    with sync_api.sync_playwright() as driver:
        yield driver


class Page:
    """A page opened in a fresh Chromium profile, with everything it logged."""

    def __init__(self, page):
        self.page = page
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.failed_requests: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(
            f"{m.text} ({m.location})"))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed_requests.append(
            f"{r.url[:200]}: {r.failure}"))

    def problems(self) -> list[str]:
        return self.console_errors + self.page_errors + self.failed_requests


@pytest.fixture
def open_page(chromium, playwright_driver, tmp_path) -> Iterator:
    """open_page(path) -> Page: ``path`` loaded in Chromium with a new, empty profile."""
    contexts = []

    def _open(path: Path) -> Page:
        profile = tmp_path / f"chromium-profile-{len(contexts)}"
        profile.mkdir()
        context = playwright_driver.chromium.launch_persistent_context(
            str(profile), executable_path=str(chromium), headless=True, args=CHROMIUM_FLAGS,
            viewport=VIEWPORT, offline=True)
        contexts.append(context)
        page = Page(context.new_page())
        page.page.goto(path.resolve().as_uri(), wait_until="load")
        return page

    yield _open
    for context in contexts:
        context.close()


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _keep(screenshot: Path) -> None:
    artifacts = os.environ.get("BRAINALIGN_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy2(screenshot, Path(artifacts) / screenshot.name)


def test_demo_report_in_chromium(chromium, playwright_driver, finished_run, open_page, tmp_path):
    # chromium and playwright first: a machine that cannot run them skips before the workflow
    work, _, _ = finished_run
    group = work / "results" / "group"
    scores = read_tsv(group / "scores.tsv")
    view = open_page(group / "report.html")
    page = view.page

    assert page.title() == "brainalign report"
    # every figure is a PNG that decoded, with a size, inside the page's width
    images = page.eval_on_selector_all(
        "img", """els => els.map(e => ({alt: e.alt, complete: e.complete, w: e.naturalWidth,
                                         h: e.naturalHeight, right: e.getBoundingClientRect().right,
                                         shown: e.getBoundingClientRect().width}))""")
    assert len(images) >= 5, images  # 2 analyses, brain RDMs of 2 subjects, layer RDMs
    for img in images:
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, img
        assert 0 < img["shown"] and img["right"] <= VIEWPORT["width"], img
        assert img["alt"], img
    # nothing to scroll sideways at a laptop's width
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]

    # the sections, in order, each with its heading
    ids = page.eval_on_selector_all("section", "els => els.map(e => e.id)")
    expected = [s for s in SECTIONS if s in ids]
    assert expected == list(SECTIONS), ids
    assert [i for i in ids if i in SECTIONS] == list(SECTIONS)
    for section, heading in SECTIONS.items():
        assert page.inner_text(f"section#{section} h2") == heading

    # All scores: one row per fMRI line of scores.tsv (the time-resolved M/EEG rows are drawn in
    # "M/EEG over time"), the columns that hold a value
    timed = scores["time"].notna() if "time" in scores.columns else scores["score"].isna()
    all_scores, scores = scores, scores[~timed]
    shown = [c for c in scores.columns if scores[c].notna().any()]
    empty = [c for c in scores.columns if scores[c].isna().all()]
    assert {"ci_low", "ci_high", "p_value", "p_fdr"} <= set(empty)
    assert "noise_ceiling_lower" in shown  # the RSA rows' ceiling range
    header = page.eval_on_selector_all("section#all-scores th", "els => els.map(e => e.innerText)")
    assert header == shown
    assert page.locator("section#all-scores tbody tr").count() == len(scores)
    note = page.inner_text("section#all-scores p.note")
    assert all(c in note for c in empty)
    # best layer per subject, ROI and model
    for analysis in ("encoding", "rsa"):
        sub = scores[scores["analysis"] == analysis]
        n_best = len(sub.groupby(["subject", "roi", "model"]))
        assert page.locator(f"section#{analysis} tbody tr").count() == n_best
    # every column is explained
    assert page.locator("section#columns dt").count() == len(scores.columns)

    # scores above the noise ceiling: flagged in the table and explained, else no warning
    n_flagged = int(scores["flags"].notna().sum())
    assert page.locator("section#all-scores tr.flagged").count() == n_flagged
    assert page.locator("#flag-warning").count() == (
        1 if all_scores["flags"].notna().any() else 0)

    # M/EEG: one figure per modality and channel group, and one of fusion when there is fusion
    meeg = all_scores[timed]
    assert page.locator("section#meeg").count() == (1 if len(meeg) else 0)
    if len(meeg):
        assert page.inner_text("section#meeg h2") == "M/EEG over time"
        curves = meeg[meeg["analysis"] != "fusion"]
        n_groups = len(curves.groupby(["modality", "roi"]))
        assert page.locator("section#meeg img").count() == n_groups
        fusion = (meeg["analysis"] == "fusion").any()
        assert page.locator("section#fusion img").count() == (1 if fusion else 0)

    # the ROI voxel table, when the run wrote one
    if page.locator("section#roi-voxels").count():
        assert page.locator("section#roi-voxels tbody tr").count() >= 1

    assert '"brainalign"' in page.inner_text("section#provenance pre")
    screenshot = tmp_path / "report.png"
    page.screenshot(path=str(screenshot), full_page=True)
    width, height = _png_size(screenshot)
    assert width == VIEWPORT["width"] and height > 3 * VIEWPORT["height"], (width, height)
    _keep(screenshot)
    assert view.problems() == []


def test_failure_summary_in_chromium(open_page, tmp_path, monkeypatch):
    """failures.html of a run with failed jobs: it renders, and its log links open."""
    from brainalign.report import write_failure_report

    run = tmp_path / "run"
    shutil.copytree(FAILURE_DATA, run)
    monkeypatch.chdir(run)
    html = write_failure_report([str(run / "keep_going.snakemake.log")], "results",
                                outputs=["out/missing.txt"])
    view = open_page(run / html)
    page = view.page
    assert page.inner_text("h1") == "brainalign: the run ended with failed jobs"
    assert page.locator("section#failed-jobs tbody tr").count() == 4
    assert page.locator("section#score-tables tbody tr").count() == 1
    links = page.eval_on_selector_all("a", "els => els.map(e => e.href)")
    assert len(links) >= 4  # the Snakemake log and three job logs
    for href in links:
        assert href.startswith("file://"), href
        assert Path(unquote(href.removeprefix("file://"))).is_file(), href
    screenshot = tmp_path / "failures.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert _png_size(screenshot)[0] == VIEWPORT["width"]
    _keep(screenshot)
    assert view.problems() == []
