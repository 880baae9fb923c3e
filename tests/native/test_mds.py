"""Classical MDS stage: native products against NumPy oracles, classical_mds against scikit-learn's
Isomap pipeline (KernelPCA on -0.5 * D**2), out-of-sample transform against KernelPCA.transform."""

import functools
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import shortest_path
from sklearn.datasets import make_swiss_roll
from sklearn.decomposition import KernelPCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import kneighbors_graph
from sklearn.utils.extmath import svd_flip
from sklearn.utils.validation import _check_psd_eigenvalues

import isogan
from isogan import _core
from isogan.mds import _clip_psd_eigenvalues, _flip_signs, classical_mds, mds_fit_state, mds_transform

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: 1e-3, np.float64: 1e-6}


@functools.lru_cache(maxsize=4)
def _swiss_roll_geodesics(n_samples, seed):
    points, _ = make_swiss_roll(n_samples, random_state=seed)
    graph = kneighbors_graph(points, 10, mode="distance")
    geodesics = shortest_path(graph, directed=False)
    geodesics.flags.writeable = False
    return geodesics


def swiss_roll_geodesics(n_samples, seed=0):
    return _swiss_roll_geodesics(n_samples, seed).copy()


def euclidean(points):
    return np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))


def sklearn_isomap_mds(dist, n_components, eigen_solver="dense"):
    """scikit-learn 1.9's Isomap._fit_transform tail, verbatim semantics."""
    kernel = dist**2
    kernel *= -0.5
    pca = KernelPCA(n_components, kernel="precomputed", eigen_solver=eigen_solver, random_state=0)
    embedding = pca.fit_transform(kernel)
    return embedding, pca


def naive_centered_kernel(dist):
    n = dist.shape[0]
    centring = np.eye(n) - 1.0 / n
    return centring @ (-0.5 * dist.astype(np.float64) ** 2) @ centring


def relative_error(actual, expected):
    scale = max(np.abs(expected).max(), np.finfo(np.float64).tiny)
    return np.abs(np.asarray(actual, dtype=np.float64) - expected).max() / scale


