"""Fused GAN ops (isogan.ops) against their plain-PyTorch references."""

import copy
import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import isogan  # noqa: E402
from isogan.ops import ACTIVATIONS, FusedAdam, bias_act, gan_loss, native_supports, reference_derivative  # noqa: E402

ACTS = sorted(ACTIVATIONS)
CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not isogan.cuda_available(), reason="needs a usable CUDA device")


def _inputs(shape=(3, 5, 4), dim=1, dtype=torch.float64, seed=0, device="cpu", scale=1.5):
    generator = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=generator, dtype=torch.float64) * scale).to(dtype=dtype, device=device)
    b = (torch.randn(shape[dim], generator=generator, dtype=torch.float64) * 0.5).to(dtype=dtype, device=device)
    return x, b


def test_native_kernels_are_built():
    assert native_supports(CPU, torch.float32) and native_supports(CPU, torch.float64)
    assert not native_supports(CPU, torch.float16)


def test_import_isogan_does_not_import_torch():
    code = "import sys, isogan; assert 'torch' not in sys.modules; import isogan.ops; assert 'torch' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- bias_act: values


@pytest.mark.parametrize("act", ACTS)
def test_reference_derivatives_match_autograd(act):
    z = torch.linspace(-4, 4, 41, dtype=torch.float64)[torch.arange(41) != 20].requires_grad_()
    alpha = ACTIVATIONS[act].default_alpha
    value = bias_act(z, None, dim=0, act=act, gain=1.0, impl="ref")
    for order in (1, 2, 3):
        if value.requires_grad:
            (value,) = torch.autograd.grad(value.sum(), z, create_graph=True, materialize_grads=True)
        else:  # constant derivative of a piecewise-linear activation
            value = torch.zeros_like(z)
        torch.testing.assert_close(value, reference_derivative(z, act, alpha, order), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("clamp", [None, 0.7])
def test_bias_act_matches_reference(act, dtype, clamp):
    x, b = _inputs(dtype=dtype)
    x.requires_grad_()
    b.requires_grad_()
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    results = []
    for impl in ("native", "ref"):
        y = bias_act(x, b, act=act, clamp=clamp, impl=impl)
        weight = torch.linspace(-1, 1, y.numel(), dtype=dtype).reshape(y.shape)
        gx, gb = torch.autograd.grad((y * weight).sum(), (x, b), create_graph=True)
        second = (gx * gx).sum() + gb.sum()
        if second.requires_grad:
            ggx, ggb = torch.autograd.grad(second, (x, b), allow_unused=True, materialize_grads=True)
        else:  # linear activation without clamp: the reference's gradient is a constant
            ggx, ggb = torch.zeros_like(x), torch.zeros_like(b)
        results.append((y, gx, gb, ggx, ggb))
    for native, ref in zip(*results):
        assert native.dtype == dtype
        torch.testing.assert_close(native, ref, **tol)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize(("gain", "clamp", "alpha"), [(None, None, None), (0.5, 0.6, 0.3), (2.0, 1.1, None)])
def test_bias_act_gradcheck_and_gradgradcheck(act, gain, clamp, alpha):
    x, b = _inputs(shape=(2, 3, 2))
    x.requires_grad_()
    b.requires_grad_()

    def fn(x, b):
        return bias_act(x, b, act=act, alpha=alpha, gain=gain, clamp=clamp)

    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))


@pytest.mark.parametrize("act", ["lrelu", "swish"])
def test_registered_op_autograd_gradgradcheck(act):
    # bias_act() takes the autograd.Function twin in eager mode; check the op's own registration too.
    x, b = _inputs(shape=(2, 3, 2))
    x.requires_grad_()
    b.requires_grad_()

    def fn(x, b):
        return torch.ops.isogan.bias_act(x, b, 1, act, 0.2, 1.3, 0.9)

    assert torch.autograd.gradcheck(fn, (x, b))
    assert torch.autograd.gradgradcheck(fn, (x, b))
    logits = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda l: torch.ops.isogan.gan_loss(l, False), (logits,))


