"""Error of the CPU kernels' float32 exponential over every float32 in [-104, 0].

The vector kernels take exp only of non-positive numbers (csrc/ops/surrogate_math.h, vexp for
Vectorized<float>). ELU's derivative with alpha = 1 and a unit gradient is exactly that
exponential for x <= 0 (1 * (1 * exp(x)): no other rounding), so relu_backward(ones, x, "elu", 1.0)
returns its bits. Compared against float64 exp, in units in the last place of the float32 result
(2^-149 below FLT_MIN). Below -104, at -inf and for NaN the expected results (0, 0, NaN) are
checked exactly. Run per variant: SUGAR_CPU_CAPABILITY=avx512|avx2|default python
benchmarks/exp_ulp.py
"""

import argparse
import json

import torch

import torch_sugar  # noqa: F401


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunk-log2", type=int, default=24)
    parser.add_argument("--stride", type=int, default=1, help="every n-th float (1: all)")
    args = parser.parse_args()
    ops = torch.ops.sugar
    lo_bits = torch.tensor([-104.0], dtype=torch.float32).view(torch.int32).item() & 0xFFFFFFFF
    first, last = 0x80000000, lo_bits  # -0.0 ... -104.0, magnitudes increasing
    chunk = 1 << args.chunk_log2
    worst_normal = worst_sub = 0.0
    worst_x = None
    total = sum_ulp = 0.0
    count = 0
    for start in range(first, last + 1, chunk * args.stride):
        stop = min(start + chunk * args.stride, last + 1)
        b = torch.arange(start, stop, args.stride, dtype=torch.int64)
        x = (b - (1 << 32) * (b >= (1 << 31))).to(torch.int32).view(torch.float32)
        out = ops.relu_backward(torch.ones_like(x), x, "elu", 1.0, False).double()
        ref = torch.exp(x.double())
        _, e = torch.frexp(ref)
        ulp = torch.clamp(torch.ldexp(torch.ones_like(ref), e.to(torch.float64) - 24), min=2.0**-149)
        err = (out - ref).abs() / ulp
        normal = ref >= 2.0**-126
        if normal.any():
            m = err[normal].max().item()
            if m > worst_normal:
                worst_normal, worst_x = m, x[normal][err[normal].argmax()].item()
        if (~normal).any():
            worst_sub = max(worst_sub, err[~normal].max().item())
        sum_ulp += err[normal].sum().item()
        count += int(normal.sum())
        total += x.numel()
    special = torch.tensor([-104.0, -105.0, -1e30, float("-inf"), float("nan")])
    sp = ops.relu_backward(torch.ones_like(special), special, "elu", 1.0, False)
    assert torch.equal(sp[:4], torch.zeros(4)), sp
    assert torch.isnan(sp[4]), sp
    result = {
        "variant": ops._cpu_capability(),
        "inputs": int(total),
        "max_ulp_normal": worst_normal,
        "worst_x": worst_x,
        "mean_ulp_normal": sum_ulp / max(count, 1),
        "max_error_subnormal_in_2^-149": worst_sub,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
