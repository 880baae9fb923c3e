import pytest

import isogan
from isogan._backend.memory import ensure_memory
from isogan._backend.policy import resolve_device


def test_cuda_flags_are_bools():
    assert isinstance(isogan.cuda_built(), bool)
    assert isinstance(isogan.cuda_available(), bool)
    if not isogan.cuda_built():
        assert not isogan.cuda_available()


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if isogan.cuda_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")


@pytest.mark.skipif(isogan.cuda_available(), reason="checks the no-GPU error")
def test_cuda_request_without_gpu_raises():
    with pytest.raises(RuntimeError, match="CUDA is not usable"):
        resolve_device("cuda")


def test_ensure_memory_refuses_impossible_allocation():
    with pytest.raises(MemoryError, match="bytes") as info:
        ensure_memory(1 << 60, "a test matrix", "Use fewer points.")
    assert "Use fewer points." in str(info.value)
    ensure_memory(1024, "a small matrix", "")
