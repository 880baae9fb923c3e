"""``isogan embed`` and :func:`isogan.datasets.load_dataset`."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.manifold import Isomap as SklearnIsomap

import isogan.knn
from isogan import cli
from isogan.datasets import DEFAULT_GENERATED_SAMPLES, load_dataset


def _stages_merged() -> bool:
    try:
        isogan.knn.knn_graph(np.zeros((3, 1)), n_neighbors=1)
    except NotImplementedError:
        return False
    return True


# Temporary until the knn/paths/mds stages are merged into this branch: tests that run a fit skip.
needs_stages = pytest.mark.skipif(not _stages_merged(), reason="knn/paths/mds stages not merged yet")


@needs_stages
def test_embed_swiss_roll_writes_embedding_and_picture(tmp_path, capsys):
    out = tmp_path / "run"
    status = cli.main(["embed", "--dataset", "swiss-roll", "--out", str(out), "--n-samples", "250", "--n-neighbors", "10"])
    assert status == 0
    embedding = np.load(out / "embedding.npy")
    assert embedding.shape == (250, 2)
    assert embedding.dtype == np.float64
    expected = SklearnIsomap(n_neighbors=10).fit_transform(load_dataset("swiss-roll", 250).X)
    assert np.abs(embedding - expected).max() <= 1e-6 * np.abs(expected).max()
    picture = (out / "embedding.png").read_bytes()
    assert picture.startswith(b"\x89PNG") and len(picture) > 5000
    printed = capsys.readouterr().out
    for stage in ("load", "knn", "paths", "mds", "total fit"):
        assert stage in printed


@needs_stages
def test_embed_file_with_one_component_in_float32(tmp_path):
    points = load_dataset("s-curve", 200).X
    path = tmp_path / "points.csv"
    np.savetxt(path, points, delimiter=",")
    out = tmp_path / "run"
    status = cli.main(
        ["embed", "--dataset", str(path), "--out", str(out), "--n-components", "1", "--dtype", "float32", "--device", "cpu"]
    )
    assert status == 0
    embedding = np.load(out / "embedding.npy")
    assert embedding.shape == (200, 1) and embedding.dtype == np.float32
    assert (out / "embedding.png").stat().st_size > 0


def test_embed_reports_missing_file_and_bad_parameters(tmp_path, capsys):
    status = cli.main(["embed", "--dataset", str(tmp_path / "missing.npy"), "--out", str(tmp_path / "o")])
    assert status == 2
    assert "missing.npy' does not exist" in capsys.readouterr().err
    status = cli.main(["embed", "--dataset", "swiss-roll", "--n-samples", "5", "--out", str(tmp_path / "o")])
    assert status == 1
    assert "Expected n_neighbors < n_samples_fit" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["embed", "--dataset", "digits"])


@pytest.mark.parametrize("name, shape, colour_label", [
    ("digits", (1797, 64), "digit"),
    ("swiss-roll", (DEFAULT_GENERATED_SAMPLES, 3), "position along the manifold"),
    ("s-curve", (DEFAULT_GENERATED_SAMPLES, 3), "position along the manifold"),
])
def test_named_datasets(name, shape, colour_label):
    dataset = load_dataset(name)
    assert dataset.X.shape == shape
    assert dataset.colour.shape == (shape[0],)
    assert dataset.colour_label == colour_label
    np.testing.assert_array_equal(load_dataset(name).X, dataset.X)
    assert load_dataset(name, n_samples=50).X.shape == (50, shape[1])


def test_npy_and_csv_files(tmp_path):
    points = np.arange(12.0).reshape(4, 3)
    np.save(tmp_path / "points.npy", points.astype(np.float32))
    np.savetxt(tmp_path / "points.csv", points, delimiter=",")
    from_npy = load_dataset(str(tmp_path / "points.npy"))
    assert from_npy.X.dtype == np.float32 and from_npy.colour is None
    np.testing.assert_array_equal(from_npy.X, points)
    np.testing.assert_array_equal(load_dataset(str(tmp_path / "points.csv")).X, points)
    assert load_dataset(str(tmp_path / "points.csv"), n_samples=2).X.shape == (2, 3)


@pytest.mark.parametrize("content, message", [
    (np.arange(5.0), r"expected a 2-D numeric array saved with numpy.save; found an array of shape \(5,\)"),
    (np.array([["a", "b"]]), r"found an array of shape \(1, 2\) and dtype <U1"),
    (np.ones((2, 2)) + 1j, "found complex numbers"),
])
def test_malformed_npy_is_named(tmp_path, content, message):
    path = tmp_path / "bad.npy"
    np.save(path, content)
    with pytest.raises(ValueError, match=rf"Could not read '{path}': .*{message}"):
        load_dataset(str(path))


def test_malformed_or_unknown_inputs(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("x,y\n1,2\n")
    with pytest.raises(ValueError, match=rf"Could not read '{csv}': expected numbers separated by commas"):
        load_dataset(str(csv))
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=rf"Could not read '{pickled}'"):
        load_dataset(str(pickled))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(str(tmp_path / "nope.csv"))
    with pytest.raises(ValueError, match="Unknown dataset 'mnist': expected one of digits, swiss-roll, s-curve"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="n_samples must be at least 1"):
        load_dataset("digits", n_samples=0)
