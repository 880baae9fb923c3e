"""Embed -> train -> evaluate -> draw: the pipeline behind ``isogan demo`` and ``isogan train``.

Thread policy: the networks are small MLPs, for which intra-op threading costs more than it
gains (and on a shared machine, spinning OpenMP threads slow everyone down), so training runs
with ``torch.set_num_threads(threads)``, default 1. With a fixed seed and thread count the run
is reproducible on the CPU: every step draws its batch and noise from a generator seeded with
(seed, step), and initial weights from ``torch.manual_seed(seed)``, so given the same coordinates
the GAN's weights are identical bit for bit. (The Isomap embedding has been seen to differ between
runs by ~1e-13, below the float32 resolution the networks see; the metrics that go through
``Isomap.transform`` can then differ in their last digit.)
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from isogan.gan.datasets import ImageDataset, load_dataset

CHECKPOINT_NAME = "checkpoint.pt"
# ManifoldGAN's default batch size (kept here so this module imports without torch)
DEFAULT_BATCH_SIZE = 128


@dataclass
class PipelineConfig:
    """Settings of one pipeline run.

    Attributes
    ----------
    out : str
        Output directory.
    dataset : str
        Dataset name (see :func:`isogan.gan.datasets.load_dataset`).
    data_path : str or None
        Local path for 'mnist' / 'folder'.
    n_samples : int or None
        Limit on the number of images.
    seed : int
        Seed of the split, the embedding's consumers, the GAN and the metrics.
    device : str
        'auto', 'cpu' or 'cuda' for the GAN.
    n_steps : int
        GAN training steps.
    n_epochs : float or None
        When set, overrides ``n_steps``: passes over the training images.
    n_neighbors, n_components : int
        Isomap settings.
    heldout_fraction : float
        Share of images kept out of training (memorisation check).
    threads : int
        ``torch.set_num_threads`` value.
    resume : bool
        Continue from ``out/checkpoint.pt`` when it exists.
    progress : bool
        Show tqdm bars.
    gan_params : dict
        Extra :class:`ManifoldGAN` constructor parameters.
    n_eval : int
        Number of generated images scored by the metrics.
    """

    out: str
    dataset: str = "digits"
    data_path: str | None = None
    n_samples: int | None = None
    seed: int = 0
    device: str = "auto"
    n_steps: int = 2000
    n_epochs: float | None = None
    n_neighbors: int = 10
    n_components: int = 2
    heldout_fraction: float = 0.15
    threads: int = 1
    resume: bool = False
    progress: bool = True
    gan_params: dict[str, Any] = field(default_factory=dict)
    n_eval: int = 1500


def _write_json_atomic(payload: dict[str, Any], path: str) -> None:
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=os.path.dirname(path))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(payload, stream, indent=2, sort_keys=True)
        stream.write("\n")
    os.replace(temporary, path)


def _pseudo_labels(embedding: np.ndarray, seed: int) -> np.ndarray:
    """Cluster labels of the embedding, for datasets without classes (trains the metric classifier)."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=10, n_init=3, random_state=seed).fit_predict(embedding)


