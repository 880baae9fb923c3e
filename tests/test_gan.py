"""Tests of isogan.gan: datasets, metrics against oracles, ManifoldGAN reliability, the commands."""

from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from isogan.gan import datasets, metrics

torch = pytest.importorskip("torch")


def _ops_available() -> bool:
    try:
        import isogan.ops  # noqa: F401
    except ImportError:
        return False
    return True


def _isomap_available() -> bool:
    import isogan

    return hasattr(isogan.Isomap, "fit_transform")


needs_ops = pytest.mark.skipif(not _ops_available(), reason="isogan.ops (fused GAN ops) is not built yet")
needs_isomap = pytest.mark.skipif(not _isomap_available(), reason="isogan.Isomap is not implemented yet")

@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run these tiny networks on one thread (as the commands do), restoring torch's setting after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


TINY = dict(latent_dim=4, hidden=16, coord_embed=8, batch_size=8, device="cpu")


def _tiny_data(n_samples: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (n_samples, 1, 4, 4)).astype(np.float32)
    coords = rng.normal(size=(n_samples, 2)) * 5 + 3
    return images, coords


# ---------------------------------------------------------------------------- datasets
def test_digits_dataset_shape_and_range():
    data = datasets.load_dataset("digits")
    assert data.images.shape == (1797, 1, 8, 8) and data.images.dtype == np.float32
    assert data.images.min() == -1.0 and data.images.max() == 1.0
    assert data.labels.shape == (1797,) and set(np.unique(data.labels)) == set(range(10))


def test_shapes_dataset_is_a_distinct_two_parameter_family():
    data = datasets.load_dataset("shapes", n_samples=40)
    assert data.images.shape == (40, 1, 32, 32) and data.true_coords.shape == (40, 2)
    assert -1.0 <= data.images.min() and data.images.max() <= 1.0
    # an L has no rotational symmetry: rotating by pi changes the image
    pair = datasets.render_shapes(np.array([0.3, 0.3 + np.pi]), np.array([0.8, 0.8]))
    assert np.abs(pair[0] - pair[1]).mean() > 0.1
    # a larger scale covers more pixels
    small, large = datasets.render_shapes(np.array([0.0, 0.0]), np.array([0.5, 0.9]))
    assert (large > 0).sum() > (small > 0).sum()


def test_unknown_dataset_and_missing_path():
    with pytest.raises(ValueError, match="Unknown dataset 'cifar'"):
        datasets.load_dataset("cifar")
    with pytest.raises(ValueError, match="--data-path"):
        datasets.load_dataset("mnist")


def test_mnist_missing_path_names_path_and_format(tmp_path):
    missing = tmp_path / "nowhere.npz"
    with pytest.raises(FileNotFoundError, match="nowhere.npz.*x_train"):
        datasets.load_dataset("mnist", missing)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        datasets.load_dataset("mnist", tmp_path)


def test_mnist_npz_and_malformed(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=pixels, y_train=np.arange(5))
    data = datasets.load_dataset("mnist", tmp_path / "mnist.npz")
    assert data.images.shape == (5, 1, 28, 28)
    np.testing.assert_allclose(data.images[:, 0], pixels / 127.5 - 1.0, atol=1e-6)
    np.savez(tmp_path / "bad.npz", images=pixels)
    with pytest.raises(ValueError, match="bad.npz.*x_train"):
        datasets.load_dataset("mnist", tmp_path / "bad.npz")


def test_mnist_idx_directory(tmp_path):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    labels = np.array([7, 1, 4], dtype=np.uint8)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as stream:
        stream.write(bytes([0, 0, 8, 3]) + struct.pack(">III", 3, 28, 28) + pixels.tobytes())
    with open(tmp_path / "train-labels-idx1-ubyte", "wb") as stream:
        stream.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + labels.tobytes())
    data = datasets.load_dataset("mnist", tmp_path)
    np.testing.assert_array_equal(data.labels, labels)
    np.testing.assert_allclose(data.images[:, 0], pixels / 127.5 - 1.0, atol=1e-6)
    with open(tmp_path / "train-labels-idx1-ubyte", "wb") as stream:
        stream.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 9) + labels.tobytes())
    with pytest.raises(ValueError, match="truncated"):
        datasets.load_dataset("mnist", tmp_path)


