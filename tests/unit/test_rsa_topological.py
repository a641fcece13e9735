"""Geo-topological transforms of brainalign.rsa.topological.

Oracles: rsatoolbox 0.3 ``geotopological_transform`` and ``geodesic_transform`` where their
definitions coincide with ours (see the module docstring for the two differences), networkx
Floyd-Warshall on an explicitly built graph, and planted clustered / curved geometries.
"""

import warnings

import networkx as nx
import numpy as np
import pytest
from scipy.spatial.distance import squareform

from brainalign import rsa
from brainalign.rsa import topological

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.rdm import RDMs, geodesic_transform, geotopological_transform  # noqa: E402


def _gt_reference(x, low, up):
    """The piecewise-linear GT(l, u) of Lin & Kriegeskorte, written out case by case."""
    out = np.empty_like(x)
    for k, d in enumerate(x):
        out[k] = 0.0 if d < low else 1.0 if d > up else (d - low) / (up - low)
    return out


@pytest.mark.parametrize(("lower", "upper"), [(0.1, 0.6), (0.25, 0.9), (0.0, 1.0)])
def test_geotopological_matches_rsatoolbox_when_upper_threshold_above_one(rng, lower, upper):
    rdm = 1.0 + 2.0 * rng.random(120)  # all dissimilarities >= 1, so u >= 1
    ours = rsa.transform_geotopological(rdm, lower=lower, upper=upper)
    ref = geotopological_transform(RDMs(rdm.copy()), lower, upper).get_vectors()[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


def test_geotopological_is_piecewise_linear_for_any_scale(rng):
    # rsatoolbox applies its three steps in place, so for u < 1 rescaled values above u are
    # set to 1 a second time; ours is the paper's function at every scale
    rdm = 0.5 * rng.random(120)
    low, up = np.quantile(rdm, 0.2), np.quantile(rdm, 0.7)
    ours = rsa.transform_geotopological(rdm, lower=0.2, upper=0.7)
    np.testing.assert_allclose(ours, _gt_reference(rdm, low, up), rtol=1e-12, atol=1e-15)
    # the other threshold modes
    np.testing.assert_allclose(
        rsa.transform_geotopological(rdm, lower=0.1, upper=0.3, thresholds="absolute"),
        _gt_reference(rdm, 0.1, 0.3), rtol=1e-12)
    np.testing.assert_allclose(
        rsa.transform_geotopological(rdm, lower=0.2, upper=0.6, thresholds="fraction_of_max"),
        _gt_reference(rdm / rdm.max(), 0.2, 0.6), rtol=1e-12)


def test_geotopological_thresholds_per_rdm(rng):
    stack = np.vstack([rng.random(45), 10 * rng.random(45)])
    out = rsa.transform_geotopological(stack, lower=0.2, upper=0.8)
    for k in range(2):
        np.testing.assert_allclose(out[k], rsa.transform_geotopological(stack[k], lower=0.2,
                                                                        upper=0.8))
    # tied thresholds on a binary RDM: a step at the shared value
    binary = np.repeat([0.0, 1.0], [30, 15])
    np.testing.assert_array_equal(rsa.transform_geotopological(binary, lower=0.1, upper=0.5),
                                  binary)


def test_geodesic_matches_rsatoolbox_on_the_same_graph(rng):
    # rsatoolbox's graph (networkx.from_numpy_array) omits zero-length pairs; with that same
    # edge set our Floyd-Warshall gives identical numbers
    rdm = rng.random(15 * 14 // 2)
    ref = geodesic_transform(RDMs(rdm.copy())).get_vectors()[0]
    ours = topological._geodesic(rdm[None], lambda m: (m > 0) & (m < 1), rescale=True)[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


def test_geodesic_matches_networkx_with_zero_length_edges(rng):
    n = 12
    rdm = np.round(rng.random(n * (n - 1) // 2) * 5) / 5  # ties and several zeros
    ours = rsa.transform_geodesic(rdm)
    m = squareform((rdm - rdm.min()) / (rdm.max() - rdm.min()))
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_weighted_edges_from((i, j, m[i, j]) for i in range(n) for j in range(i + 1, n)
                                  if m[i, j] < 1)
    ref = squareform(nx.floyd_warshall_numpy(graph, nodelist=range(n)), checks=False)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-15)


def test_planted_clusters_become_binary(rng):
    # three clusters: within-cluster distances < 0.4, between-cluster 1.5 .. 3
    labels = np.repeat([0, 1, 2], 8)
    i, j = np.triu_indices(24, 1)
    same = labels[i] == labels[j]
    rdm = np.where(same, 0.1 + 0.3 * rng.random(i.size), 1.5 + 1.5 * rng.random(i.size))
    frac_within = same.mean()  # 0.30: quantile thresholds around the gap
    gt = rsa.transform_geotopological(rdm, lower=frac_within - 0.01, upper=frac_within + 0.01)
    np.testing.assert_array_equal(gt[same] < 0.1, True)
    np.testing.assert_array_equal(gt[~same] > 0.9, True)
    cluster_rdm = (~same).astype(float)
    assert rsa.compare_rdms(gt, cluster_rdm, method="pearson") > 0.99
    assert rsa.compare_rdms(rdm, cluster_rdm, method="pearson") < 0.95
    # geodesic with u inside the within-cluster range: clusters are disconnected components
    geo = rsa.transform_geotopological(rdm, lower=0.0, upper=frac_within - 0.02,
                                       geodesic=True)
    assert np.isinf(geo[~same]).all() and np.isfinite(geo[same]).all()


def test_geodesic_recovers_distance_along_a_spiral():
    # points on a spiral: Euclidean distances cut across the arms, geodesic ones follow the
    # curve, so they are monotone in the arc length
    t = np.linspace(np.pi, 4 * np.pi, 70)
    points = np.c_[t * np.cos(t), t * np.sin(t)]
    arc = np.array([np.trapezoid(np.sqrt(1 + np.linspace(0, s, 200) ** 2),
                                 np.linspace(0, s, 200)) for s in t])
    arc_rdm = rsa.calc_rdm(arc[:, None], metric="euclidean")
    rdm = rsa.calc_rdm(points, metric="euclidean")
    geo = rsa.transform_geotopological(rdm, lower=0.0, upper=2.5, thresholds="absolute",
                                       geodesic=True)
    assert np.isfinite(geo).all()
    assert rsa.compare_rdms(geo, arc_rdm, method="spearman") > 0.999
    assert rsa.compare_rdms(rdm, arc_rdm, method="spearman") < 0.8


def test_sweep_topological_table(rng):
    data = rng.random((2, 45))
    models = np.vstack([data.mean(0) + 0.1 * rng.random(45), rng.random(45)])
    table = rsa.sweep_topological(models, data, lower_quantiles=[0.0, 0.2, 0.5],
                                  upper_quantiles=[0.5, 1.0], model_names=["good", "null"])
    assert list(table.columns) == ["lower_quantile", "upper_quantile", "model", "score"]
    assert len(table) == (3 + 2) * 2  # (0,.5) (0,1) (.2,.5) (.2,1) (.5,1): 5 settings
    row = table[(table.lower_quantile == 0.2) & (table.upper_quantile == 1.0)
                & (table.model == "good")]
    expected = rsa.compare_rdms(
        rsa.transform_geotopological(models[0], lower=0.2, upper=1.0),
        rsa.transform_geotopological(data, lower=0.2, upper=1.0)).mean()
    assert row["score"].item() == pytest.approx(expected, abs=1e-12)
    best = table.groupby("model")["score"].mean()
    assert best["good"] > best["null"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        geo = rsa.sweep_topological(models, data[0], lower_quantiles=[0.0],
                                    upper_quantiles=[0.9], geodesic=True)
    assert len(geo) == 2 and np.isfinite(geo["score"]).all()


def test_topological_errors():
    with pytest.raises(ValueError, match=r"lower/upper \(quantile\): expected 0 <= lower < "
                                         r"upper <= 1, got lower=0.5, upper=0.2"):
        rsa.transform_geotopological(np.ones(10), lower=0.5, upper=0.2)
    with pytest.raises(ValueError, match=r"Unknown value for thresholds"):
        rsa.transform_geotopological(np.ones(10), lower=0.1, upper=0.2, thresholds="relative")
    with pytest.raises(ValueError, match=r"Non-finite dissimilarities in rdms"):
        rsa.transform_geodesic(np.array([1.0, np.nan, 2.0]))
