"""The non-saturating logistic GAN loss, forward and backward fused.

``isogan::gan_loss(logits, real) -> loss`` (0-d) is ``mean(softplus(-l))`` for real samples and
``mean(softplus(l))`` for fake ones, summed in double precision in one pass.
``isogan::gan_loss_grad(grad, logits, real) -> g`` is its gradient ``grad * (-sigmoid(-l)) / n``
(real) or ``grad * sigmoid(l) / n`` (fake), one pass. The gradient of ``gan_loss_grad`` itself
(second order, rarely needed) is computed with plain PyTorch. In plain eager mode the ops'
``torch.autograd.Function`` twins run the same kernels without the custom-op dispatcher hop.
"""

from __future__ import annotations

import torch

from isogan import _core
from isogan.ops import _native

_IMPLS = ("auto", "native", "ref")


def _signed(logits: torch.Tensor, real: bool) -> torch.Tensor:
    return -logits if real else logits


def _reference_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    # logaddexp(t, 0) = log(1 + e^t), stable for any |t| and without softplus's cut-off at t > 20.
    t = _signed(logits, real)
    return torch.logaddexp(t, torch.zeros_like(t)).mean()


def _reference_gradient(grad: torch.Tensor, logits: torch.Tensor, real: bool) -> torch.Tensor:
    sign = -1.0 if real else 1.0
    return grad * (sign / logits.numel()) * torch.sigmoid(_signed(logits, real))


def _run_native(grad: torch.Tensor | None, logits: torch.Tensor, real: bool) -> torch.Tensor:
    logits = logits.contiguous()
    if grad is None:
        out = torch.empty((), dtype=logits.dtype, device=logits.device)
    else:
        out = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)
        # The kernel dereferences the 0-d upstream gradient on the logits' device; torch lets a 0-d
        # CPU tensor accompany CUDA tensors, so move it there (a no-op in the usual case).
        grad = grad.to(device=logits.device, dtype=logits.dtype).contiguous()
    args = (_native.address(logits), _native.address(grad), _native.address(out), logits.numel(),
            logits.dtype, bool(real))  # fmt: skip
    if logits.device.type == "cuda":
        # Per-block partial sums of the forward, reduced in a fixed order (deterministic).
        partials = torch.empty(_core.ops_gan_loss_cuda_partials(), dtype=torch.float64, device=logits.device)
        _core.ops_gan_loss_cuda(*args, _native.address(partials), logits.device.index,
                                _native.cuda_stream(logits.device))  # fmt: skip
    else:
        _core.ops_gan_loss_cpu(*args)
    return out


def _loss_kernel(logits: torch.Tensor, real: bool) -> torch.Tensor:
    if _native.native_supports(logits.device, logits.dtype):
        return _run_native(None, logits, real)
    return _reference_loss(logits, real)


def _gradient_kernel(grad: torch.Tensor, logits: torch.Tensor, real: bool) -> torch.Tensor:
    if _native.native_supports(logits.device, logits.dtype):
        return _run_native(grad, logits, real)
    return _reference_gradient(grad, logits, real).clone(memory_format=torch.contiguous_format)


@torch.library.custom_op("isogan::gan_loss", mutates_args=())
def _gan_loss_op(logits: torch.Tensor, real: bool) -> torch.Tensor:
    return _loss_kernel(logits, real)


@_gan_loss_op.register_fake
def _(logits, real):
    return torch.empty((), dtype=logits.dtype, device=logits.device)


@torch.library.custom_op("isogan::gan_loss_grad", mutates_args=())
def _gan_loss_grad_op(grad: torch.Tensor, logits: torch.Tensor, real: bool) -> torch.Tensor:
    return _gradient_kernel(grad, logits, real)


@_gan_loss_grad_op.register_fake
def _(grad, logits, real):
    return torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)


def _gan_loss_setup_context(ctx, inputs, output):
    logits, real = inputs
    ctx.save_for_backward(logits)
    ctx.real = real


def _gan_loss_backward(ctx, grad_loss):
    (logits,) = ctx.saved_tensors
    return _gradient(grad_loss, logits, ctx.real), None


_gan_loss_op.register_autograd(_gan_loss_backward, setup_context=_gan_loss_setup_context)


def _gan_loss_grad_setup_context(ctx, inputs, output):
    grad, logits, real = inputs
    ctx.save_for_backward(grad, logits)
    ctx.real = real


