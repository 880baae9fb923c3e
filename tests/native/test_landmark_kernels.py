"""Native landmark kernels (MaxMin, triangulation, min-plus) against naive NumPy oracles."""

import numpy as np
import pytest

import isogan
from isogan import _core


def naive_maxmin(points, n_landmarks, first):
    points = points.astype(np.float64)
    chosen = [first]
    nearest = ((points - points[first]) ** 2).sum(axis=1)
    picked = np.zeros(len(points), dtype=bool)
    picked[first] = True
    while len(chosen) < n_landmarks:
        candidates = np.where(picked, -1.0, nearest)
        nxt = int(np.argmax(candidates))
        chosen.append(nxt)
        picked[nxt] = True
        nearest = np.minimum(nearest, ((points - points[nxt]) ** 2).sum(axis=1))
    return np.array(chosen), nearest


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_maxmin_matches_oracle(dtype, n_jobs):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(500, 4)).astype(dtype)
    index, min_sq = _core.landmark_maxmin(points, 40, 7, n_jobs)
    expected_index, expected_sq = naive_maxmin(points, 40, 7)
    np.testing.assert_array_equal(index, expected_index)
    expected_sq[expected_index] = 0.0
    np.testing.assert_allclose(min_sq, expected_sq, rtol=1e-12)


def test_maxmin_duplicates_and_ties_pick_distinct_points_smallest_index_first():
    points = np.array([[0.0], [0.0], [1.0], [1.0], [-1.0], [0.0]])
    index, min_sq = _core.landmark_maxmin(points, 6, 0, 2)
    assert sorted(index.tolist()) == list(range(6))
    # 2 and 4 tie at distance 1 from point 0: the smaller index comes first.
    assert index.tolist()[:3] == [0, 2, 4]
    np.testing.assert_array_equal(min_sq, 0.0)


def test_maxmin_one_point_and_one_landmark():
    index, min_sq = _core.landmark_maxmin(np.zeros((1, 3), dtype=np.float32), 1, 0, 1)
    assert index.tolist() == [0] and min_sq.tolist() == [0.0]
    points = np.array([[0.0, 0.0], [3.0, 4.0]])
    index, min_sq = _core.landmark_maxmin(points, 1, 1, 1)
    assert index.tolist() == [1]
    np.testing.assert_allclose(min_sq, [25.0, 0.0])


@pytest.mark.parametrize("n_landmarks, first", [(0, 0), (4, 0), (2, -1), (2, 3)])
def test_maxmin_bad_arguments_raise(n_landmarks, first):
    with pytest.raises(ValueError):
        _core.landmark_maxmin(np.zeros((3, 2)), n_landmarks, first, 1)