@pytest.mark.parametrize("act", ["tanh", "swish"])
def test_bias_act_third_order_gradient(act):
    x, b = _inputs(shape=(2, 3))
    x.requires_grad_()
    values = []
    for impl in ("native", "ref"):
        y = bias_act(x, b, act=act, impl=impl).sum()
        for _ in range(3):
            (y,) = torch.autograd.grad(y, x, create_graph=True)
            y = y.sum()
        values.append(y)
    torch.testing.assert_close(values[0], values[1], rtol=1e-12, atol=1e-12)


def test_bias_act_default_gain_and_alpha():
    x = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(bias_act(x, dim=0, act="lrelu"), torch.tensor([-0.2, 2.0], dtype=torch.float64) * math.sqrt(2))
    torch.testing.assert_close(bias_act(x, dim=0, act="relu"), torch.tensor([0.0, 2.0], dtype=torch.float64) * math.sqrt(2))
    torch.testing.assert_close(bias_act(x, dim=0, act="tanh"), torch.tanh(x))
    torch.testing.assert_close(bias_act(x, dim=0, act="linear", clamp=1.5), torch.tensor([-1.0, 1.5], dtype=torch.float64))


def test_bias_act_extreme_inputs_stay_finite():
    x = torch.tensor([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=torch.float64, requires_grad=True)
    for act in ACTS:
        y = bias_act(x, dim=0, act=act, gain=1.0)
        (g,) = torch.autograd.grad(y.sum(), x)
        assert torch.isfinite(y).all() and torch.isfinite(g).all(), act
        torch.testing.assert_close(y, bias_act(x, dim=0, act=act, gain=1.0, impl="ref"))


_VARIANTS = ("baseline", "avx2", "avx512")
_AVAILABLE_VARIANTS = _VARIANTS[: _VARIANTS.index(isogan._core.ops_best_cpu_variant()) + 1]


@pytest.fixture(params=_AVAILABLE_VARIANTS)
def cpu_variant(request):
    """Run a test with each instruction-set variant of the CPU kernels this machine executes."""
    isogan._core.ops_set_cpu_variant(request.param)
    assert isogan._core.ops_cpu_variant() == request.param
    yield request.param
    isogan._core.ops_set_cpu_variant(isogan._core.ops_best_cpu_variant())
    assert isogan._core.ops_cpu_variant() == isogan._core.ops_best_cpu_variant()


def _float32_sweep() -> torch.Tensor:
    """Float32 inputs over the whole useful range: dense grid, tiny, huge, signed zeros, edges of exp."""
    generator = torch.Generator().manual_seed(0)
    magnitudes = torch.logspace(-44, 2.1, 4000, dtype=torch.float64)
    return torch.cat([
        torch.linspace(-120, 120, 48001, dtype=torch.float64),
        torch.randn(20000, generator=generator, dtype=torch.float64) * 4,
        magnitudes, -magnitudes,
        torch.tensor([0.0, -0.0, 0.5, -0.5, 0.49999997, 88.72, 88.73, -87.34, -103.97, -104.5, 10.0, -10.0]),
    ]).float()


def _ulp_error(got: torch.Tensor, exact: torch.Tensor) -> float:
    """Largest error of float32 ``got`` in units in the last place of float32 ``exact`` (float64)."""
    rounded = exact.float().abs()
    ulp = (torch.nextafter(rounded, torch.tensor(math.inf)) - rounded).double()
    normal = exact.abs() > 1e-37  # below, float32 spacing is subnormal and the formulas flush anyway
    return ((got.double() - exact).abs() / ulp)[normal].max().item()


@pytest.mark.parametrize("act", ["tanh", "sigmoid", "elu", "selu", "softplus"])
def test_bias_act_float32_accuracy_in_ulps(cpu_variant, act):
    """The vectorised float32 exp/expm1/log1p/tanh stay within 3 ulp of float64 math everywhere."""
    x = _float32_sweep()
    exact = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "elu": torch.nn.functional.elu,
             "selu": torch.nn.functional.selu,
             "softplus": lambda z: torch.nn.functional.softplus(z, threshold=1e9)}[act](x.double())
    got = bias_act(x, dim=0, act=act, gain=1.0)
    assert _ulp_error(got, exact) <= 3.0
    tiny = exact.abs() <= 1e-37
    assert (got.double() - exact)[tiny].abs().max().item() < 1e-37


