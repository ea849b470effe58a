"""Checks a CUDA build of torch-sugar without needing a GPU.

    python scripts/check_cuda_build.py BUILD_LIB

BUILD_LIB is the folder `setup.py build --build-lib` filled (it holds torch_sugar/ with
lib/libtorch_sugar.so and _C). Imports the package from there, then checks that the op library
registered CUDA kernels for every sugar op (and CPU, Meta and Autograd ones), that the build says
it has CUDA, and that the CPU kernels of this library still agree with torch.relu. With a GPU it
also runs each op once on it. Prints one OK line, or exits non-zero naming what is wrong.
"""

import os
import sys


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    build_lib = os.path.abspath(argv[1])
    sys.path.insert(0, build_lib)
    import torch

    import torch_sugar

    problems = []
    where = os.path.dirname(os.path.abspath(torch_sugar.__file__))
    if not where.startswith(build_lib + os.sep):
        problems.append(f"torch_sugar was imported from {where}, not from {build_lib}")
    info = torch_sugar.build_info()
    if not info["cuda_compiled"]:
        problems.append("build_info()['cuda_compiled'] is False: the library was built without CUDA")
    if torch.version.cuda is None:
        problems.append(f"torch {torch.__version__} has no CUDA; this check needs the CUDA build")

    has = torch._C._dispatch_has_kernel_for_dispatch_key
    ops = ["sugar::relu", "sugar::relu_backward", "sugar::_relu_double_backward"]
    for op in ops:
        for key in ("CUDA", "CPU", "Meta", "Autograd"):
            if not has(op, key):
                problems.append(f"{op} has no {key} kernel")
        # The CUDA kernels must be the real ones, not the "no CUDA kernels" error kernels that
        # only CPU-only builds register for the CUDA key (csrc/ops/no_cuda_kernel.cpp).
        table = torch._C._dispatch_dump_table(op)
        row = next((line for line in table.splitlines() if line.startswith("CUDA:")), "")
        if not row or "no_cuda_kernel" in row:
            problems.append(f"{op}: CUDA tensors do not reach a CUDA kernel ({row or 'no CUDA entry'})")

    # The CPU half of this library still works (same process, same library).
    x = torch.linspace(-3, 3, 101, dtype=torch.float64, requires_grad=True)
    y = torch_sugar.relu(x, "bsilu")
    y.sum().backward()
    if not torch.equal(y.detach(), torch.relu(x.detach())):
        problems.append("the CPU forward of this build differs from torch.relu")
    sig = torch.sigmoid(x.detach())
    want = sig + (x.detach() + 1.67) * sig * (1 - sig)
    if not torch.allclose(x.grad, want, rtol=1e-12, atol=1e-12):
        problems.append("the CPU backward of this build differs from the B-SiLU derivative")

    ran_on_gpu = False
    if not problems and torch.cuda.is_available():
        xc = x.detach().cuda().requires_grad_()
        yc = torch_sugar.relu(xc, "bsilu")
        (gc,) = torch.autograd.grad(yc.sum(), xc, create_graph=True)
        (ggc,) = torch.autograd.grad(gc.sum(), xc)
        torch.cuda.synchronize()
        if not torch.equal(yc.cpu(), y.detach()) or not torch.allclose(
            gc.cpu(), want, rtol=1e-12, atol=1e-12
        ):
            problems.append("the CUDA kernels disagree with the CPU ones")
        ran_on_gpu = bool(torch.isfinite(ggc).all())

    if problems:
        print("FAILED: CUDA build check in " + build_lib, file=sys.stderr)
        for p in problems:
            print("  - " + p, file=sys.stderr)
        return 1
    arch = info.get("cuda_arch_list")
    gpu = (
        ("ran fwd/bwd/double-bwd on " + torch.cuda.get_device_name())
        if ran_on_gpu
        else "not run: no GPU on this machine"
    )
    print(
        f"OK: CUDA build of torch-sugar (torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"arch {arch}) registers CUDA kernels for {', '.join(ops)}; CPU kernels agree with torch.relu; "
        f"{gpu}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
