"""CUDA-specific tests of the sugar ops: CPU/CUDA agreement, layouts, alignment, 64-bit indexing,
streams, CUDA graphs, multi-GPU, gradcheck and torch.compile on CUDA.

Everything that needs a GPU is skipped without one (and in a build without the CUDA kernels).
The CPU kernels of the same library are the reference for agreement: they are tested against
independent float64 references in test_ops.py, and both backends share one math header, so the
tolerances below only cover the different exp/erfc implementations and rounding order.

The last section runs on any machine: in a CPU-only build a CUDA tensor gets an error that says
the build lacks CUDA kernels and how to build with them (checked with a tensor subclass that
claims device "cuda", which needs no GPU).
"""
import math

import pytest
import torch

import torch_sugar

HAS_CUDA_KERNELS = torch_sugar.build_info()["cuda_compiled"]
GPU = torch.cuda.is_available()

needs_gpu = pytest.mark.skipif(
    not (GPU and HAS_CUDA_KERNELS),
    reason="needs a CUDA GPU and a torch-sugar build with CUDA kernels "
           f"(GPU: {GPU}, CUDA kernels compiled: {HAS_CUDA_KERNELS})")

SURROGATES = ["relu", "bsilu", "nelu", "elu", "selu", "leaky_relu", "gelu", "gelu_tanh", "silu", "mish"]
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]

# (rtol, atol) for CUDA vs CPU in each dtype. Half types: both compute in float and round once, so
# they differ by at most one unit in the last place of the result, where the float results straddle
# a rounding boundary. float32: CUDA's expf/erfcf are within 2 ulp of glibc's, a few more after
# the products and sums of the formulas; atol (times the largest value) covers results that
# cancel to near zero (s'' of gelu near x = sqrt(2)).
TOL = {
    torch.float16: (2 ** -10, 1e-5),
    torch.bfloat16: (2 ** -7, 1e-5),
    torch.float32: (1e-5, 1e-6),
    torch.float64: (1e-13, 1e-15),
}


def sample_x(n=4099, dtype=torch.float32, seed=0):
    """Inputs that cover every branch: exact 0 and +-0, tiny, moderate, large and huge values."""
    gen = torch.Generator().manual_seed(seed)
    special = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 1e-3, -1e-3, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0,
                            10.0, -10.0, 30.0, -30.0, 60.0, -60.0, 1e4, -1e4], dtype=torch.float64)
    if dtype in (torch.float32, torch.float64):
        special = torch.cat([special, torch.tensor([1e30, -1e30], dtype=torch.float64)])
    body = torch.randn(n - special.numel(), generator=gen, dtype=torch.float64) * 4
    return torch.cat([special, body]).to(dtype)


