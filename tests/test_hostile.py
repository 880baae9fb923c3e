"""Hostile input: never a silently wrong embedding, never a refusal after the work (issue 16).

Isomap is scale-equivariant, embedding(c X) = c embedding(X): for every scale the result is
either c times the unscaled embedding or a ValueError saying the values are outside what the
dtype can represent; never inf, NaN, zeros or another embedding.
"""

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.manifold import Isomap as SklearnIsomap

import isogan
from isogan._backend.cpu import CpuBackend
from isogan.cli import main

OUT_OF_RANGE = r"outside what float(32|64) can represent"
POINTS = np.random.RandomState(0).rand(80, 4)
QUERIES = np.random.RandomState(1).rand(5, 4)


def _aligned(result: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``result`` with each column's sign matched to ``reference`` (eigenvectors are defined up to sign)."""
    signs = np.sign(np.sum(result * reference, axis=0))
    return result * np.where(signs == 0, 1.0, signs)


def _relative(result: np.ndarray, reference: np.ndarray) -> float:
    scale = np.max(np.abs(reference))
    return float(np.max(np.abs(_aligned(result / scale, reference / scale) - reference / scale)))


def _embed(points: np.ndarray, eigen_solver: str, n_landmarks: int | None,
           device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    model = isogan.Isomap(n_neighbors=8, n_components=2, eigen_solver=eigen_solver, n_landmarks=n_landmarks,
                          random_state=0, device=device)
    embedding = model.fit_transform(points)
    return embedding, model.transform(QUERIES.astype(points.dtype) * (points[0, 0] / POINTS[0, 0]))


_REFERENCE: dict = {}


def _reference(dtype, eigen_solver, n_landmarks):
    key = (np.dtype(dtype).name, eigen_solver, n_landmarks)
    if key not in _REFERENCE:
        _REFERENCE[key] = _embed(POINTS.astype(dtype), eigen_solver, n_landmarks)
    return _REFERENCE[key]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exponent=st.floats(-150, 150), eigen_solver=st.sampled_from(["auto", "dense", "arpack"]),
       n_landmarks=st.sampled_from([None, 20]))
def test_scale_equivariance_float64(exponent, eigen_solver, n_landmarks):
    scale = 10.0**exponent
    base_fit, base_transform = _reference(np.float64, eigen_solver, n_landmarks)
    try:
        fit, transform = _embed(POINTS * scale, eigen_solver, n_landmarks)
    except ValueError as error:
        assert re.search(OUT_OF_RANGE, str(error)), error
        assert abs(exponent) > 140  # only near the ends of float64's range
        return
    assert np.isfinite(fit).all() and np.isfinite(transform).all()
    assert _relative(fit, base_fit * scale) < 1e-8
    assert _relative(transform, base_transform * scale) < 1e-8


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exponent=st.floats(-18, 18), eigen_solver=st.sampled_from(["auto", "dense", "arpack"]),
       n_landmarks=st.sampled_from([None, 20]))
def test_scale_equivariance_float32(exponent, eigen_solver, n_landmarks):
    scale = np.float32(10.0**exponent)
    base_fit, base_transform = _reference(np.float32, eigen_solver, n_landmarks)
    try:
        fit, transform = _embed(POINTS.astype(np.float32) * scale, eigen_solver, n_landmarks)
    except ValueError as error:
        assert re.search(OUT_OF_RANGE, str(error)), error
        assert abs(exponent) > 16
        return
    assert fit.dtype == np.float32
    assert np.isfinite(fit).all() and np.isfinite(transform).all()
    assert _relative(fit.astype(np.float64), base_fit.astype(np.float64) * float(scale)) < 1e-3
    assert _relative(transform.astype(np.float64), base_transform.astype(np.float64) * float(scale)) < 1e-3