def test_maxmin_wrong_dtype_is_not_copied():
    with pytest.raises(TypeError):
        _core.landmark_maxmin(np.zeros((3, 2), dtype=np.int64), 2, 0, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_points", [1, 255, 257, 1000])
def test_triangulate_matches_oracle(dtype, n_points):
    rng = np.random.default_rng(1)
    geodesic = rng.uniform(0, 5, size=(30, n_points)).astype(dtype)
    projection = rng.normal(size=(3, 30))
    mean_sq = rng.uniform(0, 10, size=30)
    out = _core.landmark_triangulate(geodesic, projection, mean_sq, 2)
    expected = ((geodesic.astype(np.float64) ** 2 - mean_sq[:, None]).T @ projection.T)
    assert out.dtype == dtype and out.shape == (n_points, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-4)


def test_triangulate_shape_mismatch_raises():
    with pytest.raises(ValueError, match="projection"):
        _core.landmark_triangulate(np.zeros((4, 10)), np.zeros((2, 5)), np.zeros(4), 1)
    with pytest.raises(ValueError, match="mean_sq_distance"):
        _core.landmark_triangulate(np.zeros((4, 10)), np.zeros((2, 4)), np.zeros(3), 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_min_plus_matches_oracle(dtype):
    rng = np.random.default_rng(2)
    geodesic = rng.uniform(0, 5, size=(20, 300)).astype(dtype)
    neighbor_index = rng.integers(0, 300, size=(700, 6)).astype(np.int64)
    neighbor_index[0] = 5  # every neighbour the same point
    neighbor_distance = rng.uniform(0, 1, size=(700, 6)).astype(dtype)
    out = _core.landmark_min_plus(geodesic, neighbor_index, neighbor_distance, 2)
    expected = (neighbor_distance[None, :, :] + geodesic[:, neighbor_index]).min(axis=2)
    assert out.shape == (20, 700) and out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_min_plus_bad_input_raises():
    geodesic = np.zeros((2, 5))
    with pytest.raises(ValueError, match="outside"):
        _core.landmark_min_plus(geodesic, np.array([[5]], dtype=np.int64), np.zeros((1, 1)), 1)
    with pytest.raises(ValueError, match="neighbor_distance"):
        _core.landmark_min_plus(geodesic, np.zeros((2, 3), dtype=np.int64), np.zeros((2, 2)), 1)


def test_maxmin_parallel_path_matches_oracle():
    # Enough coordinates per round (2**21) for the kernel to use two threads.
    points = np.random.default_rng(3).normal(size=(2**19, 4))
    index, min_sq = _core.landmark_maxmin(points, 6, 11, 2)
    expected_index, expected_sq = naive_maxmin(points, 6, 11)
    np.testing.assert_array_equal(index, expected_index)
    expected_sq[expected_index] = 0.0
    np.testing.assert_allclose(min_sq, expected_sq, rtol=1e-12)


@pytest.mark.cuda
@pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cuda_kernels_match_cpu(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    stream = torch.cuda.current_stream().cuda_stream

    def to_device(array):
        return torch.from_numpy(np.ascontiguousarray(array)).cuda()

    points = rng.normal(size=(3000, 5)).astype(dtype)
    points[10] = points[11]
    index = torch.empty(25, dtype=torch.int64, device="cuda")
    min_sq = torch.empty(3000, dtype=torch.float64, device="cuda")
    points_gpu = to_device(points)
    _core.landmark_maxmin_cuda(
        points_gpu.data_ptr(), 3000, 5, 25, 3, index.data_ptr(), min_sq.data_ptr(), np.dtype(dtype), stream)
    expected_index, expected_sq = _core.landmark_maxmin(points, 25, 3, 1)
    np.testing.assert_array_equal(index.cpu().numpy(), expected_index)
    np.testing.assert_allclose(min_sq.cpu().numpy(), expected_sq, rtol=1e-12)

    geodesic = rng.uniform(0, 5, size=(25, 3000)).astype(dtype)
    projection = rng.normal(size=(2, 25))
    mean_sq = rng.uniform(0, 10, size=25)
    embedding = torch.empty((3000, 2), dtype=points_gpu.dtype, device="cuda")
    geodesic_gpu, projection_gpu, mean_gpu = to_device(geodesic), to_device(projection), to_device(mean_sq)
    _core.landmark_triangulate_cuda(
        geodesic_gpu.data_ptr(), projection_gpu.data_ptr(), mean_gpu.data_ptr(), 25, 3000, 2, embedding.data_ptr(),
        np.dtype(dtype), stream)
    np.testing.assert_allclose(embedding.cpu().numpy(), _core.landmark_triangulate(geodesic, projection, mean_sq, 1),
                               rtol=1e-5, atol=1e-4)

    neighbor_index = rng.integers(0, 3000, size=(400, 7)).astype(np.int64)
    neighbor_distance = rng.uniform(0, 1, size=(400, 7)).astype(dtype)
    out = torch.empty((25, 400), dtype=points_gpu.dtype, device="cuda")
    index_gpu, distance_gpu = to_device(neighbor_index), to_device(neighbor_distance)
    _core.landmark_min_plus_cuda(
        geodesic_gpu.data_ptr(), index_gpu.data_ptr(), distance_gpu.data_ptr(), 25, 3000, 400, 7, out.data_ptr(),
        np.dtype(dtype), stream)
    torch.cuda.synchronize()
    np.testing.assert_allclose(out.cpu().numpy(), _core.landmark_min_plus(geodesic, neighbor_index, neighbor_distance, 1))
