"""fMRIPrep as a DAG stage: the exact command per engine, licence, TemplateFlow, prepare.

The option names are checked against fMRIPrep's own parser: ``FMRIPREP_OPTIONS`` lists the
option strings ``fmriprep/cli/parser.py`` declares at tags 24.1.1 and 25.2.5
(github.com/nipreps/fmriprep), and the test stand-in (tests/containers/fmriprep_standin.py)
parses every command built here with those declarations (nargs, store_true, dest). The
``fmriprep-docker`` command is parsed by the real wrapper's parser (fmriprep-docker 25.2.5).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from brainalign.cli import prepare_report
from brainalign.errors import BrainAlignError, ConfigError
from brainalign.fmri.fmriprep import (
    check_fmriprep_config,
    fetch_templates,
    fmriprep_command,
    group_subjects_by_runs,
    missing_templates,
    prepare_fmriprep,
    resolve_fs_license,
    resolve_templateflow_home,
    template_plan,
)
from tests.conftest import REPO
from tests.containers.fmriprep_standin import parser as standin_parser

#: option strings of fMRIPrep's CLI (fmriprep/cli/parser.py, tags 24.1.1 and 25.2.5) used here
FMRIPREP_OPTIONS = {"--participant-label", "--output-spaces", "--fs-license-file",
                    "--fs-no-reconall", "-w", "--nthreads", "--omp-nthreads", "--mem-mb",
                    "--mem_mb", "--notrack", "--random-seed", "--skull-strip-fixed-seed",
                    "--skip-bids-validation"}


@pytest.fixture
def paths(tmp_path):
    p = {k: tmp_path / k for k in ("bids", "out", "work", "tf")}
    for v in p.values():
        v.mkdir()
    p["lic"] = tmp_path / "license.txt"
    p["lic"].write_text("licence\n")
    return p


def _cmd(engine, paths, **kw):
    args = dict(image="IMG", bids_dir=paths["bids"], out_dir=paths["out"],
                work_dir=paths["work"], fs_license=paths["lic"], templateflow_home=paths["tf"],
                subject="01", spaces=["MNI152NLin2009cAsym:res-2"], nthreads=8, omp_nthreads=4,
                mem_mb=16000, random_seed=7)
    return fmriprep_command(engine, **{**args, **kw})


def _inner(paths, mem="--mem-mb"):
    b, o, w, lic = (str(paths[k]) for k in ("bids", "out", "work", "lic"))
    return [b, o, "participant", "--participant-label", "01", "--output-spaces",
            "MNI152NLin2009cAsym:res-2", "--fs-license-file", lic, "-w", w, "--nthreads", "8",
            "--omp-nthreads", "4", mem, "16000", "--notrack", "--random-seed", "7",
            "--skull-strip-fixed-seed", "--skip-bids-validation"]


def test_apptainer_argv_is_exact(paths):
    b, o, w, lic, tf = (str(paths[k]) for k in ("bids", "out", "work", "lic", "tf"))
    assert _cmd("apptainer", paths) == [
        "apptainer", "run", "--cleanenv",
        "-B", f"{b}:{b}:ro", "-B", f"{o}:{o}:rw", "-B", f"{w}:{w}:rw",
        "-B", f"{lic}:{lic}:ro", "-B", f"{tf}:{tf}:ro",
        "--env", f"TEMPLATEFLOW_HOME={tf}", "IMG", *_inner(paths)]


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_docker_like_argv_is_exact(paths, engine):
    b, o, w, lic, tf = (str(paths[k]) for k in ("bids", "out", "work", "lic", "tf"))
    assert _cmd(engine, paths) == [
        engine, "run", "--rm", "-v", f"{b}:{b}:ro", "-v", f"{o}:{o}", "-v", f"{w}:{w}",
        "-v", f"{lic}:{lic}:ro", "-v", f"{tf}:{tf}:ro", "-e", f"TEMPLATEFLOW_HOME={tf}",
        "IMG", *_inner(paths)]


def test_fmriprep_docker_wrapper_argv_is_exact(paths):
    # the wrapper only skips its interactive memory prompt when it sees `--mem_mb`
    assert _cmd("fmriprep-docker", paths) == [
        "fmriprep-docker", "-i", "IMG", "--no-tty", *_inner(paths, mem="--mem_mb")]


def test_the_real_fmriprep_docker_wrapper_maps_our_command(paths):
    """The nipreps wrapper's own parser: its options taken, fMRIPrep's passed through."""
    from fmriprep_docker.__main__ import get_parser

    opts, passed = get_parser().parse_known_args(_cmd("fmriprep-docker", paths)[1:])
    assert (opts.image, opts.no_tty, opts.analysis_level) == ("IMG", True, "participant")
    assert (opts.bids_dir, opts.output_dir, opts.work_dir, opts.fs_license_file) == tuple(
        str(paths[k]) for k in ("bids", "out", "work", "lic"))
    assert opts.output_spaces == ["MNI152NLin2009cAsym:res-2"]
    # passed to fMRIPrep as given; `--mem_mb` spelled so that the wrapper does not prompt
    assert passed == ["--participant-label", "01", "--nthreads", "8", "--omp-nthreads", "4",
                      "--mem_mb", "16000", "--notrack", "--random-seed", "7",
                      "--skull-strip-fixed-seed", "--skip-bids-validation"]


def test_options_are_fmriprep_options_and_parse_as_fmriprep_declares_them(paths):
    # what follows the image (apptainer, docker) or the wrapper's own options (fmriprep-docker)
    for engine, start in (("apptainer", 16), ("docker", 16), ("fmriprep-docker", 4)):
        inner = _cmd(engine, paths, fs_no_reconall=True, extra_args=["--notrack"])[start:]
        assert inner[0] == str(paths["bids"]), engine
        used = {a for a in inner if a.startswith("-")}
        assert used <= FMRIPREP_OPTIONS, used - FMRIPREP_OPTIONS
        ns = standin_parser().parse_args(inner)
        assert (ns.participant_label, ns.nprocs, ns.omp_nthreads, ns.mem_mb) == (
            ["01"], 8, 4, 16000)
        assert ns.output_spaces == ["MNI152NLin2009cAsym:res-2"]
        assert ns.run_reconall is False and ns.skull_strip_fixed_seed and ns.notrack
        assert ns.random_seed == 7 and ns.skip_bids_validation


def test_omp_threads_never_exceed_threads_and_bad_resources_fail(paths):
    argv = _cmd("docker", paths, nthreads=2, omp_nthreads=8)
    assert argv[argv.index("--omp-nthreads") + 1] == "2"
    with pytest.raises(ValueError, match="positive"):
        _cmd("docker", paths, mem_mb=0)
    with pytest.raises(ConfigError, match="fmri.fmriprep.engine.*singularity"):
        _cmd("singularity", paths)


def test_licence_from_config_then_environment(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("x")
    b.write_text("y")
    assert resolve_fs_license(str(a), {"FS_LICENSE": str(b)}) == a
    assert resolve_fs_license(None, {"FS_LICENSE": str(b)}) == b
    with pytest.raises(ConfigError, match=r"fmri.fmriprep.fs_license.*\$FS_LICENSE is unset"):
        resolve_fs_license(None, {})
    with pytest.raises(ConfigError, match=r"\$FS_LICENSE.*nope.txt.*does not exist"):
        resolve_fs_license(None, {"FS_LICENSE": str(tmp_path / "nope.txt")})
    with pytest.raises(ConfigError, match=r"fmri.fmriprep.fs_license.*does not exist"):
        resolve_fs_license(str(tmp_path / "nope.txt"), {"FS_LICENSE": str(b)})


def test_templateflow_home_from_config_then_environment_then_default(tmp_path):
    assert resolve_templateflow_home(str(tmp_path), {"TEMPLATEFLOW_HOME": "/x"}) == tmp_path
    assert resolve_templateflow_home(None, {"TEMPLATEFLOW_HOME": "/x"}) == Path("/x")
    assert resolve_templateflow_home(None, {}) == Path("~/.cache/templateflow").expanduser()


def test_template_plan():
    assert template_plan(["MNI152NLin2009cAsym:res-2"]) == ["MNI152NLin2009cAsym",
                                                            "OASIS30ANTs"]
    assert template_plan(["T1w", "MNI152NLin6Asym:res-2", "fsaverage:den-10k", "func",
                          "MNI152NLin6Asym"]) == ["MNI152NLin2009cAsym", "OASIS30ANTs",
                                                  "MNI152NLin6Asym", "fsaverage"]


def test_missing_templates_sees_absent_folders_and_placeholders(tmp_path):
    full = tmp_path / "tpl-OASIS30ANTs"
    full.mkdir()
    (full / "tpl-OASIS30ANTs_res-01_T1w.nii.gz").write_bytes(b"data")
    stub = tmp_path / "tpl-MNI152NLin2009cAsym"
    stub.mkdir()
    (stub / "tpl-MNI152NLin2009cAsym_res-01_T1w.nii.gz").write_bytes(b"data")
    (stub / "tpl-MNI152NLin2009cAsym_res-02_T1w.nii.gz").write_bytes(b"")
    (tmp_path / "tpl-MNI152NLin6Asym").mkdir()
    got = missing_templates(tmp_path, ["OASIS30ANTs", "MNI152NLin2009cAsym",
                                       "MNI152NLin6Asym", "fsaverage"])
    assert set(got) == {"MNI152NLin2009cAsym", "MNI152NLin6Asym", "fsaverage"}
    assert "1 of 2 image files" in got["MNI152NLin2009cAsym"]
    assert "no image files" in got["MNI152NLin6Asym"]
    assert "no folder" in got["fsaverage"]


def test_fetch_offline_gives_a_clear_error(tmp_path, monkeypatch):
    """The real templateflow client, with every request sent to a closed local port."""
    pytest.importorskip("templateflow")
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "tf"
    start = time.monotonic()
    with pytest.raises(BrainAlignError, match=r"Could not download TemplateFlow templates "
                       r"OASIS30ANTs into .*tf.*internet access"):
        fetch_templates(home, ["OASIS30ANTs"], timeout_s=300)
    assert time.monotonic() - start < 300
    # the client laid out its skeleton: the template is there as empty placeholders only
    assert "empty placeholders" in missing_templates(home, ["OASIS30ANTs"])["OASIS30ANTs"]


def _config(tmp_path, **fp):
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    bids = tmp_path / "bids"
    bids.mkdir(exist_ok=True)
    cfg["bids"]["bids_dir"] = str(bids)
    cfg["output_dir"] = str(tmp_path / "results")
    cfg["fmri"]["preprocessing"] = "fmriprep"
    cfg["fmri"]["fmriprep"].update(fp)
    from brainalign.config import validate_config
    return validate_config(cfg)


def test_dag_check_stops_without_licence_image_or_templateflow_home(tmp_path, paths):
    env = {"TEMPLATEFLOW_HOME": str(paths["tf"])}
    with pytest.raises(ConfigError, match="fs_license"):
        check_fmriprep_config(_config(tmp_path, engine="docker"), env)
    with pytest.raises(ConfigError, match=r"fmri.fmriprep.image.*apptainer build"):
        check_fmriprep_config(_config(tmp_path, fs_license=str(paths["lic"])), env)
    with pytest.raises(ConfigError, match=r"TemplateFlow home.*brainalign prepare"):
        check_fmriprep_config(_config(tmp_path, engine="docker", fs_license=str(paths["lic"])),
                              {"TEMPLATEFLOW_HOME": str(tmp_path / "none")})
    s = check_fmriprep_config(_config(tmp_path, engine="docker", fs_license=str(paths["lic"]),
                                      work_dir=str(paths["work"])), env)
    assert s["image"] == "nipreps/fmriprep:25.2.5"
    assert s["out_dir"] == str(tmp_path / "results" / "fmriprep")
    assert (s["fs_license"], s["templateflow_home"], s["work_dir"]) == (
        str(paths["lic"]), str(paths["tf"]), str(paths["work"]))


def test_prepare_lists_licence_image_and_templates(tmp_path, paths, monkeypatch):
    monkeypatch.delenv("FS_LICENSE", raising=False)
    cfg = _config(tmp_path, templateflow_home=str(paths["tf"]), image=str(tmp_path / "f.sif"))
    missing = prepare_fmriprep(cfg, {})
    assert len(missing) == 4, missing
    assert "fs_license" in missing[0]
    assert "f.sif does not exist" in missing[1] and "apptainer build" in missing[1]
    assert "MNI152NLin2009cAsym" in missing[2] and "OASIS30ANTs" in missing[3]
    # the CLI's report carries the same lines (nothing fetched without --fetch)
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    raw["bids"]["bids_dir"] = cfg["bids"]["bids_dir"]
    raw["fmri"]["preprocessing"] = "fmriprep"
    raw["fmri"]["fmriprep"].update(templateflow_home=str(paths["tf"]),
                                   image=str(tmp_path / "f.sif"))
    assert [m for m in prepare_report(raw) if "fmri" in m or "Template" in m] == missing
    # complete: licence, image and both templates present
    (tmp_path / "f.sif").write_bytes(b"sif")
    for name in ("MNI152NLin2009cAsym", "OASIS30ANTs"):
        (paths["tf"] / f"tpl-{name}").mkdir()
        (paths["tf"] / f"tpl-{name}" / f"tpl-{name}_T1w.nii.gz").write_bytes(b"x")
    assert prepare_fmriprep(cfg, {"FS_LICENSE": str(paths["lic"])}) == []
    # existing derivatives: fMRIPrep is not run, nothing of it is needed
    done = _config(tmp_path, derivatives=str(tmp_path))
    assert prepare_fmriprep(done, {}) == []


def test_subjects_grouped_by_their_runs():
    runs = {"01": [(None, "a", "1"), (None, "a", "2")], "02": [(None, "a", "1")],
            "03": [(None, "a", "1"), (None, "a", "2")]}
    assert group_subjects_by_runs(runs) == [
        (((None, "a", "1"), (None, "a", "2")), ["01", "03"]), (((None, "a", "1"),), ["02"])]


def test_bids_app_resolves_fmriprep_paths_but_not_image_names(tmp_path):
    from brainalign.config import resolve_paths

    cfg = {"fmri": {"fmriprep": {"image": "f.sif", "fs_license": "lic.txt", "work_dir": None,
                                 "templateflow_home": "tf", "derivatives": "d"}}}
    got = resolve_paths(cfg, tmp_path)["fmri"]["fmriprep"]
    assert got == {"image": str(tmp_path / "f.sif"), "fs_license": str(tmp_path / "lic.txt"),
                   "work_dir": None, "templateflow_home": str(tmp_path / "tf"),
                   "derivatives": str(tmp_path / "d")}
    cfg = {"fmri": {"fmriprep": {"engine": "docker", "image": "nipreps/fmriprep:25.2.5"}}}
    assert resolve_paths(cfg, tmp_path)["fmri"]["fmriprep"]["image"] == "nipreps/fmriprep:25.2.5"