def test_folder_dataset(tmp_path):
    import matplotlib.image

    rng = np.random.default_rng(2)
    for index in range(3):
        matplotlib.image.imsave(tmp_path / f"{index}.png", rng.uniform(0, 1, (6, 5)), cmap="gray")
    data = datasets.load_dataset("folder", tmp_path)
    assert data.images.shape == (3, 4, 6, 5) and data.labels is None
    matplotlib.image.imsave(tmp_path / "3.png", rng.uniform(0, 1, (7, 5)), cmap="gray")
    with pytest.raises(ValueError, match="3.png.*shape"):
        datasets.load_dataset("folder", tmp_path)
    with pytest.raises(FileNotFoundError, match="holds no image"):
        datasets.load_dataset("folder", tmp_path / "..")  # tmp_path's parent has directories only
    (tmp_path / "3.png").unlink()
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="Could not decode"):
        datasets.load_folder_dataset(tmp_path)


@pytest.mark.parametrize(
    "shape, message",
    [((5, 8, 8), "of shape"), ((1, 1, 8, 8), "at least 2"), ((3, 7, 8, 8), "channels"), ((3, 1, 2, 8), "4x4")],
)
def test_bad_image_shapes(shape, message):
    with pytest.raises(ValueError, match=message):
        datasets.check_images(np.zeros(shape))


def test_nan_images_rejected():
    images = np.zeros((3, 1, 4, 4))
    images[1, 0, 2, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        datasets.check_images(images)


# ---------------------------------------------------------------------------- metrics
def test_frechet_distance_identical_sets_is_zero():
    features = np.random.default_rng(0).normal(size=(200, 6))
    assert metrics.frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("width", [1, 3, 8])
def test_frechet_distance_matches_scipy_sqrtm_formula(width):
    rng = np.random.default_rng(width)
    a = rng.normal(size=(300, width)) @ rng.normal(size=(width, width))
    b = rng.normal(size=(250, width)) @ rng.normal(size=(width, width)) + 0.7
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    expected = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a + cov_b - 2 * root)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-7, abs=1e-9)


def test_frechet_distance_rejects_mismatched_widths():
    with pytest.raises(ValueError, match="different widths"):
        metrics.frechet_distance(np.zeros((4, 2)), np.zeros((4, 3)))


def test_mmd2_unbiased_matches_naive_loops():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 5)) + 0.3

    def kernel(u, v):
        return (u @ v / 5 + 1.0) ** 3

    m = len(x)
    xx = sum(kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(kernel(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(kernel(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert metrics.mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)


def test_kid_is_mean_of_subset_estimates_and_near_zero_for_same_distribution():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(400, 4)), rng.normal(size=(400, 4))
    assert abs(metrics.kernel_inception_distance(a, b, subset_size=200)) < 0.05
    assert metrics.kernel_inception_distance(a, b + 2.0, subset_size=200) > 1.0
    # one subset covering everything equals the full unbiased estimate
    assert metrics.kernel_inception_distance(a, b, n_subsets=1, subset_size=400) == pytest.approx(
        metrics.mmd2_unbiased(a, b)
    )


def test_precision_recall_oracles():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(60, 3))
    assert metrics.precision_recall(real, real, k=3) == (1.0, 1.0)
    assert metrics.precision_recall(real, real + 100.0, k=3) == (0.0, 0.0)
    # generated samples collapsed on one real point: precise but no recall beyond its neighbourhood
    collapsed = np.repeat(real[:1], 20, axis=0) + rng.normal(scale=1e-6, size=(20, 3))
    precision, recall = metrics.precision_recall(real, collapsed, k=3)
    assert precision == 1.0 and recall < 0.2
    with pytest.raises(ValueError, match="k"):
        metrics.precision_recall(real, real, k=60)


def test_precision_recall_matches_brute_force():
    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(15, 2)), rng.normal(size=(11, 2)) + 0.5
    k = 3

    def radii(points):
        return np.array([sorted(np.linalg.norm(points - p, axis=1))[k] for p in points])

    real_r, fake_r = radii(real), radii(fake)
    precision = np.mean([any(np.linalg.norm(f - r) <= rr for r, rr in zip(real, real_r)) for f in fake])
    recall = np.mean([any(np.linalg.norm(r - f) <= fr for f, fr in zip(fake, fake_r)) for r in real])
    assert metrics.precision_recall(real, fake, k=k) == pytest.approx((precision, recall))


@settings(max_examples=25, deadline=None)
@given(
    n_a=st.integers(5, 30), n_b=st.integers(5, 30), width=st.integers(1, 4), seed=st.integers(0, 2**16),
    duplicate=st.booleans(),
)
def test_metric_properties(n_a, n_b, width, seed, duplicate):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n_a, width)), rng.normal(size=(n_b, width)) * 2 + 0.5
    if duplicate:  # ties: repeated feature vectors
        a[1:3] = a[0]
    distance = metrics.frechet_distance(a, b)
    assert distance >= 0 and distance == pytest.approx(metrics.frechet_distance(b, a), rel=1e-6, abs=1e-9)
    precision, recall = metrics.precision_recall(a, b, k=3)
    assert 0.0 <= precision <= 1.0 and 0.0 <= recall <= 1.0
    # swapping the roles of real and generated swaps precision and recall
    assert metrics.precision_recall(b, a, k=3) == (recall, precision)


