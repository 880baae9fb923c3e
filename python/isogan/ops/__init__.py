"""Fused GAN training ops, registered as PyTorch custom ops (``torch.ops.isogan.*``).

- :func:`bias_act`: bias + activation + gain + clamp in one pass, differentiable twice
  (``torch.ops.isogan.bias_act`` / ``bias_act_grad``).
- :func:`gan_loss`: the non-saturating logistic GAN loss, forward and backward fused
  (``torch.ops.isogan.gan_loss`` / ``gan_loss_grad``).
- :class:`FusedAdam`: ``torch.optim.Adam`` with a multi-tensor step (``torch.ops.isogan.adam_step_``).

The kernels are the native CPU (C++/OpenMP) and CUDA kernels of :mod:`isogan._core`, prebuilt
(no JIT compilation); the ops work under autograd, ``torch.compile`` and
``torch.library.opcheck``. Each op also has a plain-PyTorch reference path (``impl='ref'``),
the oracle of its tests. Importing this module imports torch; ``import isogan`` does not.
"""

from isogan.ops._adam import FusedAdam
from isogan.ops._bias_act import ACTIVATIONS, bias_act, reference_derivative
from isogan.ops._gan_loss import gan_loss
from isogan.ops._native import native_built, native_supports

__all__ = ["ACTIVATIONS", "FusedAdam", "bias_act", "gan_loss", "native_built", "native_supports", "reference_derivative"]
