"""ManifoldGAN: draw images at chosen Isomap coordinates (needs torch: ``pip install isogan[gan]``).

:class:`ManifoldGAN` is imported lazily, so ``isogan.gan.datasets`` and the command modules can be
imported without torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ManifoldGAN", "TrainingDiverged"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from isogan.gan import model

        return getattr(model, name)
    raise AttributeError(f"module 'isogan.gan' has no attribute {name!r}")
