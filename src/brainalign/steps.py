"""One function per workflow step: read inputs, call the domain code, write outputs.

Each ``scripts/<rule>.py`` adapter calls exactly one of these with the paths and parameters
Snakemake hands it, so every step runs (and is tested) without Snakemake too. Outputs are
written to a temporary name and renamed, so an interrupted step never leaves a file that looks
complete.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from brainalign import encoding, fmri, rsa
from brainalign.errors import DataShapeError
from brainalign.io import read_tsv, write_json, write_tsv

__all__ = [
    "atomic_output",
    "step_ingest",
    "step_preprocess",
    "step_glm",
    "step_responses",
    "step_features",
    "step_layer_rdms",
    "step_encoding_fit",
    "step_encoding_summary",
    "step_roi_rdms",
    "step_rsa_compare",
    "step_report_scores",
    "step_report_html",
]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only on success.

    Parameters
    ----------
    path : str or Path
        Final output path (its suffixes are kept on the temporary name).

    Yields
    ------
    tmp : Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial-{os.getpid()}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _save_npz(path: str | Path, **arrays) -> None:
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _save_tsv(table: pd.DataFrame, path: str | Path) -> None:
    with atomic_output(path) as tmp:
        write_tsv(table, tmp)


def _save_nifti(img, path: str | Path) -> None:
    import nibabel as nib

    path = Path(path)
    with atomic_output(path) as tmp:
        # nibabel picks compression from the suffix, which the temporary name keeps
        nib.save(img, tmp)


# --------------------------------------------------------------------------------------------
# ingest


def step_ingest(index, *, runs_out: str, stimuli_out: str) -> None:
    """Write the run and stimulus manifests.

    Parameters
    ----------
    index : brainalign.bids.DatasetIndex
        The checked dataset index.
    runs_out, stimuli_out : str
        Output paths.
    """
    _save_tsv(index.runs_table(), runs_out)
    stim = pd.DataFrame(
        {
            "stim_id": range(len(index.stimuli)),
            "stim_file": index.stimuli,
            "path": [str(index.stimuli_dir / s) for s in index.stimuli],
        }
    )
    _save_tsv(stim, stimuli_out)


def step_describe(description: Mapping, *, description_out: str) -> None:
    """Write the derivative dataset's ``dataset_description.json``.

    Parameters
    ----------
    description : Mapping
        Its content (:func:`brainalign.workflow.derivative_description`).
    description_out : str
        Output path.
    """
    with atomic_output(description_out) as tmp:
        write_json(tmp, dict(description))


# --------------------------------------------------------------------------------------------
# fMRI


def step_preprocess(
    bold: str, *, method: str, params: Mapping, bold_out: str, mask_out: str, confounds_out: str
) -> None:
    """Preprocess one run with the configured backend.

    Parameters
    ----------
    bold : str
        Raw BOLD run.
    method : str
        Key of ``brainalign.fmri.PREPROCESSORS``.
    params : Mapping
        Keyword arguments of the backend (``fmri.<method>`` config section).
    bold_out, mask_out, confounds_out : str
        Output paths.
    """
    preproc, mask, conf = fmri.PREPROCESSORS[method](bold, **params)
    _save_nifti(preproc, bold_out)
    _save_nifti(mask, mask_out)
    _save_tsv(conf, confounds_out)


def step_glm(
    bold: str,
    mask: str,
    confounds: str,
    events: str,
    *,
    t_r_s: float,
    glm: Mapping,
    betas_out: str,
    trials_out: str,
) -> None:
    """Single-trial GLM of one run.

    Parameters
    ----------
    bold, mask, confounds, events : str
        Preprocessed run, its mask, its confounds and its events.tsv.
    t_r_s : float
        Repetition time (s).
    glm : Mapping
        ``fmri.glm`` config section.
    betas_out, trials_out : str
        4D NIfTI of betas (one volume per trial) and the TSV of the trials behind them.
    """
    import nibabel as nib
    from nilearn.masking import apply_mask, unmask

    mask_img = nib.load(mask)
    data = apply_mask(bold, mask_img)
    ev = read_tsv(events)
    conf = read_tsv(confounds)
    design, cols = fmri.single_trial_design(
        ev,
        data.shape[0],
        t_r_s,
        confounds=conf,
        hrf_model=glm["hrf_model"],
        drift_model=glm["drift_model"],
        high_pass_hz=glm["high_pass_hz"],
        slice_time_ref=glm["slice_time_ref"],
    )
    betas = fmri.fit_single_trial_betas(data, design, cols, noise_model=glm["noise_model"])
    logger.info("%d trials, %d voxels, design %s", betas.shape[0], betas.shape[1], design.shape)
    _save_nifti(unmask(betas.astype(np.float32), mask_img), betas_out)
    trials = ev[["onset", "duration", "stim_file"]].copy()
    trials.insert(0, "volume", range(len(trials)))
    _save_tsv(trials, trials_out)


def step_responses(
    betas: Sequence[str],
    trials: Sequence[str],
    masks: Sequence[str],
    *,
    stimuli_table: str,
    dseg: str,
    labels: str,
    roi_names: Sequence[str],
    out: str,
) -> None:
    """Per-stimulus ROI responses of one subject: average repeats, split halves, ceilings.

    Parameters
    ----------
    betas, trials, masks : sequence of str
        Per run: single-trial betas, their trial table, the run's brain mask.
    stimuli_table : str
        The stimulus manifest (row order of the output).
    dseg, labels : str
        ROI atlas image and its labels TSV.
    roi_names : sequence of str
        ROIs to keep.
    out : str
        npz with ``responses``, ``half1``, ``half2`` (n_stimuli, n_voxels), ``roi``,
        ``noise_ceiling``, ``reliability`` (n_voxels,), ``stimuli`` and ``n_repeats``.
    """
    import nibabel as nib
    from nilearn.masking import apply_mask, intersect_masks

    mask = intersect_masks([nib.load(m) for m in masks], threshold=1.0)
    roi = fmri.roi_voxel_labels(nib.load(dseg), mask, read_tsv(labels), roi_names)
    keep = roi != ""
    all_betas, stim_files = [], []
    for b, t in zip(betas, trials, strict=True):
        all_betas.append(apply_mask(b, mask)[:, keep])
        stim_files += read_tsv(t)["stim_file"].astype(str).tolist()
    stimuli = read_tsv(stimuli_table)["stim_file"].astype(str).tolist()
    shown = set(stim_files)
    stimuli_seen = [s for s in stimuli if s in shown]
    mean, h1, h2, n_rep = fmri.average_repeats(np.concatenate(all_betas), stim_files, stimuli_seen)
    rel = fmri.split_half_reliability(h1, h2)
    nc = fmri.noise_ceiling_from_reliability(rel)
    for name in np.unique(roi[keep]):
        sel = roi[keep] == name
        logger.info("ROI %s: %d voxels, mean noise ceiling %.3f", name, sel.sum(), nc[sel].mean())
    _save_npz(
        out,
        responses=mean,
        half1=h1,
        half2=h2,
        roi=roi[keep],
        noise_ceiling=nc,
        reliability=rel,
        stimuli=np.array(stimuli_seen),
        n_repeats=n_rep,
    )


# --------------------------------------------------------------------------------------------
# features


def step_features(
    stimuli_table: str, *, name: str, spec: Mapping, settings: Mapping, outputs: Mapping[str, str]
) -> None:
    """Run one model on the stimulus set and store each layer's features.

    Parameters
    ----------
    stimuli_table : str
        The stimulus manifest (its ``path`` column gives the files, in row order).
    name : str
        Model name in the config.
    spec : Mapping
        ``features.models.<name>`` config entry.
    settings : Mapping
        ``device``, ``batch_size``, ``spatial_pool``, ``image_size``, ``reduce``,
        ``n_components``, ``standardize`` (the ``features`` config section without models).
    outputs : Mapping of str to str
        Layer name -> output npz (``features`` (n_stimuli, n_features), ``stimuli``).
    """
    from brainalign.features import build_model, extract_features

    stim = read_tsv(stimuli_table)
    model = build_model(spec)
    feats = extract_features(
        model,
        spec["architecture"],
        stim["path"].tolist(),
        list(outputs),
        batch_size=settings["batch_size"],
        spatial_pool=settings["spatial_pool"],
        image_size=settings["image_size"],
        device=settings["device"],
        reduce=settings["reduce"],
        n_components=settings["n_components"],
        standardize=settings["standardize"],
        seed=int(spec.get("seed", 0)),
    )
    for layer, path in outputs.items():
        logger.info("model %s layer %s: features %s", name, layer, feats[layer].shape)
        _save_npz(path, features=feats[layer], stimuli=stim["stim_file"].to_numpy(str))


def _load_features(path: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return z["features"], z["stimuli"]


def _align(
    features: np.ndarray, feat_stimuli: np.ndarray, stimuli: np.ndarray, what: str
) -> np.ndarray:
    pos = {s: i for i, s in enumerate(feat_stimuli)}
    missing = [s for s in stimuli if s not in pos]
    if missing:
        raise DataShapeError(
            f"{what}: features lack {len(missing)} stimuli of the responses (e.g. "
            f"'{missing[0]}'). Re-run feature extraction."
        )
    return features[[pos[s] for s in stimuli]]


def step_layer_rdms(features: Mapping[str, str], *, metric: str, out: str) -> None:
    """RDMs of each layer of one model (features z-scored per unit first).

    Parameters
    ----------
    features : Mapping of str to str
        Layer -> features npz.
    metric : str
        Pattern dissimilarity.
    out : str
        npz: one condensed RDM per layer (key = layer), plus ``stimuli``.
    """
    rdms, stimuli = {}, None
    for layer, path in features.items():
        x, stimuli = _load_features(path)
        rdms[layer] = rsa.calc_rdm(rsa.zscore_features(x), metric=metric)
    _save_npz(out, stimuli=stimuli, layers=np.array(list(features)), **rdms)


# --------------------------------------------------------------------------------------------
# encoding


def step_encoding_fit(features: str, responses: str, *, ridge: Mapping, out: str) -> None:
    """Cross-validated ridge from one layer to every ROI voxel of one subject.

    Parameters
    ----------
    features, responses : str
        Layer features npz and the subject's responses npz.
    ridge : Mapping
        ``encoding.ridge`` config section.
    out : str
        TSV, one row per voxel: ``voxel``, ``roi``, ``r``, ``r2``, ``alpha`` (median over
        outer folds), ``noise_ceiling``.
    """
    with np.load(responses, allow_pickle=False) as z:
        Y, stimuli, roi, nc = z["responses"], z["stimuli"], z["roi"], z["noise_ceiling"]
    x, feat_stimuli = _load_features(features)
    X = _align(x, feat_stimuli, stimuli, features)
    res = encoding.cross_validated_ridge(
        X,
        Y,
        alphas=ridge["alphas"],
        n_folds=ridge["n_folds"],
        n_inner_folds=ridge["n_inner_folds"],
        seed=ridge["seed"],
    )
    table = pd.DataFrame(
        {
            "voxel": range(Y.shape[1]),
            "roi": roi,
            "r": res["r"],
            "r2": res["r2"],
            "alpha": np.median(res["alpha"], axis=0),
            "noise_ceiling": nc,
        }
    )
    _save_tsv(table, out)


def step_encoding_summary(
    voxel_scores: Mapping[tuple[str, str], str], *, subject: str, out: str
) -> None:
    """Per-ROI summary of one subject's voxel-wise encoding scores.

    Parameters
    ----------
    voxel_scores : Mapping of (model, layer) to str
        Per-voxel score tables.
    subject : str
    out : str
        TSV with the group table's columns (metric ``pearson_r``; score = mean voxel r,
        noise_ceiling = mean voxel ceiling).
    """
    rows = []
    for (model, layer), path in voxel_scores.items():
        t = read_tsv(path)
        for roi_name, g in t.groupby("roi", sort=True):
            rows.append(
                {
                    "analysis": "encoding",
                    "subject": subject,
                    "roi": roi_name,
                    "model": model,
                    "layer": layer,
                    "metric": "pearson_r",
                    "score": g["r"].mean(),
                    "noise_ceiling": g["noise_ceiling"].mean(),
                    "n_voxels": len(g),
                    "median_alpha": g["alpha"].median(),
                }
            )
    _save_tsv(pd.DataFrame(rows), out)


# --------------------------------------------------------------------------------------------
# RSA


def step_roi_rdms(responses: str, *, metric: str, comparison: str, out: str) -> None:
    """RDM of each ROI of one subject, with its split-half noise ceiling.

    Parameters
    ----------
    responses : str
        The subject's responses npz.
    metric, comparison : str
        Pattern dissimilarity and RDM comparison.
    out : str
        npz: ``rdm_<roi>`` and ``ceiling_<roi>`` per ROI, plus ``rois`` and ``stimuli``.
    """
    with np.load(responses, allow_pickle=False) as z:
        Y, h1, h2, roi, stimuli = z["responses"], z["half1"], z["half2"], z["roi"], z["stimuli"]
    arrays = {}
    rois = np.unique(roi)
    for name in rois:
        sel = roi == name
        arrays[f"rdm_{name}"] = rsa.calc_rdm(Y[:, sel], metric=metric)
        r_half = rsa.rdm_reliability(h1[:, sel], h2[:, sel], metric=metric, method=comparison)
        arrays[f"ceiling_{name}"] = np.array(fmri.noise_ceiling_from_reliability(r_half))
        logger.info(
            "ROI %s: RDM split-half r %.3f, ceiling %.3f", name, r_half, arrays[f"ceiling_{name}"]
        )
    _save_npz(out, rois=rois, stimuli=stimuli, **arrays)


def step_rsa_compare(
    roi_rdms: str, layer_rdms: str, *, subject: str, model: str, comparison: str, out: str
) -> None:
    """Compare every ROI RDM of a subject with every layer RDM of a model.

    Parameters
    ----------
    roi_rdms, layer_rdms : str
        npz files from :func:`step_roi_rdms` and :func:`step_layer_rdms`.
    subject, model : str
    comparison : str
        RDM comparison method.
    out : str
        TSV with the group table's columns.
    """
    with np.load(roi_rdms, allow_pickle=False) as r, np.load(layer_rdms, allow_pickle=False) as m:
        roi_stim, model_stim = r["stimuli"], m["stimuli"]
        idx = _align(np.arange(len(model_stim)), model_stim, roi_stim, layer_rdms)
        rows = []
        for layer in m["layers"]:
            full = _square(m[str(layer)])[np.ix_(idx, idx)]
            layer_rdm = full[np.triu_indices(len(idx), 1)]
            for name in r["rois"]:
                rows.append(
                    {
                        "analysis": "rsa",
                        "subject": subject,
                        "roi": str(name),
                        "model": model,
                        "layer": str(layer),
                        "metric": comparison,
                        "score": rsa.compare_rdms(r[f"rdm_{name}"], layer_rdm, method=comparison),
                        "noise_ceiling": float(r[f"ceiling_{name}"]),
                    }
                )
    _save_tsv(pd.DataFrame(rows), out)


def _square(condensed: np.ndarray) -> np.ndarray:
    from scipy.spatial.distance import squareform

    return squareform(condensed, checks=False)


# --------------------------------------------------------------------------------------------
# report


def step_report_scores(
    tables: Sequence[str],
    *,
    layer_order: Mapping[str, Sequence[str]],
    min_noise_ceiling: float,
    out: str,
) -> None:
    """Write ``group/scores.tsv`` from the per-subject tables.

    Parameters
    ----------
    tables : sequence of str
        Encoding summaries and RSA score tables.
    layer_order : Mapping of str to sequence of str
        Model -> layers, shallow to deep.
    min_noise_ceiling : float
        See :func:`brainalign.report.collect_scores`.
    out : str
    """
    from brainalign.report import collect_scores

    _save_tsv(
        collect_scores(tables, layer_order=layer_order, min_noise_ceiling=min_noise_ceiling), out
    )


def step_report_html(
    scores: str,
    *,
    brain_rdms: Mapping[str, str],
    layer_rdms: Mapping[str, str],
    stimuli_table: str,
    provenance: Mapping,
    out: str,
    provenance_out: str | None = None,
    logs_dir: str | None = None,
    rule: str | None = None,
) -> None:
    """Write the HTML report (and the run's provenance as JSON).

    Parameters
    ----------
    scores : str
        ``group/scores.tsv``.
    brain_rdms, layer_rdms : Mapping of str to str
        Label -> brain RDM npz (``rois``, ``rdm_<roi>``); model -> layer RDMs npz.
    stimuli_table : str
        The stimulus manifest.
    provenance : Mapping
        Resolved config and ``dataset`` (``path``: BIDS folder or stimulus table).
    out : str
    provenance_out : str, optional
        ``provenance.json``: the resolved config, dataset and software versions of the run.
    logs_dir : str, optional
        The run's log folder: the environment each rule's jobs ran in (read from their logs)
        goes to ``provenance.json`` as ``job_environments``.
    rule : str, optional
        This job's own rule; its environment is taken from the running process, since its
        log gets that line only as the job ends.
    """
    import json

    from brainalign.report import write_html_report

    table = read_tsv(scores)
    prov = dict(provenance)
    dataset = dict(prov.get("dataset", {}))
    desc = Path(dataset.get("path", "")) / "dataset_description.json"
    if desc.is_file():
        dataset["name"] = json.loads(desc.read_text()).get("Name", "")
    dataset["subjects"] = sorted(s for s in table["subject"].unique() if s != "group")
    dataset["n_stimuli"] = len(read_tsv(stimuli_table))
    prov["dataset"] = dataset
    with atomic_output(out) as tmp:
        write_html_report(table, tmp, brain_rdms=brain_rdms, layer_rdms=layer_rdms,
                          provenance=prov)
    # after the report, so that this job's environment lists what drew it
    if provenance_out:
        from brainalign.report import collect_job_environments, software_versions

        record = {**prov, "software": software_versions()}
        if logs_dir:
            envs = collect_job_environments(logs_dir)
            if rule:
                from brainalign.workflow import job_environment

                envs[rule] = [job_environment()]
            record["job_environments"] = dict(sorted(envs.items()))
        with atomic_output(provenance_out) as tmp:
            write_json(tmp, record)


# --------------------------------------------------------------------------------------------
# external input (brain RDMs + stimulus table)


def step_ingest_external(*, stimuli: str, stimuli_dir: str, stim_column: str,
                         stimuli_out: str) -> None:
    """Check an external stimulus table and write the stimulus manifest.

    Parameters
    ----------
    stimuli, stimuli_dir, stim_column : str
        The ``external`` config section's table, folder and file-name column.
    stimuli_out : str
        Output path.
    """
    from brainalign.external import read_stimulus_table

    table = read_stimulus_table(stimuli, stimuli_dir=stimuli_dir, column=stim_column)
    _save_tsv(table, stimuli_out)


def step_import_rdms(source: str, stimuli_table: str, *, name: str, spec: Mapping,
                     out: str) -> None:
    """Read one external RDM set into ``npz`` (condensed RDMs, subjects, stimuli, mean RDM).

    Parameters
    ----------
    source : str
        The RDM file.
    stimuli_table : str
        Stimulus manifest (row order of the RDMs).
    name : str
        The set's name (``external.rdms.<name>``).
    spec : Mapping
        Its config entry (``variable``, ``field``, ``label_field``, ``select``,
        ``subject_pattern``).
    out : str
        npz with ``rdms`` (n_subjects, n_pairs), ``subjects``, ``stimuli``, and, for the report,
        ``rois`` = [name] with ``rdm_<name>`` = the mean RDM.
    """
    from brainalign.external import load_rdm_set, square_to_condensed

    stim = read_tsv(stimuli_table)
    rdms, subjects = load_rdm_set(
        source, variable=spec.get("variable"), field=spec.get("field", "RDM"),
        label_field=spec.get("label_field", "name"), select=spec.get("select"),
        subject_pattern=spec.get("subject_pattern"), n_stimuli=len(stim))
    condensed = square_to_condensed(rdms)
    _save_npz(out, rdms=condensed, subjects=np.array(subjects),
              stimuli=stim["stim_file"].to_numpy(str), rois=np.array([name]),
              **{f"rdm_{name}": condensed.mean(0)})


def step_rsa_group_compare(brain_rdms: str, layer_rdms: str, *, rdmset: str, model: str,
                           comparison: str, inference: Mapping, out: str) -> None:
    """Compare every subject RDM of a set with every layer of a model, with group inference.

    Parameters
    ----------
    brain_rdms, layer_rdms : str
        npz files from :func:`step_import_rdms` and :func:`step_layer_rdms`.
    rdmset, model : str
    comparison : str
        RDM comparison method.
    inference : Mapping
        ``n_bootstrap``, ``bootstrap_over``, ``ci_percent``, ``seed`` (the ``rsa`` config).
    out : str
        TSV: one row per subject x layer and one ``subject = group`` row per layer with
        ``ci_low``, ``ci_high`` (bootstrap percentile interval), ``p_value`` (one-sided
        bootstrap test against 0), ``p_fdr`` (Benjamini-Hochberg across layers),
        ``noise_ceiling`` (upper) and ``noise_ceiling_lower`` (n/a with a single RDM).
    """
    with np.load(brain_rdms, allow_pickle=False) as b, np.load(layer_rdms,
                                                               allow_pickle=False) as m:
        subj, subjects, stim = b["rdms"], b["subjects"], b["stimuli"]
        layers = [str(x) for x in m["layers"]]
        idx = _align(np.arange(len(m["stimuli"])), m["stimuli"], stim, layer_rdms)
        iu = np.triu_indices(len(idx), 1)
        models = np.stack([_square(m[layer])[np.ix_(idx, idx)][iu] for layer in layers])
    per_subject = np.atleast_2d(rsa.compare_rdms(subj, models, method=comparison))
    res = rsa.bootstrap_compare(models, subj, method=comparison,
                                n_boot=inference["n_bootstrap"],
                                over=inference["bootstrap_over"], rng=inference["seed"],
                                ci_level=inference["ci_percent"] / 100, test_type="bootstrap",
                                model_names=layers)
    _, p_fdr = rsa.correct_fdr(res.p_zero)
    lower, upper = res.noise_ceiling if len(subjects) > 1 else (np.nan, np.nan)
    rows = []
    for j, layer in enumerate(layers):
        base = {"analysis": "rsa", "roi": rdmset, "model": model, "layer": layer,
                "metric": comparison, "noise_ceiling": upper, "noise_ceiling_lower": lower}
        for k, name in enumerate(subjects):
            rows.append({**base, "subject": str(name), "score": per_subject[k, j]})
        rows.append({**base, "subject": "group", "score": res.point[j],
                     "ci_low": res.ci[0, j], "ci_high": res.ci[1, j],
                     "p_value": res.p_zero[j], "p_fdr": p_fdr[j]})
    _save_tsv(pd.DataFrame(rows), out)
