"""Multi-source Dijkstra (``geodesic_distances(graph, indices=...)`` on the CPU), whose searches
expand windows of distances in queue order with prefetching (``csrc/paths/paths_cpu.cpp``): every
row must be the very numbers a one-node-at-a-time Dijkstra gives, bit for bit. float64 rows are
compared with scipy's Dijkstra for exact equality; float32 rows with a naive float32 Dijkstra
(scipy computes in float64), on graphs made to stress the windows: ties, zero-weight edges,
components, weights over many orders of magnitude, light edges chained inside one window.

Why the rows can be bit-identical although the windows relax edges in another order: with
non-negative weights, float addition is monotone (a <= b implies fl(a + w) <= fl(b + w)) and never
decreases (fl(a + w) >= a). Both searches only ever store sums fl(d(u) + w_uv) built along some
path from the source, and both stop only when no edge improves any node (every improved node is
queued and expanded again with its new value). At that fixed point, induction along any path
p = (s, ..., v) with monotonicity gives d(v) <= the left-to-right float sum of p's weights; and d(v)
is itself one such sum. So d(v) is the minimum of the same finite set of float sums in both
searches, whichever order the relaxations came in: the very same float. scipy's Dijkstra sums the
same way (popped distance + edge weight) in float64, so float64 rows are compared with it exactly;
for float32 it would round differently (it computes in float64), hence the naive oracle."""

import _thread
import heapq
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import shortest_path

from isogan import paths
from isogan.bench.harness import swiss_roll
from isogan.knn import knn_graph

DTYPES = [np.float32, np.float64]


@pytest.fixture(params=[False, True], ids=["own-order", "relabelled"])
def relabelled(request, monkeypatch):
    """Run each test on the caller's node order and on the reverse Cuthill-McKee relabelling."""
    if request.param:
        monkeypatch.setattr(paths, "_REORDER_MIN_NODES", 0)
        monkeypatch.setattr(paths, "_REORDER_MIN_SOURCES", 0)
    else:
        monkeypatch.setattr(paths, "_REORDER_MIN_NODES", np.iinfo(np.int64).max)
    return request.param


def naive_dijkstra(graph, sources, dtype):
    """One-node-at-a-time Dijkstra with a binary heap, every sum computed in ``dtype``.

    ``graph`` is the symmetric graph the native code searches (``paths.as_symmetric_csr``).
    """
    symmetric = paths.as_symmetric_csr(graph)
    weights = symmetric.weights.astype(dtype)
    out = np.full((len(sources), symmetric.n_nodes), np.inf, dtype=dtype)
    for row, source in enumerate(sources):
        dist = out[row]
        dist[source] = 0
        queue = [(dtype(0), int(source))]
        done = np.zeros(symmetric.n_nodes, dtype=bool)
        while queue:
            distance, node = heapq.heappop(queue)
            if done[node]:
                continue
            done[node] = True
            for e in range(symmetric.indptr[node], symmetric.indptr[node + 1]):
                target = symmetric.indices[e]
                with np.errstate(over="ignore"):  # a sum past the dtype's max is +inf, as natively
                    candidate = dtype(distance + weights[e])
                if candidate < dist[target]:
                    dist[target] = candidate
                    heapq.heappush(queue, (candidate, int(target)))
    return out


def reference_rows(graph, sources, dtype):
    """scipy's float64 Dijkstra (bit-identical to one-source Dijkstra), or the float32 oracle."""
    if dtype == np.float64:
        return shortest_path(graph, method="D", directed=False, indices=sources)
    return naive_dijkstra(graph, sources, dtype)


