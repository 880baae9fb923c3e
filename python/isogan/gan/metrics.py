"""Sample-quality and conditioning metrics for ManifoldGAN, usable on their own.

Feature-space metrics (:func:`frechet_distance`, :func:`kernel_inception_distance`,
:func:`precision_recall`) take feature arrays; :class:`FeatureClassifier` is the small network
this project trains on the dataset itself to produce them (no downloaded weights).
:func:`coord_error` scores conditioning through a fitted Isomap's ``transform``;
:func:`memorisation_distances` compares nearest-training-image distances of samples and of
held-out real images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.distance import cdist


def _as_features(features: Any, name: str) -> np.ndarray:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 2:
        raise ValueError(f"Expected {name} of shape (n_samples >= 2, n_features), got {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError(f"Input {name} contain NaN or infinity.")
    return array


def _check_same_width(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"Feature sets have different widths: {a.shape[1]} and {b.shape[1]}.")


def frechet_distance(features_a: Any, features_b: Any) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula).

    ``||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^{1/2})``; the trace of the matrix square
    root is computed as the sum of square roots of the eigenvalues of
    ``S_a^{1/2} S_b S_a^{1/2}`` (symmetric, so no complex round-off).

    Parameters
    ----------
    features_a, features_b : array-like of shape (n_a, d) and (n_b, d)
        Feature vectors of the two sets.

    Returns
    -------
    float
        The distance (>= 0; ~0 for identical sets).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(500, 4))
    >>> round(frechet_distance(x, x), 6)
    0.0
    """
    a = _as_features(features_a, "features_a")
    b = _as_features(features_b, "features_b")
    _check_same_width(a, b)
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    eigenvalues_a, eigenvectors_a = np.linalg.eigh(cov_a)
    sqrt_a = (eigenvectors_a * np.sqrt(np.clip(eigenvalues_a, 0.0, None))) @ eigenvectors_a.T
    middle = sqrt_a @ cov_b @ sqrt_a
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    distance = float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)
    return max(distance, 0.0)


