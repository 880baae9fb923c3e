"""Device, thread and progress policy (isogan._backend.policy) and the one memory check per mode."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import isogan
from isogan import _core
from isogan._backend import get_backend, memory, policy


@pytest.fixture
def fake_cuda(monkeypatch):
    """Pretend a CUDA device is usable (only the policy is exercised; no kernel runs)."""
    monkeypatch.setattr(_core, "cuda_status", lambda: {"available": True, "reason": ""})
    monkeypatch.setattr(policy, "_warned_stages", set())


def test_auto_stays_on_the_cpu_for_stages_not_verified_on_hardware(fake_cuda, monkeypatch):
    monkeypatch.setattr(policy, "VERIFIED_ON_HARDWARE", {"knn": False, "paths": True, "mds": False, "landmark": False})
    monkeypatch.setattr(policy, "AUTO_PREFERS_CPU", {})
    assert policy.resolve_device("auto", "knn") == "cpu"
    assert policy.resolve_device("auto", "landmark") == "cpu"
    assert policy.resolve_device("auto", "paths") == "cuda"
    assert get_backend("auto").name == "cpu"


def test_auto_uses_cuda_for_the_stages_verified_on_hardware(fake_cuda):
    # Turned on by the H200 run of benchmarks/gpu_suite.sh on 2026-12-04 (all four stages passed).
    assert set(policy.VERIFIED_ON_HARDWARE) == {"knn", "paths", "mds", "landmark"}
    for stage, verified in policy.VERIFIED_ON_HARDWARE.items():
        expected = "cuda" if verified and stage not in policy.AUTO_PREFERS_CPU else "cpu"
        assert policy.resolve_device("auto", stage) == expected
    # The exact fit (decided by the paths stage) measured faster on the CPU, so 'auto' keeps it there.
    assert policy.resolve_device("auto", "paths") == "cpu"
    assert policy.resolve_device("auto", "landmark") == "cuda" and get_backend("auto").name == "cuda"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a verified stage does not warn on device='cuda'
        for stage in (name for name, verified in policy.VERIFIED_ON_HARDWARE.items() if verified):
            assert policy.resolve_device("cuda", stage) == "cuda"


def test_explicit_cuda_warns_once_per_unverified_stage(fake_cuda, monkeypatch):
    monkeypatch.setattr(policy, "VERIFIED_ON_HARDWARE", {"knn": True, "paths": False, "mds": False, "landmark": False})
    with pytest.warns(isogan.UnverifiedCudaWarning, match="paths stage"):
        assert policy.resolve_device("cuda", "paths") == "cuda"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert policy.resolve_device("cuda", "paths") == "cuda"
    with pytest.warns(isogan.UnverifiedCudaWarning, match="mds stage"):
        policy.resolve_device("cuda", "mds")


def test_cuda_without_a_device_names_the_reason(monkeypatch):
    monkeypatch.setattr(_core, "cuda_status", lambda: {"available": False, "reason": "no driver"})
    with pytest.raises(RuntimeError, match="no driver"):
        policy.resolve_device("cuda", "knn")
    assert policy.resolve_device("auto", "knn") == "cpu"


@pytest.mark.parametrize("device", ["tpu", None, 3])
def test_unknown_device_is_a_value_error(device):
    with pytest.raises(ValueError, match="'device' parameter"):
        policy.resolve_device(device, "knn")


def test_threads_default_to_every_core_bounded_by_threadpoolctl():
    all_cores = policy.threads(None)
    assert all_cores >= 1
    with threadpool_limits(limits=1, user_api="openmp"):
        assert policy.threads(None) == 1
        assert policy.threads(2) == 2  # an explicit n_jobs is honoured
    assert policy.threads(None) == all_cores
    assert policy.threads(-1) == all_cores
    assert policy.threads(-all_cores - 5) == 1


@pytest.mark.parametrize("n_jobs", [0, 1.5, "2", True])
def test_bad_n_jobs_is_a_value_error(n_jobs):
    with pytest.raises(ValueError, match="n_jobs"):
        policy.threads(n_jobs)


def test_isomap_under_threadpool_limits_matches_default():
    X = np.random.RandomState(0).rand(300, 3)
    reference = isogan.Isomap(n_neighbors=8).fit_transform(X)
    with threadpool_limits(limits=1, user_api="openmp"):
        limited = isogan.Isomap(n_neighbors=8).fit_transform(X)
    np.testing.assert_allclose(limited, reference, rtol=1e-9, atol=1e-12)


def test_progress_policy():
    assert not policy.show_progress(1.0)
    assert policy.show_progress(policy.PROGRESS_AFTER_SECONDS + 1)
    assert policy.show_progress(0.0, True)
    assert not policy.show_progress(100.0, False)
    # 1000 searches over a 1M-node kNN graph on 2 threads: a minute, so a bar.
    assert policy.show_progress(policy.relaxation_seconds(1000, 10**6, 2 * 10**7, 2))
    assert not policy.show_progress(policy.relaxation_seconds(10, 1000, 20000, 2))


def test_landmark_memory_is_refused_before_any_work(monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "available_host_bytes", lambda: 10**6)
    monkeypatch.setattr(isogan.knn, "knn_graph", lambda *args, **kwargs: calls.append("knn"))
    X = np.random.RandomState(0).rand(2000, 3)
    with pytest.raises(MemoryError, match="landmark geodesic rows") as error:
        isogan.Isomap(n_neighbors=8, n_landmarks=1000).fit(X)
    message = str(error.value)
    assert "fewer landmarks" in message and "landmark Isomap (n_landmarks" not in message
    assert calls == []


def test_exact_memory_remedy_names_float32_and_landmarks(monkeypatch):
    monkeypatch.setattr(memory, "available_host_bytes", lambda: 10**5)
    with pytest.raises(MemoryError) as error:
        isogan.Isomap(n_neighbors=8).fit(np.random.RandomState(0).rand(1000, 3))
    assert "dtype=float32" in str(error.value) and "n_landmarks" in str(error.value)