def test_bias_act_float32_special_values(cpu_variant):
    x = torch.tensor([math.nan, math.inf, -math.inf, -0.0], dtype=torch.float32)
    for act, expected in {"tanh": [math.nan, 1.0, -1.0, -0.0], "sigmoid": [math.nan, 1.0, 0.0, 0.5],
                          "softplus": [math.nan, math.inf, 0.0, math.log(2.0)],
                          "elu": [math.nan, math.inf, -1.0, -0.0]}.items():
        got = bias_act(x, dim=0, act=act, gain=1.0)
        torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float32), equal_nan=True, msg=act)


@pytest.mark.parametrize("order_act", ["tanh", "swish", "softplus"])
def test_cpu_variants_agree_on_values_and_gradients(order_act):
    """Every instruction-set variant gives the same bias_act forward/backward and gan_loss to a few ulp."""
    x, b = _inputs(shape=(64, 300), dim=1, dtype=torch.float32, scale=4.0)
    results = []
    try:
        for variant in _AVAILABLE_VARIANTS:
            isogan._core.ops_set_cpu_variant(variant)
            xv, bv = x.clone().requires_grad_(), b.clone().requires_grad_()
            y = bias_act(xv, bv, act=order_act)
            gx, gb = torch.autograd.grad(y.square().sum(), (xv, bv))
            results.append((y.detach(), gx, gb, gan_loss(x.flatten(), True)))
    finally:
        isogan._core.ops_set_cpu_variant(isogan._core.ops_best_cpu_variant())
    for other in results[1:]:
        for got, want in zip(other, results[0]):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_set_cpu_variant_rejects_unknown_names():
    with pytest.raises(ValueError, match="variant must be"):
        isogan._core.ops_set_cpu_variant("sse9")


@pytest.mark.parametrize(("shape", "dim"), [((4, 6), 0), ((4, 6), -1), ((2, 3, 4, 5), 2), ((7,), 0), ((2, 3, 4, 5), 3)])
def test_bias_act_dims(shape, dim):
    x, b = _inputs(shape=shape, dim=dim)
    torch.testing.assert_close(bias_act(x, b, dim=dim, act="lrelu"), bias_act(x, b, dim=dim, act="lrelu", impl="ref"))


@pytest.mark.parametrize("act", ["lrelu", "sigmoid"])
def test_bias_act_non_contiguous_input(act):
    base, _ = _inputs(shape=(6, 5, 4))
    x = base.transpose(0, 2)[:, ::2]  # (4, 3, 6), strided
    assert not x.is_contiguous()
    b = torch.linspace(-1, 1, x.shape[1], dtype=torch.float64)
    x.requires_grad_()
    y = bias_act(x, b, act=act, clamp=0.8)
    expected = bias_act(x, b, act=act, clamp=0.8, impl="ref")
    torch.testing.assert_close(y, expected)
    grad_y = torch.randn(6, 3, 4, dtype=torch.float64).transpose(0, 2)
    torch.testing.assert_close(torch.autograd.grad(y, x, grad_y)[0], torch.autograd.grad(expected, x, grad_y)[0])


def test_bias_act_without_bias_and_empty():
    x, _ = _inputs()
    torch.testing.assert_close(bias_act(x, act="elu"), torch.nn.functional.elu(x))
    empty = torch.empty(0, 3, dtype=torch.float32)
    assert bias_act(empty, torch.ones(3), act="relu").shape == (0, 3)


