"""Benchmark of the sugar ops on a GPU: forward, backward and forward+backward times against
torch.relu and the seed's FGI (stop-gradient) form, and the achieved memory bandwidth as a share
of a device-to-device copy's.

    PYTHONPATH=<build-lib> python scripts/gpu_bench.py [--sizes 24,26] [--dtypes float32,bfloat16]
        [--surrogates bsilu,gelu,mish] [--reps 50] [--json FILE] [--device cuda|cpu]

Timing: CUDA events around each single call, after warm-up, with L2 flushed before each call
(a 256 MiB write), median of --reps calls; on --device cpu (a dry run of this script where there is
no GPU) perf_counter instead. "fwd" and "bwd" time the ops themselves (torch.ops.sugar.relu and
relu_backward; torch.relu and aten.threshold_backward for the baseline), "fwd+bwd" the autograd
round trip y = f(x); autograd.grad(y, x, g), for every implementation alike. Bytes moved: forward
reads x and writes y, backward reads grad and x (torch.relu: y) and writes grad_x.

Prints the table last; writes JSON to --json, or to $OUT/gpu_bench.json when OUT is set.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

import torch_sugar

DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float64": torch.float64,
}


def fgi_bsilu(x, alpha=1.67):
    """The seed's Forward Gradient Injection form of B-SiLU SUGAR (arXiv 2505.22074, via 2406.00177):
    h = x * sg(g'(x)); y = h - sg(h) + sg(relu(x))."""
    sig = torch.sigmoid(x)
    d = sig + (x + alpha) * sig * (1 - sig)
    h = x * d.detach()
    return h - h.detach() + torch.relu(x).detach()


class Timer:
    def __init__(self, device, reps, warmup, flush):
        self.device, self.reps, self.warmup = device, reps, warmup
        self.cuda = device.type == "cuda"
        self.flush_buf = (
            torch.empty(256 * 2**20, dtype=torch.uint8, device=device) if (self.cuda and flush) else None
        )

    def __call__(self, fn):
        """Median seconds of one call of fn."""
        for _ in range(self.warmup):
            fn()
        times = []
        if self.cuda:
            torch.cuda.synchronize()
            for _ in range(self.reps):
                if self.flush_buf is not None:
                    self.flush_buf.fill_(1)
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
        else:
            for _ in range(self.reps):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
        return statistics.median(times)


def bench_size(dtype, n, surrogates, timer, device):
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, generator=gen, device=device, dtype=dtype)
    g = torch.randn(n, generator=gen, device=device, dtype=dtype)
    xr = x.clone().requires_grad_()
    es = x.element_size()
    dst = torch.empty_like(x)
    rows = []

    copy_s = timer(lambda: dst.copy_(x))
    copy_bw = 2 * n * es / copy_s

    def row(impl, fwd_s, bwd_s, fb_s):
        rows.append(
            {
                "dtype": str(dtype).replace("torch.", ""),
                "n": n,
                "impl": impl,
                "fwd_us": None if fwd_s is None else fwd_s * 1e6,
                "bwd_us": None if bwd_s is None else bwd_s * 1e6,
                "fwd_bwd_us": fb_s * 1e6,
                "fwd_gbps": None if fwd_s is None else 2 * n * es / fwd_s / 1e9,
                "bwd_gbps": None if bwd_s is None else 3 * n * es / bwd_s / 1e9,
                "copy_gbps": copy_bw / 1e9,
            }
        )

    # torch.relu: forward, its backward kernel (threshold_backward on the saved output), round trip.
    y_relu = torch.relu(x)
    row(
        "torch.relu",
        timer(lambda: torch.relu(x)),
        timer(lambda: torch.ops.aten.threshold_backward(g, y_relu, 0)),
        timer(lambda: torch.autograd.grad(torch.relu(xr), xr, g)),
    )
    row("FGI bsilu (eager)", None, None, timer(lambda: torch.autograd.grad(fgi_bsilu(xr), xr, g)))
    for s in surrogates:
        row(
            f"sugar {s}",
            timer(lambda: torch.ops.sugar.relu(x, s, None, False)),
            timer(lambda: torch.ops.sugar.relu_backward(g, x, s, None, False)),
            timer(lambda: torch.autograd.grad(torch.ops.sugar.relu(xr, s, None, False), xr, g)),
        )
    return rows


def fmt(v, width, decimals, suffix=""):
    """v right-aligned in width characters (suffix included); "-" for a missing value."""
    text = "-" if v is None else f"{v:.{decimals}f}{suffix}"
    return f"{text:>{width}}"