class _ShiftIsomap:
    """Oracle 'Isomap' whose transform reads coordinates straight out of the first pixels."""

    def __init__(self, shift: float) -> None:
        self.shift = shift

    def transform(self, flat):
        return flat[:, :2] + self.shift


def test_coord_error_oracle():
    rng = np.random.default_rng(7)
    embedding = rng.normal(size=(300, 2)) * 3
    requested = embedding[:100]
    images = np.zeros((100, 1, 2, 2))
    images.reshape(100, -1)[:, :2] = requested
    spread = metrics.embedding_spread(embedding)
    error, shuffled = metrics.coord_error(_ShiftIsomap(0.0), images, requested, embedding)
    assert error == 0.0 and shuffled > 0.5
    error, _ = metrics.coord_error(_ShiftIsomap(0.3), images, requested, embedding)
    assert error == pytest.approx(np.hypot(0.3, 0.3) / spread)
    assert spread == pytest.approx(np.sqrt(np.mean(np.sum((embedding - embedding.mean(0)) ** 2, 1))))


def test_truth_r2_oracle():
    rng = np.random.default_rng(9)
    truth = rng.uniform(size=(100, 2))
    embedding = truth @ np.array([[2.0, 1.0], [-1.0, 3.0]]) + 5.0
    assert metrics.truth_r2(embedding, truth) == pytest.approx([1.0, 1.0])
    noise = rng.normal(size=(100, 2))
    assert max(metrics.truth_r2(noise, truth)) < 0.2


def test_memorisation_copies_have_zero_ratio():
    rng = np.random.default_rng(8)
    train = rng.normal(size=(50, 1, 3, 3))
    heldout = rng.normal(size=(20, 1, 3, 3))
    result = metrics.memorisation_distances(train, train[:20], heldout)
    assert result["nn_generated_median"] == 0.0 and result["ratio"] == 0.0
    assert metrics.memorisation_distances(train, heldout, heldout)["ratio"] == 1.0


def test_feature_classifier_learns_digits():
    data = datasets.load_dataset("digits", n_samples=400)
    classifier = metrics.FeatureClassifier(hidden=32, n_epochs=15).fit(data.images, data.labels)
    assert classifier.train_accuracy_ > 0.9
    assert classifier.features(data.images[:7]).shape == (7, 16)


# ---------------------------------------------------------------------------- ManifoldGAN
@needs_ops
def test_sample_shapes_and_seed_determinism():
    from isogan.gan import ManifoldGAN

    images, coords = _tiny_data()
    gan = ManifoldGAN(2, (1, 4, 4), n_steps=3, **TINY).fit(images, coords, progress=False)
    first = gan.sample(coords[:5], seed=1)
    assert first.shape == (5, 1, 4, 4) and first.dtype == np.float32
    assert np.abs(first).max() <= 1.0
    np.testing.assert_array_equal(first, gan.sample(coords[:5], seed=1))
    assert not np.array_equal(first, gan.sample(coords[:5], seed=2))
    walk = gan.traverse(coords[0], coords[1], steps=5, seed=3)
    assert walk.shape == (5, 1, 4, 4)
    z = torch.randn(1, 4, generator=torch.Generator().manual_seed(3)).numpy()
    np.testing.assert_allclose(walk[-1], gan.sample(coords[1:2], z=z)[0], atol=1e-5)
    assert [entry["step"] for entry in gan.history_] == [1.0, 2.0, 3.0]