def test_bias_act_rejects_bad_input():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="Unknown activation"):
        bias_act(x, act="gelu")
    with pytest.raises(ValueError, match="out of range"):
        bias_act(x, dim=2)
    with pytest.raises(ValueError, match="out of range"):
        bias_act(torch.tensor(1.0), dim=0)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        bias_act(x, torch.zeros(2))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        bias_act(x, torch.zeros(1, 3))
    with pytest.raises(TypeError, match="dtype"):
        bias_act(x, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(TypeError, match="supports"):
        bias_act(torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="supports"):
        bias_act(torch.zeros(2, 3, dtype=torch.float16))
    with pytest.raises(TypeError, match="torch.Tensor"):
        bias_act([1.0, 2.0])
    with pytest.raises(ValueError, match="clamp"):
        bias_act(x, clamp=-1.0)
    with pytest.raises(ValueError, match="impl"):
        bias_act(x, impl="fast")
    with pytest.raises(ValueError, match="device"):
        bias_act(x, torch.zeros(3, device="meta"))


# ---------------------------------------------------------------- gan_loss


@pytest.mark.parametrize("real", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gan_loss_matches_reference(real, dtype):
    logits = (torch.randn(37, 3, dtype=torch.float64) * 4).to(dtype).requires_grad_()
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-14}
    results = []
    for impl in ("native", "ref"):
        loss = gan_loss(logits, real, impl=impl)
        (grad,) = torch.autograd.grad(loss, logits, create_graph=True)
        (grad2,) = torch.autograd.grad((grad * grad).sum(), logits)
        results.append((loss, grad, grad2))
    for native, ref in zip(*results):
        assert native.dtype == dtype
        torch.testing.assert_close(native, ref, **tol)
    expected = torch.nn.functional.softplus(-logits if real else logits).mean()
    torch.testing.assert_close(results[0][0], expected, **tol)


@pytest.mark.parametrize("real", [True, False])
def test_gan_loss_stable_for_huge_logits(real):
    logits = torch.tensor([-1e4, 1e4, 0.0, 30.0], dtype=torch.float32, requires_grad=True)
    loss = gan_loss(logits, real)
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    # softplus(t) = t for t >> 0 and 0 for t << 0; sigmoid saturates to exactly 1 / 0 in float32.
    t = -logits.detach().double() if real else logits.detach().double()
    expected = (t.clamp_min(0) + torch.log1p(torch.exp(-t.abs()))).mean()
    torch.testing.assert_close(loss.double(), expected, rtol=1e-6, atol=0)
    sign = -1.0 if real else 1.0
    torch.testing.assert_close(grad.double(), sign * torch.sigmoid(t) / 4, rtol=1e-6, atol=1e-12)


def test_gan_loss_gradcheck_and_gradgradcheck():
    logits = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    for real in (True, False):
        assert torch.autograd.gradcheck(lambda l: gan_loss(l, real), (logits,))
        assert torch.autograd.gradgradcheck(lambda l: gan_loss(l, real), (logits,))


def test_gan_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        gan_loss(torch.zeros(0), True)
    with pytest.raises(TypeError, match="bool"):
        gan_loss(torch.zeros(3), 1)
    with pytest.raises(TypeError, match="supports"):
        gan_loss(torch.zeros(3, dtype=torch.int32), True)
    with pytest.raises(TypeError, match="torch.Tensor"):
        gan_loss([0.0], True)


# ---------------------------------------------------------------- opcheck


def test_opcheck_every_op():
    x, b = _inputs(shape=(2, 3, 4), dtype=torch.float32)
    x.requires_grad_()
    b.requires_grad_()
    grad = torch.randn(2, 3, 4)
    ops = torch.ops.isogan
    torch.library.opcheck(ops.bias_act, (x, b, 1, "lrelu", 0.2, math.sqrt(2), 0.9))
    torch.library.opcheck(ops.bias_act, (x.detach()[:, :, ::2], None, 2, "softplus", 0.0, 1.0, None))
    torch.library.opcheck(ops.bias_act_grad, (grad, x, b, 1, "swish", 0.0, 1.0, 0.5, 1))
    torch.library.opcheck(ops.bias_act_grad, (grad, x, b, 1, "tanh", 0.0, 1.0, None, 2))
    logits = torch.randn(6, 1, requires_grad=True)
    torch.library.opcheck(ops.gan_loss, (logits, True))
    torch.library.opcheck(ops.gan_loss_grad, (torch.tensor(1.0), logits, False))
    params = [torch.randn(3, 2), torch.randn(5)]
    state = ([torch.randn_like(p) for p in params], [torch.zeros_like(p) for p in params],
             [torch.zeros_like(p) for p in params], [torch.tensor(0.0) for _ in params])  # fmt: skip
    torch.library.opcheck(ops.adam_step_, (params, *state, 1e-3, 0.9, 0.999, 1e-8, 0.01))


# ---------------------------------------------------------------- FusedAdam


def _model(dtype, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2)).to(dtype)


