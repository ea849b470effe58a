"""CUDA-only concerns of the sugar ops: more than 2^31 elements, streams, CUDA graphs, a second GPU,
and what a CPU-only build says when given a CUDA tensor.

Everything that is the same on every device (values against the float64 reference and against the
CPU kernels, layouts and output strides, alignment and tails, empty tensors, bad arguments,
gradcheck, opcheck, torch.compile) is device-parametrized in test_ops.py, test_autograd.py and
test_pt2.py (the `device` fixture of conftest.py: the CPU, and CUDA where there is a GPU).

Everything that needs a GPU is skipped without one (and in a build without the CUDA kernels). The
last section runs on any machine: in a CPU-only build a CUDA tensor gets an error that says the
build lacks CUDA kernels and how to build with them (checked with a tensor subclass that claims
device "cuda", which needs no GPU).
"""

import math

import pytest
import torch

import torch_sugar
from conftest import assert_agrees_with_cpu

HAS_CUDA_KERNELS = torch_sugar.build_info()["cuda_compiled"]
GPU = torch.cuda.is_available()

needs_gpu = pytest.mark.skipif(
    not (GPU and HAS_CUDA_KERNELS),
    reason="needs a CUDA GPU and a torch-sugar build with CUDA kernels "
    f"(GPU: {GPU}, CUDA kernels compiled: {HAS_CUDA_KERNELS})",
)


def sample_x(n=4099, seed=0):
    """float32 inputs that cover every branch: 0 and +-0, tiny, moderate, large and huge values."""
    gen = torch.Generator().manual_seed(seed)
    special = torch.tensor(
        [
            0.0,
            -0.0,
            1e-30,
            -1e-30,
            1e-3,
            -1e-3,
            0.5,
            -0.5,
            1.0,
            -1.0,
            3.0,
            -3.0,
            10.0,
            -10.0,
            30.0,
            -30.0,
            60.0,
            -60.0,
            1e4,
            -1e4,
            1e30,
            -1e30,
        ],
        dtype=torch.float64,
    )
    body = torch.randn(n - special.numel(), generator=gen, dtype=torch.float64) * 4
    return torch.cat([special, body]).float()