def run_pipeline(config: PipelineConfig, log: Any = print) -> dict[str, Any]:
    """Run the full pipeline and write pictures, metrics and a checkpoint under ``config.out``.

    Parameters
    ----------
    config : PipelineConfig
        What to run.
    log : callable, default=print
        Receives one-line progress messages.

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.
    """
    started, started_cpu = time.perf_counter(), time.process_time()
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    # the data is checked before torch is imported, so a wrong path fails fast
    dataset: ImageDataset = load_dataset(config.dataset, config.data_path, config.n_samples)

    import torch

    import isogan
    from isogan.gan import metrics, plots
    from isogan.gan.model import ManifoldGAN, resolve_torch_device

    torch.set_num_threads(max(1, int(config.threads)))
    resolve_torch_device(config.device)
    os.makedirs(config.out, exist_ok=True)
    checkpoint_path = os.path.join(config.out, CHECKPOINT_NAME)
    # a resumed checkpoint is read before any long work, so a corrupt one fails fast (and stays untouched)
    resumed = ManifoldGAN.load(checkpoint_path, device=config.device) if config.resume and os.path.isfile(
        checkpoint_path
    ) else None
    order = np.random.default_rng(config.seed).permutation(len(dataset.images))
    n_heldout = max(2, int(round(config.heldout_fraction * len(order))))
    heldout_index, train_index = np.sort(order[:n_heldout]), np.sort(order[n_heldout:])
    train_images, heldout_images = dataset.images[train_index], dataset.images[heldout_index]
    log(f"dataset {dataset.name}: {len(train_images)} training and {len(heldout_images)} held-out images "
        f"of shape {dataset.image_shape}")

    isomap = isogan.Isomap(n_neighbors=config.n_neighbors, n_components=config.n_components)
    embedding = np.asarray(isomap.fit_transform(train_images.reshape(len(train_images), -1).astype(np.float64)))
    timings["isomap_s"] = time.perf_counter() - clock
    np.save(os.path.join(config.out, "embedding.npy"), embedding)
    log(f"Isomap embedding {embedding.shape} in {timings['isomap_s']:.1f} s")

    train_labels = None if dataset.labels is None else dataset.labels[train_index]
    clock = time.perf_counter()
    classifier_labels = train_labels if train_labels is not None else _pseudo_labels(embedding, config.seed)
    classifier = metrics.FeatureClassifier(seed=config.seed).fit(train_images, classifier_labels)
    timings["classifier_s"] = time.perf_counter() - clock
    log(f"feature classifier: train accuracy {classifier.train_accuracy_:.3f} in {timings['classifier_s']:.1f} s")

    clock = time.perf_counter()
    image_shape = dataset.image_shape
    n_steps = config.n_steps
    if config.n_epochs is not None:
        batch_size = int(config.gan_params.get("batch_size", DEFAULT_BATCH_SIZE))
        n_steps = max(1, math.ceil(config.n_epochs * len(train_images) / batch_size))
    if resumed is not None:
        gan = resumed
        if tuple(gan.image_shape) != image_shape or gan.n_components != config.n_components:
            raise ValueError(
                f"Checkpoint {checkpoint_path!r} was trained on images {tuple(gan.image_shape)} with "
                f"{gan.n_components} coordinates; this run has {image_shape} and {config.n_components}."
            )
        gan.set_params(n_steps=max(n_steps, gan.step_))
        log(f"resuming from {checkpoint_path} at step {gan.step_}")
    else:
        gan = ManifoldGAN(
            config.n_components, image_shape, n_steps=n_steps, seed=config.seed, device=config.device,
            **config.gan_params,
        )
    gan.fit(train_images, embedding, resume=config.resume, checkpoint_path=checkpoint_path, progress=config.progress)
    timings["train_s"] = time.perf_counter() - clock
    log(f"trained {gan.step_} steps in {timings['train_s']:.1f} s")

    clock = time.perf_counter()
    rng = np.random.default_rng(config.seed + 1)
    eval_index = rng.choice(len(train_images), size=min(config.n_eval, len(train_images)), replace=False)
    requested = embedding[eval_index]
    generated = gan.sample(requested, seed=config.seed + 2)
    real_features = classifier.features(train_images)
    fake_features = classifier.features(generated)
    half = len(real_features) // 2
    halves = rng.permutation(len(real_features))
    precision, recall = metrics.precision_recall(real_features[eval_index], fake_features, k=3)
    error, error_shuffled = metrics.coord_error(isomap, generated, requested, embedding, seed=config.seed)
    memorisation = metrics.memorisation_distances(train_images, generated[: len(heldout_images)], heldout_images)
    results: dict[str, Any] = {
        "fd": metrics.frechet_distance(real_features, fake_features),
        "fd_real": metrics.frechet_distance(real_features[halves[:half]], real_features[halves[half:]]),
        "kid": metrics.kernel_inception_distance(real_features, fake_features, seed=config.seed),
        "precision": precision,
        "recall": recall,
        "coord_error": error,
        "coord_error_shuffled": error_shuffled,
        "memorisation": memorisation,
        "classifier_train_accuracy": classifier.train_accuracy_,
        "dataset": dataset.name,
        "n_train": int(len(train_images)),
        "n_generated": int(len(generated)),
        "steps": int(gan.step_),
        "seed": int(config.seed),
        "threads": int(torch.get_num_threads()),
        "device": str(gan.device_),
    }
    if dataset.true_coords is not None:
        results["truth_r2"] = metrics.truth_r2(embedding, dataset.true_coords[train_index])
    timings["evaluate_s"] = time.perf_counter() - clock

    clock = time.perf_counter()
    plots.plot_embedding(embedding, train_labels, os.path.join(config.out, "embedding.png"),
                         f"isogan.Isomap of {dataset.name} (n_neighbors={config.n_neighbors})")
    rows = plots.grid_coordinates(embedding, 8)
    n_columns = 10
    grid = gan.sample(np.repeat(rows, n_columns, axis=0), seed=config.seed + 3)
    plots.plot_sample_grid(grid.reshape(len(rows), n_columns, *image_shape), rows,
                           os.path.join(config.out, "samples.png"),
                           "ManifoldGAN samples: each row at one requested coordinate")
    walks, labels = [], []
    for walk_seed in range(2):
        for start, end, label in plots.axis_walks(embedding):
            walks.append(gan.traverse(start, end, steps=12, seed=config.seed + 10 + walk_seed))
            labels.append(f"{label}\nz #{walk_seed + 1}")
    plots.plot_traversals(walks, labels, os.path.join(config.out, "traversal.png"),
                          "Walking along each embedding axis (fixed z per row)")
    timings["pictures_s"] = time.perf_counter() - clock
    timings["total_s"] = time.perf_counter() - started
    # CPU seconds of this process: on a shared machine, wall time also counts other people's work
    timings["total_cpu_s"] = time.process_time() - started_cpu
    results["timings"] = {name: round(value, 2) for name, value in timings.items()}
    _write_json_atomic(results, os.path.join(config.out, "metrics.json"))
    return results