@needs_ops
def test_fixed_seed_reproduces_training():
    from isogan.gan import ManifoldGAN

    images, coords = _tiny_data()
    runs = [ManifoldGAN(2, (1, 4, 4), n_steps=4, seed=5, **TINY).fit(images, coords, progress=False) for _ in range(2)]
    for a, b in zip(runs[0].generator_.parameters(), runs[1].generator_.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@needs_ops
def test_fit_input_errors():
    from isogan.gan import ManifoldGAN

    images, coords = _tiny_data()
    with pytest.raises(ValueError, match=r"coords of shape \(n_samples, 2\)"):
        ManifoldGAN(2, (1, 4, 4), n_steps=1, **TINY).fit(images, coords[:, :1], progress=False)
    with pytest.raises(ValueError, match="must match"):
        ManifoldGAN(2, (1, 4, 4), n_steps=1, **TINY).fit(images, coords[:-1], progress=False)
    with pytest.raises(ValueError, match="image_shape"):
        ManifoldGAN(2, (1, 8, 8), n_steps=1, **TINY).fit(images, coords, progress=False)
    with pytest.raises(ValueError, match="'lr'"):
        ManifoldGAN(2, (1, 4, 4), n_steps=1, lr=-1.0, **TINY).fit(images, coords, progress=False)
    with pytest.raises(ValueError, match="checkpoint_every"):
        ManifoldGAN(2, (1, 4, 4), n_steps=1, **TINY).fit(images, coords, checkpoint_every=0, progress=False)
    with pytest.raises(RuntimeError, match="not fitted"):
        ManifoldGAN(2, (1, 4, 4), **TINY).sample(coords[:2])


def _all_state(gan) -> dict[str, torch.Tensor]:
    state = {}
    for prefix, module in (("g", gan.generator_), ("ema", gan.generator_ema_), ("d", gan.discriminator_)):
        state.update({f"{prefix}.{name}": tensor for name, tensor in module.state_dict().items()})
    for prefix, optimizer in (("opt_g", gan.optimizer_g_), ("opt_d", gan.optimizer_d_)):
        for index, per_param in optimizer.state_dict()["state"].items():
            for name, value in per_param.items():
                state[f"{prefix}.{index}.{name}"] = torch.as_tensor(value)
    return state


@needs_ops
def test_save_load_round_trip(tmp_path):
    from isogan.gan import ManifoldGAN

    images, coords = _tiny_data()
    gan = ManifoldGAN(2, (1, 4, 4), n_steps=3, **TINY).fit(images, coords, progress=False)
    path = tmp_path / "model.pt"
    gan.save(path)
    loaded = ManifoldGAN.load(path)
    np.testing.assert_array_equal(loaded.sample(coords[:6], seed=0), gan.sample(coords[:6], seed=0))
    np.testing.assert_array_equal(loaded.coord_mean_, gan.coord_mean_)
    np.testing.assert_array_equal(loaded.coord_scale_, gan.coord_scale_)
    assert loaded.step_ == 3 and loaded.get_params() == gan.get_params()
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


@needs_ops
def test_resume_equals_uninterrupted_run(tmp_path):
    from isogan.gan import ManifoldGAN

    images, coords = _tiny_data()
    # r1_interval=2 so that both halves contain R1 steps
    params = dict(TINY, r1_interval=2, seed=3)
    uninterrupted = ManifoldGAN(2, (1, 4, 4), n_steps=7, **params).fit(images, coords, progress=False)
    path = tmp_path / "checkpoint.pt"
    ManifoldGAN(2, (1, 4, 4), n_steps=3, **params).fit(images, coords, checkpoint_path=path, progress=False)
    resumed = ManifoldGAN.load(path).set_params(n_steps=7)
    resumed.fit(images, coords, resume=True, progress=False)
    expected, actual = _all_state(uninterrupted), _all_state(resumed)
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)
    assert resumed.history_ == uninterrupted.history_


@needs_ops
def test_keyboard_interrupt_saves_last_completed_step(tmp_path):
    from isogan.gan import ManifoldGAN

    images, coords = _tiny_data()
    path = tmp_path / "checkpoint.pt"

    def interrupt(model):
        if model.step_ == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ManifoldGAN(2, (1, 4, 4), n_steps=10, **TINY).fit(images, coords, checkpoint_path=path, progress=False,
                                                           callback=interrupt)
    assert ManifoldGAN.load(path).step_ == 2


@needs_ops
def test_corrupt_and_foreign_checkpoints(tmp_path):
    from isogan.gan import ManifoldGAN

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match="corrupt"):
        ManifoldGAN.load(corrupt)
    assert corrupt.read_bytes() == b"\x00garbage" * 10
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(ValueError, match="not a ManifoldGAN checkpoint"):
        ManifoldGAN.load(foreign)
    with pytest.raises(FileNotFoundError):
        ManifoldGAN.load(tmp_path / "absent.pt")
    # a truncated real checkpoint
    images, coords = _tiny_data()
    good = tmp_path / "good.pt"
    ManifoldGAN(2, (1, 4, 4), n_steps=1, **TINY).fit(images, coords, progress=False).save(good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="corrupt"):
        ManifoldGAN.load(truncated)


