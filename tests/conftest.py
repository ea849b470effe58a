"""Test support shared by the test files: the devices and dtypes they run on, the `device` fixture, and
the check of another device's kernels against the CPU kernels. (The float64 reference, the surrogate
lists and bits() are in reference.py.)"""

import pytest
import torch

import torch_sugar  # loads the op library
from reference import DTYPE_NAMES

# Devices the device-parametrized tests run on: the CPU, and CUDA where there is a GPU and the build
# has CUDA kernels (a CPU-only build's CUDA behaviour is tested in test_cuda.py).
HAS_CUDA = torch.cuda.is_available() and torch_sugar.build_info()["cuda_compiled"]
DEVICES = ["cpu"] + (["cuda"] if HAS_CUDA else [])
DTYPES = [getattr(torch, name) for name in DTYPE_NAMES]


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


# (rtol, atol) of another device's kernels against the CPU kernels. Half types: both compute in
# float and round once, so they differ by at most one unit in the last place of the result, where
# the float results straddle a rounding boundary. float32: CUDA's expf/erfcf are within 2 ulp of
# glibc's, a few more after the products and sums of the formulas; atol (times the largest value)
# covers results that cancel to near zero (s'' of gelu near x = sqrt(2)).
CPU_AGREEMENT_TOLS = {
    torch.float16: (2**-10, 1e-5),
    torch.bfloat16: (2**-7, 1e-5),
    torch.float32: (1e-5, 1e-6),
    torch.float64: (1e-13, 1e-15),
}


def assert_agrees_with_cpu(got, want, dtype, what):
    rtol, atol = CPU_AGREEMENT_TOLS[dtype]
    scale = max(1.0, float(want.double().abs().max())) if want.numel() else 1.0
    torch.testing.assert_close(
        got.cpu(), want, rtol=rtol, atol=atol * scale, equal_nan=True, msg=lambda m: f"{what}: {m}"
    )