def _train(model, optimizer, steps, seed=1):
    generator = torch.Generator().manual_seed(seed)
    dtype = next(model.parameters()).dtype
    for _ in range(steps):
        inputs = torch.randn(16, 5, generator=generator, dtype=torch.float64).to(dtype)
        optimizer.zero_grad()
        model(inputs).square().mean().backward()
        optimizer.step()


@pytest.mark.parametrize("impl", ["auto", "ref"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_fused_adam_matches_torch_adam_float64(impl, weight_decay):
    ours, theirs = _model(torch.float64), _model(torch.float64)
    hyper = {"lr": 3e-2, "betas": (0.8, 0.99), "eps": 1e-7, "weight_decay": weight_decay}
    _train(ours, FusedAdam(ours.parameters(), impl=impl, **hyper), 6)
    _train(theirs, torch.optim.Adam(theirs.parameters(), foreach=False, **hyper), 6)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-10)


def test_fused_adam_float32_and_param_groups():
    ours, theirs = _model(torch.float32), _model(torch.float32)
    first, second = list(ours.parameters()), list(theirs.parameters())
    _train(ours, FusedAdam([{"params": first[:2]}, {"params": first[2:], "lr": 1e-2}], lr=5e-2), 5)
    _train(theirs, torch.optim.Adam([{"params": second[:2]}, {"params": second[2:], "lr": 1e-2}], lr=5e-2), 5)
    for p, q in zip(first, second):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_fused_adam_state_dict_round_trip():
    reference, model = _model(torch.float64), _model(torch.float64)
    theirs = torch.optim.Adam(reference.parameters(), lr=1e-2, weight_decay=0.01)
    ours = FusedAdam(model.parameters(), lr=1e-2, weight_decay=0.01)
    _train(reference, theirs, 3, seed=2)
    _train(model, ours, 3, seed=2)
    state = ours.state_dict()
    assert set(state["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert state["state"][0]["step"].item() == 3

    # torch Adam state -> FusedAdam, and FusedAdam state -> torch Adam, both continue identically.
    model_b = copy.deepcopy(reference)
    resumed_ours = FusedAdam(model_b.parameters(), lr=1e-2, weight_decay=0.01)
    resumed_ours.load_state_dict(copy.deepcopy(theirs.state_dict()))
    model_c = copy.deepcopy(model)
    resumed_theirs = torch.optim.Adam(model_c.parameters(), lr=1e-2, weight_decay=0.01)
    resumed_theirs.load_state_dict(copy.deepcopy(state))
    for net, optimizer in ((reference, theirs), (model_b, resumed_ours), (model_c, resumed_theirs)):
        _train(net, optimizer, 3, seed=3)
    for p, q, r in zip(reference.parameters(), model_b.parameters(), model_c.parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-10)
        torch.testing.assert_close(r, p, rtol=0, atol=1e-10)


def test_fused_adam_skips_params_without_grad_and_handles_non_contiguous():
    frozen = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    strided = torch.nn.Parameter(torch.randn(4, 6, dtype=torch.float64).t())
    twin = torch.nn.Parameter(strided.detach().clone())
    ours = FusedAdam([frozen, strided], lr=0.1)
    theirs = torch.optim.Adam([twin], lr=0.1)
    for optimizer, param in ((ours, strided), (theirs, twin)):
        for _ in range(3):
            optimizer.zero_grad()
            (param * torch.arange(24.0, dtype=torch.float64).reshape(6, 4)).sum().backward()
            optimizer.step()
    assert frozen.detach().eq(1).all() and frozen not in ours.state
    torch.testing.assert_close(strided, twin, rtol=0, atol=1e-12)


def test_fused_adam_rejects_bad_hyperparameters():
    params = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(ValueError, match="learning rate"):
        FusedAdam(params, lr=-1.0)
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        FusedAdam(params, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="epsilon"):
        FusedAdam(params, eps=-1e-8)
    with pytest.raises(ValueError, match="weight_decay"):
        FusedAdam(params, weight_decay=-0.1)
    with pytest.raises(ValueError, match="impl"):
        FusedAdam(params, impl="apex")
    sparse = torch.nn.Parameter(torch.zeros(3))
    sparse.grad = torch.zeros(3).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        FusedAdam([sparse]).step()


# ---------------------------------------------------------------- torch.compile


class _TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(6, 4, dtype=torch.float64))
        self.bias = torch.nn.Parameter(torch.randn(6, dtype=torch.float64))

    def forward(self, x):
        h = bias_act(x @ self.weight.t(), self.bias, act="lrelu", clamp=2.0)
        return gan_loss(h.sum(dim=1), real=True)


# Inductor itself (torch 2.13) touches the deprecated torch.jit.script_method while compiling.
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_torch_compile_fullgraph_matches_eager(backend):
    # aot_eager traces the ops through fake tensors and the autograd formulas in seconds; inductor
    # (the default backend) also generates code and takes about a minute on two cores.
    torch.manual_seed(0)
    net = _TinyNet()
    x = torch.randn(5, 4, dtype=torch.float64)
    eager = net(x)
    eager_grads = torch.autograd.grad(eager, list(net.parameters()))
    compiled = torch.compile(net, fullgraph=True, backend=backend)(x)
    compiled_grads = torch.autograd.grad(compiled, list(net.parameters()))
    torch.testing.assert_close(compiled, eager, rtol=1e-12, atol=1e-12)
    for got, want in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- CUDA vs CPU


# Shapes reaching each way the CUDA kernel finds the bias channels of a 16-byte pack: one channel
# per pack (inner a multiple of the pack), consecutive channels (bias along the last axis, channels
# a multiple of the pack), per element (anything else), and the scalar tail after the packs.
CUDA_LAYOUTS = {"per-element": ((4, 33, 17), 1), "one-channel": ((3, 6, 32), 1), "nchw": ((2, 8, 4, 8), 1),
                "consecutive": ((5, 64), 1), "last-axis-odd": ((7, 12), -1), "tail": ((3, 5, 8, 1), 2)}


@needs_cuda
@pytest.mark.parametrize("layout", list(CUDA_LAYOUTS))
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_cuda_bias_act_matches_cpu(act, dtype, layout):
    shape, dim = CUDA_LAYOUTS[layout]
    x, b = _inputs(shape=shape, dim=dim, dtype=torch.float64)
    grad_y = torch.randn(shape, dtype=torch.float64)
    # Both sides see the same (dtype-rounded) inputs: the clamp's gradient mask is discontinuous, so
    # float16/bfloat16 rounding alone would move some y across the clamp and flip whole gradients.
    x, b, grad_y = (t.to(dtype).double() for t in (x, b, grad_y))
    x.requires_grad_()
    y_cpu = bias_act(x, b, dim=dim, act=act, clamp=1.3)
    (g_cpu,) = torch.autograd.grad(y_cpu, x, grad_y)
    xc = x.detach().to("cuda", dtype).requires_grad_()
    y_gpu = bias_act(xc, b.to("cuda", dtype), dim=dim, act=act, clamp=1.3)
    (g_gpu,) = torch.autograd.grad(y_gpu, xc, grad_y.to("cuda", dtype))
    tol = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 2e-2, torch.bfloat16: 5e-2}[dtype]
    torch.testing.assert_close(y_gpu.cpu().double(), y_cpu.detach(), rtol=tol, atol=tol)
    torch.testing.assert_close(g_gpu.cpu().double(), g_cpu, rtol=tol, atol=tol)


@needs_cuda
def test_cuda_gan_loss_and_adam_match_cpu():
    logits = torch.randn(1000, dtype=torch.float64) * 10
    for real in (True, False):
        torch.testing.assert_close(gan_loss(logits.cuda(), real).cpu(), gan_loss(logits, real), rtol=1e-12, atol=1e-12)
        lc = logits.cuda().requires_grad_()
        (g,) = torch.autograd.grad(gan_loss(lc, real), lc)
        lh = logits.clone().requires_grad_()
        (h,) = torch.autograd.grad(gan_loss(lh, real), lh)
        torch.testing.assert_close(g.cpu(), h, rtol=1e-12, atol=1e-15)
    cpu_model, gpu_model = _model(torch.float64), _model(torch.float64).cuda()
    _train(cpu_model, FusedAdam(cpu_model.parameters(), lr=1e-2, weight_decay=0.1), 3)
    generator = torch.Generator().manual_seed(1)
    optimizer = FusedAdam(gpu_model.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(3):
        inputs = torch.randn(16, 5, generator=generator, dtype=torch.float64).cuda()
        optimizer.zero_grad()
        gpu_model(inputs).square().mean().backward()
        optimizer.step()
    for p, q in zip(cpu_model.parameters(), gpu_model.parameters()):
        torch.testing.assert_close(q.cpu(), p, rtol=0, atol=1e-10)


# ---------------------------------------------------------------- native boundary


def test_cuda_elementwise_index_width_never_wraps():
    # The CUDA grid-stride loops count in uint32 only while the last index they compute,
    # n - 1 + total_threads, stays below 2**32; n itself fitting is not enough.
    from isogan import _core

    threads = 132 * 8 * 256
    assert _core._ops_grid_stride_fits_uint32(1000, threads)
    assert _core._ops_grid_stride_fits_uint32(2**32 - threads, threads)
    assert not _core._ops_grid_stride_fits_uint32(2**32 - threads + 1, threads)
    assert not _core._ops_grid_stride_fits_uint32(2**32 - 1, threads)
    assert not _core._ops_grid_stride_fits_uint32(2**40, 256)


def test_native_entry_points_reject_bad_arguments():
    from isogan import _core

    x = torch.zeros(4)
    out = torch.empty(4)
    good = (x.data_ptr(), 0, 0, out.data_ptr(), 1, 4, 1, torch.float32, 2, 0.2, 1.0, -1.0, 0)
    _core.ops_bias_act_cpu(*good)
    for position, value, message in [(0, 0, "null"), (7, torch.float16, "dtype"), (8, 9, "activation"), (12, 3, "order"),
                                     (5, 0, "channels"), (2, 0, "null")]:  # fmt: skip
        bad = list(good)
        bad[position] = value
        if position == 2:
            bad[12] = 1  # a gradient order without a gradient buffer
        with pytest.raises(ValueError, match=message):
            _core.ops_bias_act_cpu(*bad)
    with pytest.raises(ValueError, match="at least one"):
        _core.ops_gan_loss_cpu(x.data_ptr(), 0, out.data_ptr(), 0, torch.float32, True)
    with pytest.raises(ValueError, match="one entry per parameter"):
        _core.ops_adam_cpu([x.data_ptr()], [], [], [], [4], [0.1], [1.0], torch.float32, 0.1, 0.999, 0.001, 1e-8, 0.0)


def test_gan_loss_non_contiguous_logits():
    base = torch.randn(6, 8, dtype=torch.float64)
    logits = base.t()[:, ::2].requires_grad_()
    assert not logits.is_contiguous()
    loss = gan_loss(logits, False)
    expected = gan_loss(logits, False, impl="ref")
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(torch.autograd.grad(loss, logits)[0], torch.autograd.grad(expected, logits)[0])
