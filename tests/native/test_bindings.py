"""The one dtype convention of isogan._core (csrc/common/py_arrays.h), checked at its boundary.

Every entry point has one name, bound once per element type: numpy arrays pick the float32 or
float64 overload by their own dtype (``.noconvert()``: any other dtype, a mixed call or a strided
array is a TypeError, never a hidden copy); device addresses come with a ``numpy.dtype`` that only
the matching overload accepts; the fused GAN ops take their tensors' ``torch.dtype``. Wrong shapes
are ValueErrors (std::invalid_argument).
"""

import re

import numpy as np
import pytest

import isogan
from isogan import _core

# Host entry points bound for float32 and float64, with one call each on valid float64 arguments.
_HOST_CALLS = {
    "knn_kneighbors": lambda x: _core.knn_kneighbors(x, x, 2, 0, 2.0, True, 1),
    "knn_radius": lambda x: _core.knn_radius(x, x, 0.5, 0, 2.0, True, 1),
    "knn_kneighbors_kdtree": lambda x: _core.knn_kneighbors_kdtree(x, x, 2, 0, 2.0, True, 1),
    "mds_squared_row_means": lambda x: _core.mds_squared_row_means(x, 1),
    "mds_centered_kernel": lambda x: _core.mds_centered_kernel(x, 1),
    "landmark_maxmin": lambda x: _core.landmark_maxmin(x, 3, 0, 1),
    "paths_floyd_warshall": lambda x: _core.paths_floyd_warshall(np.abs(x), 1),  # keeps x's layout and dtype
}


def _points(dtype=np.float64):
    """(8, 8): points for the searches, a square matrix for the others."""
    return np.random.default_rng(0).normal(size=(8, 8)).astype(dtype)


def test_no_dtype_in_entry_names():
    names = [name for name in dir(_core) if not name.startswith("__")]
    assert not [name for name in names if re.search(r"_(f32|f64|float32|float64|ptr)(_|$)", name)]
    assert "paths_min_plus_cuda_host" not in names


@pytest.mark.parametrize("name", sorted(_HOST_CALLS))
def test_host_entries_have_exactly_a_float32_and_a_float64_overload(name):
    doc = getattr(_core, name).__doc__
    signatures = [line for line in doc.splitlines() if re.match(rf"\d+\. {name}\(", line)]
    assert len(signatures) == 2
    assert "float32" in signatures[0] and "float64" in signatures[1]
    for dtype in (np.float32, np.float64):
        _HOST_CALLS[name](_points(dtype))


@pytest.mark.parametrize("name", sorted(_HOST_CALLS))
@pytest.mark.parametrize("bad", ["float16", "int64", "float64-strided"])
def test_host_entries_refuse_other_dtypes_and_strided_arrays(name, bad):
    if bad == "float64-strided":
        points = np.asfortranarray(_points())
    else:
        points = _points().astype(bad)
    with pytest.raises(TypeError, match="incompatible function arguments"):
        _HOST_CALLS[name](points)


def test_mixed_dtypes_pick_no_overload():
    with pytest.raises(TypeError, match="incompatible function arguments"):
        _core.knn_kneighbors(_points(np.float32), _points(np.float64), 2, 0, 2.0, True, 1)
    block = np.zeros((8, 2), dtype=np.float32)  # w is float64 in both overloads
    with pytest.raises(TypeError, match="incompatible function arguments"):
        _core.mds_squared_matmul(_points(), block, 1)


def test_wrong_shapes_are_value_errors():
    with pytest.raises(ValueError, match="points"):
        _core.knn_kneighbors(_points(), _points()[:, :3].copy(), 2, 0, 2.0, True, 1)
    with pytest.raises(ValueError, match="square"):
        _core.mds_centered_kernel(_points()[:5].copy(), 1)
    with pytest.raises(ValueError, match="w"):
        _core.mds_squared_matmul(_points(), np.zeros((3, 2)), 1)
    with pytest.raises(ValueError, match="column_order"):
        _core.paths_dijkstra(np.zeros(3, np.int64), np.zeros(0, np.int32), np.zeros(0), np.zeros(1, np.int64),
                             np.zeros((1, 2)), 1, np.array([0, 0], np.int64))
    with pytest.raises(ValueError, match="projection"):
        _core.landmark_triangulate(np.zeros((3, 5)), np.zeros((2, 4)), np.zeros(3), 1)


def test_fused_ops_take_the_torch_dtype_not_a_code():
    torch = pytest.importorskip("torch")
    x = torch.zeros(4)
    out = torch.empty(4)
    args = [x.data_ptr(), 0, 0, out.data_ptr(), 1, 4, 1, torch.float32, 2, 0.2, 1.0, -1.0, 0]
    _core.ops_bias_act_cpu(*args)
    for not_a_torch_dtype in (0, "float32", np.dtype(np.float32)):
        args[7] = not_a_torch_dtype
        with pytest.raises(TypeError, match="incompatible function arguments"):
            _core.ops_bias_act_cpu(*args)


@pytest.mark.skipif(not isogan.cuda_built(), reason="the device-pointer entries exist in CUDA builds only")
def test_device_entries_take_a_numpy_dtype_only():
    # The dtype check comes before any device access: these calls never reach a kernel.
    for not_a_dtype in ("float32", 0, np.float32, np.dtype(np.float16), np.dtype(np.int64)):
        with pytest.raises(TypeError, match="incompatible function arguments"):
            _core.mds_symmetry_report_cuda(0, 0, not_a_dtype, 0)
        with pytest.raises(TypeError, match="incompatible function arguments"):
            _core.paths_floyd_warshall_cuda(0, 0, not_a_dtype, 0)
    signatures = [line for line in _core.paths_min_plus_cuda.__doc__.splitlines() if line.startswith(("1.", "2."))]
    assert re.search(r"numpy\.dtype\[(numpy\.)?float32\]", signatures[0])
    assert re.search(r"numpy\.dtype\[(numpy\.)?float64\]", signatures[1])