def _gan_loss_grad_backward(ctx, grad_out):
    # out = grad * sign * sigmoid(t) / n with t = sign * l: d out/d grad = sign * sigmoid(t) / n and
    # d out/d l = grad * sigmoid(t) * (1 - sigmoid(t)) / n.
    grad, logits, real = *ctx.saved_tensors, ctx.real
    grad_grad = grad_logits = None
    if ctx.needs_input_grad[0]:
        grad_grad = _reference_gradient(grad_out, logits, real).sum().reshape(grad.shape)
    if ctx.needs_input_grad[1]:
        s = torch.sigmoid(_signed(logits, real))
        grad_logits = grad_out * grad * s * (1.0 - s) / logits.numel()
    return grad_grad, grad_logits, None


_gan_loss_grad_op.register_autograd(_gan_loss_grad_backward, setup_context=_gan_loss_grad_setup_context)


class _GanLossFunction(torch.autograd.Function):
    """Eager twin of ``isogan::gan_loss``: same kernel and autograd formulas, no dispatcher hop."""

    @staticmethod
    def forward(logits, real):
        return _loss_kernel(logits, real)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _gan_loss_setup_context(ctx, inputs, output)

    @staticmethod
    def backward(ctx, grad_loss):
        return _gan_loss_backward(ctx, grad_loss)


class _GanLossGradFunction(torch.autograd.Function):
    """Eager twin of ``isogan::gan_loss_grad``."""

    @staticmethod
    def forward(grad, logits, real):
        return _gradient_kernel(grad, logits, real)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _gan_loss_grad_setup_context(ctx, inputs, output)

    @staticmethod
    def backward(ctx, grad_out):
        return _gan_loss_grad_backward(ctx, grad_out)


def _loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    if not _native.plain_eager(logits):
        return _gan_loss_op(logits, real)
    if _native.needs_autograd(logits):
        return _GanLossFunction.apply(logits, real)
    return _loss_kernel(logits, real)


def _gradient(grad: torch.Tensor, logits: torch.Tensor, real: bool) -> torch.Tensor:
    if not _native.plain_eager(grad, logits):
        return _gan_loss_grad_op(grad, logits, real)
    if _native.needs_autograd(grad, logits):
        return _GanLossGradFunction.apply(grad, logits, real)
    return _gradient_kernel(grad, logits, real)


def gan_loss(logits: torch.Tensor, real: bool, impl: str = "auto") -> torch.Tensor:
    """Non-saturating logistic GAN loss of discriminator logits, fused.

    ``mean(softplus(-logits))`` when the logits belong to real samples (``real=True``) and
    ``mean(softplus(logits))`` otherwise; the generator's loss is ``gan_loss(D(G(z)), real=True)``.
    Stable for any finite logits (softplus as ``max(t, 0) + log1p(exp(-|t|))``, the sum in double).

    Parameters
    ----------
    logits : torch.Tensor
        Discriminator outputs, any non-empty shape; float32/float64 (CPU and CUDA) or
        float16/bfloat16 (CUDA).
    real : bool
        Whether the logits score real samples.
    impl : {'auto', 'native', 'ref'}, default='auto'
        'native' runs the fused ``torch.ops.isogan.gan_loss`` (error if this build has no kernel for
        the logits' device and dtype), 'ref' the PyTorch composition, 'auto' the fused op.

    Returns
    -------
    torch.Tensor
        0-d tensor, dtype and device of ``logits``.

    Raises
    ------
    TypeError
        If ``logits`` is not a floating tensor of a supported dtype or ``real`` is not a bool.
    ValueError
        If ``logits`` is empty or ``impl`` is unknown.

    Examples
    --------
    >>> import torch
    >>> from isogan.ops import gan_loss
    >>> gan_loss(torch.zeros(4), real=True)
    tensor(0.6931)
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not isinstance(real, bool):
        raise TypeError(f"real must be a bool, got {type(real).__name__}")
    if impl not in _IMPLS:
        raise ValueError(f"The 'impl' parameter must be a str among {set(_IMPLS)}. Got {impl!r} instead.")
    allowed = _native.supported_dtypes(logits.device)
    if logits.dtype not in allowed:
        raise TypeError(f"gan_loss supports {[str(d) for d in allowed]} on {logits.device.type}, got {logits.dtype}.")
    if logits.numel() == 0:
        raise ValueError("gan_loss needs at least one logit, got an empty tensor.")
    if impl == "native" and not _native.native_supports(logits.device, logits.dtype):
        raise ValueError(f"impl='native' but this build of isogan has no gan_loss kernel for {logits.device.type} {logits.dtype}.")
    if impl == "ref":
        return _reference_loss(logits, real)
    return _loss(logits, real)
