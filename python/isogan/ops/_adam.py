"""Adam whose step updates every parameter of a group in one native call (multi-tensor apply).

``isogan::adam_step_(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps,
weight_decay)`` increments each step counter and updates each parameter and its two moments in
place, with the arithmetic of ``torch.optim.Adam`` (single-tensor path, L2 weight decay added to the
gradient), so results match it to rounding.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import torch

from isogan import _core
from isogan.ops import _native

_IMPLS = ("auto", "native", "ref")


def _bias_corrections(step: float, lr: float, beta1: float, beta2: float) -> tuple[float, float]:
    """(step_size, sqrt(bias_correction2)) exactly as torch.optim.Adam computes them."""
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    return lr / bias_correction1, bias_correction2**0.5


def _reference_step(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps, weight_decay) -> None:
    """Per-tensor PyTorch Adam step, operation for operation torch.optim.Adam's single-tensor path."""
    for param, grad, exp_avg, exp_avg_sq, step_t in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
        step_t += 1
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size, bias_correction2_sqrt = _bias_corrections(step_t.item(), lr, beta1, beta2)
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        param.addcdiv_(exp_avg, denom, value=-step_size)


def _run_native(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps, weight_decay) -> None:
    torch._foreach_add_(steps, 1)
    corrections = [_bias_corrections(step.item(), lr, beta1, beta2) for step in steps]
    grads = [grad.contiguous() for grad in grads]
    device = params[0].device
    args = (
        [_native.address(p) for p in params], [_native.address(g) for g in grads],
        [_native.address(m) for m in exp_avgs], [_native.address(v) for v in exp_avg_sqs],
        [p.numel() for p in params], [c[0] for c in corrections], [c[1] for c in corrections],
        params[0].dtype, 1 - beta1, beta2, 1 - beta2, eps, weight_decay,
    )  # fmt: skip
    if device.type == "cuda":
        _core.ops_adam_cuda(*args, device.index, _native.cuda_stream(device))
    else:
        _core.ops_adam_cpu(*args)


@torch.library.custom_op("isogan::adam_step_", mutates_args=("params", "exp_avgs", "exp_avg_sqs", "steps"))
def _adam_step_op(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    steps: list[torch.Tensor],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    fusable = (
        params
        and params[0].dtype in (torch.float32, torch.float64)
        and _native.native_supports(params[0].device, params[0].dtype)
        and all(t.is_contiguous() for t in (*params, *exp_avgs, *exp_avg_sqs))
    )
    if fusable:
        _run_native(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps, weight_decay)
    else:
        _reference_step(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps, weight_decay)


@_adam_step_op.register_fake
def _(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps, weight_decay):
    return None


def _scalar_dtype() -> torch.dtype:
    # torch.optim.Adam keeps its step counters in float64 when that is the default dtype.
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class FusedAdam(torch.optim.Optimizer):
    """Adam (L2 weight decay as in ``torch.optim.Adam``) with a fused multi-tensor step.

    Each call to :meth:`step` updates all parameters of a parameter group that share a device and
    dtype with one native call (``torch.ops.isogan.adam_step_``), reading and writing each
    parameter, gradient and moment once. The arithmetic and bias correction follow
    ``torch.optim.Adam`` operation for operation, and the state (``step``, ``exp_avg``,
    ``exp_avg_sq``) has its layout, so state dicts load into either optimizer. Parameters the
    fused kernel does not cover (float16/bfloat16, non-contiguous parameters or moments, devices
    without a kernel) are stepped with the per-tensor reference arithmetic instead.

    Parameters
    ----------
    params : iterable of torch.Tensor or dict
        Parameters or parameter groups, as for any ``torch.optim.Optimizer``.
    lr : float, default=1e-3
        Learning rate.
    betas : tuple of (float, float), default=(0.9, 0.999)
        Decay rates of the first and second moment estimates.
    eps : float, default=1e-8
        Added to the denominator for numerical stability.
    weight_decay : float, default=0.0
        L2 penalty added to the gradient (not decoupled as in AdamW).
    impl : {'auto', 'native', 'ref'}, default='auto'
        'ref' steps with per-tensor PyTorch operations; 'native' requires the fused kernel for every
        parameter's device and dtype; 'auto' uses the fused op.

    Raises
    ------
    ValueError
        If a hyper-parameter is out of range or ``impl`` is unknown.

    Examples
    --------
    >>> import torch
    >>> from isogan.ops import FusedAdam
    >>> w = torch.nn.Parameter(torch.ones(3))
    >>> opt = FusedAdam([w], lr=0.1)
    >>> w.sum().backward()
    >>> opt.step()
    >>> w.detach()
    tensor([0.9000, 0.9000, 0.9000])
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        impl: str = "auto",
    ) -> None:
        if not (isinstance(lr, float | int) and lr >= 0.0):
            raise ValueError(f"Invalid learning rate: {lr}")
        if not eps >= 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if impl not in _IMPLS:
            raise ValueError(f"The 'impl' parameter must be a str among {set(_IMPLS)}. Got {impl!r} instead.")
        self.impl = impl
        defaults = {"lr": float(lr), "betas": (float(betas[0]), float(betas[1])), "eps": float(eps),
                    "weight_decay": float(weight_decay)}  # fmt: skip
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Perform one optimisation step.

        Parameters
        ----------
        closure : callable, optional
            Re-evaluates the model and returns the loss.

        Returns
        -------
        float or None
            The closure's loss, if a closure was given.

        Raises
        ------
        RuntimeError
            If a gradient is sparse or a parameter is complex.
        ValueError
            If ``impl='native'`` and a parameter's device and dtype have no fused kernel.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            buckets: dict[tuple[torch.device, torch.dtype], list[list[torch.Tensor]]] = defaultdict(
                lambda: [[], [], [], [], []]
            )
            for param in group["params"]:
                if param.grad is None:
                    continue
                self._check(param)
                state = self.state[param]
                if len(state) == 0:
                    state["step"] = torch.tensor(0.0, dtype=_scalar_dtype())
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                bucket = buckets[(param.device, param.dtype)]
                for values, tensor in zip(bucket, (param, param.grad, state["exp_avg"], state["exp_avg_sq"], state["step"])):
                    values.append(tensor)
            beta1, beta2 = group["betas"]
            hyper = (float(group["lr"]), beta1, beta2, group["eps"], group["weight_decay"])
            for bucket in buckets.values():
                if self.impl == "ref":
                    _reference_step(*bucket, *hyper)
                else:
                    _adam_step_op(*bucket, *hyper)
        return loss

    def _check(self, param: torch.Tensor) -> None:
        if param.grad.is_sparse:
            raise RuntimeError("FusedAdam does not support sparse gradients.")
        if param.is_complex():
            raise RuntimeError("FusedAdam does not support complex parameters.")
        fusable = param.dtype in (torch.float32, torch.float64) and _native.native_supports(param.device, param.dtype)
        if self.impl == "native" and not fusable:
            raise ValueError(f"impl='native' but this build of isogan has no Adam kernel for {param.device.type} {param.dtype}.")
        state = self.state[param]
        if state and not (torch.is_tensor(state["step"]) and state["step"].device.type == "cpu"):
            # Older or capturable state dicts keep the counter as a number or on the device.
            state["step"] = torch.tensor(float(state["step"]), dtype=_scalar_dtype())
