"""The workflow's fMRIPrep stage, run through a real container engine with a stand-in image.

The real fMRIPrep image cannot be pulled here, so ``tests/containers/fmriprep_standin.py``
(fMRIPrep's CLI, writing fMRIPrep's derivatives layout) is built into
``localhost/fmriprep-standin:<version>`` on the local Debian base, and the workflow runs it with
``fmri.fmriprep.engine: podman``: the exact ``podman run --rm -v ...`` command the rule builds.
The image is rebuilt only when its sources change (label ``brainalign.source-hash``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import nibabel as nib
import pytest

from brainalign.fmri.derivatives import fmriprep_run_files
from brainalign.fmri.fmriprep import FMRIPREP_VERSION, fmriprep_command
from brainalign.workflow import DerivPaths
from tests.conftest import REPO, make_config, run_snakemake
from tests.containers import podman_harness as ph

HERE = Path(__file__).parent
SOURCES = (HERE / "fmriprep_standin.Containerfile", HERE / "fmriprep_standin.py")
IMAGE = f"localhost/fmriprep-standin:{FMRIPREP_VERSION}"


def source_hash() -> str:
    """Hash of the stand-in's Containerfile and script (the image label)."""
    digest = hashlib.sha256()
    for f in SOURCES:
        digest.update(f.name.encode() + f.read_bytes())
    return digest.hexdigest()[:16]


def build_standin() -> str:
    """Build the stand-in image unless the one in Podman's storage has this source hash."""
    ph.install_podman()
    res = subprocess.run(["podman", "image", "inspect", "--format",
                          '{{ index .Labels "brainalign.source-hash" }}', IMAGE],
                         capture_output=True, text=True, check=False)
    if res.returncode == 0 and res.stdout.strip() == source_hash():
        return IMAGE
    base = ph.ensure_base_image()
    ph._run(["podman", "build", "-f", str(SOURCES[0]), "--build-arg", f"BASE={base}",
             "--label", f"brainalign.source-hash={source_hash()}", "-t", IMAGE, str(HERE)],
            timeout_s=600)
    return IMAGE


@pytest.fixture(scope="module")
def standin_image() -> str:
    if os.environ.get("BRAINALIGN_CONTAINER_TESTS", "").lower() == "skip":
        pytest.skip("BRAINALIGN_CONTAINER_TESTS=skip")
    reason = ph.unavailable_reason()
    if reason:
        pytest.skip(reason)
    return build_standin()


def _has_rule(name: str) -> bool:
    return any(re.search(rf"^\s*rule {name}:", p.read_text(), re.M)
               for p in (REPO / "rules").glob("*.smk"))


def test_fmriprep_rule_runs_the_container_with_the_exact_command(standin_image, demo_root,
                                                                  tmp_path):
    bids = demo_root / "bids"
    lic = tmp_path / "license.txt"
    lic.write_text("stand-in licence\n")
    tf = tmp_path / "templateflow"
    for name in ("MNI152NLin2009cAsym", "OASIS30ANTs"):
        (tf / f"tpl-{name}").mkdir(parents=True)
        (tf / f"tpl-{name}" / f"tpl-{name}_res-01_T1w.nii.gz").write_bytes(b"template")
    scratch = tmp_path / "scratch"
    space = "MNI152NLin2009cAsym:res-2"
    cfg = make_config(tmp_path, bids, **{
        "fmri.preprocessing": "fmriprep", "fmri.fmriprep.engine": "podman",
        "fmri.fmriprep.image": standin_image, "fmri.fmriprep.fs_license": str(lic),
        "fmri.fmriprep.templateflow_home": str(tf), "fmri.fmriprep.work_dir": str(scratch),
        "fmri.fmriprep.space": space, "fmri.fmriprep.fs_no_reconall": True,
        "bids.participant_label": ["01"]})  # one subject keeps the test short
    subjects = ["01"]
    out = tmp_path / "results" / "fmriprep"
    runs = {s: sorted(f.name.split("_run-")[1].split("_")[0]
                      for f in (bids / f"sub-{s}" / "func").glob("*_bold.nii.gz"))
            for s in subjects}
    expected = [fmriprep_run_files(out, s, "demo", r, "MNI152NLin2009cAsym", res="2")
                for s in subjects for r in runs[s]]
    # fMRIPrep's outputs, and the GLM's import of the first run when that rule is in place
    import_rule = "fmri_import_fmriprep"
    paths = DerivPaths(str(tmp_path / "results"))
    first = runs["01"][0]
    imported = [paths.preproc_bold("01", "demo", first), paths.confounds("01", "demo", first)]
    targets = [p for files in expected for p in files.values()]
    if _has_rule(import_rule):
        targets += imported
    targets = [os.path.relpath(p, tmp_path) for p in targets]  # as the rules' patterns are
    # targets last: --configfile and --set-resources take several values each
    res = run_snakemake(tmp_path, cfg, "--set-resources", "fmriprep:mem_mb=3000",
                        "--cores", "2", *targets, timeout=900)
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-6000:]

    for files in expected:
        for path in files.values():
            assert path.is_file(), path
    for s in subjects:
        call = json.loads((out / "standin" / f"sub-{s}_call.json").read_text())
        # fMRIPrep got exactly the command the rule builds: threads capped by --cores 2,
        # memory from the job's resources, binds at their own paths
        argv = fmriprep_command(
            "podman", image=standin_image, bids_dir=bids, out_dir=out,
            work_dir=scratch / f"sub-{s}", fs_license=lic, templateflow_home=tf, subject=s,
            spaces=[space], nthreads=2, omp_nthreads=2, mem_mb=3000, fs_no_reconall=True)
        assert call["argv"] == argv[argv.index(standin_image) + 1:]
        assert call["TEMPLATEFLOW_HOME"] == str(tf)
        assert call["checks"] == {"license_readable": True, "bids_read_only": True,
                                  "work_writable": True, "templateflow_home_exists": True,
                                  "templateflow_read_only": True}
        logs = tmp_path / "results" / "logs" / "fmriprep"
        job_log = (logs / f"sub-{s}.log").read_text()
        assert f"running: podman run --rm -v {bids}:{bids}:ro" in job_log
        assert f"removed work folder {scratch / f'sub-{s}'}" in job_log
        container_out = (logs / f"sub-{s}_fmriprep-output.log").read_text()
        assert f"sub-{s}: {len(runs[s])} runs written" in container_out
    # the work folder of each successful job is gone; nothing was written into the BIDS folder
    assert not any(scratch.glob("sub-*"))
    assert not list(bids.rglob("*desc-preproc*"))
    if _has_rule(import_rule):  # and the DAG went on: the GLM's inputs, from fMRIPrep's files
        assert f"rule {import_rule}:" in log
        raw = nib.load(bids / "sub-01" / "func" / f"sub-01_task-demo_run-{first}_bold.nii.gz")
        assert nib.load(imported[0]).shape[-1] == raw.shape[-1]
        assert Path(imported[1]).is_file()
