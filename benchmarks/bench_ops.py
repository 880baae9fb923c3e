"""Fused GAN ops against the eager unfused composition and torch.compile of the reference.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=python python -m pytest benchmarks/bench_ops.py --benchmark-enable -k cpu``
(each group compares the variants of one case side by side; on a shared machine compare minima,
and pin the thread count, since an OpenMP region waits for its slowest, possibly descheduled,
thread). CUDA cases skip without a GPU; torch.compile cases compile once per case (about a minute
each on two cores).
"""

import math

import pytest

torch = pytest.importorskip("torch")

import isogan  # noqa: E402
from isogan.ops import FusedAdam, bias_act, gan_loss  # noqa: E402

# Inductor itself (torch 2.13) touches the deprecated torch.jit.script_method while compiling.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not isogan.cuda_available(), reason="needs CUDA"))]
SHAPES = {"512x1024": ((512, 1024), 1), "64x512": ((64, 512), 1), "nchw16x64x32x32": ((16, 64, 32, 32), 1)}
_compiled = {}


def _eager_bias_act(x, b, dim):
    # What a model would write without the fused op: three kernels forward, three backward.
    shape = [1] * x.ndim
    shape[dim] = -1
    return torch.nn.functional.leaky_relu(x + b.reshape(shape), 0.2) * math.sqrt(2)


def _variant(name, dim):
    if name == "fused":
        return lambda x, b: bias_act(x, b, dim=dim, act="lrelu")
    if name == "eager":
        return lambda x, b: _eager_bias_act(x, b, dim)
    key = ("bias_act", dim)
    if key not in _compiled:
        _compiled[key] = torch.compile(lambda x, b: _eager_bias_act(x, b, dim), fullgraph=True)
    return _compiled[key]


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape_name", list(SHAPES))
@pytest.mark.parametrize("variant", ["fused", "eager", "compiled"])
@pytest.mark.parametrize("pass_", ["forward", "forward_backward"])
def test_bias_act(benchmark, device, shape_name, variant, pass_):
    shape, dim = SHAPES[shape_name]
    benchmark.group = f"bias_act {pass_} {shape_name} {device}"
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=generator).to(device)
    b = torch.randn(shape[dim], generator=generator).to(device)
    grad_y = torch.randn(shape, generator=generator).to(device)
    fn = _variant(variant, dim)
    if pass_ == "forward":

        def run():
            fn(x, b)
            _sync(device)

    else:
        x.requires_grad_()
        b.requires_grad_()

        def run():
            torch.autograd.grad(fn(x, b), (x, b), grad_y)
            _sync(device)

    run()  # warm-up (and compilation)
    benchmark(run)


_EAGER_ACTIVATIONS = {
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "elu": torch.nn.functional.elu,
    "selu": torch.nn.functional.selu, "softplus": torch.nn.functional.softplus, "swish": torch.nn.functional.silu,
}
_CPU_VARIANTS = ("baseline", "avx2", "avx512")


@pytest.mark.parametrize("act", list(_EAGER_ACTIVATIONS))
@pytest.mark.parametrize("variant", ["eager", *(f"fused-{name}" for name in _CPU_VARIANTS)])
def test_bias_act_transcendental_cpu(benchmark, act, variant):
    """Forward 512x1024 float32 on the CPU: each instruction-set variant of the kernel against eager."""
    benchmark.group = f"bias_act forward 512x1024 {act} cpu"
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((512, 1024), generator=generator)
    b = torch.randn(1024, generator=generator)
    if variant == "eager":
        eager = _EAGER_ACTIVATIONS[act]
        benchmark(lambda: eager(x + b))
        return
    name = variant.removeprefix("fused-")
    if _CPU_VARIANTS.index(name) > _CPU_VARIANTS.index(isogan._core.ops_best_cpu_variant()):
        pytest.skip(f"this CPU cannot run the {name} kernels")
    isogan._core.ops_set_cpu_variant(name)
    try:
        benchmark(lambda: bias_act(x, b, act=act, gain=1.0))
    finally:
        isogan._core.ops_set_cpu_variant(isogan._core.ops_best_cpu_variant())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("variant", ["fused", "eager"])
def test_dispatch_overhead_tiny(benchmark, device, variant):
    """Per-call cost on a (4, 8) tensor: Python + custom-op dispatch, no real work."""
    benchmark.group = f"dispatch overhead (4, 8) forward {device}"
    x = torch.randn(4, 8, device=device)
    b = torch.randn(8, device=device)
    fn = _variant(variant, 1)

    def run():
        fn(x, b)
        _sync(device)

    benchmark(run)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [64, 65536])
@pytest.mark.parametrize("variant", ["fused", "eager"])
def test_gan_loss_forward_backward(benchmark, device, n, variant):
    benchmark.group = f"gan_loss forward_backward {n} {device}"
    logits = torch.randn(n, device=device, requires_grad=True)
    if variant == "fused":

        def loss():
            return gan_loss(logits, real=True)

    else:

        def loss():
            return torch.nn.functional.softplus(-logits).mean()

    def run():
        torch.autograd.grad(loss(), logits)
        _sync(device)

    benchmark(run)


def _parameters(device):
    # Tensors shaped like a small StyleGAN-ish generator: 40 tensors, ~2.6M parameters.
    generator = torch.Generator().manual_seed(0)
    shapes = [(256, 256, 3, 3) if i % 4 == 0 else (256,) if i % 4 == 1 else (256, 64) if i % 4 == 2 else (64,)
              for i in range(40)]  # fmt: skip
    params = [torch.nn.Parameter(torch.randn(s, generator=generator).to(device)) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=generator).to(device)
    return params


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("variant", ["fused", "torch_foreach_false", "torch_foreach_true"])
def test_adam_step(benchmark, device, variant):
    benchmark.group = f"adam step 40 tensors {device}"
    params = _parameters(device)
    if variant == "fused":
        optimizer = FusedAdam(params, lr=1e-3, weight_decay=1e-4)
    else:
        optimizer = torch.optim.Adam(params, lr=1e-3, weight_decay=1e-4, foreach=variant.endswith("true"))

    def run():
        optimizer.step()
        _sync(device)

    benchmark(run)