def random_graph(n_nodes, dtype, seed, *, weights="ties"):
    """Random sparse graph in random node order, cut into several components (some single nodes).

    weights: 'ties' small integers (many equal path lengths) with 20% explicit zeros; 'wide'
    log-uniform over 1e-6 to 1e3, so that windows of one median edge hold very unequal numbers of
    nodes and the light edges chain inside them.
    """
    rng = np.random.default_rng(seed)
    n_edges = 4 * n_nodes
    rows = rng.integers(0, n_nodes, n_edges)
    cols = rng.integers(0, n_nodes, n_edges)
    if weights == "ties":
        values = rng.integers(0, 4, n_edges).astype(dtype)
    else:
        values = (10.0 ** rng.uniform(-6, 3, n_edges)).astype(dtype)
    block = rng.integers(0, 4, n_nodes)
    keep = block[rows] == block[cols]
    graph = sp.csr_matrix((values[keep], (rows[keep], cols[keep])), shape=(n_nodes, n_nodes))
    graph.sum_duplicates()
    if weights == "ties":
        graph.data[rng.random(graph.nnz) < 0.2] = 0  # explicit zeros stay stored edges
    return graph


def chained_light_edges(n_chain, dtype, step=1e-4):
    """A hub joined to every node of a chain of near-zero edges, the hub's edges rising along the
    chain: in one window, queue order would improve the chain one node per pass. Padding edges of
    weight 1 make 1 the median edge, so the whole chain falls in one window."""
    hub = n_chain
    padding = np.arange(n_chain + 1, 4 * n_chain + 1)
    rows = np.concatenate([np.arange(n_chain - 1), np.full(n_chain, hub), padding[:-1]])
    cols = np.concatenate([np.arange(1, n_chain), np.arange(n_chain), padding[1:]])
    values = np.concatenate(
        [np.full(n_chain - 1, step), 1 + 2 * step * np.arange(n_chain), np.ones(padding.size - 1)]
    ).astype(dtype)
    n_nodes = 4 * n_chain + 1
    return sp.csr_matrix((values, (rows, cols)), shape=(n_nodes, n_nodes)), hub


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weights", ["ties", "wide"])
@pytest.mark.parametrize("seed", [0, 1])
def test_rows_are_bit_identical_to_one_source_dijkstra(dtype, weights, seed, relabelled):
    graph = random_graph(240, dtype, seed, weights=weights)
    sources = np.random.default_rng(seed).choice(240, 37, replace=False)  # 37: no round batch size
    rows = paths.geodesic_distances(graph, indices=sources, device="cpu", n_jobs=2)
    assert rows.dtype == dtype
    assert np.isinf(rows).any()  # several components
    if weights == "ties":
        assert (rows == 0).sum() > sources.size  # zero-weight edges reach other nodes at distance 0
    np.testing.assert_array_equal(rows, reference_rows(graph, sources, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_repeated_and_negative_sources(dtype, relabelled):
    graph = random_graph(150, dtype, 2)
    sources = np.array([7, 7, 0, 149, -1, 7, 3, 3, 3])
    rows = paths.geodesic_distances(graph, indices=sources, device="cpu", n_jobs=3)
    np.testing.assert_array_equal(rows, reference_rows(graph, sources % 150, dtype))
    np.testing.assert_array_equal(rows[0], rows[1])
    np.testing.assert_array_equal(rows[4], rows[3])


@pytest.mark.parametrize("dtype", DTYPES)
def test_light_edges_chained_inside_one_window(dtype, relabelled):
    graph, hub = chained_light_edges(400, dtype)
    sources = np.array([hub, 0, 399, hub])
    rows = paths.geodesic_distances(graph, indices=sources, device="cpu", n_jobs=2)
    np.testing.assert_array_equal(rows, reference_rows(graph, sources, dtype))
    # The chain, not the hub's rising edges, carries the shortest paths from the hub.
    assert rows[0, 399] < graph[hub, 399]


@pytest.mark.slow
def test_light_edge_chain_costs_about_one_dijkstra():
    """Queue order alone expands such a chain once per pass (20,000 nodes: ~5 s against 0.01 s)."""
    graph, hub = chained_light_edges(20_000, np.float64, step=1e-7)
    start = time.perf_counter()
    paths.geodesic_distances(graph, indices=[hub], device="cpu", n_jobs=1)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_degenerate_graphs(dtype):
    one_node = sp.csr_matrix((1, 1), dtype=dtype)
    np.testing.assert_array_equal(paths.geodesic_distances(one_node, indices=[0, 0], device="cpu"), [[0], [0]])
    # All weights zero (no positive weight to size the windows by): every reachable node at 0.
    zeros = sp.csr_matrix((np.zeros(3, dtype=dtype), ([0, 1, 3], [1, 2, 4])), shape=(5, 5))
    rows = paths.geodesic_distances(zeros, indices=[0, 3, 4], device="cpu")
    np.testing.assert_array_equal(rows, reference_rows(zeros, [0, 3, 4], dtype))
    # +inf weights are missing edges; huge finite sums overflow to +inf as in one-source Dijkstra.
    big = np.finfo(dtype).max
    extremes = sp.csr_matrix((np.array([np.inf, big, big, 1.0], dtype=dtype), ([0, 1, 2, 3], [1, 2, 3, 4])), shape=(5, 5))
    rows = paths.geodesic_distances(extremes, indices=[0, 1, 2, 4], device="cpu")
    np.testing.assert_array_equal(rows, reference_rows(extremes, [0, 1, 2, 4], dtype))
    assert np.isinf(rows[1, 3]) and rows[1, 2] == big


@pytest.mark.parametrize("dtype", DTYPES)
def test_knn_graph_rows_match_and_do_not_depend_on_threads(dtype, relabelled):
    points = swiss_roll(3000, np.dtype(dtype).name)
    graph = knn_graph(points, n_neighbors=10, mode="distance", device="cpu")
    sources = np.random.default_rng(0).choice(3000, 67, replace=False)
    rows = [paths.geodesic_distances(graph, indices=sources, device="cpu", n_jobs=jobs) for jobs in (1, 2)]
    np.testing.assert_array_equal(rows[0], rows[1])
    some = sources[::11]
    np.testing.assert_array_equal(rows[0][::11], reference_rows(graph, some, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_blocks_are_the_same_rows(dtype, relabelled):
    graph = random_graph(200, dtype, 5, weights="wide")
    sources = np.arange(0, 200, 3)
    whole = paths.geodesic_distances(graph, indices=sources, device="cpu")
    blocks = np.concatenate([rows.copy() for _, rows in paths.geodesic_row_blocks(graph, sources, 7)])
    np.testing.assert_array_equal(blocks, whole)


@settings(max_examples=40, deadline=None)
@given(
    n_nodes=st.integers(1, 40),
    density=st.floats(0.0, 0.5),
    n_sources=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(DTYPES),
    scale=st.sampled_from([1e-30, 1.0, 1e30]),
)
def test_property_bit_identical(n_nodes, density, n_sources, seed, dtype, scale):
    rng = np.random.default_rng(seed)
    graph = sp.random(n_nodes, n_nodes, density=density, format="csr", random_state=rng, dtype=np.float64)
    graph.data = (np.round(graph.data * 4) * scale).astype(dtype)  # ties and explicit zeros
    graph = graph.astype(dtype)
    sources = rng.integers(0, n_nodes, n_sources)
    rows = paths.geodesic_distances(graph, indices=sources, device="cpu", n_jobs=2)
    np.testing.assert_array_equal(rows, reference_rows(graph, sources, dtype))


@pytest.mark.slow
def test_ctrl_c_interrupts_many_sources():
    points = swiss_roll(50_000, "float64")
    graph = knn_graph(points, n_neighbors=10, mode="distance", device="cpu")
    sources = np.arange(0, 50_000, 25)  # 2,000 searches: several seconds on one thread
    timer = threading.Timer(0.3, _thread.interrupt_main)
    start = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        paths.geodesic_distances(graph, indices=sources, device="cpu", progress=False, n_jobs=1)
    timer.join()
    assert time.perf_counter() - start < 2.0
