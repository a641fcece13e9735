"""Steps of the RSA domain: layer and ROI RDMs, comparisons, imported RDM sets, group inference.

The maths lives in the rest of :mod:`brainalign.rsa` (no I/O); these read and write files.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.spatial.distance import squareform

from brainalign import rsa
from brainalign.io import align_rows, read_features, read_tsv, save_npz, save_tsv

__all__ = [
    "step_layer_rdms",
    "step_roi_rdms",
    "step_rsa_compare",
    "step_import_rdms",
    "step_rsa_group_compare",
]

logger = logging.getLogger(__name__)


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
        x, stimuli = read_features(path)
        rdms[layer] = rsa.calc_rdm(rsa.zscore_features(x), metric=metric)
    save_npz(out, stimuli=stimuli, layers=np.array(list(features)), **rdms)


def step_roi_rdms(responses: str, *, metric: str, comparison: str, out: str) -> None:
    """RDM of each ROI of one subject, with its split-half noise ceiling.

    The ceiling is :func:`brainalign.rsa.split_half_ceiling`: from the similarity of the RDMs
    of the odd and even repeats, a lower bound (the Spearman-Brown prophecy for the actual
    halves) and an upper bound (dissimilarities' noise x noise error), which bounds a noiseless
    model's expected score where Spearman-Brown alone falls below it.

    Parameters
    ----------
    responses : str
        The subject's responses npz (``responses``, ``half1``, ``half2``, ``roi``,
        ``stimuli``, ``n_repeats``).
    metric, comparison : str
        Pattern dissimilarity and RDM comparison.
    out : str
        npz: ``rdm_<roi>``, ``ceiling_<roi>`` (upper) and ``ceiling_lower_<roi>`` per ROI, plus
        ``rois`` and ``stimuli``.
    """
    with np.load(responses, allow_pickle=False) as z:
        Y, h1, h2, roi, stimuli = z["responses"], z["half1"], z["half2"], z["roi"], z["stimuli"]
        n_repeats = z["n_repeats"]
    arrays = {}
    rois = np.unique(roi)
    for name in rois:
        sel = roi == name
        arrays[f"rdm_{name}"] = rsa.calc_rdm(Y[:, sel], metric=metric)
        r_half = rsa.rdm_reliability(h1[:, sel], h2[:, sel], metric=metric, method=comparison)
        ceiling = rsa.split_half_ceiling(r_half, n_repeats=n_repeats)
        arrays[f"ceiling_{name}"] = np.array(ceiling.upper)
        arrays[f"ceiling_lower_{name}"] = np.array(ceiling.lower)
        logger.info("ROI %s: RDM split-half r %.3f, ceiling %.3f-%.3f", name, r_half,
                    ceiling.lower, ceiling.upper)
    save_npz(out, rois=rois, stimuli=stimuli, **arrays)


def _aligned_layer_rdms(layer_npz, stimuli: np.ndarray, *, what: str) -> dict[str, np.ndarray]:
    """Each layer's condensed RDM with its rows reordered to ``stimuli`` (a subset allowed)."""
    idx = align_rows(np.arange(len(layer_npz["stimuli"])), layer_npz["stimuli"], stimuli,
                     what=what)
    iu = np.triu_indices(len(idx), 1)
    return {str(layer): squareform(layer_npz[str(layer)], checks=False)[np.ix_(idx, idx)][iu]
            for layer in layer_npz["layers"]}


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
        aligned = _aligned_layer_rdms(m, r["stimuli"], what=layer_rdms)
        rows = []
        for layer, layer_rdm in aligned.items():
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
                        "noise_ceiling_lower": float(r[f"ceiling_lower_{name}"]),
                    }
                )
    save_tsv(pd.DataFrame(rows), out)


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
    from brainalign.ingest.external import load_rdm_set, square_to_condensed

    stim = read_tsv(stimuli_table)
    rdms, subjects = load_rdm_set(
        source, variable=spec.get("variable"), field=spec.get("field", "RDM"),
        label_field=spec.get("label_field", "name"), select=spec.get("select"),
        subject_pattern=spec.get("subject_pattern"), n_stimuli=len(stim))
    condensed = square_to_condensed(rdms)
    save_npz(out, rdms=condensed, subjects=np.array(subjects),
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
        models = np.stack(list(_aligned_layer_rdms(m, stim, what=layer_rdms).values()))
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
    save_tsv(pd.DataFrame(rows), out)