def sample_grad(like, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(like.shape, generator=gen, dtype=torch.float64).to(like.dtype)


def assert_agree(cuda_result, cpu_result, what):
    assert_agrees_with_cpu(cuda_result, cpu_result, cpu_result.dtype, what)


# ---------------------------------------------------------------------------------------------
# More than 2^31 elements: 64-bit indexing in the flat path, 32-bit splitting in the strided path.


def free_gpu_bytes():
    free, _total = torch.cuda.mem_get_info()
    return free


@needs_gpu
@pytest.mark.skipif(
    not GPU or free_gpu_bytes() < 16 * 2**30,
    reason="needs >= 16 GiB of free GPU memory for 2^31+ bfloat16 elements",
)
def test_more_than_2_31_elements():
    n = 2**31 + 1001  # not a multiple of the vector width: the tail is past 2^31 too
    x = torch.empty(n, dtype=torch.bfloat16, device="cuda")
    x.uniform_(-4, 4)
    checks = [slice(0, 4096), slice(2**31 - 2048, 2**31 + 2048), slice(n - 4096, n)]
    try:
        y = torch.ops.sugar.relu(x, "bsilu", None, False)
        assert torch.equal(y, torch.relu(x))
        del y
        # Flat, vectorized path (grad and x dense, same strides).
        g = torch.full_like(x, 0.5)
        gx = torch.ops.sugar.relu_backward(g, x, "bsilu", None, False)
        for s in checks:
            want = torch.ops.sugar.relu_backward(g[s].cpu(), x[s].cpu(), "bsilu", None, False)
            torch.testing.assert_close(gx[s].cpu(), want, rtol=2**-7, atol=0)
        del gx, g
        # Strided path (grad expanded, stride 0), split into 32-bit pieces.
        g = torch.full((1,), 0.5, dtype=torch.bfloat16, device="cuda").expand(n)
        gx = torch.ops.sugar.relu_backward(g, x, "bsilu", None, False)
        for s in checks:
            want = torch.ops.sugar.relu_backward(g[s].cpu(), x[s].cpu(), "bsilu", None, False)
            torch.testing.assert_close(gx[s].cpu(), want, rtol=2**-7, atol=0)
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
    assert_agree(
        gx,
        torch.ops.sugar.relu_backward(g_src.cpu(), src.cpu(), "bsilu", None, False),
        torch.float32,
        "backward on a side stream",
    )
    assert_agree(
        ggx,
        torch.ops.sugar._relu_double_backward(g_src.cpu(), g_src.cpu(), src.cpu(), "bsilu", None, False),
        "double backward on a side stream",
    )


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
        assert_agree(static_gx, want, f"graph replay {seed}")


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
    assert_agree(gx, torch.ops.sugar.relu_backward(g, x, "bsilu", None, False), "cuda:1")
    assert_agree(
        ggx, torch.ops.sugar._relu_double_backward(g, g, x, "bsilu", None, False), "cuda:1 double backward"
    )
    with pytest.raises(ValueError, match="same device"):
        torch.ops.sugar.relu_backward(g1, x.to("cuda:0"), "bsilu", None, False)


# ---------------------------------------------------------------------------------------------
# A CPU-only build and a CUDA tensor (runs on any machine with a CPU-only build).


class ClaimsCuda(torch.Tensor):
    """A tensor subclass whose device is "cuda" but that holds its data on the CPU: it dispatches
    like a CUDA tensor (AutogradCUDA, then CUDA), without needing a GPU. What reaches its
    __torch_dispatch__ would have reached a CUDA kernel next: a sugar op is handed to the kernel
    registered for the CUDA key (in a CPU-only build, the error kernel that says so); anything
    else fails the test."""

    @staticmethod
    def __new__(cls, data):
        return torch.Tensor._make_wrapper_subclass(cls, data.shape, dtype=data.dtype, device="cuda")

    def __init__(self, data):
        self.data_ = data

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        if func.namespace == "sugar":
            return func._op_dk(torch._C.DispatchKey.CUDA, *args, **(kwargs or {}))
        raise AssertionError(f"{func} reached the CUDA backend")


cpu_only_build = pytest.mark.skipif(HAS_CUDA_KERNELS, reason="this build has the CUDA kernels")
NO_CUDA_MESSAGE = r"this build of torch-sugar has no CUDA kernels.*SUGAR_CUDA=1"


@cpu_only_build
def test_cpu_only_build_registers_no_cuda_kernel():
    """The CUDA key holds only the error kernels that say so (csrc/ops/no_cuda_kernel.cpp)."""
    for op in ("sugar::relu", "sugar::relu_backward", "sugar::_relu_double_backward"):
        table = torch._C._dispatch_dump_table(op).splitlines()
        cuda_row = next(line for line in table if line.startswith("CUDA:"))
        assert "no_cuda_kernel" in cuda_row, cuda_row
        assert any(line.startswith("CPU:") for line in table), op
    assert torch_sugar.build_info()["cuda_compiled"] is False
    assert torch_sugar.build_info()["kernels"]["CUDA"] is False
    assert torch_sugar.build_info()["cuda_arch_list"] is None


@cpu_only_build
def test_cpu_only_build_says_it_has_no_cuda_kernels():
    x = ClaimsCuda(torch.randn(4))
    assert x.is_cuda
    # The message comes from the op library, one place for every caller: it names the op.
    calls = {
        "sugar::relu": lambda: torch_sugar.relu(x),
        "sugar::relu_backward": lambda: torch_sugar.relu_backward(x, x),
        "sugar::relu ": lambda: torch.ops.sugar.relu(x, "bsilu", None, False),
        "sugar::relu_backward ": lambda: torch.ops.sugar.relu_backward(x, x, "bsilu", None, False),
        "sugar::_relu_double_backward": lambda: torch.ops.sugar._relu_double_backward(
            x, x, x, "bsilu", None, False
        ),
    }
    for name, call in calls.items():
        with pytest.raises(NotImplementedError, match=NO_CUDA_MESSAGE) as info:
            call()
        assert name.strip() in str(info.value) and "cuda" in str(info.value)
    # A module call, and a mixed CPU/CUDA call, go the same way.
    with pytest.raises(NotImplementedError, match=NO_CUDA_MESSAGE):
        torch_sugar.SugarReLU("gelu")(x)
    with pytest.raises(NotImplementedError, match=NO_CUDA_MESSAGE):
        torch.ops.sugar.relu_backward(torch.randn(4), x, "bsilu", None, False)


@cpu_only_build
def test_cpu_only_build_inference_mode_still_explains():
    """Under inference_mode the autograd keys are skipped; the error kernels sit on the CUDA key
    itself, so the wrapper and the op called directly both explain."""
    with torch.inference_mode():
        x = ClaimsCuda(torch.randn(4))
        with pytest.raises(NotImplementedError, match=NO_CUDA_MESSAGE):
            torch_sugar.relu(x)
        with pytest.raises(NotImplementedError, match=NO_CUDA_MESSAGE):
            torch.ops.sugar.relu(x, "bsilu", None, False)


@cpu_only_build
def test_cpu_tensors_unaffected_by_the_cuda_error_kernels():
    x = torch.linspace(-2, 2, 9, requires_grad=True)
    y = torch_sugar.relu(x, "bsilu")
    y.sum().backward()
    assert torch.equal(y.detach(), torch.relu(x.detach()))
    assert math.isfinite(float(x.grad.sum()))
