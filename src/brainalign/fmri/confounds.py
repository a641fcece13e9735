"""Confounds of fMRIPrep runs through nilearn: denoising strategies and the sample mask.

``fmri.fmriprep.confounds`` selects what nilearn loads from each run's
``desc-confounds_timeseries.tsv``:

- ``strategy: simple | scrubbing | compcor`` (a preset):
  :func:`nilearn.interfaces.fmriprep.load_confounds_strategy`, with the other keys of the
  section passed on as its parameters (e.g. ``fd_threshold`` for ``scrubbing``);
- ``strategy: [motion, high_pass, scrub, ...]`` (a list of noise components):
  :func:`nilearn.interfaces.fmriprep.load_confounds`, with the other keys as its parameters.

nilearn finds the confounds table next to the preprocessed BOLD by its fMRIPrep name, so the
BOLD path must be fMRIPrep's own. Volumes that nilearn censors (scrubbing: framewise
displacement or standardised DVARS above threshold, and segments left shorter than ``scrub``
volumes; non-steady-state volumes marked by fMRIPrep) come back as a boolean sample mask,
which the GLM honours.
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from brainalign.errors import BIDSInputError, ConfigError

__all__ = ["PRESETS", "COMPONENTS", "check_confounds_options", "load_fmriprep_confounds"]

#: nilearn's preset denoising strategies that apply to ``desc-preproc_bold`` images
#: (``ica_aroma`` needs fMRIPrep's ``desc-smoothAROMAnonaggr`` image, which fMRIPrep >= 23 no
#: longer writes, so it is not offered).
PRESETS = ("simple", "scrubbing", "compcor")
#: Noise components of nilearn's ``load_confounds`` usable here.
COMPONENTS = ("motion", "high_pass", "wm_csf", "global_signal", "compcor", "scrub",
              "non_steady_state")
_KEY = "fmri.fmriprep.confounds"


def _allowed_parameters(strategy) -> list[str]:
    """Parameters nilearn accepts with this strategy (besides the strategy itself)."""
    if isinstance(strategy, str):
        from nilearn.interfaces.fmriprep.load_confounds_strategy import preset_strategies

        return sorted(k for k in preset_strategies[strategy] if k != "strategy")
    from nilearn.interfaces.fmriprep import load_confounds

    skip = {"img_files", "strategy", "ica_aroma", "tedana"}
    return sorted(p for p in inspect.signature(load_confounds).parameters if p not in skip)


def check_confounds_options(options: Mapping) -> None:
    """Check ``fmri.fmriprep.confounds`` before any job runs.

    Parameters
    ----------
    options : Mapping
        The section: ``strategy`` (a preset name or a list of noise components) and parameters
        passed on to nilearn.

    Raises
    ------
    ConfigError
        Unknown strategy, component or parameter (with the closest allowed name).
    """
    strategy = options.get("strategy", "simple")
    if isinstance(strategy, str):
        if strategy not in PRESETS:
            close = difflib.get_close_matches(strategy, PRESETS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"Config key '{_KEY}.strategy' is '{strategy}': expected one of nilearn's "
                f"presets {list(PRESETS)} or a list of noise components from "
                f"{list(COMPONENTS)}.{hint}")
    elif isinstance(strategy, list) and strategy:
        bad = [c for c in strategy if c not in COMPONENTS]
        if bad:
            raise ConfigError(
                f"Config key '{_KEY}.strategy' lists {bad}: expected noise components from "
                f"{list(COMPONENTS)} (nilearn's load_confounds). Fix the list.")
    else:
        raise ConfigError(
            f"Config key '{_KEY}.strategy' is {strategy!r}: expected a preset name from "
            f"{list(PRESETS)} or a non-empty list of noise components from {list(COMPONENTS)}.")
    allowed = _allowed_parameters(strategy)
    for key in options:
        if key == "strategy" or key in allowed:
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f" Did you mean '{_KEY}.{close[0]}'?" if close else ""
        raise ConfigError(
            f"Unknown key '{_KEY}.{key}' for strategy {strategy!r}: expected nilearn parameters "
            f"from {allowed}.{hint}")


def load_fmriprep_confounds(bold: str, options: Mapping, *,
                            n_volumes: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Load one run's confounds and sample mask from fMRIPrep's table through nilearn.

    Parameters
    ----------
    bold : str
        fMRIPrep's ``desc-preproc_bold`` of the run (its confounds table lies next to it).
    options : Mapping
        ``fmri.fmriprep.confounds`` (checked by :func:`check_confounds_options`).
    n_volumes : int
        Volumes of the run.

    Returns
    -------
    confounds : pandas.DataFrame, shape (n_volumes, n_confounds)
        The selected columns (demeaned by nilearn unless ``demean: false``), every volume.
    keep : ndarray of bool, shape (n_volumes,)
        Volumes the GLM keeps (False: censored by scrubbing or non-steady-state).

    Raises
    ------
    BIDSInputError
        nilearn cannot select the confounds (a column the strategy needs is missing, no
        confounds file next to the BOLD, ...) or the table's length differs from the run's.
    """
    from nilearn.interfaces.fmriprep import load_confounds, load_confounds_strategy

    check_confounds_options(options)
    kwargs = {k: v for k, v in options.items() if k != "strategy"}
    strategy = options.get("strategy", "simple")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if isinstance(strategy, str):
                conf, sample = load_confounds_strategy(bold, denoise_strategy=strategy, **kwargs)
            else:
                conf, sample = load_confounds(bold, strategy=tuple(strategy), **kwargs)
        except (ValueError, KeyError) as exc:
            raise BIDSInputError(
                f"Confounds of {bold}: nilearn could not select them with {_KEY} "
                f"{dict(options)}: {exc}. Check that the run's desc-confounds_timeseries.tsv "
                "(next to the BOLD) holds the columns this strategy needs, or choose another "
                f"strategy in {_KEY}.") from exc
    for w in caught:
        if "All volumes were marked" in str(w.message):
            raise BIDSInputError(
                f"Confounds of {bold}: every volume is censored by {_KEY} {dict(options)}: "
                "expected some volumes below the framewise displacement / DVARS thresholds. "
                "Raise fd_threshold / std_dvars_threshold or drop the run.")
    if len(conf) != n_volumes:
        raise BIDSInputError(
            f"Confounds of {bold}: {len(conf)} rows, but the BOLD has {n_volumes} volumes: "
            "expected one row per volume. The confounds table belongs to another run; rerun "
            "fMRIPrep for it.")
    keep = np.ones(n_volumes, dtype=bool)
    if sample is not None:
        keep[:] = False
        keep[np.asarray(sample, dtype=int)] = True
    conf = conf.fillna(0.0).reset_index(drop=True)
    return conf, keep
