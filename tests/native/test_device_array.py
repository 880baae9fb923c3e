"""isogan.DeviceArray: construction, the no-GPU errors, and (on a GPU) round trips and zero-copy interop."""

import numpy as np
import pytest

import isogan
from isogan import DeviceArray, _core
from isogan._backend.arrays import current_stream, device_array_view, device_empty, from_host_like, is_device_array, to_host


def cuda(test):
    """Mark a test as needing a usable CUDA device (selected by ``-m cuda``, skipped without one)."""
    return pytest.mark.cuda(pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")(test))


no_gpu = pytest.mark.skipif(isogan.cuda_available(), reason="checks the errors of a machine without a usable GPU")


# ----------------------------------------------------------------------------- without a GPU
@no_gpu
def test_construction_without_gpu_raises_runtime_error_with_reason():
    with pytest.raises(RuntimeError, match="cannot allocate a DeviceArray: ") as error:
        DeviceArray((3, 4), np.float32)
    assert isogan._backend.policy.cuda_unavailable_reason() in str(error.value)
    with pytest.raises(RuntimeError, match="cannot allocate a DeviceArray"):
        DeviceArray.from_host(np.zeros((2, 2)))


@pytest.mark.parametrize("dtype", [np.complex64, np.float16, np.bool_, np.dtype(">f8")])
def test_unsupported_dtype_is_a_value_error_before_any_allocation(dtype):
    with pytest.raises(ValueError, match="DeviceArray supports"):
        DeviceArray((3,), dtype)


def test_negative_extent_is_a_value_error():
    with pytest.raises(ValueError, match="extents must be >= 0"):
        DeviceArray((3, -1), np.float64)


def test_device_memory_error_is_a_memory_error():
    assert issubclass(_core.DeviceMemoryError, MemoryError)


def test_public_name():
    assert isogan.DeviceArray is _core.DeviceArray
    assert not is_device_array(np.zeros(3))


# ----------------------------------------------------------------------------- on a GPU
@cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint8])
@pytest.mark.parametrize("shape", [(0,), (7,), (3, 5), (0, 4), (2, 3, 4)])
def test_round_trip(dtype, shape):
    host = (np.arange(int(np.prod(shape))) % 251).astype(dtype).reshape(shape)
    array = DeviceArray.from_host(host)
    assert array.shape == shape and array.dtype == np.dtype(dtype) and array.ndim == len(shape)
    assert array.nbytes == host.nbytes and array.size == host.size
    assert is_device_array(array)
    np.testing.assert_array_equal(array.to_host(), host)
    out = np.empty_like(host)
    array.copy_to(out)
    np.testing.assert_array_equal(out, host)
    np.testing.assert_array_equal(to_host(from_host_like(host, array)), host)


@cuda
def test_cuda_array_interface_version_3():
    array = DeviceArray((4, 6), np.float32)
    interface = array.__cuda_array_interface__
    assert interface["version"] == 3
    assert interface["shape"] == (4, 6) and interface["typestr"] == "<f4" and interface["strides"] is None
    assert interface["data"] == (array.pointer, False) and array.pointer != 0
    assert interface["stream"] == 1  # legacy default stream (version 3 disallows 0)
    view = device_array_view(array)
    assert view.pointer == array.pointer and view.shape == (4, 6) and view.stream == current_stream(array) == 0
    same_kind = device_empty(array, (2, 2), np.float64)
    assert isinstance(same_kind, DeviceArray) and same_kind.dtype == np.float64


@cuda
def test_copy_to_checks_shape_dtype_and_contiguity():
    array = DeviceArray.from_host(np.ones((3, 4)))
    with pytest.raises(ValueError, match="shape and dtype"):
        array.copy_to(np.empty((4, 3)))
    with pytest.raises(ValueError, match="shape and dtype"):
        array.copy_to(np.empty((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        array.copy_to(np.empty((4, 3)).T)


@cuda
def test_torch_reads_it_without_a_copy():
    torch = pytest.importorskip("torch")
    host = np.random.default_rng(0).random((5, 3))
    array = DeviceArray.from_host(host)
    tensor = torch.as_tensor(array, device="cuda")
    assert tensor.data_ptr() == array.pointer
    np.testing.assert_array_equal(tensor.cpu().numpy(), host)
    tensor.mul_(2)  # writes through to the same memory
    np.testing.assert_array_equal(array.to_host(), 2 * host)


@cuda
def test_cupy_reads_it_without_a_copy():
    cupy = pytest.importorskip("cupy")
    host = np.arange(12, dtype=np.int64).reshape(3, 4)
    array = DeviceArray.from_host(host)
    view = cupy.asarray(array)
    assert view.data.ptr == array.pointer
    np.testing.assert_array_equal(view.get(), host)


@cuda
def test_oversized_allocation_is_a_memory_error_and_the_next_call_works():
    free_bytes, _ = _core.cuda_memory_info()
    with pytest.raises(MemoryError, match="CUDA out of memory"):
        DeviceArray((2 * free_bytes,), np.uint8)
    # The failed allocation leaves no pending error behind: allocations and launches still work.
    host = np.random.default_rng(1).random((64, 64)).astype(np.float32)
    np.testing.assert_array_equal(DeviceArray.from_host(host).to_host(), host)
    graph = np.array([[0, 1.0, 0], [0, 0, 2.0], [0, 0, 0]])
    np.testing.assert_array_equal(isogan.geodesic_distances(graph, device="cuda"),
                                  isogan.geodesic_distances(graph, device="cpu"))
