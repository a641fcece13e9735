"""Triplet designs that decorrelate two similarity spaces (pure maths, no I/O).

A triplet is (root, image1, image2). For a similarity matrix ``S`` its difference is
``d = S[root, image1] - S[root, image2]``: positive when ``S`` says image1 is the more similar to
the root. With a low-level space (an early layer) and a high-level space (a late layer), each
triplet falls in one of four cells by the signs of ``d_low`` and ``d_high``:

``low1_high1``, ``low2_high2`` (the two spaces agree) and ``low1_high2``, ``low2_high1`` (they
disagree). In random triplets the two differences are correlated (pictures that look alike tend to
be alike), so a behavioural choice cannot tell the two spaces apart. :func:`design_triplets` picks
triplets that fill the four cells equally, with matched magnitudes, so that over the design
``corr(d_low, d_high)`` is close to 0, preferring triplets where both ``|d|`` are large
(informative) and using each image about equally often (after Jacob/Mohsenzadeh et al., "What
makes a face look like a hat").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from brainalign.errors import ConfigError, DataShapeError

__all__ = [
    "CELLS",
    "METRICS",
    "TripletDesign",
    "cell_labels",
    "design_triplets",
    "sample_triplets",
    "similarity_matrix",
    "triplet_differences",
]

logger = logging.getLogger(__name__)

#: The four cells, in the order of the design table: the first two agree, the last two disagree.
CELLS = ("low1_high1", "low2_high2", "low1_high2", "low2_high1")

#: Similarity measures of :func:`similarity_matrix`.
METRICS = ("correlation", "cosine")


def similarity_matrix(features: np.ndarray, *, metric: str = "correlation") -> np.ndarray:
    """Pairwise similarity of the rows of a feature matrix.

    Parameters
    ----------
    features : ndarray, shape (n_images, n_features)
        One row per image (e.g. pooled activations of one layer).
    metric : {"correlation", "cosine"}
        Pearson correlation of the rows, or cosine of the angle between them.

    Returns
    -------
    sim : ndarray, shape (n_images, n_images)
        Symmetric, float64; a constant row (zero norm) has similarity 0 to everything.
    """
    if metric not in METRICS:
        raise ConfigError(f"Unknown similarity metric '{metric}': expected one of {METRICS}.")
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise DataShapeError(f"Features must be a 2-D array (images x features), got shape "
                             f"{x.shape}.")
    if metric == "correlation":
        x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    sim = x @ x.T
    return np.clip((sim + sim.T) / 2, -1.0, 1.0)


def sample_triplets(n_images: int, *, max_candidates: int = 200_000, seed: int = 0) -> np.ndarray:
    """Candidate triplets: all of them when few enough, else a seeded random sample.

    Parameters
    ----------
    n_images : int
        Size of the pool (at least 3).
    max_candidates : int
        Largest number of candidates; the pool has ``n * (n-1) * (n-2) / 2`` distinct triplets
        (the order of image1 and image2 is left to the design).
    seed : int
        Seed of the sample.

    Returns
    -------
    triplets : ndarray of int, shape (n_candidates, 3)
        ``(root, a, b)`` with ``a < b``, all three distinct, no duplicates, sorted rows.
    """
    if n_images < 3:
        raise ConfigError(f"A triplet design needs at least 3 images in the pool, got {n_images}.")
    total = n_images * (n_images - 1) * (n_images - 2) // 2
    if total <= max_candidates:
        a, b = np.triu_indices(n_images, k=1)
        rows = []
        for root in range(n_images):
            keep = (a != root) & (b != root)
            rows.append(np.column_stack([np.full(keep.sum(), root), a[keep], b[keep]]))
        return np.concatenate(rows).astype(np.int64)
    rng = np.random.default_rng(seed)
    found = np.empty((0, 3), dtype=np.int64)
    while len(found) < max_candidates:
        n = 2 * (max_candidates - len(found)) + 16
        root = rng.integers(0, n_images, n)
        a = rng.integers(0, n_images - 1, n)
        a = a + (a >= root)
        b = rng.integers(0, n_images - 2, n)
        lo, hi = np.minimum(root, a), np.maximum(root, a)
        b = b + (b >= lo)
        b = b + (b >= hi)
        tri = np.column_stack([root, np.minimum(a, b), np.maximum(a, b)])
        found = np.unique(np.concatenate([found, tri]), axis=0)
    keep = np.sort(rng.choice(len(found), max_candidates, replace=False))
    return found[keep]


def triplet_differences(sim: np.ndarray, triplets: np.ndarray) -> np.ndarray:
    """``sim[root, image1] - sim[root, image2]`` for each triplet.

    Parameters
    ----------
    sim : ndarray, shape (n_images, n_images)
        Similarity matrix.
    triplets : ndarray of int, shape (n_triplets, 3)
        ``(root, image1, image2)`` indices.

    Returns
    -------
    d : ndarray, shape (n_triplets,)
        Positive when image1 is the more similar to the root.
    """
    t = np.asarray(triplets)
    return sim[t[:, 0], t[:, 1]] - sim[t[:, 0], t[:, 2]]


def cell_labels(d_low: np.ndarray, d_high: np.ndarray) -> np.ndarray:
    """The cell of each triplet from the signs of its two differences.

    Parameters
    ----------
    d_low, d_high : ndarray, shape (n_triplets,)
        Differences in the low- and high-level spaces.

    Returns
    -------
    cells : ndarray of str, shape (n_triplets,)
        ``low{1|2}_high{1|2}``: which image each space says is more similar to the root
        (a difference of exactly 0 counts as image2).
    """
    low = np.where(np.asarray(d_low) > 0, "low1", "low2")
    high = np.where(np.asarray(d_high) > 0, "high1", "high2")
    return np.char.add(np.char.add(low, "_"), high)


@dataclass
class TripletDesign:
    """A selected design and what it achieved.

    Attributes
    ----------
    triplets : ndarray of int, shape (n_trials, 3)
        ``(root, image1, image2)`` image indices, in trial order.
    d_low, d_high : ndarray, shape (n_trials,)
        Similarity differences in the two spaces.
    cells : ndarray of str, shape (n_trials,)
        Cell of each trial (:data:`CELLS`).
    corr : float
        Pearson ``r(d_low, d_high)`` over the design.
    random_d_low, random_d_high : ndarray, shape (n_trials,)
        The same numbers of random triplets (random order of image1/image2), for comparison.
    random_corr : float
        Pearson ``r`` over the random triplets.
    candidate_corr : float
        Pearson ``r`` over all candidates (each in a random order).
    n_candidates : int
        Candidates the design was chosen from.
    uses : ndarray of int, shape (n_images,)
        How often each image appears in the design (any role).
    scale_low, scale_high : float
        Root mean square of each space's differences over the candidates (the unit of the
        standardised differences the selection works on).
    """

    triplets: np.ndarray
    d_low: np.ndarray
    d_high: np.ndarray
    cells: np.ndarray
    corr: float
    random_d_low: np.ndarray
    random_d_high: np.ndarray
    random_corr: float
    candidate_corr: float
    n_candidates: int
    uses: np.ndarray
    scale_low: float
    scale_high: float
    cell_counts: dict = field(default_factory=dict)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    y = y - y.mean()
    den = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / den) if den > 0 else 0.0


class _Usage:
    """Per-image counters with caps: every image in a triplet, and roots separately."""

    def __init__(self, n_images: int, cap: int, root_cap: int):
        self.uses = np.zeros(n_images, dtype=np.int64)
        self.roots = np.zeros(n_images, dtype=np.int64)
        self.cap, self.root_cap = cap, root_cap

    def fits(self, tri) -> bool:
        return bool(self.roots[tri[0]] < self.root_cap and (self.uses[list(tri)] < self.cap).all())

    def add(self, tri) -> None:
        self.uses[list(tri)] += 1
        self.roots[tri[0]] += 1


def design_triplets(
    sim_low: np.ndarray,
    sim_high: np.ndarray,
    n_trials: int,
    *,
    seed: int = 0,
    max_candidates: int = 200_000,
    start_use: float = 0.5,
) -> TripletDesign:
    """Choose triplets whose low- and high-level similarity differences are decorrelated.

    Each unordered candidate (root, {a, b}) is either *agree* (both spaces prefer the same image)
    or *disagree*; swapping image1 and image2 flips both signs, so a candidate can be put in
    either cell of its kind. The selection

    1. standardises both spaces' differences by their root mean square over the candidates;
    2. takes ``n_trials / 2`` disagree triplets, most informative first (largest
       ``min(|z_low|, |z_high|)``), within per-image caps on use that rise in rounds;
    3. matches each with the nearest unused agree triplet in ``(|z_low|, |z_high|)`` (same caps),
       so that the products ``z_low * z_high`` of the two halves cancel and
       ``corr(d_low, d_high)`` over the design is close to 0;
    4. orients the triplets so that each of the four cells holds exactly ``n_trials / 4``
       and the mean differences are close to 0; the trial order is then shuffled (seeded).

    Parameters
    ----------
    sim_low, sim_high : ndarray, shape (n_images, n_images)
        Similarity matrices of the low- and high-level spaces (same image order).
    n_trials : int
        Number of triplets; a positive multiple of 4.
    seed : int
        Seed of the candidate sample, tie-breaks, trial order and random baseline. The same
        inputs and seed give the same design.
    max_candidates : int
        Largest number of candidate triplets (all of them when the pool is small enough).
    start_use : float
        Caps on how often an image may be used (any role; as root: a third of it) start at
        ``start_use`` times the mean use ``3 * n_trials / n_images`` and rise by one until the
        design is complete, so images are used about evenly (1.0: first fill up to the mean).

    Returns
    -------
    design : TripletDesign
    """
    sim_low = np.asarray(sim_low, dtype=np.float64)
    sim_high = np.asarray(sim_high, dtype=np.float64)
    n = sim_low.shape[0]
    if sim_low.shape != (n, n) or sim_high.shape != (n, n):
        raise DataShapeError(f"Similarity matrices must be square and of the same size: got "
                             f"{sim_low.shape} (low) and {sim_high.shape} (high).")
    if n_trials <= 0 or n_trials % 4:
        raise ConfigError(f"Number of trials (--n-trials): expected a positive multiple of 4 "
                          f"(the four cells are filled equally), got {n_trials}.")
    rng = np.random.default_rng(seed)
    cand = sample_triplets(n, max_candidates=max_candidates, seed=seed)
    dl = triplet_differences(sim_low, cand)
    dh = triplet_differences(sim_high, cand)
    scale_low = float(np.sqrt(np.mean(dl**2)))
    scale_high = float(np.sqrt(np.mean(dh**2)))
    if scale_low == 0 or scale_high == 0:
        raise DataShapeError("One of the two similarity spaces gives the same similarity to "
                             "every pair of images: it cannot order any triplet. Check the "
                             "layer (is it constant over the pool?).")
    zl, zh = dl / scale_low, dh / scale_high
    flip = rng.random(len(cand)) < 0.5  # a random order of each candidate, for the baselines
    sgn = np.where(flip, -1.0, 1.0)
    candidate_corr = _pearson(zl * sgn, zh * sgn)
    nonzero = (zl != 0) & (zh != 0)
    agree = np.flatnonzero(nonzero & (np.sign(zl) == np.sign(zh)))
    disagree = np.flatnonzero(nonzero & (np.sign(zl) != np.sign(zh)))
    half = n_trials // 2
    if len(disagree) < half or len(agree) < half:
        raise ConfigError(
            f"The pool of {n} images offers {len(agree)} agree and {len(disagree)} disagree "
            f"candidate triplets; {half} of each are needed for {n_trials} trials. Use fewer "
            "trials or a larger pool (or raise --max-candidates).")
    q = np.minimum(np.abs(zl), np.abs(zh))
    tiebreak = rng.random(len(cand))
    order_dis = disagree[np.lexsort((tiebreak[disagree], -q[disagree]))]

    from scipy.spatial import cKDTree

    mag = np.column_stack([np.abs(zl), np.abs(zh)])
    tree = cKDTree(mag[agree])
    # caps on use rise in rounds, from half the mean use, and the selection goes on where it
    # stopped: the most informative triplets come first, but no image is left out because a few
    # images take part in many informative triplets
    mean_use = 3 * n_trials / n
    usage = _Usage(n, max(1, int(np.ceil(start_use * mean_use))), 1)
    usage.root_cap = int(np.ceil(usage.cap / 3))
    taken = np.zeros(len(cand), dtype=bool)
    pairs: list[tuple[int, int]] = []
    while len(pairs) < half:
        live = order_dis[~taken[order_dis]]
        t = cand[live]
        ok = (usage.roots[t[:, 0]] < usage.root_cap) & (usage.uses[t] < usage.cap).all(axis=1)
        for i in live[ok]:
            if len(pairs) == half:
                break
            if taken[i] or not usage.fits(cand[i]):
                continue
            j = _match(tree, agree, mag[i], taken, usage, cand)
            if j is None:
                continue
            # the two triplets of a pair may share images: they must fit the caps together
            usage.add(cand[i])
            if not usage.fits(cand[j]):
                usage.uses[list(cand[i])] -= 1
                usage.roots[cand[i][0]] -= 1
                continue
            usage.add(cand[j])
            taken[i] = taken[j] = True
            pairs.append((i, j))
        if len(pairs) < half:
            if usage.cap > 3 * n_trials:  # pragma: no cover - every candidate was tried
                raise ConfigError(f"No design of {n_trials} trials found in a pool of {n} "
                                  "images. Use fewer trials.")
            usage.cap += 1
            usage.root_cap = int(np.ceil(usage.cap / 3))
    logger.info("largest use of one image: %d (mean %.1f)", usage.uses.max(), mean_use)

    # orient: alternate within each kind so each cell gets n_trials / 4 and means stay near 0
    rows = []
    for k, (i, j) in enumerate(pairs):
        for idx, want_low in ((i, 1.0 if k % 2 == 0 else -1.0), (j, 1.0 if k % 2 == 0 else -1.0)):
            root, a, b = cand[idx]
            if np.sign(zl[idx]) != want_low:
                a, b = b, a
            rows.append((root, a, b))
    triplets = np.array(rows, dtype=np.int64)
    triplets = triplets[rng.permutation(len(triplets))]
    d_low = triplet_differences(sim_low, triplets)
    d_high = triplet_differences(sim_high, triplets)
    cells = cell_labels(d_low, d_high)

    rand = cand[rng.choice(len(cand), n_trials, replace=False)]
    swap = rng.random(n_trials) < 0.5
    rand[swap, 1], rand[swap, 2] = rand[swap, 2], rand[swap, 1].copy()
    r_dl = triplet_differences(sim_low, rand)
    r_dh = triplet_differences(sim_high, rand)
    uses = np.bincount(triplets.ravel(), minlength=n)
    design = TripletDesign(
        triplets=triplets, d_low=d_low, d_high=d_high, cells=cells,
        corr=_pearson(d_low, d_high), random_d_low=r_dl, random_d_high=r_dh,
        random_corr=_pearson(r_dl, r_dh), candidate_corr=candidate_corr,
        n_candidates=len(cand), uses=uses, scale_low=scale_low, scale_high=scale_high,
        cell_counts={c: int((cells == c).sum()) for c in CELLS},
    )
    logger.info("design of %d trials from %d candidates: r(d_low, d_high) = %.3f (random "
                "triplets: %.3f); cells %s", n_trials, len(cand), design.corr,
                design.random_corr, design.cell_counts)
    return design


def _match(tree, agree: np.ndarray, point: np.ndarray, taken: np.ndarray, usage: _Usage,
           cand: np.ndarray):
    """Nearest unused agree candidate to ``point`` (|z_low|, |z_high|) that fits the caps.

    Only the ``max_k`` nearest are tried: a match further away would be a poor one (the
    disagree triplet is then tried again in the next round, with higher caps).
    """
    k, max_k = 16, min(1024, len(agree))
    start = 0
    while True:
        k = min(k, max_k)
        _, found = tree.query(point, k=k)
        for f in np.atleast_1d(found)[start:]:
            j = agree[f]
            if not taken[j] and usage.fits(cand[j]):
                return j
        if k == max_k:
            return None
        start, k = k, k * 8