def print_table(rows, targets_at):
    head = (
        f"{'dtype':9} {'n':>6} {'impl':18} {'fwd us':>9} {'bwd us':>9} {'f+b us':>9} "
        f"{'fwd %copy':>9} {'bwd %copy':>9} {'f+b /relu':>9} {'FGI/this':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        base = next(
            b for b in rows if b["dtype"] == r["dtype"] and b["n"] == r["n"] and b["impl"] == "torch.relu"
        )
        fgi = next(
            b for b in rows if b["dtype"] == r["dtype"] and b["n"] == r["n"] and b["impl"].startswith("FGI")
        )
        r["fwd_pct_copy"] = None if r["fwd_gbps"] is None else 100 * r["fwd_gbps"] / r["copy_gbps"]
        r["bwd_pct_copy"] = None if r["bwd_gbps"] is None else 100 * r["bwd_gbps"] / r["copy_gbps"]
        r["fwd_bwd_vs_relu"] = r["fwd_bwd_us"] / base["fwd_bwd_us"]
        r["fgi_over_this"] = fgi["fwd_bwd_us"] / r["fwd_bwd_us"]
        n = f"2^{r['n'].bit_length() - 1}" if r["n"] & (r["n"] - 1) == 0 else str(r["n"])
        print(
            f"{r['dtype']:9} {n:>6} {r['impl']:18} {fmt(r['fwd_us'], 9, 1)} {fmt(r['bwd_us'], 9, 1)} "
            f"{fmt(r['fwd_bwd_us'], 9, 1)} {fmt(r['fwd_pct_copy'], 9, 1, '%')} "
            f"{fmt(r['bwd_pct_copy'], 9, 1, '%')} {fmt(r['fwd_bwd_vs_relu'], 9, 3, 'x')} "
            f"{fmt(r['fgi_over_this'], 8, 2, 'x')}"
        )
    # The targets, for the sugar rows at the sizes they are set for.
    print()
    print(
        f"targets (sugar rows, n >= 2^{targets_at}): fwd and bwd >= 85% of copy bandwidth; "
        "fwd+bwd <= 1.05x torch.relu; >= 4x faster than the FGI form"
    )
    misses = []
    for r in rows:
        if not r["impl"].startswith("sugar") or r["n"] < 2**targets_at:
            continue
        name = f"{r['dtype']} 2^{r['n'].bit_length() - 1} {r['impl']}"
        if r["fwd_pct_copy"] < 85:
            misses.append(f"{name}: fwd {r['fwd_pct_copy']:.1f}% of copy")
        if r["bwd_pct_copy"] < 85:
            misses.append(f"{name}: bwd {r['bwd_pct_copy']:.1f}% of copy")
        if r["fwd_bwd_vs_relu"] > 1.05:
            misses.append(f"{name}: fwd+bwd {r['fwd_bwd_vs_relu']:.3f}x torch.relu")
        if r["fgi_over_this"] < 4:
            misses.append(f"{name}: only {r['fgi_over_this']:.2f}x faster than FGI")
    print("all met" if not misses else "missed:\n  " + "\n  ".join(misses))
    return misses


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--sizes", default="24,26", help="log2 of the element counts, comma-separated")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--surrogates", default="bsilu,gelu,mish")
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--no-flush", action="store_true", help="do not flush L2 before each call")
    p.add_argument("--targets-at", type=int, default=26, help="log2 size from which targets apply")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_bench: no CUDA device (use --device cpu for a dry run)")
    timer = Timer(device, args.reps, args.warmup, flush=not args.no_flush)
    surrogates = [s for s in args.surrogates.split(",") if s]
    rows = []
    for dname in args.dtypes.split(","):
        for lg in (int(v) for v in args.sizes.split(",")):
            rows += bench_size(DTYPES[dname], 2**lg, surrogates, timer, device)
            if device.type == "cuda":
                torch.cuda.empty_cache()

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print()
    print(
        f"device: {gpu}; torch {torch.__version__}; torch-sugar {torch_sugar.__version__} "
        f"(CUDA kernels: {torch_sugar.build_info()['cuda_compiled']}, "
        f"arch {torch_sugar.build_info().get('cuda_arch_list')}); median of {args.reps} calls"
        f"{'' if args.no_flush or device.type != 'cuda' else ', L2 flushed before each'}"
    )
    misses = print_table(rows, args.targets_at)

    path = args.json or (os.path.join(os.environ["OUT"], "gpu_bench.json") if os.environ.get("OUT") else None)
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(
                {
                    "device": gpu,
                    "torch": torch.__version__,
                    "build_info": torch_sugar.build_info(),
                    "reps": args.reps,
                    "rows": rows,
                    "target_misses": misses,
                },
                f,
                indent=1,
            )
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
