"""Generator and projection discriminator of ManifoldGAN.

Every affine layer is a bias-free ``Linear`` followed by :func:`isogan.ops.bias_act`, which adds
the bias and applies the activation in one fused op (with the second-order gradient the R1
penalty needs).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from isogan.ops import bias_act


class FusedLinear(nn.Module):
    """``y = act(x @ W.T + b) * gain`` with the bias and activation fused by ``bias_act``.

    Parameters
    ----------
    in_features, out_features : int
        Layer sizes.
    activation : str
        Activation name understood by ``bias_act`` ('linear', 'lrelu', ...).
    """

    def __init__(self, in_features: int, out_features: int, activation: str = "linear") -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.activation = activation
        # He-style init matched to bias_act's default gain (sqrt(2) for lrelu, 1 for linear)
        nn.init.normal_(self.weight, std=1.0 / math.sqrt(in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer to ``x`` of shape (batch, in_features)."""
        return bias_act(x.matmul(self.weight.t()), self.bias, dim=1, act=self.activation)


def _mlp(widths: list[int], last_activation: str) -> nn.Sequential:
    layers = []
    for index in range(len(widths) - 1):
        is_last = index == len(widths) - 2
        layers.append(FusedLinear(widths[index], widths[index + 1], last_activation if is_last else "lrelu"))
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """G(coords, z): an MLP on [embed(coords), z] that outputs an image.

    Parameters
    ----------
    n_components : int
        Dimension of the (normalised) manifold coordinates.
    latent_dim : int
        Dimension of the noise ``z``.
    image_shape : tuple of int
        ``(C, H, W)`` of the output.
    hidden : int
        Width of the hidden layers.
    coord_embed : int
        Width of the coordinate embedding.
    n_layers : int
        Number of hidden layers of the image MLP.
    """

    def __init__(
        self,
        n_components: int,
        latent_dim: int,
        image_shape: tuple[int, int, int],
        hidden: int,
        coord_embed: int,
        n_layers: int,
    ) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        n_pixels = int(math.prod(image_shape))
        self.embed = _mlp([n_components, coord_embed, coord_embed], "lrelu")
        self.body = _mlp([coord_embed + latent_dim] + [hidden] * n_layers + [n_pixels], "linear")

    def forward(self, coords: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Map coords (batch, n_components) and z (batch, latent_dim) to images (batch, C, H, W)."""
        features = torch.cat([self.embed(coords), z], dim=1)
        return self.body(features).reshape(-1, *self.image_shape)


class Discriminator(nn.Module):
    """Projection discriminator D(x, c) = psi(phi(x)) + <xi(c), phi(x)> (Miyato & Koyama, 2018).

    The class embedding of the projection discriminator becomes an MLP ``xi`` of the continuous
    coordinates.

    Parameters
    ----------
    n_components : int
        Dimension of the normalised coordinates.
    image_shape : tuple of int
        ``(C, H, W)`` of the input.
    hidden : int
        Width of the hidden layers (and of ``phi(x)``).
    coord_embed : int
        Width of the hidden layer of ``xi``.
    n_layers : int
        Number of hidden layers of ``phi``.
    """

    def __init__(
        self, n_components: int, image_shape: tuple[int, int, int], hidden: int, coord_embed: int, n_layers: int
    ) -> None:
        super().__init__()
        n_pixels = int(math.prod(image_shape))
        self.features = _mlp([n_pixels] + [hidden] * n_layers, "lrelu")
        self.head = FusedLinear(hidden, 1, "linear")
        self.projection = _mlp([n_components, coord_embed, hidden], "linear")

    def forward(self, images: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Return one logit per image: images (batch, C, H, W), coords (batch, n_components) -> (batch,)."""
        features = self.features(images.flatten(1))
        projected = (self.projection(coords) * features).sum(dim=1) / math.sqrt(features.shape[1])
        return self.head(features).squeeze(1) + projected
