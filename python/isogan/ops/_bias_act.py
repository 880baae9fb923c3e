"""Fused bias + activation + gain + clamp, with first- and second-order gradients.

Two custom ops carry the fused path:

``isogan::bias_act(x, b, dim, act, alpha, gain, clamp) -> y``
    ``y = clamp(gain * act(x + b), -clamp, clamp)``, the bias broadcast along ``dim``.
``isogan::bias_act_grad(grad, x, b, dim, act, alpha, gain, clamp, order) -> g``
    ``g = grad * gain * act^(order)(x + b) * mask`` where ``act^(order)`` is the first or second
    derivative of the activation and ``mask`` zeroes the elements that the clamp cut off.

The backward of ``bias_act`` is ``bias_act_grad(order=1)``; the backward of that is
``bias_act_grad(order=1)`` again (with respect to ``grad``) and ``bias_act_grad(order=2)`` (with
respect to ``x`` and ``b``), so R1 regularisation, which differentiates through a gradient, runs the
fused kernels end to end. Third and higher derivatives are taken through the reference PyTorch
formulas of :func:`reference_derivative`.

In plain eager mode (real tensors, no tracing) :func:`bias_act` calls the same kernels and autograd
formulas through ``torch.autograd.Function`` twins of the ops, skipping about 15 us of custom-op
dispatch per call; under ``torch.compile``, tensor subclasses or fake tensors it calls the ops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from isogan import _core
from isogan.ops import _native

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_IMPLS = ("auto", "native", "ref")


@dataclass(frozen=True)
class _Activation:
    code: int  # isogan::ops::Activation in csrc/ops/ops.h
    default_alpha: float
    default_gain: float


ACTIVATIONS: dict[str, _Activation] = {
    "linear": _Activation(0, 0.0, 1.0),
    "relu": _Activation(1, 0.0, math.sqrt(2.0)),
    "lrelu": _Activation(2, 0.2, math.sqrt(2.0)),
    "tanh": _Activation(3, 0.0, 1.0),
    "sigmoid": _Activation(4, 0.0, 1.0),
    "elu": _Activation(5, 1.0, 1.0),
    "selu": _Activation(6, 0.0, 1.0),
    "softplus": _Activation(7, 0.0, 1.0),
    "swish": _Activation(8, 0.0, 1.0),
}


def _activation(z: torch.Tensor, act: str, alpha: float) -> torch.Tensor:
    """Apply activation ``act`` elementwise with plain PyTorch (differentiable to any order)."""
    if act == "linear":
        return z
    if act == "relu":
        return torch.relu(z)
    if act == "lrelu":
        return torch.nn.functional.leaky_relu(z, alpha)
    if act == "tanh":
        return torch.tanh(z)
    if act == "sigmoid":
        return torch.sigmoid(z)
    if act == "elu":
        return torch.nn.functional.elu(z, alpha)
    if act == "selu":
        return torch.nn.functional.selu(z)
    if act == "softplus":
        # logaddexp(z, 0) is log(1 + e^z) without torch.nn.functional.softplus's linear cut-off at
        # z > 20, so it is exact in float64 and its gradient is exactly sigmoid(z).
        return torch.logaddexp(z, torch.zeros_like(z))
    return torch.nn.functional.silu(z)


def reference_derivative(z: torch.Tensor, act: str, alpha: float, order: int) -> torch.Tensor:
    """Return the ``order``-th derivative (1, 2 or 3) of activation ``act`` at ``z``.

    Closed forms in plain PyTorch; the oracle of the native gradient kernels and the path for
    third-order gradients. At the kink of relu/lrelu/elu/selu (``z == 0``) the left branch is
    used for ``z <= 0``, as PyTorch's own backward formulas do.

    Parameters
    ----------
    z : torch.Tensor
        Pre-activation values ``x + b``.
    act : str
        Activation name, a key of :data:`ACTIVATIONS`.
    alpha : float
        Negative slope (lrelu) or scale (elu); ignored by the other activations.
    order : {1, 2, 3}
        Which derivative.

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``z``.
    """
    positive = z > 0
    if act == "linear":
        return torch.ones_like(z) if order == 1 else torch.zeros_like(z)
    if act == "relu":
        return positive.to(z.dtype) if order == 1 else torch.zeros_like(z)
    if act == "lrelu":
        if order > 1:
            return torch.zeros_like(z)
        return torch.where(positive, torch.ones_like(z), torch.full_like(z, alpha))
    if act in ("elu", "selu"):
        scale, negative_scale = (1.0, alpha) if act == "elu" else (_SELU_SCALE, _SELU_SCALE * _SELU_ALPHA)
        negative = negative_scale * torch.exp(torch.clamp_max(z, 0.0))
        if order == 1:
            return torch.where(positive, torch.full_like(z, scale), negative)
        return torch.where(positive, torch.zeros_like(z), negative)
    if act == "tanh":
        t = torch.tanh(z)
        slope = 1.0 - t * t
        return (slope, -2.0 * t * slope, slope * (6.0 * t * t - 2.0))[order - 1]
    s = torch.sigmoid(z)
    s1 = s * (1.0 - s)  # sigmoid'
    s2 = s1 * (1.0 - 2.0 * s)  # sigmoid''
    if act == "sigmoid":
        return (s1, s2, s1 * (1.0 - 6.0 * s + 6.0 * s * s))[order - 1]
    if act == "softplus":
        return (s, s1, s2)[order - 1]
    # swish(z) = z * s
    if order == 1:
        return s + z * s1
    if order == 2:
        return 2.0 * s1 + z * s2
    return 3.0 * s2 + z * s1 * (1.0 - 6.0 * s + 6.0 * s * s)


def _bias_shape(x: torch.Tensor, dim: int) -> list[int]:
    shape = [1] * x.ndim
    shape[dim] = x.shape[dim]
    return shape


def _preactivation(x: torch.Tensor, b: torch.Tensor | None, dim: int) -> torch.Tensor:
    return x if b is None else x + b.reshape(_bias_shape(x, dim))


def _reference_forward(
    x: torch.Tensor, b: torch.Tensor | None, dim: int, act: str, alpha: float, gain: float, clamp: float | None
) -> torch.Tensor:
    y = _activation(_preactivation(x, b, dim), act, alpha)
    if gain != 1.0:
        y = y * gain
    if clamp is not None:
        y = y.clamp(-clamp, clamp)
    return y


def _reference_gradient(
    grad: torch.Tensor,
    x: torch.Tensor,
    b: torch.Tensor | None,
    dim: int,
    act: str,
    alpha: float,
    gain: float,
    clamp: float | None,
    order: int,
) -> torch.Tensor:
    """``grad * gain * act^(order)(x + b)``, zero where the clamp cut the forward value off."""
    z = _preactivation(x, b, dim)
    out = grad * (gain * reference_derivative(z, act, alpha, order))
    if clamp is not None:
        # torch.clamp passes the gradient where |y| <= clamp (inclusive); so do we.
        inside = (_activation(z, act, alpha) * gain).abs() <= clamp
        out = torch.where(inside, out, torch.zeros_like(out))
    return out


def _sum_to_bias(g: torch.Tensor, dim: int) -> torch.Tensor:
    """Reduce a gradient with respect to ``x + b`` to the gradient of the bias along ``dim``."""
    other_dims = [d for d in range(g.ndim) if d != dim]
    return g.sum(dim=other_dims) if other_dims else g


def _run_native(
    grad: torch.Tensor | None,
    x: torch.Tensor,
    b: torch.Tensor | None,
    dim: int,
    act: str,
    alpha: float,
    gain: float,
    clamp: float | None,
    order: int,
) -> torch.Tensor:
    """Run the native kernel: order 0 is the forward, 1 and 2 the derivatives times ``grad``."""
    x = x.contiguous()
    b = None if b is None else b.contiguous()
    grad = None if grad is None else grad.contiguous()
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    if x.numel() == 0:
        return out
    channels = x.shape[dim]
    inner = math.prod(x.shape[dim + 1 :])
    outer = x.numel() // (channels * inner)
    args = (
        _native.address(x), _native.address(b), _native.address(grad), _native.address(out),
        outer, channels, inner, x.dtype, ACTIVATIONS[act].code,
        float(alpha), float(gain), -1.0 if clamp is None else float(clamp), order,
    )  # fmt: skip
    if x.device.type == "cuda":
        _core.ops_bias_act_cuda(*args, x.device.index, _native.cuda_stream(x.device))
    else:
        _core.ops_bias_act_cpu(*args)
    return out


def _forward_kernel(x, b, dim, act, alpha, gain, clamp) -> torch.Tensor:
    if _native.native_supports(x.device, x.dtype):
        return _run_native(None, x, b, dim, act, alpha, gain, clamp, 0)
    return _reference_forward(x, b, dim, act, alpha, gain, clamp).clone(memory_format=torch.contiguous_format)


def _gradient_kernel(grad, x, b, dim, act, alpha, gain, clamp, order) -> torch.Tensor:
    if _native.native_supports(x.device, x.dtype):
        return _run_native(grad, x, b, dim, act, alpha, gain, clamp, order)
    return _reference_gradient(grad, x, b, dim, act, alpha, gain, clamp, order).clone(memory_format=torch.contiguous_format)


@torch.library.custom_op("isogan::bias_act", mutates_args=())
def _bias_act_op(
    x: torch.Tensor, b: torch.Tensor | None, dim: int, act: str, alpha: float, gain: float, clamp: float | None
) -> torch.Tensor:
    return _forward_kernel(x, b, dim, act, alpha, gain, clamp)


@_bias_act_op.register_fake
def _(x, b, dim, act, alpha, gain, clamp):
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


@torch.library.custom_op("isogan::bias_act_grad", mutates_args=())
def _bias_act_grad_op(
    grad: torch.Tensor,
    x: torch.Tensor,
    b: torch.Tensor | None,
    dim: int,
    act: str,
    alpha: float,
    gain: float,
    clamp: float | None,
    order: int,
) -> torch.Tensor:
    return _gradient_kernel(grad, x, b, dim, act, alpha, gain, clamp, order)


@_bias_act_grad_op.register_fake
def _(grad, x, b, dim, act, alpha, gain, clamp, order):
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


def _bias_act_setup_context(ctx, inputs, output):
    x, b, dim, act, alpha, gain, clamp = inputs
    ctx.save_for_backward(x, b)
    ctx.config = (dim, act, alpha, gain, clamp)


def _bias_act_backward(ctx, grad_y):
    x, b = ctx.saved_tensors
    dim = ctx.config[0]
    grad_z = _gradient(grad_y, x, b, *ctx.config, 1)
    grad_x = grad_z if ctx.needs_input_grad[0] else None
    grad_b = _sum_to_bias(grad_z, dim) if b is not None and ctx.needs_input_grad[1] else None
    return grad_x, grad_b, None, None, None, None, None


_bias_act_op.register_autograd(_bias_act_backward, setup_context=_bias_act_setup_context)


def _bias_act_grad_setup_context(ctx, inputs, output):
    grad, x, b, dim, act, alpha, gain, clamp, order = inputs
    ctx.save_for_backward(grad, x, b)
    ctx.config = (dim, act, alpha, gain, clamp)
    ctx.order = order


def _bias_act_grad_backward(ctx, grad_out):
    # out = grad * h(z) with h = gain * act^(order) * mask, so d out/d grad = h(z) and
    # d out/d z = grad * h'(z), where h' is the next derivative.
    grad, x, b = ctx.saved_tensors
    dim = ctx.config[0]
    grad_grad = _gradient(grad_out, x, b, *ctx.config, ctx.order) if ctx.needs_input_grad[0] else None
    grad_x = grad_b = None
    if ctx.needs_input_grad[1] or (b is not None and ctx.needs_input_grad[2]):
        if ctx.order == 1:
            grad_z = _gradient(grad_out * grad, x, b, *ctx.config, 2)
        else:
            grad_z = _reference_gradient(grad_out * grad, x, b, *ctx.config, ctx.order + 1)
        grad_x = grad_z if ctx.needs_input_grad[1] else None
        grad_b = _sum_to_bias(grad_z, dim) if b is not None and ctx.needs_input_grad[2] else None
    return grad_grad, grad_x, grad_b, None, None, None, None, None, None


_bias_act_grad_op.register_autograd(_bias_act_grad_backward, setup_context=_bias_act_grad_setup_context)


class _BiasActFunction(torch.autograd.Function):
    """Eager twin of ``isogan::bias_act``: same kernel and autograd formulas, no dispatcher hop."""

    @staticmethod
    def forward(x, b, dim, act, alpha, gain, clamp):
        return _forward_kernel(x, b, dim, act, alpha, gain, clamp)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _bias_act_setup_context(ctx, inputs, output)

    @staticmethod
    def backward(ctx, grad_y):
        return _bias_act_backward(ctx, grad_y)


class _BiasActGradFunction(torch.autograd.Function):
    """Eager twin of ``isogan::bias_act_grad``."""

    @staticmethod
    def forward(grad, x, b, dim, act, alpha, gain, clamp, order):
        return _gradient_kernel(grad, x, b, dim, act, alpha, gain, clamp, order)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _bias_act_grad_setup_context(ctx, inputs, output)

    @staticmethod
    def backward(ctx, grad_out):
        return _bias_act_grad_backward(ctx, grad_out)


def _forward(x, b, dim, act, alpha, gain, clamp) -> torch.Tensor:
    if not _native.plain_eager(x, b):
        return _bias_act_op(x, b, dim, act, alpha, gain, clamp)
    if _native.needs_autograd(x, b):
        return _BiasActFunction.apply(x, b, dim, act, alpha, gain, clamp)
    return _forward_kernel(x, b, dim, act, alpha, gain, clamp)


def _gradient(grad, x, b, dim, act, alpha, gain, clamp, order) -> torch.Tensor:
    if not _native.plain_eager(grad, x, b):
        return _bias_act_grad_op(grad, x, b, dim, act, alpha, gain, clamp, order)
    if _native.needs_autograd(grad, x, b):
        return _BiasActGradFunction.apply(grad, x, b, dim, act, alpha, gain, clamp, order)
    return _gradient_kernel(grad, x, b, dim, act, alpha, gain, clamp, order)


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
    impl: str = "auto",
) -> torch.Tensor:
    """Add a bias, apply an activation, scale and clamp, in one fused pass.

    Computes ``clamp(gain * act(x + b), -clamp, clamp)`` with ``b`` broadcast along ``dim``, the
    conventions of StyleGAN's ``bias_act``. Differentiable twice through fused kernels (R1
    regularisation), and to any order beyond through the reference formulas.

    Parameters
    ----------
    x : torch.Tensor
        Input of any shape; float32/float64 on the CPU, also float16/bfloat16 on CUDA.
        Non-contiguous input is read through a contiguous copy.
    b : torch.Tensor of shape (x.shape[dim],), optional
        Bias, same device and dtype as ``x``.
    dim : int, default=1
        The axis of ``x`` the bias runs along (negative counts from the end).
    act : {'linear', 'relu', 'lrelu', 'tanh', 'sigmoid', 'elu', 'selu', 'softplus', 'swish'}
        Activation.
    alpha : float, optional
        Negative slope of 'lrelu' (default 0.2) or scale of 'elu' (default 1.0); ignored by the
        other activations ('selu' uses its fixed constants).
    gain : float, optional
        Output scale; default sqrt(2) for 'relu' and 'lrelu', 1 otherwise.
    clamp : float, optional
        Clamp the output to ``[-clamp, clamp]``; None for no clamping.
    impl : {'auto', 'native', 'ref'}, default='auto'
        'native' runs the fused ``torch.ops.isogan.bias_act`` (error if this build has no kernel for
        ``x``'s device and dtype), 'ref' the unfused PyTorch composition, 'auto' the fused op.

    Returns
    -------
    torch.Tensor
        Same shape, dtype and device as ``x``; C-contiguous.

    Raises
    ------
    TypeError
        If ``x`` or ``b`` is not a tensor, or their dtypes are unsupported or differ.
    ValueError
        If ``dim`` is out of range, ``b`` has the wrong shape or device, ``act`` or ``impl`` is
        unknown, or ``clamp`` is negative.

    Examples
    --------
    >>> import torch
    >>> from isogan.ops import bias_act
    >>> x = torch.tensor([[-1.0, 2.0]])
    >>> bias_act(x, torch.tensor([0.5, 0.0]), act='lrelu')
    tensor([[-0.1414,  2.8284]])
    """
    dim, alpha, gain, clamp = _validate(x, b, dim, act, alpha, gain, clamp, impl)
    if impl == "ref":
        return _reference_forward(x, b, dim, act, alpha, gain, clamp)
    return _forward(x, b, dim, act, alpha, gain, clamp)


def _validate(x, b, dim, act, alpha, gain, clamp, impl) -> tuple[int, float, float, float | None]:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if impl not in _IMPLS:
        raise ValueError(f"The 'impl' parameter must be a str among {set(_IMPLS)}. Got {impl!r} instead.")
    if act not in ACTIVATIONS:
        raise ValueError(f"Unknown activation act={act!r}; expected one of {sorted(ACTIVATIONS)}.")
    allowed = _native.supported_dtypes(x.device)
    if x.dtype not in allowed:
        raise TypeError(f"bias_act supports {[str(d) for d in allowed]} on {x.device.type}, got x of dtype {x.dtype}.")
    if impl == "native" and not _native.native_supports(x.device, x.dtype):
        raise ValueError(f"impl='native' but this build of isogan has no bias_act kernel for {x.device.type} {x.dtype}.")
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"dim must be an int, got {type(dim).__name__}")
    if x.ndim == 0 or not -x.ndim <= dim < x.ndim:
        raise ValueError(f"dim={dim} is out of range for x with {x.ndim} dimensions.")
    dim %= x.ndim
    if b is not None:
        if not isinstance(b, torch.Tensor):
            raise TypeError(f"b must be a torch.Tensor or None, got {type(b).__name__}")
        if b.device != x.device:
            raise ValueError(f"b is on {b.device} but x is on {x.device}; move both to the same device.")
        if b.dtype != x.dtype:
            raise TypeError(f"b has dtype {b.dtype} but x has dtype {x.dtype}; they must match.")
        if b.ndim != 1 or b.shape[0] != x.shape[dim]:
            raise ValueError(f"b must have shape ({x.shape[dim]},) to run along dim {dim} of x, got {tuple(b.shape)}.")
    spec = ACTIVATIONS[act]
    alpha = spec.default_alpha if alpha is None else float(alpha)
    gain = spec.default_gain if gain is None else float(gain)
    if clamp is not None:
        clamp = float(clamp)
        if not clamp >= 0:
            raise ValueError(f"clamp must be None or >= 0, got {clamp}.")
    return dim, alpha, gain, clamp
