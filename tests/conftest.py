import pytest
import torch

import torch_sugar  # noqa: F401  (loads the op library)
from reference import DTYPE_NAMES

# Devices the device-parametrized tests run on: the CPU, and CUDA where there is a GPU and the build
# has CUDA kernels (a CPU-only build's CUDA behaviour is tested in test_cuda.py).
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() and torch_sugar.build_info()["cuda_compiled"] else [])
DTYPES = [getattr(torch, name) for name in DTYPE_NAMES]


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param