@pytest.mark.cuda
@pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")
@pytest.mark.parametrize("n_landmarks", [None, 20])
@pytest.mark.parametrize("scale", [1e-150, 1e-100, 1e-30, 1e30, 1e100, 1e150, 1e160, 1e-300])
def test_scale_equivariance_on_the_gpu(scale, n_landmarks):
    base_fit, base_transform = _embed(POINTS, "auto", n_landmarks, device="cuda")
    try:
        fit, transform = _embed(POINTS * scale, "auto", n_landmarks, device="cuda")
    except ValueError as error:
        assert re.search(OUT_OF_RANGE, str(error)), error
        assert scale > 1e150 or scale < 1e-150
        return
    assert np.isfinite(fit).all() and np.isfinite(transform).all()
    assert _relative(fit, base_fit * scale) < 1e-8
    assert _relative(transform, base_transform * scale) < 1e-8


@pytest.mark.parametrize("scale", [1e-100, 1e-80, 1e80, 1e100])
def test_default_solver_matches_sklearn_at_extreme_scales(scale):
    # Defect 1: the block eigensolver was off by ~1.0 relative at 1e-100 and raised LinAlgError at 1e100.
    X = np.random.RandomState(0).rand(300, 4) * scale
    ours = isogan.Isomap(n_neighbors=8).fit(X)
    theirs = SklearnIsomap(n_neighbors=8, eigen_solver="dense").fit(X)
    assert _relative(ours.embedding_, theirs.embedding_) < 1e-8
    np.testing.assert_allclose(ours.kernel_pca_.eigenvalues_, theirs.kernel_pca_.eigenvalues_, rtol=1e-8)


def test_float32_overflow_is_refused():
    # Defect 2: 600 infs and only numpy's cast warning.
    X = (np.random.RandomState(0).rand(300, 4) * 1e19).astype(np.float32)
    with pytest.raises(ValueError, match=OUT_OF_RANGE):
        isogan.Isomap(n_neighbors=8).fit_transform(X)


def test_landmark_memory_refused_before_the_knn(monkeypatch):
    # Defect 3: a MemoryError after 167 s whose remedy suggested landmark Isomap to its user.
    def no_knn(*args, **kwargs):
        raise AssertionError("the kNN search ran before the memory check")

    monkeypatch.setattr(CpuBackend, "neighbor_graph", no_knn)
    X = np.random.RandomState(0).rand(200000, 3)
    with pytest.raises(MemoryError, match=r"\(200000, 200000\) landmark MDS.*fewer landmarks \(n_landmarks\)") as info:
        isogan.Isomap(n_neighbors=10, n_landmarks=200000).fit(X)
    assert "use landmark Isomap" not in str(info.value)


def test_landmark_transform_of_a_far_point_is_refused():
    # Defect 4: [[nan, nan]] where exact mode raised.
    model = isogan.Isomap(n_neighbors=8, n_landmarks=50).fit(np.random.RandomState(0).rand(500, 3))
    with pytest.raises(ValueError, match=OUT_OF_RANGE):
        model.transform([[1e160, 0, 0]])
    exact = isogan.Isomap(n_neighbors=8).fit(np.random.RandomState(0).rand(200, 3))
    with pytest.raises(ValueError, match=OUT_OF_RANGE):
        exact.transform([[1e160, 0, 0]])


def test_landmark_fit_at_huge_scale_names_the_overflow():
    with pytest.raises(ValueError, match=OUT_OF_RANGE) as info:
        isogan.Isomap(n_neighbors=8, n_landmarks=50).fit(np.random.RandomState(0).rand(500, 3) * 1e160)
    assert "disconnected" not in str(info.value)


@pytest.mark.parametrize("n_landmarks", [None, 30])
def test_underflow_is_refused_not_zeros(n_landmarks):
    # Minor: x 1e-300 gave an all-zero embedding silently.
    with pytest.raises(ValueError, match="underflow float64.*" + OUT_OF_RANGE):
        isogan.Isomap(n_neighbors=8, n_landmarks=n_landmarks).fit(np.random.RandomState(0).rand(200, 3) * 1e-300)


