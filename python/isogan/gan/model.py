"""ManifoldGAN: a GAN that draws images at chosen Isomap coordinates."""

from __future__ import annotations

import copy
import math
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from isogan import ops
from isogan.gan.datasets import check_images
from isogan.gan.networks import Discriminator, Generator

CHECKPOINT_FORMAT = "isogan.ManifoldGAN"
CHECKPOINT_VERSION = 1
# step seeds are derived from (seed, step) so that any step can be replayed without stored RNG state
_STEP_SEED_STRIDE = 1_000_003


class TrainingDiverged(FloatingPointError):
    """Raised when a training loss becomes NaN or infinite; the message names the step."""


def resolve_torch_device(device: str) -> torch.device:
    """Map 'auto' | 'cpu' | 'cuda' to a torch device.

    Parameters
    ----------
    device : {'auto', 'cpu', 'cuda'}
        'auto' picks CUDA when torch sees a usable GPU.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If ``device`` is not one of the accepted strings.
    RuntimeError
        If 'cuda' is requested and torch sees no GPU.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"The 'device' parameter must be a str among {{'auto', 'cpu', 'cuda'}}. Got {device!r} instead.")
    if device == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if device == "cuda":
        raise RuntimeError("device='cuda' was requested but torch sees no usable CUDA device. Use device='cpu'.")
    return torch.device("cpu")


def default_file_mode() -> int:
    """Permissions of a new regular file under the current umask (mkstemp alone gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _atomic_torch_save(payload: dict[str, Any], path: str) -> None:
    """Write ``payload`` to ``path`` through a temporary file in the same directory and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=directory)
    try:
        os.chmod(temporary, default_file_mode())
        with os.fdopen(handle, "wb") as stream:
            torch.save(payload, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


class ManifoldGAN:
    """Generative adversarial network conditioned on continuous manifold (Isomap) coordinates.

    The generator ``G(coords, z)`` embeds the normalised coordinates with a small MLP and
    concatenates them with the noise ``z``; the discriminator is a projection discriminator
    whose projection vector is an MLP of the coordinates. Training uses the non-saturating
    logistic loss (:func:`isogan.ops.gan_loss`), an R1 penalty on real images, the fused Adam
    optimizer (:class:`isogan.ops.FusedAdam`) and an exponential moving average of the
    generator weights, which :meth:`sample` uses.

    Parameters
    ----------
    n_components : int
        Dimension of the coordinates the generator is conditioned on.
    image_shape : tuple of int
        ``(C, H, W)`` of the images.
    latent_dim : int, default=32
        Dimension of the noise ``z``.
    hidden : int, default=256
        Width of the hidden layers of both networks.
    n_layers : int, default=2
        Number of hidden layers of the generator body and of the discriminator features.
    coord_embed : int, default=64
        Width of the coordinate embeddings.
    n_steps : int, default=2000
        Total number of training steps (one discriminator and one generator update each).
    batch_size : int, default=128
        Images per step.
    lr : float, default=2e-3
        Learning rate of both optimizers.
    betas : tuple of float, default=(0.5, 0.99)
        Adam betas (DCGAN-style training).
    r1_gamma : float, default=0.1
        Weight of the R1 penalty ``gamma / 2 * E||grad_x D(x, c)||^2`` on real images.
    r1_interval : int, default=4
        Apply R1 every ``r1_interval`` steps (lazy regularisation, scaled accordingly).
    ema_decay : float, default=0.995
        Decay of the generator weight average (ramped up over the first steps).
    seed : int, default=0
        Seed of the initial weights and of every step's batch and noise.
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where to train.

    Attributes
    ----------
    coord_mean_, coord_scale_ : ndarray of shape (n_components,)
        Normalisation of the coordinates: the networks see ``(coords - mean) / scale``.
    step_ : int
        Training steps done.
    history_ : list of dict
        Losses logged every step: ``{'step', 'loss_d', 'loss_g', 'r1'}``.

    Examples
    --------
    >>> import numpy as np
    >>> from isogan.gan import ManifoldGAN
    >>> images = np.random.default_rng(0).uniform(-1, 1, (64, 1, 8, 8)).astype(np.float32)
    >>> coords = np.random.default_rng(1).normal(size=(64, 2))
    >>> gan = ManifoldGAN(2, (1, 8, 8), n_steps=2, batch_size=16, device="cpu").fit(images, coords, progress=False)
    >>> gan.sample(coords[:3], seed=0).shape
    (3, 1, 8, 8)
    """

    def __init__(
        self,
        n_components: int,
        image_shape: tuple[int, int, int],
        latent_dim: int = 32,
        hidden: int = 256,
        n_layers: int = 2,
        coord_embed: int = 64,
        n_steps: int = 2000,
        batch_size: int = 128,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.5, 0.99),
        r1_gamma: float = 0.1,
        r1_interval: int = 4,
        ema_decay: float = 0.995,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        self.n_components = n_components
        self.image_shape = image_shape
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.n_layers = n_layers
        self.coord_embed = coord_embed
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.lr = lr
        self.betas = betas
        self.r1_gamma = r1_gamma
        self.r1_interval = r1_interval
        self.ema_decay = ema_decay
        self.seed = seed
        self.device = device

    _PARAMS = (
        "n_components", "image_shape", "latent_dim", "hidden", "n_layers", "coord_embed", "n_steps",
        "batch_size", "lr", "betas", "r1_gamma", "r1_interval", "ema_decay", "seed", "device",
    )  # fmt: skip

    def get_params(self) -> dict[str, Any]:
        """Return the constructor parameters.

        Returns
        -------
        dict
            Parameter name -> value.
        """
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_params(self, **params: Any) -> ManifoldGAN:
        """Set constructor parameters (e.g. a larger ``n_steps`` before resuming).

        Parameters
        ----------
        **params
            Parameter name -> new value.

        Returns
        -------
        ManifoldGAN
            self.
        """
        for name, value in params.items():
            if name not in self._PARAMS:
                raise ValueError(f"Invalid parameter {name!r} for ManifoldGAN; valid ones are {', '.join(self._PARAMS)}.")
            setattr(self, name, value)
        return self

    # ------------------------------------------------------------------ validation and setup
    def _validate_params(self) -> None:
        positive_ints = ("n_components", "latent_dim", "hidden", "n_layers", "coord_embed", "batch_size", "r1_interval")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"The '{name}' parameter must be an int >= 1. Got {value!r} instead.")
        if not isinstance(self.n_steps, (int, np.integer)) or self.n_steps < 0:
            raise ValueError(f"The 'n_steps' parameter must be an int >= 0. Got {self.n_steps!r} instead.")
        shape = tuple(self.image_shape)
        if len(shape) != 3 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in shape):
            raise ValueError(f"The 'image_shape' parameter must be (channels, height, width). Got {self.image_shape!r}.")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"The 'lr' parameter must be a finite float > 0. Got {self.lr!r} instead.")
        if not (0 <= self.ema_decay < 1):
            raise ValueError(f"The 'ema_decay' parameter must be in [0, 1). Got {self.ema_decay!r} instead.")
        if self.r1_gamma < 0:
            raise ValueError(f"The 'r1_gamma' parameter must be >= 0. Got {self.r1_gamma!r} instead.")

    def _build(self) -> None:
        self.device_ = resolve_torch_device(self.device)
        torch.manual_seed(self.seed)
        shape = tuple(int(s) for s in self.image_shape)
        self.generator_ = Generator(
            self.n_components, self.latent_dim, shape, self.hidden, self.coord_embed, self.n_layers
        ).to(self.device_)
        self.discriminator_ = Discriminator(
            self.n_components, shape, self.hidden, self.coord_embed, self.n_layers
        ).to(self.device_)
        self.generator_ema_ = copy.deepcopy(self.generator_).requires_grad_(False)
        betas = tuple(float(b) for b in self.betas)
        self.optimizer_g_ = ops.FusedAdam(self.generator_.parameters(), lr=self.lr, betas=betas, eps=1e-8, weight_decay=0.0)
        # lazy R1: the discriminator's betas and lr are adjusted so the penalty interval is transparent
        ratio = self.r1_interval / (self.r1_interval + 1)
        self.optimizer_d_ = ops.FusedAdam(
            self.discriminator_.parameters(),
            lr=self.lr * ratio,
            betas=(betas[0] ** ratio, betas[1] ** ratio),
            eps=1e-8,
            weight_decay=0.0,
        )
        self.step_ = 0
        self.history_: list[dict[str, float]] = []

    def _check_coords(self, coords: Any, n_expected: int | None = None) -> np.ndarray:
        array = np.asarray(coords, dtype=np.float64)
        if array.ndim == 1 and self.n_components == 1:
            array = array[:, None]
        if array.ndim != 2 or array.shape[1] != self.n_components:
            raise ValueError(f"Expected coords of shape (n_samples, {self.n_components}), got {array.shape}.")
        if n_expected is not None and array.shape[0] != n_expected:
            raise ValueError(f"Found {n_expected} images but {array.shape[0]} coordinate rows; they must match.")
        if not np.isfinite(array).all():
            raise ValueError("Input coords contain NaN or infinity.")
        return array

    def _normalise(self, coords: np.ndarray) -> torch.Tensor:
        normalised = (coords - self.coord_mean_) / self.coord_scale_
        return torch.as_tensor(normalised, dtype=torch.float32, device=self.device_)

    def _is_fitted(self) -> bool:
        return hasattr(self, "generator_ema_")

    # ------------------------------------------------------------------ training
    def fit(
        self,
        images: Any,
        coords: Any,
        *,
        resume: bool = False,
        checkpoint_path: str | os.PathLike | None = None,
        checkpoint_every: int = 500,
        progress: bool = True,
        callback: Callable[[ManifoldGAN], None] | None = None,
    ) -> ManifoldGAN:
        """Train on images paired with their manifold coordinates until ``step_ == n_steps``.

        Parameters
        ----------
        images : array-like of shape (N, C, H, W)
            Training images in [-1, 1].
        coords : array-like of shape (N, n_components)
            The coordinates of each image (e.g. ``Isomap().fit_transform``).
        resume : bool, default=False
            Continue from the current state (after :meth:`load`) instead of starting afresh;
            the result equals an uninterrupted run on the CPU.
        checkpoint_path : str or path-like, optional
            Where to save a checkpoint every ``checkpoint_every`` steps and at the end
            (atomically: a half-written file never replaces a good one).
        checkpoint_every : int, default=500
            Steps between checkpoints.
        progress : bool, default=True
            Show a tqdm progress bar with the losses.
        callback : callable, optional
            Called with the model after every step.

        Returns
        -------
        ManifoldGAN
            self.

        Raises
        ------
        TrainingDiverged
            If a loss becomes NaN or infinite; the message names the step, and the checkpoint
            at ``checkpoint_path`` (if any) still holds the last good state.
        KeyboardInterrupt
            Re-raised after saving a checkpoint of the last completed step.
        """
        self._validate_params()
        if not isinstance(checkpoint_every, (int, np.integer)) or checkpoint_every < 1:
            raise ValueError(f"The 'checkpoint_every' parameter must be an int >= 1. Got {checkpoint_every!r} instead.")
        images_np = check_images(images)
        if tuple(images_np.shape[1:]) != tuple(int(s) for s in self.image_shape):
            raise ValueError(
                f"Images have shape {tuple(images_np.shape[1:])} per sample but the model was built for "
                f"image_shape={tuple(self.image_shape)}."
            )
        coords_np = self._check_coords(coords, n_expected=len(images_np))
        if resume and self._is_fitted():
            if self.step_ > self.n_steps:
                raise ValueError(f"Cannot resume: the checkpoint is at step {self.step_} > n_steps={self.n_steps}.")
        else:
            self._build()
            self.coord_mean_ = coords_np.mean(axis=0)
            spread = coords_np.std(axis=0)
            self.coord_scale_ = np.where(spread > 0, spread, 1.0)
        image_tensor = torch.as_tensor(images_np, device=self.device_)
        coord_tensor = self._normalise(coords_np)
        checkpoint_path = None if checkpoint_path is None else os.fspath(checkpoint_path)

        from tqdm.auto import tqdm

        bar = tqdm(total=self.n_steps, initial=self.step_, disable=not progress, desc="ManifoldGAN", unit="step")
        try:
            while self.step_ < self.n_steps:
                losses = self._train_step(image_tensor, coord_tensor)
                if not all(math.isfinite(value) for value in losses.values()):
                    where = (
                        f"; the last good checkpoint is kept at {checkpoint_path!r}" if checkpoint_path else ""
                    )
                    raise TrainingDiverged(
                        f"Training diverged at step {self.step_ + 1}: losses {losses}{where}. "
                        "Lower the learning rate or raise r1_gamma."
                    )
                self.step_ += 1
                self.history_.append({"step": float(self.step_), **losses})
                bar.update(1)
                bar.set_postfix(loss_d=f"{losses['loss_d']:.3f}", loss_g=f"{losses['loss_g']:.3f}", refresh=False)
                if callback is not None:
                    callback(self)
                if checkpoint_path and (self.step_ % checkpoint_every == 0 or self.step_ == self.n_steps):
                    self.save(checkpoint_path)
        except KeyboardInterrupt:
            if checkpoint_path:
                self.save(checkpoint_path)
            raise
        finally:
            bar.close()
        return self

    def _step_generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * _STEP_SEED_STRIDE + self.step_ + 1)

    def _train_step(self, images: torch.Tensor, coords: torch.Tensor) -> dict[str, float]:
        """One discriminator and one generator update; returns the losses as floats."""
        generator = self._step_generator()
        n_samples = images.shape[0]
        batch = self.batch_size
        real_index = torch.randint(n_samples, (batch,), generator=generator).to(self.device_)
        fake_index = torch.randint(n_samples, (batch,), generator=generator).to(self.device_)
        z_d = torch.randn(batch, self.latent_dim, generator=generator).to(self.device_)
        z_g = torch.randn(batch, self.latent_dim, generator=generator).to(self.device_)
        real_images, real_coords = images[real_index], coords[real_index]
        fake_coords = coords[fake_index]

        # discriminator
        self.discriminator_.requires_grad_(True)
        with torch.no_grad():
            fake_images = self.generator_(fake_coords, z_d)
        apply_r1 = self.r1_gamma > 0 and self.step_ % self.r1_interval == 0
        if apply_r1:
            real_images = real_images.detach().requires_grad_(True)
        # one discriminator pass over real and fake halves: half the per-op overhead of two passes
        logits = self.discriminator_(torch.cat([real_images, fake_images]), torch.cat([real_coords, fake_coords]))
        real_logits, fake_logits = logits[:batch], logits[batch:]
        loss_d = ops.gan_loss(real_logits, True) + ops.gan_loss(fake_logits, False)
        total_d = loss_d
        r1_value = 0.0
        if apply_r1:
            (gradient,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
            r1 = gradient.square().flatten(1).sum(dim=1).mean()
            total_d = total_d + r1 * (self.r1_gamma / 2 * self.r1_interval)
            r1_value = float(r1.detach())
        self.optimizer_d_.zero_grad(set_to_none=True)
        total_d.backward()
        self.optimizer_d_.step()

        # generator
        self.discriminator_.requires_grad_(False)
        generated = self.generator_(fake_coords, z_g)
        loss_g = ops.gan_loss(self.discriminator_(generated, fake_coords), True)
        self.optimizer_g_.zero_grad(set_to_none=True)
        loss_g.backward()
        self.optimizer_g_.step()
        self.discriminator_.requires_grad_(True)

        # EMA of generator weights, ramped so early steps are not averaged with the random init
        decay = min(self.ema_decay, (1.0 + self.step_) / (10.0 + self.step_))
        with torch.no_grad():
            torch._foreach_lerp_(list(self.generator_ema_.parameters()), list(self.generator_.parameters()), 1.0 - decay)
        return {"loss_d": float(loss_d.detach()), "loss_g": float(loss_g.detach()), "r1": r1_value}

    # ------------------------------------------------------------------ generation
    def _check_fitted(self) -> None:
        if not self._is_fitted():
            raise RuntimeError("This ManifoldGAN instance is not fitted yet. Call 'fit' or 'load' first.")

    def sample(self, coords: Any, z: Any = None, seed: int | None = None, batch_size: int = 1024) -> np.ndarray:
        """Draw one image per requested coordinate row with the averaged generator.

        Parameters
        ----------
        coords : array-like of shape (N, n_components)
            Coordinates in the units of the training coordinates.
        z : array-like of shape (N, latent_dim), optional
            Noise; drawn from N(0, I) with ``seed`` when omitted.
        seed : int, optional
            Seed of the noise; the same seed gives the same images.
        batch_size : int, default=1024
            Images generated per forward pass.

        Returns
        -------
        ndarray of shape (N, C, H, W), float32
            Images clipped to [-1, 1].
        """
        self._check_fitted()
        coords_np = self._check_coords(coords)
        n_samples = len(coords_np)
        if z is None:
            generator = torch.Generator()
            if seed is None:
                generator.seed()
            else:
                generator.manual_seed(int(seed))
            z_tensor = torch.randn(n_samples, self.latent_dim, generator=generator)
        else:
            z_tensor = torch.as_tensor(np.asarray(z, dtype=np.float32))
            if z_tensor.shape != (n_samples, self.latent_dim):
                raise ValueError(f"Expected z of shape ({n_samples}, {self.latent_dim}), got {tuple(z_tensor.shape)}.")
        coord_tensor = self._normalise(coords_np)
        outputs = []
        with torch.no_grad():
            for start in range(0, n_samples, batch_size):
                stop = start + batch_size
                images = self.generator_ema_(coord_tensor[start:stop], z_tensor[start:stop].to(self.device_))
                outputs.append(images.clamp(-1, 1).cpu().numpy())
        if not outputs:
            return np.empty((0, *tuple(self.image_shape)), dtype=np.float32)
        return np.concatenate(outputs).astype(np.float32, copy=False)

    def traverse(self, start: Any, end: Any, steps: int = 8, seed: int | None = 0) -> np.ndarray:
        """Images along the straight line from ``start`` to ``end`` in coordinate space, one fixed z.

        Parameters
        ----------
        start, end : array-like of shape (n_components,)
            End points of the walk.
        steps : int, default=8
            Number of images (both ends included).
        seed : int, optional
            Seed of the single noise vector shared by all images.

        Returns
        -------
        ndarray of shape (steps, C, H, W), float32
        """
        if steps < 2:
            raise ValueError(f"The 'steps' parameter must be >= 2. Got {steps!r} instead.")
        start_np = np.asarray(start, dtype=np.float64).reshape(1, -1)
        end_np = np.asarray(end, dtype=np.float64).reshape(1, -1)
        fractions = np.linspace(0.0, 1.0, steps)[:, None]
        path = start_np + fractions * (end_np - start_np)
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
        z = torch.randn(1, self.latent_dim, generator=generator).repeat(steps, 1)
        return self.sample(path, z=z.numpy())

    # ------------------------------------------------------------------ persistence
    def _state(self) -> dict[str, Any]:
        params = self.get_params()
        params["image_shape"] = [int(s) for s in self.image_shape]
        params["betas"] = [float(b) for b in self.betas]
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "params": params,
            "coord_mean": torch.as_tensor(self.coord_mean_, dtype=torch.float64),
            "coord_scale": torch.as_tensor(self.coord_scale_, dtype=torch.float64),
            "step": int(self.step_),
            "history": [dict(entry) for entry in self.history_],
            "generator": self.generator_.state_dict(),
            "generator_ema": self.generator_ema_.state_dict(),
            "discriminator": self.discriminator_.state_dict(),
            "optimizer_g": self.optimizer_g_.state_dict(),
            "optimizer_d": self.optimizer_d_.state_dict(),
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write a checkpoint atomically (temporary file in the same directory, then rename).

        Parameters
        ----------
        path : str or path-like
            Destination file.
        """
        self._check_fitted()
        _atomic_torch_save(self._state(), os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> ManifoldGAN:
        """Load a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``).

        Parameters
        ----------
        path : str or path-like
            Checkpoint file.
        device : {'auto', 'cpu', 'cuda'}, optional
            Override the device stored in the checkpoint.

        Returns
        -------
        ManifoldGAN
            The model with its networks, optimizer states, normalisation and step restored.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file is corrupt or is not a ManifoldGAN checkpoint.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Checkpoint {path!r} does not exist.")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
            raise ValueError(f"Checkpoint {path!r} is corrupt or not a torch checkpoint: {error}") from error
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"File {path!r} is not a ManifoldGAN checkpoint (no '{CHECKPOINT_FORMAT}' format tag).")
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(
                f"Checkpoint {path!r} has version {state.get('version')!r}; this isogan reads version {CHECKPOINT_VERSION}."
            )
        try:
            params = dict(state["params"])
            params["image_shape"] = tuple(params["image_shape"])
            params["betas"] = tuple(params["betas"])
            if device is not None:
                params["device"] = device
            model = cls(**params)
            model._validate_params()
            model._build()
            model.coord_mean_ = state["coord_mean"].numpy()
            model.coord_scale_ = state["coord_scale"].numpy()
            model.step_ = int(state["step"])
            model.history_ = [dict(entry) for entry in state["history"]]
            model.generator_.load_state_dict(state["generator"])
            model.generator_ema_.load_state_dict(state["generator_ema"])
            model.discriminator_.load_state_dict(state["discriminator"])
            model.optimizer_g_.load_state_dict(state["optimizer_g"])
            model.optimizer_d_.load_state_dict(state["optimizer_d"])
        except (KeyError, TypeError, RuntimeError, ValueError) as error:
            raise ValueError(f"Checkpoint {path!r} is damaged or from an incompatible version: {error}") from error
        return model