def kernel_inception_distance(
    features_a: Any, features_b: Any, n_subsets: int = 10, subset_size: int = 500, seed: int = 0
) -> float:
    """Kernel distance (KID): unbiased MMD^2 with the cubic polynomial kernel, averaged over subsets.

    ``k(x, y) = (x.y / d + 1)^3`` (Bińkowski et al., 2018).

    Parameters
    ----------
    features_a, features_b : array-like of shape (n_a, d) and (n_b, d)
        Feature vectors of the two sets.
    n_subsets : int, default=10
        Number of random subsets the estimate is averaged over.
    subset_size : int, default=500
        Size of each subset (capped at the smaller set size).
    seed : int, default=0
        Seed of the subset draw.

    Returns
    -------
    float
        The mean unbiased MMD^2 estimate (can be slightly negative for equal distributions).
    """
    a = _as_features(features_a, "features_a")
    b = _as_features(features_b, "features_b")
    _check_same_width(a, b)
    size = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(n_subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        estimates.append(mmd2_unbiased(x, y))
    return float(np.mean(estimates))


def mmd2_unbiased(x: Any, y: Any) -> float:
    """Unbiased MMD^2 between two equal-size sets with the cubic polynomial kernel.

    Parameters
    ----------
    x, y : array-like of shape (m, d)
        The two samples.

    Returns
    -------
    float
        ``mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j)``.
    """
    x = _as_features(x, "x")
    y = _as_features(y, "y")
    _check_same_width(x, y)
    if len(x) != len(y):
        raise ValueError(f"mmd2_unbiased needs equal-size samples, got {len(x)} and {len(y)}.")
    m, width = x.shape
    k_xx = (x @ x.T / width + 1.0) ** 3
    k_yy = (y @ y.T / width + 1.0) ** 3
    k_xy = (x @ y.T / width + 1.0) ** 3
    off_diagonal = m * (m - 1)
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / off_diagonal
    return float(within - 2.0 * k_xy.mean())


def _kth_neighbour_radii(features: np.ndarray, k: int) -> np.ndarray:
    distances = cdist(features, features)
    # column 0 of the sorted row is the point itself (distance 0)
    return np.partition(distances, k, axis=1)[:, k]


def precision_recall(real_features: Any, fake_features: Any, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019) with k-NN balls.

    Precision: fraction of generated samples inside at least one real sample's ball (radius =
    distance to its k-th nearest real neighbour). Recall: fraction of real samples inside at
    least one generated sample's ball.

    Parameters
    ----------
    real_features, fake_features : array-like of shape (n_real, d) and (n_fake, d)
        Feature vectors.
    k : int, default=3
        Neighbour rank defining the ball radii.

    Returns
    -------
    precision, recall : float
        Both in [0, 1]; identical sets give (1, 1).
    """
    real = _as_features(real_features, "real_features")
    fake = _as_features(fake_features, "fake_features")
    _check_same_width(real, fake)
    if not 1 <= k < min(len(real), len(fake)):
        raise ValueError(f"Expected 1 <= k < n_samples of each set, got k = {k}, sizes {len(real)} and {len(fake)}.")
    real_radii = _kth_neighbour_radii(real, k)
    fake_radii = _kth_neighbour_radii(fake, k)
    fake_to_real = cdist(fake, real)
    precision = float(np.mean((fake_to_real <= real_radii[None, :]).any(axis=1)))
    recall = float(np.mean((fake_to_real.T <= fake_radii[None, :]).any(axis=1)))
    return precision, recall


def embedding_spread(embedding: Any) -> float:
    """Root-mean-square distance of embedding points to their centroid.

    Parameters
    ----------
    embedding : array-like of shape (N, c)

    Returns
    -------
    float
    """
    points = _as_features(embedding, "embedding")
    return float(np.sqrt(np.mean(np.sum((points - points.mean(axis=0)) ** 2, axis=1))))


def coord_error(
    isomap: Any, images: Any, requested_coords: Any, embedding: Any, seed: int = 0
) -> tuple[float, float]:
    """How well generated images land at the coordinates they were asked for.

    Each image is mapped back with the fitted ``isomap.transform``; the error is the mean
    Euclidean distance to the requested coordinates divided by :func:`embedding_spread`. The
    shuffled error compares the same mapped points to a random permutation of the requested
    coordinates: the score of a generator that ignores its conditioning.

    Parameters
    ----------
    isomap : fitted estimator with ``transform``
        Isomap fitted on flattened training images (e.g. :class:`isogan.Isomap`).
    images : array-like of shape (N, C, H, W) or (N, C*H*W)
        Generated images.
    requested_coords : array-like of shape (N, c)
        The coordinates each image was generated at.
    embedding : array-like of shape (M, c)
        The training embedding (defines the spread).
    seed : int, default=0
        Seed of the permutation.

    Returns
    -------
    coord_error, coord_error_shuffled : float
    """
    requested = _as_features(requested_coords, "requested_coords")
    flat = np.asarray(images, dtype=np.float64).reshape(len(requested), -1)
    mapped = np.asarray(isomap.transform(flat), dtype=np.float64)
    if mapped.shape != requested.shape:
        raise ValueError(f"isomap.transform returned shape {mapped.shape}, expected {requested.shape}.")
    spread = embedding_spread(embedding)
    permutation = np.random.default_rng(seed).permutation(len(requested))
    error = np.linalg.norm(mapped - requested, axis=1).mean() / spread
    shuffled = np.linalg.norm(mapped - requested[permutation], axis=1).mean() / spread
    return float(error), float(shuffled)


def truth_r2(embedding: Any, true_coords: Any) -> list[float]:
    """How much of each known generating parameter the embedding recovers (linear R^2).

    Parameters
    ----------
    embedding : array-like of shape (N, c)
        Recovered coordinates (e.g. Isomap's).
    true_coords : array-like of shape (N, k)
        The parameters that generated each sample.

    Returns
    -------
    list of float
        For each true parameter, the R^2 of its least-squares fit from the embedding
        (1 = recovered up to an affine map, 0 = not at all).
    """
    points = _as_features(embedding, "embedding")
    truth = _as_features(true_coords, "true_coords")
    if len(points) != len(truth):
        raise ValueError(f"embedding has {len(points)} rows but true_coords has {len(truth)}.")
    design = np.column_stack([points, np.ones(len(points))])
    scores = []
    for column in truth.T:
        solution, *_ = np.linalg.lstsq(design, column, rcond=None)
        residual = np.sum((design @ solution - column) ** 2)
        total = np.sum((column - column.mean()) ** 2)
        scores.append(float(1.0 - residual / total) if total > 0 else 1.0)
    return scores


def memorisation_distances(train_images: Any, generated_images: Any, heldout_images: Any) -> dict[str, float]:
    """Nearest-training-image distances of generated samples versus held-out real images.

    A generator that copies its training set has generated-to-train distances far below the
    held-out-to-train distances; ``ratio`` (median generated / median held-out) near or above 1
    means no memorisation.

    Parameters
    ----------
    train_images, generated_images, heldout_images : array-like of shape (N, ...)
        Images (flattened internally); pixel-space Euclidean distances.

    Returns
    -------
    dict
        ``nn_generated_median``, ``nn_heldout_median`` and ``ratio``.
    """
    train = np.asarray(train_images, dtype=np.float64).reshape(len(train_images), -1)
    generated = np.asarray(generated_images, dtype=np.float64).reshape(len(generated_images), -1)
    heldout = np.asarray(heldout_images, dtype=np.float64).reshape(len(heldout_images), -1)
    nearest_generated = np.median(cdist(generated, train).min(axis=1))
    nearest_heldout = np.median(cdist(heldout, train).min(axis=1))
    return {
        "nn_generated_median": float(nearest_generated),
        "nn_heldout_median": float(nearest_heldout),
        "ratio": float(nearest_generated / nearest_heldout) if nearest_heldout > 0 else float("inf"),
    }


class FeatureClassifier:
    """Small classifier trained on the dataset; its penultimate layer gives the metric features.

    An MLP (two hidden layers, ReLU) trained with cross-entropy. It stands in for the
    Inception network of FID, which would need downloaded weights.

    Parameters
    ----------
    hidden : int, default=128
        Width of the hidden layers (the feature dimension is ``hidden // 2``).
    n_epochs : int, default=30
        Training epochs.
    seed : int, default=0
        Seed of the weights and the data order.
    """

    def __init__(self, hidden: int = 128, n_epochs: int = 30, seed: int = 0) -> None:
        self.hidden = hidden
        self.n_epochs = n_epochs
        self.seed = seed

    def fit(self, images: Any, labels: Any) -> FeatureClassifier:
        """Train on images (N, C, H, W) in [-1, 1] with integer labels (N,).

        Parameters
        ----------
        images : array-like of shape (N, C, H, W)
        labels : array-like of shape (N,)

        Returns
        -------
        FeatureClassifier
            self, with ``train_accuracy_`` set.
        """
        import torch
        from torch import nn

        x = torch.as_tensor(np.asarray(images, dtype=np.float32)).flatten(1)
        label_values, y_np = np.unique(np.asarray(labels), return_inverse=True)
        y = torch.as_tensor(y_np, dtype=torch.int64)
        generator = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.body_ = nn.Sequential(
                nn.Linear(x.shape[1], self.hidden), nn.ReLU(), nn.Linear(self.hidden, self.hidden // 2), nn.ReLU()
            )
            self.head_ = nn.Linear(self.hidden // 2, len(label_values))
        parameters = list(self.body_.parameters()) + list(self.head_.parameters())
        optimizer = torch.optim.Adam(parameters, lr=2e-3, weight_decay=1e-4)
        for _ in range(self.n_epochs):
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), 64):
                index = order[start : start + 64]
                # light pixel noise keeps features smooth for slightly-off generated images
                noisy = x[index] + 0.1 * torch.randn(len(index), x.shape[1], generator=generator)
                loss = nn.functional.cross_entropy(self.head_(self.body_(noisy)), y[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            self.train_accuracy_ = float((self.head_(self.body_(x)).argmax(1) == y).float().mean())
        return self

    def features(self, images: Any) -> np.ndarray:
        """Penultimate-layer features of images (N, C, H, W) -> (N, hidden // 2) float64.

        Parameters
        ----------
        images : array-like of shape (N, C, H, W)

        Returns
        -------
        ndarray of shape (N, hidden // 2)
        """
        import torch

        x = torch.as_tensor(np.asarray(images, dtype=np.float32)).flatten(1)
        with torch.no_grad():
            return self.body_(x).double().numpy()