def test_identical_points_still_embed_to_zeros():
    # A zero spread is not an underflow: every distance is exactly 0, as scikit-learn computes.
    X = np.ones((20, 3))
    embedding = isogan.Isomap(n_neighbors=5, n_components=1).fit_transform(X)
    assert np.all(embedding == 0)


def test_precomputed_distances_out_of_range_are_refused():
    X = np.random.RandomState(0).rand(60, 3)
    distances = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1)) * 1e160
    with pytest.raises(ValueError, match="precomputed distances overflow float64"):
        isogan.Isomap(n_neighbors=8, metric="precomputed").fit(distances)


# ------------------------------------------------------------------------------- command line
def _no_fit(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the fit ran before the output folder was checked")

    monkeypatch.setattr(isogan.Isomap, "fit_transform", refuse)


@pytest.mark.parametrize("command", [["embed", "--dataset", "digits"], ["train"], ["demo"]])
def test_cli_out_that_is_a_file_is_refused_before_the_work(command, tmp_path, capsys, monkeypatch):
    _no_fit(monkeypatch)
    target = tmp_path / "f"
    target.touch()
    assert main([*command, "--out", str(target)]) == 2
    error = capsys.readouterr().err
    assert error == f"isogan {command[0]}: error: --out {target} exists and is not a folder; pass a folder (created if missing)\n"


@pytest.mark.parametrize("command", [["embed", "--dataset", "digits"], ["train"], ["demo"]])
def test_cli_out_that_cannot_be_created_is_refused(command, tmp_path, capsys, monkeypatch):
    _no_fit(monkeypatch)
    blocker = tmp_path / "file"
    blocker.touch()
    assert main([*command, "--out", str(blocker / "sub")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"isogan {command[0]}: error: --out {blocker / 'sub'} cannot be written:") and error.count("\n") == 1


def test_cli_unwritable_out_is_refused(tmp_path, capsys, monkeypatch):
    import isogan.cli._checks as checks

    _no_fit(monkeypatch)

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checks.tempfile, "NamedTemporaryFile", read_only)
    assert main(["embed", "--dataset", "digits", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"isogan embed: error: --out {tmp_path / 'out'} cannot be written: Permission denied\n"


def test_cli_missing_matplotlib_is_refused_before_the_fit(tmp_path, capsys, monkeypatch):
    import isogan._plotting as plotting

    _no_fit(monkeypatch)

    def missing():
        raise ImportError(f"Drawing plots needs matplotlib: {plotting.PLOT_EXTRA_HINT} (or pip install matplotlib).")

    monkeypatch.setattr(plotting, "pyplot", missing)
    assert main(["embed", "--dataset", "digits", "--out", str(tmp_path / "out")]) == 2
    assert 'pip install "isogan[plot]"' in capsys.readouterr().err


def test_cli_no_plot_writes_the_embedding_only(tmp_path):
    assert main(["embed", "--dataset", "swiss-roll", "--n-samples", "300", "--no-plot", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "embedding.npy").is_file() and not (tmp_path / "embedding.png").exists()
    assert np.load(tmp_path / "embedding.npy").shape == (300, 2)


def test_cli_ctrl_c_exits_130_with_one_line(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(isogan.Isomap, "fit_transform", interrupted)
    assert main(["embed", "--dataset", "digits", "--out", str(tmp_path)]) == 130
    assert capsys.readouterr().err == "isogan embed: interrupted\n"


def test_cli_negative_n_neighbors_with_input(tmp_path, capsys):
    path = tmp_path / "points.npy"
    np.save(path, np.random.RandomState(0).rand(50, 3))
    with pytest.raises(SystemExit) as info:
        main(["embed", "--input", str(path), "--n-landmarks", "5", "--n-neighbors", "-3", "--out", str(tmp_path)])
    assert info.value.code == 2
    assert "argument --n-neighbors: expected a positive integer, got -3" in capsys.readouterr().err
