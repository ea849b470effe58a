#!/usr/bin/env python3
"""Benchmark of torch_sugar.relu against torch.relu and the Python ways of writing SUGAR.

For every device, dtype, size and surrogate it times, side by side in one process:

  relu         torch.relu (the floor: SUGAR's forward is ReLU's, its backward moves the same bytes)
  sugar        torch_sugar.relu (the native op: one fused pass forward, one backward)
  fgi          the paper's stop-gradient form (FGI) in eager mode:
               h = x * sg(g'(x)); y = h - sg(h) + sg(relu(x)), g' written in torch ops
  autograd_fn  a Python torch.autograd.Function with the same math, saving only x
  fgi_compiled torch.compile of the FGI form (inductor); skipped with a note if it fails

Each measurement is the median of --repeats samples after warm-up. The implementations are run
interleaved (rotating order within every repeat), so a slow phase of a shared machine hits all
of them alike; ratios are the medians of the per-repeat ratios, with their interquartile range.
Small tensors are timed over a batch of calls per sample (per-call time is reported).

Memory: "saved" is the bytes autograd keeps for backward (saved_tensors_hooks, unique storages),
"peak" the most memory allocated at once during forward+backward beyond the inputs (CPU: the
allocation timeline of torch.profiler's memory profile; CUDA: torch.cuda.max_memory_allocated),
both as multiples of the input's size.

Allocator (CPU): glibc serves tensors of more than 32 MiB from fresh mmap'd pages, so every call
on a big tensor pays page faults that can dwarf the kernels (on VMs especially) and are the same
for every implementation. Unless --fresh-pages is given, the script restarts itself with
MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ set so freed memory is reused, as a caching
allocator would: the numbers then compare kernels, which is the stricter test of a ratio.

Examples:
  python benchmarks/bench_ops.py --threads 2 --sizes 10,16,20,24 --markdown   # the README tables
  python benchmarks/bench_ops.py --quick                           # smoke run, ~1 minute
  python benchmarks/bench_ops.py --device cuda --sizes 20,24 --json out.json
"""

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import time
import traceback

_MALLOC_ENV = {
    # Larger than any tensor here: keep big blocks on the heap and reuse them.
    "MALLOC_MMAP_THRESHOLD_": str(1 << 40),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 40),
}


def restart_with_malloc_env_if_needed(argv):
    """Re-executes this script with _MALLOC_ENV set (CPU runs on Linux, unless --fresh-pages).

    Done before torch is imported, as glibc reads these variables at process start."""
    if "--fresh-pages" in argv or not sys.platform.startswith("linux") or "-h" in argv or "--help" in argv:
        return
    for i, a in enumerate(argv):
        if a == "--device" and i + 1 < len(argv) and argv[i + 1] != "cpu":
            return
        if a.startswith("--device=") and a != "--device=cpu":
            return
    if all(os.environ.get(k) == v for k, v in _MALLOC_ENV.items()):
        return
    env = dict(os.environ, **_MALLOC_ENV)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + argv, env)


if __name__ == "__main__":
    restart_with_malloc_env_if_needed(sys.argv[1:])