# ---------------------------------------------------------------------------- native products
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_vectors", [1, 3, 8, 17])
def test_centered_matmul_matches_naive(dtype, n_vectors):
    rng = np.random.default_rng(n_vectors)
    dist = euclidean(rng.standard_normal((67, 3))).astype(dtype)
    block = rng.standard_normal((67, n_vectors))
    expected = naive_centered_kernel(dist) @ block
    actual = _core.mds_centered_kernel_matmul(dist, block, 0)
    assert actual.dtype == np.float64
    assert relative_error(actual, expected) < 1e-13


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (5, 301), (263, 9), (64, 64)])
def test_squared_matmul_and_row_means_match_naive(dtype, shape):
    rng = np.random.default_rng(shape[0])
    dist = rng.random(shape).astype(dtype)
    block = rng.standard_normal((shape[1], 5))
    kernel = -0.5 * dist.astype(np.float64) ** 2
    assert relative_error(_core.mds_squared_matmul(dist, block, 0), kernel @ block) < 1e-13
    np.testing.assert_allclose(_core.mds_squared_row_means(dist, 1), kernel.mean(axis=1), rtol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_centered_kernel_and_symmetry_report(dtype):
    rng = np.random.default_rng(3)
    dist = euclidean(rng.standard_normal((70, 2))).astype(dtype)
    kernel = _core.mds_centered_kernel(dist, 0)
    assert kernel.dtype == dtype
    assert relative_error(kernel, naive_centered_kernel(dist)) < (1e-6 if dtype == np.float32 else 1e-14)
    assert _core.mds_symmetry_report(dist, 0) == (0.0, float(np.abs(dist).max()))
    skewed = dist.copy()
    skewed[3, 60] += 0.5
    asymmetry, largest = _core.mds_symmetry_report(skewed, 2)
    assert asymmetry == pytest.approx(0.5, rel=1e-6)
    assert largest == pytest.approx(float(np.abs(skewed).max()))


def test_native_rejects_bad_shapes_and_dtypes():
    with pytest.raises(ValueError, match="square"):
        _core.mds_centered_kernel_matmul(np.zeros((3, 4)), np.zeros((3, 1)), 0)
    with pytest.raises(ValueError, match="extent"):
        _core.mds_squared_matmul(np.zeros((3, 4)), np.zeros((3, 1)), 0)
    with pytest.raises(TypeError):
        _core.mds_centered_kernel_matmul(np.zeros((3, 3), dtype=np.int64), np.zeros((3, 1)), 0)
    with pytest.raises(TypeError):
        _core.mds_centered_kernel_matmul(np.zeros((3, 3)), np.zeros((3, 1), dtype=np.float32), 0)


# ------------------------------------------------------------------- parity with scikit-learn
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_components", [1, 2, 3, 5])
@pytest.mark.parametrize("eigen_solver", ["auto", "arpack", "dense"])
def test_swiss_roll_matches_sklearn(dtype, n_components, eigen_solver):
    dist = swiss_roll_geodesics(300).astype(dtype)  # 300 > 256: 'auto' runs the block Lanczos solver
    expected, pca = sklearn_isomap_mds(dist, n_components)
    embedding, eigenvalues, eigenvectors = classical_mds(dist, n_components, eigen_solver=eigen_solver,
                                                         random_state=0)
    assert embedding.dtype == eigenvalues.dtype == eigenvectors.dtype == dtype
    assert embedding.shape == (300, n_components)
    assert relative_error(embedding, expected) <= TOLERANCE[dtype]
    assert relative_error(eigenvalues, pca.eigenvalues_) <= TOLERANCE[dtype]
    assert relative_error(eigenvectors, pca.eigenvectors_) <= 10 * TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_points_geodesics_match_sklearn(dtype):
    rng = np.random.default_rng(7)
    points = rng.standard_normal((400, 3))
    dist = shortest_path(kneighbors_graph(points, 8, mode="distance"), directed=False)
    if np.isinf(dist).any():
        pytest.skip("graph not connected for this seed")
    dist = dist.astype(dtype)
    expected, _ = sklearn_isomap_mds(dist, 4)
    embedding, _, _ = classical_mds(dist, 4, random_state=1)
    assert relative_error(embedding, expected) <= TOLERANCE[dtype]


@pytest.mark.parametrize("n_samples", [40, 400])
def test_circle_repeated_eigenvalues_same_geometry(n_samples):
    # Evenly spaced points on a circle: the top two eigenvalues are equal, so eigenvectors are only
    # defined up to a rotation; the embedding's pairwise distances and the eigenvalues are not.
    angles = 2 * np.pi * np.arange(n_samples) / n_samples
    gap = np.abs(angles[:, None] - angles[None, :])
    dist = np.minimum(gap, 2 * np.pi - gap)
    expected, pca = sklearn_isomap_mds(dist, 2)
    embedding, eigenvalues, _ = classical_mds(dist, 2, random_state=0)
    np.testing.assert_allclose(eigenvalues, pca.eigenvalues_, rtol=1e-9)
    assert relative_error(euclidean(embedding), euclidean(expected)) < 1e-8


@pytest.mark.parametrize("n_samples", [1, 2, 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_tiny_inputs(n_samples, dtype):
    dist = euclidean(np.arange(n_samples, dtype=np.float64)[:, None] ** 1.5).astype(dtype)
    expected, pca = sklearn_isomap_mds(dist, 2)
    embedding, eigenvalues, _ = classical_mds(dist, 2)
    assert embedding.shape == expected.shape == (n_samples, min(2, n_samples))
    np.testing.assert_allclose(embedding, expected, atol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(eigenvalues, pca.eigenvalues_, atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("eigen_solver", ["auto", "dense"])
def test_rank_deficient_eigenvalues_clipped_like_sklearn(eigen_solver):
    # Collinear points: one positive eigenvalue, the others round-off around zero -> clipped to 0.
    dist = euclidean(np.linspace(0, 3, 300)[:, None] ** 1.3 * np.array([[1.0, 2.0]]))
    expected, pca = sklearn_isomap_mds(dist, 3)
    embedding, eigenvalues, _ = classical_mds(dist, 3, eigen_solver=eigen_solver, random_state=0)
    assert eigenvalues[0] > 0
    np.testing.assert_array_equal(eigenvalues[1:], [0.0, 0.0])
    np.testing.assert_array_equal(pca.eigenvalues_[1:], [0.0, 0.0])
    assert relative_error(embedding, expected) < 1e-9


def test_significant_negative_eigenvalues_raise_like_sklearn():
    rng = np.random.default_rng(0)
    dist = rng.random((30, 30))
    dist = dist + dist.T
    np.fill_diagonal(dist, 0)
    with pytest.raises(ValueError, match="significant negative eigenvalues") as expected:
        sklearn_isomap_mds(dist, 30)
    with pytest.raises(ValueError, match="significant negative eigenvalues") as actual:
        classical_mds(dist, 30)
    assert str(actual.value) == str(expected.value)


def test_psd_clipping_and_sign_flip_match_sklearn_helpers():
    rng = np.random.default_rng(5)
    for dtype in DTYPES:
        for values in ([5.0, 1e-13, -1e-12, 2.0], [1.0, 3e-8, 0.0], [4.0, -1e-11, 1.0]):
            values = np.array(values, dtype=dtype)
            np.testing.assert_array_equal(_clip_psd_eigenvalues(values), _check_psd_eigenvalues(values))
    vectors = rng.standard_normal((9, 4))
    np.testing.assert_array_equal(_flip_signs(vectors), svd_flip(vectors.copy(), None)[0])


@pytest.mark.parametrize("n_components", [2, 12])
def test_n_components_above_n_samples_and_many_components(n_components):
    dist = swiss_roll_geodesics(300)
    expected, _ = sklearn_isomap_mds(dist, n_components)
    embedding, _, _ = classical_mds(dist, n_components)
    assert relative_error(embedding, expected) <= 1e-6
    small = euclidean(np.random.default_rng(0).standard_normal((5, 2)))
    assert classical_mds(small, 9)[0].shape == (5, 5)


def test_not_converged_warns():
    dist = swiss_roll_geodesics(300)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        classical_mds(dist, 2, max_iter=1, tol=1e-14)


def test_user_tolerance_is_respected():
    dist = swiss_roll_geodesics(300)
    expected, _ = sklearn_isomap_mds(dist, 2)
    embedding, _, _ = classical_mds(dist, 2, tol=1e-4, random_state=0)
    assert relative_error(embedding, expected) < 1e-2


def test_integer_and_list_input_become_float64():
    dist = euclidean(np.arange(6, dtype=np.float64)[:, None]).astype(np.int64)
    embedding, _, _ = classical_mds(dist.tolist(), 1)
    assert embedding.dtype == np.float64
    expected, _ = sklearn_isomap_mds(dist.astype(np.float64), 1)
    np.testing.assert_allclose(embedding, expected, atol=1e-12)


# -------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("dist", "kwargs", "error", "match"),
    [
        (np.zeros((3, 4)), {}, ValueError, "square matrix. Input is a 3x4"),
        (np.zeros(4), {}, ValueError, "Expected 2D array"),
        (np.zeros((2, 2, 2)), {}, ValueError, "dim 3"),
        (np.zeros((0, 0)), {}, ValueError, "0 sample"),
        (np.array([[0.0, np.nan], [np.nan, 0.0]]), {}, ValueError, "NaN"),
        (np.array([[0.0, np.inf], [np.inf, 0.0]]), {}, ValueError, "infinity"),
        (np.array([["a", "b"], ["c", "d"]]), {}, ValueError, "float"),
        (np.eye(2, dtype=complex), {}, ValueError, "Complex"),
        (np.array([[0.0, 1.0], [2.0, 0.0]]), {}, ValueError, "symmetric"),
        (np.zeros((2, 2)), {"n_components": 0}, ValueError, "'n_components' parameter"),
        (np.zeros((2, 2)), {"n_components": 1.5}, ValueError, "'n_components' parameter"),
        (np.zeros((2, 2)), {"n_components": True}, ValueError, "'n_components' parameter"),
        (np.zeros((2, 2)), {"eigen_solver": "lobpcg"}, ValueError, "'eigen_solver' parameter"),
        (np.zeros((2, 2)), {"tol": -1.0}, ValueError, "'tol' parameter"),
        (np.zeros((2, 2)), {"max_iter": 0}, ValueError, "'max_iter' parameter"),
        (np.zeros((2, 2)), {"device": "tpu"}, ValueError, "'device' parameter"),
    ],
)
def test_bad_input_raises(dist, kwargs, error, match):
    with pytest.raises(error, match=match):
        classical_mds(dist, **kwargs)


@pytest.mark.skipif(isogan.cuda_available(), reason="checks the no-GPU error")
def test_cuda_without_gpu_raises():
    with pytest.raises(RuntimeError, match="CUDA is not usable"):
        classical_mds(np.zeros((2, 2)), device="cuda")


# ------------------------------------------------------------------------------ transform
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_components", [1, 3])
def test_transform_matches_kernel_pca(dtype, n_components):
    dist = swiss_roll_geodesics(360, seed=3)
    train, queries = np.arange(300), np.arange(300, 360)
    train_dist = np.ascontiguousarray(dist[np.ix_(train, train)]).astype(dtype)
    query_dist = np.ascontiguousarray(dist[np.ix_(queries, train)]).astype(dtype)
    _, pca = sklearn_isomap_mds(train_dist, n_components)
    query_kernel = query_dist**2
    query_kernel *= -0.5
    expected = pca.transform(query_kernel)
    _, eigenvalues, eigenvectors = classical_mds(train_dist, n_components, random_state=0)
    state = mds_fit_state(train_dist, eigenvalues, eigenvectors)
    actual = mds_transform(query_dist, state)
    assert actual.dtype == dtype and actual.shape == (60, n_components)
    assert relative_error(actual, expected) <= TOLERANCE[dtype]
    np.testing.assert_allclose(state.kernel_row_means, pca._centerer.K_fit_rows_, rtol=1e-5)


def test_transform_zero_eigenvalue_gives_zero_coordinate_and_checks_shape():
    dist = euclidean(np.linspace(0, 1, 20)[:, None])
    _, eigenvalues, eigenvectors = classical_mds(dist, 2)
    state = mds_fit_state(dist, eigenvalues, eigenvectors)
    projected = mds_transform(dist[:4], state)
    np.testing.assert_array_equal(projected[:, 1], 0.0)
    with pytest.raises(ValueError, match="n_queries, 20"):
        mds_transform(np.zeros((3, 19)), state)
    with pytest.raises(ValueError, match="do not match"):
        mds_fit_state(dist, eigenvalues[:1], eigenvectors)


@pytest.mark.parametrize("n_samples", [2, 30])
def test_arpack_on_coincident_points_gives_the_zero_embedding(n_samples):
    """All points equal: the centred kernel is zero, where ARPACK alone fails ("starting vector is zero")."""
    dist = np.zeros((n_samples, n_samples))
    embedding, eigenvalues, eigenvectors = classical_mds(dist, 1, eigen_solver="arpack", random_state=0)
    expected, pca = sklearn_isomap_mds(dist, 1)
    np.testing.assert_array_equal(embedding, expected)
    np.testing.assert_array_equal(eigenvalues, pca.eigenvalues_)
    np.testing.assert_allclose(eigenvectors.T @ eigenvectors, np.eye(1))


# ------------------------------------------------------------------------- property based
@settings(max_examples=25, deadline=None)
@given(
    n_samples=st.integers(1, 40),
    n_dims=st.integers(1, 3),
    n_components=st.integers(1, 4),
    duplicate=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    eigen_solver=st.sampled_from(["auto", "dense", "arpack"]),
    seed=st.integers(0, 2**16),
)
def test_property_matches_sklearn_geometry(n_samples, n_dims, n_components, duplicate, dtype, eigen_solver, seed):
    points = np.random.default_rng(seed).standard_normal((n_samples, n_dims))
    if duplicate and n_samples > 1:
        points[-1] = points[0]
    dist = euclidean(points).astype(dtype)
    expected, pca = sklearn_isomap_mds(dist, n_components)
    embedding, eigenvalues, eigenvectors = classical_mds(dist, n_components, eigen_solver=eigen_solver,
                                                         random_state=0)
    n_out = min(n_components, n_samples)
    assert embedding.shape == (n_samples, n_out) and eigenvectors.shape == (n_samples, n_out)
    assert embedding.dtype == dtype and np.isfinite(embedding).all()
    scale = max(float(pca.eigenvalues_.max()), 1e-30)
    np.testing.assert_allclose(eigenvalues, pca.eigenvalues_, atol=10 * TOLERANCE[dtype] * scale)
    # Euclidean input: the embedding's geometry is unique even where eigenvectors are not.
    assert relative_error(euclidean(embedding), euclidean(expected)) <= 10 * TOLERANCE[dtype] + 1e-12


# ------------------------------------------------------------------------------------ CUDA
@pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_matches_cpu_and_stays_on_device(dtype):
    torch = pytest.importorskip("torch")
    dist = swiss_roll_geodesics(300).astype(dtype)
    on_gpu = torch.from_numpy(dist).cuda()
    block = np.random.default_rng(0).standard_normal((300, 5))
    cpu_product = _core.mds_centered_kernel_matmul(dist, block, 0)
    gpu_product = _core.mds_centered_kernel_matmul_cuda(on_gpu.data_ptr(), 300, np.dtype(dtype), block,
                                                       torch.cuda.current_stream().cuda_stream)
    assert relative_error(gpu_product, cpu_product) < 1e-12
    cpu = classical_mds(dist, 3, random_state=0)
    gpu = classical_mds(on_gpu, 3, random_state=0, device="cuda")
    for on_host, on_device in zip(cpu, gpu):
        assert on_device.is_cuda
        assert relative_error(on_device.cpu().numpy(), on_host) <= TOLERANCE[dtype]
    state = mds_fit_state(on_gpu, gpu[1], gpu[2])
    projected = mds_transform(on_gpu[:20].contiguous(), state)
    assert projected.is_cuda
    np.testing.assert_allclose(projected.cpu().numpy(), mds_transform(dist[:20], state), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("isa", ["avx2", "baseline"])
def test_every_cpu_instruction_set_instance_matches_naive(isa):
    # The product kernel is compiled per instruction set and picked at run time; cap the pick in a
    # fresh interpreter so that the instances this machine would not choose are checked too.
    script = (
        "import numpy as np; from isogan import _core\n"
        "rng = np.random.default_rng(0)\n"
        "for dtype in (np.float32, np.float64):\n"
        "    for n_vectors in (1, 8, 16, 21):\n"
        "        dist = rng.random((77, 77)).astype(dtype); dist = dist + dist.T\n"
        "        block = rng.standard_normal((77, n_vectors))\n"
        "        centring = np.eye(77) - 1 / 77\n"
        "        expected = centring @ (-0.5 * dist.astype(np.float64) ** 2) @ centring @ block\n"
        "        actual = _core.mds_centered_kernel_matmul(dist, block, 0)\n"
        "        assert np.abs(actual - expected).max() <= 1e-13 * np.abs(expected).max(), (dtype, n_vectors)\n"
    )
    environment = dict(os.environ, ISOGAN_MDS_ISA=isa, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([sys.executable, "-c", script], env=environment, check=True, timeout=120)


@pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")
def test_cuda_transform_rejects_non_finite_distances():
    torch = pytest.importorskip("torch")
    dist = swiss_roll_geodesics(60)
    _, eigenvalues, eigenvectors = classical_mds(dist, 2, device="cpu")
    state = mds_fit_state(dist, eigenvalues, eigenvectors)
    queries = torch.from_numpy(dist[:3].copy()).cuda()
    queries[1, 5] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinity"):
        mds_transform(queries, state)


@pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")
def test_cuda_host_input_matches_cpu():
    dist = swiss_roll_geodesics(300)
    cpu = classical_mds(dist, 2, device="cpu", random_state=0)
    gpu = classical_mds(dist, 2, device="cuda", random_state=0)
    for on_host, from_device in zip(cpu, gpu):
        assert isinstance(from_device, np.ndarray)
        assert relative_error(from_device, on_host) <= 1e-6