@needs_ops
def test_nan_loss_stops_naming_step_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    import isogan.ops
    from isogan.gan import ManifoldGAN, TrainingDiverged

    images, coords = _tiny_data()
    path = tmp_path / "checkpoint.pt"
    gan = ManifoldGAN(2, (1, 4, 4), n_steps=10, **TINY)
    real_gan_loss = isogan.ops.gan_loss

    def poisoned(logits, real):
        loss = real_gan_loss(logits, real)
        return loss * float("nan") if gan.step_ >= 4 else loss

    monkeypatch.setattr(isogan.ops, "gan_loss", poisoned)
    with pytest.raises(TrainingDiverged, match="step 5.*last good checkpoint"):
        gan.fit(images, coords, checkpoint_path=path, checkpoint_every=2, progress=False)
    monkeypatch.setattr(isogan.ops, "gan_loss", real_gan_loss)
    kept = ManifoldGAN.load(path)
    assert kept.step_ == 4
    assert all(torch.isfinite(p).all() for p in kept.generator_.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@needs_ops
def test_cuda_training_and_sampling():
    from isogan.gan import ManifoldGAN

    images, coords = _tiny_data()
    gan = ManifoldGAN(2, (1, 4, 4), n_steps=3, **dict(TINY, device="cuda")).fit(images, coords, progress=False)
    assert gan.device_.type == "cuda"
    samples = gan.sample(coords[:4], seed=0)
    assert samples.shape == (4, 1, 4, 4) and np.isfinite(samples).all()


# ---------------------------------------------------------------------------- commands
def test_commands_import_without_torch():
    code = (
        "import sys, isogan.cli, isogan.gan, isogan.cli.demo, isogan.cli.train, "
        "isogan.gan.datasets, isogan.gan.pipeline; assert 'torch' not in sys.modules, 'torch imported'"
    )
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([sys.executable, "-c", code], check=True, env=environment)


def test_train_rejects_unknown_dataset(tmp_path):
    from isogan import cli

    with pytest.raises(SystemExit, match="unknown dataset 'cifar'"):
        cli.main(["train", "--dataset", "cifar", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="nowhere"):
        cli.main(["train", "--dataset", "mnist", "--data-path", str(tmp_path / "nowhere"), "--out", str(tmp_path)])


@needs_ops
@needs_isomap
def test_demo_end_to_end_quick(tmp_path, capsys):
    from isogan import cli

    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--steps", "30", "--quiet"]) == 0
    for name in ("embedding.png", "samples.png", "traversal.png", "metrics.json", "checkpoint.pt", "embedding.npy"):
        assert (out / name).stat().st_size > 0, name
    results = json.loads((out / "metrics.json").read_text())
    for key in ("fd", "fd_real", "kid", "precision", "recall", "coord_error", "coord_error_shuffled"):
        assert np.isfinite(results[key]), key
    assert results["steps"] == 30 and "memorisation" in results
    assert '"coord_error"' in capsys.readouterr().out


@needs_ops
@needs_isomap
def test_train_resume_on_shapes(tmp_path):
    from isogan import cli
    from isogan.gan import ManifoldGAN

    out = str(tmp_path / "run")
    common = ["train", "--dataset", "shapes", "--n-samples", "120", "--out", out, "--quiet", "--batch-size", "34"]
    assert cli.main(common + ["--epochs", "1"]) == 0
    assert ManifoldGAN.load(os.path.join(out, "checkpoint.pt")).step_ == 3
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as stream:
        assert len(json.load(stream)["truth_r2"]) == 2
    assert cli.main(common + ["--epochs", "2", "--resume"]) == 0
    checkpoint = os.path.join(out, "checkpoint.pt")
    assert ManifoldGAN.load(checkpoint).step_ == 6
    with open(checkpoint, "r+b") as stream:  # damage the checkpoint
        stream.seek(100)
        stream.write(b"\xff" * 64)
    damaged = Path(checkpoint).read_bytes()
    with pytest.raises(SystemExit, match="checkpoint.pt"):
        cli.main(common + ["--epochs", "3", "--resume"])
    assert Path(checkpoint).read_bytes() == damaged


def test_demo_rejects_unusable_cuda(tmp_path):
    from isogan import cli

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is usable here")
    with pytest.raises(SystemExit, match="cuda"):
        cli.main(["demo", "--out", str(tmp_path), "--device", "cuda", "--steps", "1", "--quiet"])