SURROGATES = ("bsilu", "nelu", "gelu", "mish")
IMPLS = ("relu", "sugar", "fgi", "autograd_fn", "fgi_compiled")
DTYPE_NAMES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float64": "float64",
    "fp64": "float64",
    "double": "float64",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="See the module docstring (python benchmarks/bench_ops.py --help) and the README.",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument(
        "--dtypes",
        default="float32,bfloat16",
        help="comma list of float32, bfloat16, float16, float64 (default float32,bfloat16)",
    )
    p.add_argument(
        "--sizes",
        default="10,14,18,22,24",
        help="comma list of element counts as powers of two (10 = 2^10), or a range "
        "like 10-26 (every even power); numbers above 30 are element counts "
        "(default 10,14,18,22,24)",
    )
    p.add_argument(
        "--surrogates", default=",".join(SURROGATES), help=f"comma list (default {','.join(SURROGATES)})"
    )
    p.add_argument("--impls", default=",".join(IMPLS), help=f"comma list of {', '.join(IMPLS)}")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads (default: torch's default for this machine)",
    )
    p.add_argument("--repeats", type=int, default=15, help="timed samples per measurement (default 15)")
    p.add_argument("--warmup", type=int, default=3, help="untimed rounds before timing (default 3)")
    p.add_argument(
        "--min-sample-ms",
        type=float,
        default=2.0,
        help="small tensors are timed over a batch of calls of at least this long (default 2)",
    )
    p.add_argument("--json", metavar="PATH", help="also write every number to this JSON file")
    p.add_argument(
        "--markdown",
        action="store_true",
        help="also print summary tables in Markdown (the README's Benchmarks tables)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: sizes 10,20, float32, bsilu+gelu, 5 repeats, no torch.compile",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the saved/peak memory measurements")
    p.add_argument(
        "--fresh-pages",
        action="store_true",
        help="CPU: keep glibc's default allocation (fresh pages for big tensors; see above)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.sizes = "10,20" if args.sizes == p.get_default("sizes") else args.sizes
        args.dtypes = "float32" if args.dtypes == p.get_default("dtypes") else args.dtypes
        if args.surrogates == p.get_default("surrogates"):
            args.surrogates = "bsilu,gelu"
        if args.impls == p.get_default("impls"):
            args.impls = "relu,sugar,fgi,autograd_fn"
        args.repeats = min(args.repeats, 5)
        args.warmup = min(args.warmup, 2)
    try:
        args.size_list = parse_sizes(args.sizes)
        args.dtype_list = [parse_dtype(d) for d in args.dtypes.split(",") if d.strip()]
    except ValueError as exc:
        p.error(str(exc))
    args.surrogate_list = [s.strip() for s in args.surrogates.split(",") if s.strip()]
    for s in args.surrogate_list:
        if s not in SURROGATE_DERIVATIVES:
            p.error(
                f"--surrogates: no torch-ops derivative written for {s!r} in this benchmark; "
                f"choose from {', '.join(SURROGATE_DERIVATIVES)}"
            )
    args.impl_list = [s.strip() for s in args.impls.split(",") if s.strip()]
    for s in args.impl_list:
        if s not in IMPLS:
            p.error(f"--impls: unknown implementation {s!r}; choose from {', '.join(IMPLS)}")
    if "relu" not in args.impl_list:
        args.impl_list.insert(0, "relu")  # every ratio is to it
    if args.repeats < 3:
        p.error(f"--repeats must be at least 3, got {args.repeats}")
    if args.device not in ("cpu", "cuda"):
        p.error(f"--device must be cpu or cuda, got {args.device!r}")
    return args


def parse_sizes(text):
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = (int(v) for v in part.split("-", 1))
            if not 0 <= lo <= hi <= 30:
                raise ValueError(f"--sizes: range {part!r} must be powers within 0..30")
            sizes += [1 << k for k in range(lo, hi + 1, 2)]
        else:
            v = int(part)
            sizes.append(1 << v if v <= 30 else v)
    if not sizes:
        raise ValueError("--sizes: no sizes given")
    return sorted(set(sizes))


def parse_dtype(text):
    name = DTYPE_NAMES.get(text.strip().lower())
    if name is None:
        raise ValueError(f"--dtypes: unknown dtype {text!r}; use float32, bfloat16, float16 or float64")
    return name


# ---------------------------------------------------------------------------------------------
# The Python baselines: g'(x) = d(x) of DESIGN.md's table, written in torch ops as a user would.

import torch  # noqa: E402  (after the helpers above, which the restart needs without torch)

_SQRT_HALF = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


def d_bsilu(x, alpha=1.67):
    sig = torch.sigmoid(x)
    return sig + (x + alpha) * sig * (1 - sig)


def d_nelu(x, alpha=0.01):
    return torch.where(x > 0, torch.ones_like(x), 2 * alpha * x / (1 + x * x) ** 2)


def d_gelu(x):
    cdf = 0.5 * (1 + torch.erf(x * _SQRT_HALF))
    pdf = _INV_SQRT_2PI * torch.exp(-0.5 * x * x)
    return cdf + x * pdf


def d_mish(x):
    t = torch.tanh(torch.nn.functional.softplus(x))
    return t + x * (1 - t * t) * torch.sigmoid(x)


SURROGATE_DERIVATIVES = {"bsilu": d_bsilu, "nelu": d_nelu, "gelu": d_gelu, "mish": d_mish}


def fgi_relu(x, d):
    """The seed's stop-gradient form: forward relu(x), gradient grad * d(x)."""
    h = x * d(x).detach()
    return h - h.detach() + torch.relu(x).detach()


def make_autograd_function(d):
    class SugarFn(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.relu(x)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * d(x)

    return SugarFn.apply


def build_impls(names, surrogate, compile_cache):
    import torch_sugar

    d = SURROGATE_DERIVATIVES[surrogate]
    impls = {}
    for name in names:
        if name == "relu":
            impls[name] = torch.relu
        elif name == "sugar":
            impls[name] = lambda x, s=surrogate: torch_sugar.relu(x, s)
        elif name == "fgi":
            impls[name] = lambda x, d=d: fgi_relu(x, d)
        elif name == "autograd_fn":
            impls[name] = make_autograd_function(d)
        elif name == "fgi_compiled":
            if surrogate not in compile_cache:
                # dynamic=True: one compilation per surrogate and dtype, not one per size.
                compile_cache[surrogate] = torch.compile(lambda x, d=d: fgi_relu(x, d), dynamic=True)
            impls[name] = compile_cache[surrogate]
    return impls


# ---------------------------------------------------------------------------------------------
# Timing


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_batch(fn, x, g, calls, device):
    """Times `calls` forwards then `calls` backwards; returns per-call (fwd, bwd) seconds."""
    sync(device)
    t0 = time.perf_counter()
    ys = [fn(x) for _ in range(calls)]
    sync(device)
    t1 = time.perf_counter()
    for y in ys:
        torch.autograd.grad(y, x, g)
    sync(device)
    t2 = time.perf_counter()
    return (t1 - t0) / calls, (t2 - t1) / calls


def choose_calls(fn, x, g, device, min_sample_s):
    fwd, bwd = time_batch(fn, x, g, 1, device)
    per_call = max(fwd + bwd, 1e-7)
    return int(min(2000, max(1, math.ceil(min_sample_s / per_call))))


def quantiles(values):
    v = sorted(values)
    q = statistics.quantiles(v, n=4, method="inclusive") if len(v) >= 2 else [v[0]] * 3
    return q[0], statistics.median(v), q[2]


@contextlib.contextmanager
def saved_storages():
    """{storage address: bytes} of what autograd saves for backward inside (distinct storages,
    so a tensor saved by two nodes counts once)."""
    storages = {}

    def pack(t):
        st = t.untyped_storage()
        storages[st.data_ptr()] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield storages


def measure_memory(fn, x, g, device):
    """(bytes saved for backward, peak bytes allocated during fwd+bwd beyond the inputs)."""
    with saved_storages() as storages:
        y = fn(x)
    saved = sum(storages.values())
    del y

    if device == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        y = fn(x)
        (gx,) = torch.autograd.grad(y, x, g)
        del y, gx
        sync(device)
        peak = torch.cuda.max_memory_allocated() - base
        return saved, peak

    # CPU has no max_memory_allocated: rebuild the allocation timeline from the profiler's
    # allocator events (what torch.profiler's export_memory_timeline uses) and take its peak.
    try:
        from torch.profiler import ProfilerActivity, profile
        from torch.profiler._memory_profiler import MemoryProfileTimeline

        with _quiet_stderr():
            with profile(
                activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True
            ) as prof:
                y = fn(x)
                (gx,) = torch.autograd.grad(y, x, g)
                del y, gx
            timeline = MemoryProfileTimeline(prof._memory_profile())
            _, sizes = timeline._coalesce_timeline("cpu")
        totals = [sum(row) for row in sizes]
        peak = max(totals) - totals[0]  # totals[0]: what existed before (x, g)
    except Exception as exc:  # noqa: BLE001 - a private profiler API; report, don't die
        print(f"  (peak memory unavailable: {type(exc).__name__}: {exc})")
        peak = None
    return saved, peak


class _quiet_stderr:
    """Silences file descriptor 2 (kineto prints status lines there on every profile)."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        return False


def bench_case(args, device, dtype, n, surrogate, compile_cache, notes):
    torch.manual_seed(0)
    x = torch.randn(n, device=device, dtype=dtype, requires_grad=True)
    g = torch.randn(n, device=device, dtype=dtype)
    impls = build_impls(args.impl_list, surrogate, compile_cache)

    # Warm up (and compile); drop what cannot run, with a note.
    for name in list(impls):
        try:
            for _ in range(args.warmup):
                time_batch(impls[name], x, g, 1, device)
        except Exception as exc:  # noqa: BLE001 - a failing baseline is reported, not fatal
            msg = (
                f"{name} ({surrogate}, {dtype_str(dtype)}, {device}): {type(exc).__name__}: "
                f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            )
            notes.append(msg)
            if os.environ.get("SUGAR_BENCH_TRACEBACK"):
                traceback.print_exc()
            del impls[name]
            if name == "fgi_compiled":
                compile_cache[surrogate] = None
    calls = {name: choose_calls(fn, x, g, device, args.min_sample_ms / 1e3) for name, fn in impls.items()}
    # One batch size for all, so per-call overheads are measured alike.
    batch = max(calls.values())

    samples = {name: {"fwd": [], "bwd": []} for name in impls}
    order = list(impls)
    for rep in range(args.repeats):
        rot = order[rep % len(order) :] + order[: rep % len(order)]
        for name in rot:
            fwd, bwd = time_batch(impls[name], x, g, batch, device)
            samples[name]["fwd"].append(fwd)
            samples[name]["bwd"].append(bwd)

    rows = []
    for name in impls:
        fwd = samples[name]["fwd"]
        bwd = samples[name]["bwd"]
        both = [a + b for a, b in zip(fwd, bwd)]
        row = {
            "device": device,
            "dtype": dtype_str(dtype),
            "n": n,
            "surrogate": surrogate,
            "impl": name,
            "calls_per_sample": batch,
            "repeats": args.repeats,
        }
        for phase, vals in (("fwd", fwd), ("bwd", bwd), ("fwd+bwd", both)):
            q1, med, q3 = quantiles(vals)
            row[phase] = {"median_s": med, "q1_s": q1, "q3_s": q3}
        for ref in ("relu", "fgi"):
            if ref not in samples or name == ref:
                continue
            rfwd = samples[ref]["fwd"]
            rbwd = samples[ref]["bwd"]
            rboth = [a + b for a, b in zip(rfwd, rbwd)]
            ratios = {}
            for phase, ours, theirs in (("fwd", fwd, rfwd), ("bwd", bwd, rbwd), ("fwd+bwd", both, rboth)):
                q1, med, q3 = quantiles([a / b for a, b in zip(ours, theirs)])
                ratios[phase] = {"median": med, "q1": q1, "q3": q3}
            row[f"ratio_to_{ref}"] = ratios
        if not args.no_memory:
            saved, peak = measure_memory(impls[name], x, g, device)
            in_bytes = x.numel() * x.element_size()
            row["saved_bytes"] = saved
            row["saved_x_input"] = saved / in_bytes
            row["peak_bytes"] = peak
            row["peak_x_input"] = None if peak is None else peak / in_bytes
        rows.append(row)
    return rows


def dtype_str(dtype):
    return str(dtype).replace("torch.", "")


# ---------------------------------------------------------------------------------------------
# Reporting


def fmt_time(s):
    if s < 1e-3:
        return f"{s * 1e6:8.1f}us"
    return f"{s * 1e3:8.2f}ms"


def fmt_ratio(r):
    if r is None:
        return "     -     "
    return f"{r['median']:5.2f}x [{r['q1']:.2f}-{r['q3']:.2f}]".rjust(19)


def print_case(rows):
    head = rows[0]
    print(
        f"\n{head['device']} {head['dtype']} n=2^{int(math.log2(head['n']))} ({head['n']:,}) "
        f"surrogate={head['surrogate']}  [{head['repeats']} samples x {head['calls_per_sample']} calls]"
    )
    print(
        f"  {'impl':13s} {'fwd':>10s} {'bwd':>10s} {'fwd+bwd':>10s}   {'fwd / relu':>19s} "
        f"{'fwd+bwd / relu':>19s} {'fwd+bwd / fgi':>19s} {'saved':>6s} {'peak':>6s}"
    )
    for r in rows:
        to_relu = r.get("ratio_to_relu", {})
        to_fgi = r.get("ratio_to_fgi", {})
        saved = f"{r['saved_x_input']:5.2f}x" if "saved_x_input" in r else "   -  "
        peak = f"{r['peak_x_input']:5.2f}x" if r.get("peak_x_input") is not None else "   -  "
        print(
            f"  {r['impl']:13s} {fmt_time(r['fwd']['median_s'])} {fmt_time(r['bwd']['median_s'])} "
            f"{fmt_time(r['fwd+bwd']['median_s'])}   {fmt_ratio(to_relu.get('fwd'))} "
            f"{fmt_ratio(to_relu.get('fwd+bwd'))} {fmt_ratio(to_fgi.get('fwd+bwd'))} {saved} {peak}"
        )
    sys.stdout.flush()


def find(rows, **kv):
    for r in rows:
        if all(r.get(k) == v for k, v in kv.items()):
            return r
    return None


def check_targets(rows, device):
    """The targets of issue 6 (CPU, float32, 2^24; bfloat16 2^24; per call at 2^10)."""
    lines = []

    def verdict(ok):
        return "ok  " if ok else "MISS"

    for s in sorted({r["surrogate"] for r in rows}):
        r = find(rows, device=device, dtype="float32", n=1 << 24, surrogate=s, impl="sugar")
        if r and "ratio_to_relu" in r:
            f = r["ratio_to_relu"]["fwd"]["median"]
            fb = r["ratio_to_relu"]["fwd+bwd"]["median"]
            lines.append(
                f"{verdict(f <= 1.05)} {s:6s} float32 2^24 fwd      / relu = {f:.2f}x (target <= 1.05x)"
            )
            lines.append(
                f"{verdict(fb <= 1.25)} {s:6s} float32 2^24 fwd+bwd  / relu = {fb:.2f}x (target <= 1.25x)"
            )
            if "ratio_to_fgi" in r:
                x = 1 / r["ratio_to_fgi"]["fwd+bwd"]["median"]
                lines.append(
                    f"{verdict(x >= 4)} {s:6s} float32 2^24 speed-up over eager FGI = {x:.2f}x (target >= 4x)"
                )
            c = find(rows, device=device, dtype="float32", n=1 << 24, surrogate=s, impl="fgi_compiled")
            if c:
                ratio = r["fwd+bwd"]["median_s"] / c["fwd+bwd"]["median_s"]
                lines.append(
                    f"{verdict(ratio <= 1.0)} {s:6s} float32 2^24 fwd+bwd / torch.compile(FGI) = {ratio:.2f}x (target <= 1x)"
                )
            if "saved_x_input" in r:
                lines.append(
                    f"{verdict(abs(r['saved_x_input'] - 1) < 1e-9)} {s:6s} float32 2^24 saved for backward = "
                    f"{r['saved_x_input']:.2f}x input (target: exactly the input)"
                )
        r = find(rows, device=device, dtype="bfloat16", n=1 << 24, surrogate=s, impl="sugar")
        if r and "ratio_to_relu" in r:
            fb = r["ratio_to_relu"]["fwd+bwd"]["median"]
            lines.append(
                f"{verdict(fb <= 1.3)} {s:6s} bfloat16 2^24 fwd+bwd / relu = {fb:.2f}x (target <= 1.3x)"
            )
        r = find(rows, device=device, dtype="float32", n=1 << 10, surrogate=s, impl="sugar")
        if r and "ratio_to_relu" in r:
            f = r["ratio_to_relu"]["fwd"]["median"]
            fb = r["ratio_to_relu"]["fwd+bwd"]["median"]
            lines.append(
                f"{verdict(fb <= 1.5)} {s:6s} float32 2^10 per call, fwd+bwd / relu = {fb:.2f}x (target <= 1.5x)"
            )
            lines.append(
                f"{verdict(f <= 1.5)} {s:6s} float32 2^10 per call, fwd alone / relu = {f:.2f}x (target <= 1.5x)"
            )
    return lines


def markdown_summary(rows, info):
    """One Markdown table per (device, dtype, size): torch_sugar.relu against each baseline."""
    out = []
    keys = sorted(
        {(r["device"], r["dtype"], r["n"]) for r in rows}, key=lambda k: (k[0], k[1] != "float32", k[1], k[2])
    )
    for device, dtype, n in keys:
        case = [r for r in rows if (r["device"], r["dtype"], r["n"]) == (device, dtype, n)]
        surrogates = sorted(
            {r["surrogate"] for r in case}, key=lambda s: SURROGATES.index(s) if s in SURROGATES else 99
        )
        out.append(
            f"\n{device}, {dtype}, n = 2^{int(math.log2(n))}, {info['torch_threads']} threads "
            f"(ratios: median of per-sample ratios):\n"
        )
        out.append(
            "| surrogate | fwd / torch.relu | fwd+bwd / torch.relu | faster than eager FGI | "
            "faster than autograd.Function | faster than torch.compile(FGI) | saved for bwd: sugar / FGI | "
            "peak memory: sugar / FGI |"
        )
        out.append("|---|---|---|---|---|---|---|---|")
        for s in surrogates:
            sugar = find(case, surrogate=s, impl="sugar")
            if sugar is None or "ratio_to_relu" not in sugar:
                continue

            def faster(impl):
                other = find(case, surrogate=s, impl=impl)
                if other is None:
                    return "-"
                return f"{other['fwd+bwd']['median_s'] / sugar['fwd+bwd']['median_s']:.2f}x"

            def mem(key):
                fgi = find(case, surrogate=s, impl="fgi")
                a = sugar.get(key)
                b = fgi.get(key) if fgi else None
                fa = "-" if a is None else f"{a:.2f}"
                fb = "-" if b is None else f"{b:.2f}"
                return f"{fa} / {fb} x input"

            rr = sugar["ratio_to_relu"]
            out.append(
                f"| {s} | {rr['fwd']['median']:.2f}x | {rr['fwd+bwd']['median']:.2f}x | {faster('fgi')} | "
                f"{faster('autograd_fn')} | {faster('fgi_compiled')} | {mem('saved_x_input')} | "
                f"{mem('peak_x_input')} |"
            )
    return "\n".join(out)


def machine_info(device, threads):
    import torch_sugar

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_sugar": torch_sugar.__version__,
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "sugar_cpu_capability": _cpu_capability(),
        "SUGAR_CPU_CAPABILITY": os.environ.get("SUGAR_CPU_CAPABILITY"),
        "malloc_reuse": all(os.environ.get(k) == v for k, v in _MALLOC_ENV.items()),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    return info


def _cpu_capability():
    try:
        return torch.ops.sugar._cpu_capability()
    except Exception as exc:  # noqa: BLE001 - older builds lack the op
        return f"unknown ({type(exc).__name__})"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None):
    args = parse_args(argv)
    import torch_sugar  # noqa: F401  (registers the ops)

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch.cuda.is_available() is False on this machine")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    info = machine_info(args.device, threads)
    print(
        "torch-sugar benchmark: times are medians per call; ratios are medians of per-sample "
        "ratios [interquartile range]; saved/peak are multiples of the input's bytes."
    )
    for k, v in info.items():
        print(f"  {k}: {v}")
    if args.device == "cpu" and not info["malloc_reuse"]:
        print(
            "  note: glibc default allocation (--fresh-pages or non-Linux): big-tensor timings "
            "include page faults"
        )

    results, notes = [], []
    compile_cache_by_dtype = {}
    for dtype_name in args.dtype_list:
        dtype = getattr(torch, dtype_name)
        compile_cache = compile_cache_by_dtype.setdefault(dtype_name, {})
        for n in args.size_list:
            for s in args.surrogate_list:
                rows = bench_case(args, args.device, dtype, n, s, compile_cache, notes)
                print_case(rows)
                results.extend(rows)
    targets = check_targets(results, args.device) if args.device == "cpu" else []
    if targets:
        print("\nTargets of issue 6 (CPU; measured here, under this machine's load):")
        for line in targets:
            print("  " + line)
    if args.markdown:
        print("\nMarkdown summary:")
        print(markdown_summary(results, info))
    if notes:
        print("\nNotes (implementations that could not run):")
        for line in notes:
            print("  " + line)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(
                {
                    "machine": info,
                    "args": {k: v for k, v in vars(args).items()},
                    "results": results,
                    "targets": targets,
                    "notes": notes,
                },
                f,
                indent=1,
            )
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
