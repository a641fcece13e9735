"""Scoring similarity spaces by how well they predict triplet choices (pure maths, no I/O).

Two tasks are supported (:data:`TASK_TYPES`); a choice is coded 0 = root, 1 = image1,
2 = image2:

``most-similar``
    Which of image1 and image2 is more similar to the root (choice 1 or 2; chance 1/2). A space
    predicts image1 when ``S[root, image1] > S[root, image2]``.
``odd-one-out``
    Which of the three images is the odd one out (choice 0, 1 or 2; chance 1/3). A space predicts
    the image that is not in the most similar of the three pairs.

Each space gets (i) the proportion of choices it predicts (ties share the credit), with bootstrap
confidence intervals over trials, or over subjects and then trials within them when there are
several (a hierarchical bootstrap); and (ii) the log-likelihood of the choices under a softmax
choice rule ``p(option k) ∝ exp(beta * v_k)`` with one fitted inverse temperature ``beta``
(for most-similar this is a logistic regression on the similarity difference without intercept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainalign.errors import ConfigError, DataShapeError

__all__ = [
    "TASK_TYPES",
    "ChoiceFit",
    "bootstrap_accuracy",
    "bootstrap_indices",
    "choice_accuracy",
    "fit_choice_model",
    "option_values",
]

#: Supported tasks and their chance level.
TASK_TYPES = {"most-similar": 1 / 2, "odd-one-out": 1 / 3}


def _check_task(task_type: str) -> None:
    if task_type not in TASK_TYPES:
        raise ConfigError(f"Unknown task type '{task_type}' (--task-type / column task_type): "
                          f"expected one of {sorted(TASK_TYPES)}.")


def option_values(sim: np.ndarray, triplets: np.ndarray, task_type: str) -> np.ndarray:
    """The value a similarity space gives each response option of each trial.

    Parameters
    ----------
    sim : ndarray, shape (n_images, n_images)
        Similarity matrix.
    triplets : ndarray of int, shape (n_trials, 3)
        ``(root, image1, image2)`` indices.
    task_type : {"most-similar", "odd-one-out"}
        The task.

    Returns
    -------
    values : ndarray, shape (n_trials, n_options)
        most-similar: ``[S[root, image1], S[root, image2]]`` (options image1, image2);
        odd-one-out: ``[S[image1, image2], S[root, image2], S[root, image1]]`` (options root,
        image1, image2: an image is the odd one out when the other two are similar).
    """
    _check_task(task_type)
    t = np.asarray(triplets)
    r, a, b = t[:, 0], t[:, 1], t[:, 2]
    if task_type == "most-similar":
        return np.column_stack([sim[r, a], sim[r, b]])
    return np.column_stack([sim[a, b], sim[r, b], sim[r, a]])


def _option_index(choices: np.ndarray, task_type: str) -> np.ndarray:
    """Column of :func:`option_values` of each choice (0 = root, 1 = image1, 2 = image2)."""
    c = np.asarray(choices, dtype=np.int64)
    if task_type == "most-similar":
        if not np.isin(c, (1, 2)).all():
            raise DataShapeError("most-similar choices must be image1 or image2 (codes 1, 2); "
                                 f"found codes {sorted(set(c.tolist()) - {1, 2})}.")
        return c - 1
    if not np.isin(c, (0, 1, 2)).all():
        raise DataShapeError("odd-one-out choices must be root, image1 or image2; found codes "
                             f"{sorted(set(c.tolist()) - {0, 1, 2})}.")
    return c


def choice_accuracy(values: np.ndarray, choices: np.ndarray, task_type: str) -> np.ndarray:
    """Per-trial credit of a space's prediction: 1 when it predicts the choice, 0 otherwise.

    Parameters
    ----------
    values : ndarray, shape (n_trials, n_options)
        From :func:`option_values`.
    choices : ndarray of int, shape (n_trials,)
        0 = root, 1 = image1, 2 = image2.
    task_type : {"most-similar", "odd-one-out"}
        The task.

    Returns
    -------
    credit : ndarray, shape (n_trials,)
        In [0, 1]; when ``m`` options tie for the highest value and the choice is one of them,
        the credit is ``1 / m``.
    """
    k = _option_index(choices, task_type)
    v = np.asarray(values, dtype=np.float64)
    best = v == v.max(axis=1, keepdims=True)
    return best[np.arange(len(k)), k] / best.sum(axis=1)


@dataclass
class ChoiceFit:
    """Softmax choice rule fitted to one space's values.

    Attributes
    ----------
    beta : float
        Inverse temperature on the standardised values.
    scale : float
        The values' unit: root mean square of the option differences from their trial mean.
    log_likelihood : float
        Mean log-likelihood per trial (nats).
    chance_log_likelihood : float
        ``log(1 / n_options)``.
    pseudo_r2 : float
        McFadden's ``1 - log_likelihood / chance_log_likelihood``.
    """

    beta: float
    scale: float
    log_likelihood: float
    chance_log_likelihood: float
    pseudo_r2: float


def _neg_ll(beta: float, v: np.ndarray, k: np.ndarray) -> float:
    x = beta * v
    x = x - x.max(axis=1, keepdims=True)
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(k)), k].mean())


def fit_choice_model(values: np.ndarray, choices: np.ndarray, task_type: str, *,
                     max_beta: float = 100.0) -> ChoiceFit:
    """Fit ``p(option k) = softmax(beta * v / scale)_k`` by maximum likelihood.

    Parameters
    ----------
    values : ndarray, shape (n_trials, n_options)
        From :func:`option_values`.
    choices : ndarray of int, shape (n_trials,)
        0 = root, 1 = image1, 2 = image2.
    task_type : {"most-similar", "odd-one-out"}
        The task.
    max_beta : float
        ``|beta|`` is bounded by this (choices perfectly predicted would push it to infinity).

    Returns
    -------
    fit : ChoiceFit
    """
    from scipy.optimize import minimize_scalar

    k = _option_index(choices, task_type)
    v = np.asarray(values, dtype=np.float64)
    centred = v - v.mean(axis=1, keepdims=True)
    scale = float(np.sqrt(np.mean(centred**2)))
    z = centred / scale if scale > 0 else centred
    res = minimize_scalar(_neg_ll, bounds=(-max_beta, max_beta), args=(z, k), method="bounded",
                          options={"xatol": 1e-8})
    chance = float(np.log(1 / v.shape[1]))
    ll = -float(res.fun)
    return ChoiceFit(beta=float(res.x), scale=scale, log_likelihood=ll,
                     chance_log_likelihood=chance, pseudo_r2=1 - ll / chance)


def bootstrap_indices(subjects: np.ndarray, *, n_boot: int = 1000,
                      seed: int = 0) -> list[np.ndarray]:
    """Trial indices of bootstrap resamples: of trials, or of subjects and then their trials.

    Parameters
    ----------
    subjects : ndarray, shape (n_trials,)
        Subject label of each trial. With one subject, trials are resampled with replacement;
        with several, subjects are resampled with replacement and then each drawn subject's
        trials (a hierarchical bootstrap, so the interval covers new subjects as well as new
        trials).
    n_boot : int
        Number of resamples.
    seed : int
        Seed.

    Returns
    -------
    resamples : list of ndarray of int
        ``n_boot`` index arrays into the trials.
    """
    rng = np.random.default_rng(seed)
    subjects = np.asarray(subjects)
    labels = np.unique(subjects)
    if len(labels) == 1:
        n = len(subjects)
        return [rng.integers(0, n, n) for _ in range(n_boot)]
    groups = [np.flatnonzero(subjects == s) for s in labels]
    out = []
    for _ in range(n_boot):
        picks = rng.integers(0, len(groups), len(groups))
        out.append(np.concatenate([g[rng.integers(0, len(g), len(g))]
                                   for g in (groups[p] for p in picks)]))
    return out


def bootstrap_accuracy(credit: np.ndarray, subjects: np.ndarray, *, n_boot: int = 1000,
                       ci: float = 0.95, seed: int = 0) -> dict[str, np.ndarray]:
    """Accuracy of several spaces with percentile bootstrap intervals on the same resamples.

    Parameters
    ----------
    credit : ndarray, shape (n_spaces, n_trials)
        Per-trial credit of each space (:func:`choice_accuracy`).
    subjects : ndarray, shape (n_trials,)
        Subject label of each trial (see :func:`bootstrap_indices`).
    n_boot : int
        Number of resamples.
    ci : float
        Coverage of the interval, e.g. 0.95.
    seed : int
        Seed.

    Returns
    -------
    result : dict
        ``accuracy`` (n_spaces,), ``ci_low``, ``ci_high`` (n_spaces,), ``p_best`` (n_spaces,):
        the fraction of resamples in which the space has the highest accuracy (ties shared),
        and ``samples`` (n_boot, n_spaces).
    """
    credit = np.atleast_2d(np.asarray(credit, dtype=np.float64))
    if credit.shape[1] != len(subjects):
        raise DataShapeError(f"Credit has {credit.shape[1]} trials but {len(subjects)} subject "
                             "labels were given.")
    if not 0 < ci < 1:
        raise ConfigError(f"Confidence level (--ci): expected a number in (0, 1), got {ci}.")
    samples = np.stack([credit[:, idx].mean(axis=1)
                        for idx in bootstrap_indices(subjects, n_boot=n_boot, seed=seed)])
    alpha = (1 - ci) / 2
    low, high = np.quantile(samples, [alpha, 1 - alpha], axis=0)
    best = np.isclose(samples, samples.max(axis=1, keepdims=True), rtol=0, atol=1e-12)
    p_best = (best / best.sum(axis=1, keepdims=True)).mean(axis=0)
    return {"accuracy": credit.mean(axis=1), "ci_low": low, "ci_high": high, "p_best": p_best,
            "samples": samples}