def sample_grad(like, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(like.shape, generator=gen, dtype=torch.float64).to(like.dtype)


def assert_agree(cuda_result, cpu_result, dtype, what):
    rtol, atol = TOL[dtype]
    scale = max(1.0, float(cpu_result.double().abs().max()))
    torch.testing.assert_close(cuda_result.cpu(), cpu_result, rtol=rtol, atol=atol * scale,
                               equal_nan=True, msg=lambda m: f"{what}: {m}")


def bits(t):
    return t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


# ---------------------------------------------------------------------------------------------
# Agreement with the CPU kernels, every surrogate x negative_only x dtype.


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_is_torch_relu_bitwise(dtype):
    x = sample_x(dtype=dtype)
    x[7] = float("nan")
    x[8] = float("inf")
    x[9] = float("-inf")
    xc = x.cuda()
    y = torch.ops.sugar.relu(xc, "bsilu", None, False)
    assert y.device == xc.device and y.dtype == dtype
    # Bit for bit the CPU kernel's result (NaN payloads and -0.0 included: the input's bits pass).
    assert torch.equal(bits(y.cpu()), bits(torch.ops.sugar.relu(x, "bsilu", None, False)))
    # torch.relu's values on the GPU, NaN where it has NaN (its sign of zero for a -0.0 input is
    # fmaxf's business, so zeros compare by value).
    torch.testing.assert_close(y, torch.relu(xc), rtol=0, atol=0, equal_nan=True)


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("negative_only", [False, True])
@pytest.mark.parametrize("surrogate", SURROGATES)
def test_backward_and_double_backward_agree_with_cpu(surrogate, negative_only, dtype):
    x = sample_x(dtype=dtype)
    g = sample_grad(x)
    gg = sample_grad(x, seed=2)
    args = (surrogate, None, negative_only)
    got = torch.ops.sugar.relu_backward(g.cuda(), x.cuda(), *args)
    want = torch.ops.sugar.relu_backward(g, x, *args)
    assert got.dtype == dtype and got.is_cuda
    assert_agree(got, want, dtype, f"relu_backward {surrogate} negative_only={negative_only}")
    if surrogate == "relu":
        # The control is a select: bitwise torch.relu's gradient.
        assert torch.equal(bits(got), bits(torch.ops.aten.threshold_backward(g.cuda(), x.cuda(), 0)))
    got2 = torch.ops.sugar._relu_double_backward(gg.cuda(), g.cuda(), x.cuda(), *args)
    want2 = torch.ops.sugar._relu_double_backward(gg, g, x, *args)
    assert_agree(got2, want2, dtype, f"_relu_double_backward {surrogate} negative_only={negative_only}")


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("surrogate", ["bsilu", "nelu", "gelu", "mish"])
def test_autograd_first_and_second_order_agree_with_cpu(surrogate, dtype):
    def grads(device):
        x = sample_x(n=513, dtype=dtype).to(device).requires_grad_()
        w = sample_grad(x.detach().cpu()).to(device)
        y = torch_sugar.relu(x, surrogate, alpha=None, negative_only=False)
        (gx,) = torch.autograd.grad((y * w).sum(), x, create_graph=True)
        (ggx,) = torch.autograd.grad((gx * w).sum(), x)
        return y.detach(), gx.detach(), ggx

    for a, b, what in zip(grads("cuda"), grads("cpu"), ("forward", "first order", "second order")):
        assert_agree(a, b, dtype, f"{surrogate} {what}")


@needs_gpu
def test_alpha_reaches_the_kernel():
    x = sample_x()
    g = sample_grad(x)
    for surrogate, alpha in [("bsilu", 0.5), ("nelu", 0.1), ("elu", 2.0), ("leaky_relu", 0.2)]:
        got = torch.ops.sugar.relu_backward(g.cuda(), x.cuda(), surrogate, alpha, False)
        want = torch.ops.sugar.relu_backward(g, x, surrogate, alpha, False)
        default = torch.ops.sugar.relu_backward(g, x, surrogate, None, False)
        assert not torch.allclose(want, default), surrogate
        assert_agree(got, want, torch.float32, f"{surrogate} alpha={alpha}")


# ---------------------------------------------------------------------------------------------
# Layouts, alignment, tails, empty tensors.


def layouts(dtype, device):
    """(name, x, grad) triples; the same layouts on every device. Each takes the flat or the strided
    path of the CUDA kernels."""
    base = sample_x(n=2 * 3 * 17 * 19, dtype=dtype).reshape(2, 3, 17, 19).to(device)
    grad = sample_grad(base.cpu()).to(device)
    cl = torch.channels_last
    return [
        ("contiguous", base, grad),
        ("channels_last", base.contiguous(memory_format=cl), grad.contiguous(memory_format=cl)),
        ("transposed", base.transpose(1, 3), grad.transpose(1, 3)),
        ("sliced with step", base[:, :, ::2, 1::3], grad[:, :, ::2, 1::3]),
        ("self contiguous, grad transposed", base.transpose(2, 3).contiguous(), grad.transpose(2, 3)),
        ("self channels_last, grad contiguous", base.contiguous(memory_format=cl), grad.contiguous()),
        ("grad expanded (stride 0)", base, torch.ones((), dtype=dtype, device=device).expand(base.shape)),
        ("0-dim", base[0, 0, 0, 0].clone(), grad[0, 0, 0, 0].clone()),
    ]


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_layouts_values_and_output_strides_match_cpu(dtype):
    for (name, xc, gc), (_, x, g) in zip(layouts(dtype, "cuda"), layouts(dtype, "cpu")):
        assert xc.stride() == x.stride() and gc.stride() == g.stride(), name
        y = torch.ops.sugar.relu(xc, "mish", None, False)
        y_cpu = torch.ops.sugar.relu(x, "mish", None, False)
        assert y.stride() == y_cpu.stride() == torch.empty_like(xc).stride(), name
        assert torch.equal(y.cpu(), y_cpu), name
        gx = torch.ops.sugar.relu_backward(gc, xc, "mish", None, False)
        gx_cpu = torch.ops.sugar.relu_backward(g, x, "mish", None, False)
        assert gx.stride() == gx_cpu.stride(), name
        assert_agree(gx, gx_cpu, dtype, name)
        ggx = torch.ops.sugar._relu_double_backward(gc, gc, xc, "bsilu", None, True)
        ggx_cpu = torch.ops.sugar._relu_double_backward(g, g, x, "bsilu", None, True)
        assert ggx.stride() == ggx_cpu.stride(), name
        assert_agree(ggx, ggx_cpu, dtype, name)


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_misaligned_storage_and_tails(dtype, offset):
    """Storage offsets break 16-byte alignment (the element-wise flat path); odd lengths leave a
    tail after the last whole vector (the scalar tail of the vectorized path)."""
    for n in [1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 127, 4096 + 5, 2 ** 20 + 3]:
        xbuf = sample_x(n=n + 32, dtype=dtype, seed=n).cuda()
        gbuf = sample_grad(xbuf.cpu(), seed=n + 1).cuda()
        x = xbuf[offset:offset + n]
        # grad offset by (offset + 1) % 3: aligned where x is not, or misaligned differently
        goff = (offset + 1) % 3
        g = gbuf[goff:goff + n]
        assert x.is_contiguous() and x.numel() == n and g.numel() == n
        y = torch.ops.sugar.relu(x, "bsilu", None, False)
        assert torch.equal(bits(y.cpu()), bits(torch.ops.sugar.relu(x.cpu(), "bsilu", None, False))), n
        assert torch.equal(y, torch.relu(x)), n
        gx = torch.ops.sugar.relu_backward(g, x, "bsilu", None, False)
        want = torch.ops.sugar.relu_backward(g.cpu(), x.cpu(), "bsilu", None, False)
        assert_agree(gx, want, dtype, f"n={n} offset={offset}")
        ggx = torch.ops.sugar._relu_double_backward(g, g, x, "gelu", None, False)
        want = torch.ops.sugar._relu_double_backward(g.cpu(), g.cpu(), x.cpu(), "gelu", None, False)
        assert_agree(ggx, want, dtype, f"double backward n={n} offset={offset}")


@needs_gpu
@pytest.mark.parametrize("shape", [(0,), (3, 0, 2), (0, 4)])
def test_empty_tensors(shape):
    x = torch.empty(shape, device="cuda")
    y = torch.ops.sugar.relu(x, "bsilu", None, False)
    assert y.shape == x.shape and y.is_cuda
    gx = torch.ops.sugar.relu_backward(torch.empty_like(x), x, "gelu", None, False)
    assert gx.shape == x.shape and gx.is_cuda
    ggx = torch.ops.sugar._relu_double_backward(x, x, x, "gelu", None, False)
    assert ggx.shape == x.shape


@needs_gpu
def test_bad_arguments_on_cuda():
    x = torch.randn(8, device="cuda")
    with pytest.raises(TypeError, match="torch.int64"):
        torch.ops.sugar.relu(torch.arange(8, device="cuda"), "bsilu", None, False)
    with pytest.raises(ValueError, match="same device"):
        torch.ops.sugar.relu_backward(torch.randn(8), x, "bsilu", None, False)
    with pytest.raises(ValueError, match="same shape"):
        torch.ops.sugar.relu_backward(torch.randn(4, device="cuda"), x, "bsilu", None, False)
    with pytest.raises(ValueError, match="surrogate"):
        torch.ops.sugar.relu(x, "no_such_surrogate", None, False)


# ---------------------------------------------------------------------------------------------
# More than 2^31 elements: 64-bit indexing in the flat path, 32-bit splitting in the strided path.


def free_gpu_bytes():
    free, _total = torch.cuda.mem_get_info()
    return free


@needs_gpu
@pytest.mark.skipif(not GPU or free_gpu_bytes() < 16 * 2 ** 30,
                    reason="needs >= 16 GiB of free GPU memory for 2^31+ bfloat16 elements")
def test_more_than_2_31_elements():
    n = 2 ** 31 + 1001  # not a multiple of the vector width: the tail is past 2^31 too
    x = torch.empty(n, dtype=torch.bfloat16, device="cuda")
    x.uniform_(-4, 4)
    checks = [slice(0, 4096), slice(2 ** 31 - 2048, 2 ** 31 + 2048), slice(n - 4096, n)]
    try:
        y = torch.ops.sugar.relu(x, "bsilu", None, False)
        assert torch.equal(y, torch.relu(x))
        del y
        # Flat, vectorized path (grad and x dense, same strides).
        g = torch.full_like(x, 0.5)
        gx = torch.ops.sugar.relu_backward(g, x, "bsilu", None, False)
        for s in checks:
            want = torch.ops.sugar.relu_backward(g[s].cpu(), x[s].cpu(), "bsilu", None, False)
            torch.testing.assert_close(gx[s].cpu(), want, rtol=2 ** -7, atol=0)
        del gx, g
        # Strided path (grad expanded, stride 0), split into 32-bit pieces.
        g = torch.full((1,), 0.5, dtype=torch.bfloat16, device="cuda").expand(n)
        gx = torch.ops.sugar.relu_backward(g, x, "bsilu", None, False)
        for s in checks:
            want = torch.ops.sugar.relu_backward(g[s].cpu(), x[s].cpu(), "bsilu", None, False)
            torch.testing.assert_close(gx[s].cpu(), want, rtol=2 ** -7, atol=0)
        assert not gx.isnan().any()
    finally:
        torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------
# Streams, CUDA graphs, devices.


@needs_gpu
def test_runs_on_the_current_stream():
    """On a side stream, the op's input is written after a long sleep kernel. If the op ran on any
    other stream it would read the input before that write (and see zeros)."""
    src = sample_x(n=1 << 20).cuda()
    g_src = sample_grad(src.cpu()).cuda()
    x = torch.zeros_like(src)
    g = torch.zeros_like(src)
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(200_000_000)  # ~0.1 s of spinning on the side stream
        x.copy_(src)
        g.copy_(g_src)
        y = torch.ops.sugar.relu(x, "bsilu", None, False)
        gx = torch.ops.sugar.relu_backward(g, x, "bsilu", None, False)
        ggx = torch.ops.sugar._relu_double_backward(g, g, x, "bsilu", None, False)
        assert not side.query(), "the sleep kernel should still be running"
    side.synchronize()
    assert torch.equal(y, torch.relu(src))
    assert_agree(gx, torch.ops.sugar.relu_backward(g_src.cpu(), src.cpu(), "bsilu", None, False),
                 torch.float32, "backward on a side stream")
    assert_agree(ggx, torch.ops.sugar._relu_double_backward(g_src.cpu(), g_src.cpu(), src.cpu(), "bsilu",
                                                            None, False),
                 torch.float32, "double backward on a side stream")


@needs_gpu
def test_cuda_graph_capture_and_replay():
    static_x = torch.zeros(4096 + 3, device="cuda", requires_grad=True)
    static_w = torch.zeros(4096 + 3, device="cuda")
    # Warm up on a side stream, as CUDA graph capture asks.
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            y = torch_sugar.relu(static_x, "gelu")
            (y * static_w).sum().backward()
            static_x.grad = None
    torch.cuda.current_stream().wait_stream(side)

    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_y = torch_sugar.relu(static_x, "gelu")
        (static_gx,) = torch.autograd.grad((static_y * static_w).sum(), static_x)

    for seed in range(3):
        x = sample_x(n=4096 + 3, seed=seed)
        w = sample_grad(x, seed=seed + 10)
        with torch.no_grad():
            static_x.copy_(x.cuda())
            static_w.copy_(w.cuda())
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(static_y.detach().cpu(), torch.relu(x))
        want = torch.ops.sugar.relu_backward(w, x, "gelu", None, False)
        assert_agree(static_gx, want, torch.float32, f"graph replay {seed}")


@needs_gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_second_gpu():
    torch.cuda.set_device(0)
    x = sample_x(n=10007)
    g = sample_grad(x)
    x1, g1 = x.to("cuda:1"), g.to("cuda:1")
    y = torch.ops.sugar.relu(x1, "bsilu", None, False)
    gx = torch.ops.sugar.relu_backward(g1, x1, "bsilu", None, False)
    ggx = torch.ops.sugar._relu_double_backward(g1, g1, x1, "bsilu", None, False)
    assert y.device == gx.device == ggx.device == torch.device("cuda:1")
    assert torch.cuda.current_device() == 0
    assert torch.equal(y.cpu(), torch.relu(x))
    assert_agree(gx, torch.ops.sugar.relu_backward(g, x, "bsilu", None, False), torch.float32, "cuda:1")
    assert_agree(ggx, torch.ops.sugar._relu_double_backward(g, g, x, "bsilu", None, False), torch.float32,
                 "cuda:1 double backward")
    with pytest.raises(ValueError, match="same device"):
        torch.ops.sugar.relu_backward(g1, x.to("cuda:0"), "bsilu", None, False)


# ---------------------------------------------------------------------------------------------
# gradcheck, opcheck and torch.compile on CUDA.


def away_from_kinks(n, seed):
    """float64 points at least 0.05 from 0, where negative_only and the piecewise surrogates
    (relu, nelu, elu, selu, leaky_relu) switch branch, so finite differences see smooth functions."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=gen, dtype=torch.float64) * 3
    return torch.where(x.abs() < 0.05, x.sign() * 0.05 + x, x)


@needs_gpu
@pytest.mark.parametrize("negative_only", [False, True])
@pytest.mark.parametrize("surrogate", SURROGATES)
def test_gradcheck_backward_op_on_cuda(surrogate, negative_only):
    """relu_backward(g, x) is smooth in g and x (away from the kinks); its gradient is the
    double-backward kernel (w.r.t. x) and relu_backward again (w.r.t. g)."""
    x = away_from_kinks(23, seed=3).cuda().requires_grad_()
    g = torch.randn(23, dtype=torch.float64, device="cuda").requires_grad_()
    assert torch.autograd.gradcheck(
        lambda g, x: torch.ops.sugar.relu_backward(g, x, surrogate, None, negative_only), (g, x))


@needs_gpu
def test_gradcheck_relu_control_on_cuda():
    """With surrogate="relu" the op is exactly relu, so its gradient is checkable numerically."""
    x = away_from_kinks(31, seed=4).cuda().requires_grad_()
    assert torch.autograd.gradcheck(lambda x: torch_sugar.relu(x, "relu"), (x,))
    assert torch.autograd.gradgradcheck(lambda x: torch_sugar.relu(x, "relu"), (x,))


@needs_gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_opcheck_on_cuda(dtype):
    x = torch.randn(3, 5, 7, device="cuda", dtype=dtype)
    g = torch.randn_like(x)
    cl = torch.randn(2, 3, 4, 5, device="cuda", dtype=dtype).contiguous(memory_format=torch.channels_last)
    torch.library.opcheck(torch.ops.sugar.relu.default, (x, "bsilu", None, False))
    torch.library.opcheck(torch.ops.sugar.relu.default, (cl, "mish", None, True))
    torch.library.opcheck(torch.ops.sugar.relu_backward.default, (g, x, "gelu", None, False))
    torch.library.opcheck(torch.ops.sugar.relu_backward.default, (g.transpose(0, 2), x.transpose(0, 2), "nelu", 0.05, True))
    torch.library.opcheck(torch.ops.sugar._relu_double_backward.default, (g, g, x, "bsilu", None, False),
                          test_utils=("test_schema", "test_faketensor"))


@needs_gpu
def test_torch_compile_fullgraph_on_cuda():
    from torch.utils._triton import has_triton

    backend = "inductor" if has_triton() else "aot_eager"
    torch._dynamo.reset()

    def f(x, w):
        return (torch_sugar.relu(x * 1.5 + 0.25, "bsilu") * w).sum()

    compiled = torch.compile(f, fullgraph=True, backend=backend)
    x = sample_x(n=1000).cuda().requires_grad_()
    w = sample_grad(x.detach().cpu()).cuda()
    loss = compiled(x, w)
    (gx,) = torch.autograd.grad(loss, x)
    x_ref = x.detach().clone().requires_grad_()
    loss_ref = f(x_ref, w)
    (gx_ref,) = torch.autograd.grad(loss_ref, x_ref)
    torch.testing.assert_close(loss, loss_ref, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# A CPU-only build and a CUDA tensor (runs on any machine with a CPU-only build).


class ClaimsCuda(torch.Tensor):
    """A tensor subclass whose device is "cuda" but that holds its data on the CPU: it dispatches
    like a CUDA tensor (CUDA and AutogradCUDA keys), without needing a GPU. Whatever reaches its
    __torch_dispatch__ would have reached a CUDA kernel."""

    @staticmethod
    def __new__(cls, data):
        return torch.Tensor._make_wrapper_subclass(cls, data.shape, dtype=data.dtype, device="cuda")

    def __init__(self, data):
        self.data_ = data

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise AssertionError(f"{func} reached the CUDA backend")


cpu_only_build = pytest.mark.skipif(HAS_CUDA_KERNELS, reason="this build has the CUDA kernels")
NO_CUDA_MESSAGE = r"this build of torch-sugar has no CUDA kernels.*SUGAR_CUDA=1"


@cpu_only_build
def test_cpu_only_build_registers_no_cuda_kernel():
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    for op in ("sugar::relu", "sugar::relu_backward", "sugar::_relu_double_backward"):
        assert not has(op, "CUDA"), op
        assert has(op, "CPU"), op
    assert torch_sugar.build_info()["kernels"]["CUDA"] is False
    assert torch_sugar.build_info()["cuda_arch_list"] is None


@cpu_only_build
def test_cpu_only_build_says_it_has_no_cuda_kernels():
    x = ClaimsCuda(torch.randn(4))
    assert x.is_cuda
    calls = {
        "torch_sugar.relu": lambda: torch_sugar.relu(x),
        "torch_sugar.relu_backward": lambda: torch_sugar.relu_backward(x, x),
        "sugar::relu": lambda: torch.ops.sugar.relu(x, "bsilu", None, False),
        "sugar::relu_backward": lambda: torch.ops.sugar.relu_backward(x, x, "bsilu", None, False),
        "sugar::_relu_double_backward": lambda: torch.ops.sugar._relu_double_backward(x, x, x, "bsilu", None, False),
    }
    for name, call in calls.items():
        with pytest.raises(NotImplementedError, match=NO_CUDA_MESSAGE) as info:
            call()
        assert name in str(info.value) and "cuda" in str(info.value)
    # A module call, and a mixed CPU/CUDA call, go the same way.
    with pytest.raises(NotImplementedError, match=NO_CUDA_MESSAGE):
        torch_sugar.SugarReLU("gelu")(x)
    with pytest.raises(NotImplementedError, match=NO_CUDA_MESSAGE):
        torch.ops.sugar.relu_backward(torch.randn(4), x, "bsilu", None, False)


@cpu_only_build
def test_cpu_only_build_inference_mode_wrapper_still_explains():
    """Under inference_mode the C++ autograd layer is skipped; the Python wrapper still explains.
    (torch.ops.sugar.relu called directly there gets the dispatcher's own message.)"""
    with torch.inference_mode():
        x = ClaimsCuda(torch.randn(4))
        with pytest.raises(NotImplementedError, match=NO_CUDA_MESSAGE):
            torch_sugar.relu(x)


@cpu_only_build
def test_cpu_tensors_unaffected_by_the_cuda_error_kernels():
    x = torch.linspace(-2, 2, 9, requires_grad=True)
    y = torch_sugar.relu(x, "bsilu")
    y.sum().backward()
    assert torch.equal(y.detach(), torch.relu(x.detach()))
    assert math.isfinite(float(x.grad.sum()))
