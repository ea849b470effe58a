#!/usr/bin/env python3
"""Whole-model benchmark: SUGAR against nn.ReLU and the Python ways of writing SUGAR, eager and
under torch.compile, plus the per-call cost of the op on small tensors.

Models (CPU): an MLP (1024 x 256 -> 512 -> 512 -> 512 -> 10, batch 1024) and a small CNN
(conv + BatchNorm + activation, three blocks, 32x32 inputs, batch 64). Each model is built four
times with the same weights:

  relu         nn.ReLU
  sugar        torch_sugar.SugarReLU("bsilu") (torch_sugar.convert)
  fgi          the paper's stop-gradient form (FGI) written in torch ops, as a module
  autograd_fn  a Python torch.autograd.Function with the same math, saving only x
  patched      F.relu calls (as tutorial-style models write them), the whole training step
               under torch_sugar.patch("bsilu") (what `torch-sugar run` does)
  converted    the same F.relu model with torch_sugar.convert(model, functional=True): only
               the model's forward runs under the patch

and timed for a training step (forward, loss, backward, Adam step) and for inference
(torch.no_grad, eval mode), in eager mode and compiled (torch.compile of the model, inductor,
fullgraph), with 1 and 2 threads. Variants are run interleaved (rotating order in every repeat)
and each ratio is the median of the per-repeat ratios to nn.ReLU in the same mode, so a slow
phase of a shared machine hits them alike. Time is the process's CPU time (all threads): on a
shared machine it is much steadier than wall time, which is reported beside it in the JSON.

Per call (--calls, on by default): torch_sugar.relu against torch.relu on 2^10 float32 elements
without grad, with grad (forward only) and forward+backward, and SugarReLU against nn.ReLU; from
C++ (a small extension compiled here with torch.utils.cpp_extension), sugar::relu against
torch::relu under torch::InferenceMode. --callgrind adds instruction counts (valgrind, about a
minute per row): repeatable where time is not.

Examples:
  python benchmarks/bench_models.py --markdown              # the README tables (~15 minutes)
  python benchmarks/bench_models.py --quick                 # smoke run
  python benchmarks/bench_models.py --no-models --callgrind # the per-call table only
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_ops  # noqa: E402  (the FGI form, the autograd.Function, machine info)
import torch  # noqa: E402

VARIANTS = ("relu", "sugar", "fgi", "autograd_fn", "patched", "converted")
SURROGATE = "bsilu"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--threads", default="1,2", help="comma list of thread counts (default 1,2)")
    p.add_argument("--models", default="mlp,cnn", help="comma list of mlp, cnn (default both)")
    p.add_argument("--modes", default="eager,compiled", help="comma list of eager, compiled (default both)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    p.add_argument("--repeats", type=int, default=11, help="timed samples per measurement (default 11)")
    p.add_argument("--min-sample-ms", type=float, default=60.0, help="CPU time per sample (default 60 ms)")
    p.add_argument("--no-models", action="store_true", help="skip the model benchmark")
    p.add_argument("--no-calls", action="store_true", help="skip the per-call benchmark")
    p.add_argument(
        "--no-memory", action="store_true", help="skip the saved-for-backward table of in-place ReLUs"
    )
    p.add_argument(
        "--no-cpp", action="store_true", help="skip the C++ InferenceMode row (compiles a small extension)"
    )
    p.add_argument("--callgrind", action="store_true", help="add instruction counts per call (valgrind)")
    p.add_argument("--quick", action="store_true", help="a smoke run: few repeats, 1 thread, short samples")
    p.add_argument("--json", metavar="PATH", help="also write every number to this JSON file")
    p.add_argument("--markdown", action="store_true", help="print the README's markdown tables at the end")
    args = p.parse_args(argv)
    args.threads = [int(t) for t in args.threads.split(",")]
    args.models = args.models.split(",")
    args.modes = args.modes.split(",")
    args.variants = args.variants.split(",")
    for name, allowed in (
        ("models", ("mlp", "cnn")),
        ("modes", ("eager", "compiled")),
        ("variants", VARIANTS),
    ):
        bad = [v for v in getattr(args, name) if v not in allowed]
        if bad:
            p.error(f"--{name}: unknown {bad}; allowed: {', '.join(allowed)}")
    if "relu" not in args.variants:
        p.error("--variants must include relu (the ratios are to nn.ReLU)")
    if args.quick:
        args.repeats, args.min_sample_ms, args.threads = 3, 15.0, [1]
    return args


# ---------------------------------------------------------------------------------------------
# The activations and models


class FGI(torch.nn.Module):
    """The seed article's stop-gradient SUGAR, B-SiLU surrogate."""

    def forward(self, x):
        return bench_ops.fgi_relu(x, bench_ops.d_bsilu)


class AutogradFn(torch.nn.Module):
    """A Python autograd.Function with B-SiLU's derivative, saving only x."""

    fn = staticmethod(bench_ops.make_autograd_function(bench_ops.d_bsilu))

    def forward(self, x):
        return self.fn(x)


class Functional(torch.nn.Module):
    """F.relu as a model's forward writes it (a module here only to sit in nn.Sequential: the
    patch sees the F.relu call, not the module)."""

    def forward(self, x):
        return torch.nn.functional.relu(x)


def activation(variant):
    import torch_sugar

    return {
        "relu": torch.nn.ReLU,
        "sugar": lambda: torch_sugar.SugarReLU(SURROGATE),
        "fgi": FGI,
        "autograd_fn": AutogradFn,
        "patched": Functional,
        "converted": Functional,
    }[variant]()


def build(model, variant=None, make_act=None):
    torch.manual_seed(0)
    act = make_act or (lambda: activation(variant))
    if model == "mlp":
        net = torch.nn.Sequential(
            torch.nn.Linear(256, 512),
            act(),
            torch.nn.Linear(512, 512),
            act(),
            torch.nn.Linear(512, 512),
            act(),
            torch.nn.Linear(512, 10),
        )
        x, y = torch.randn(1024, 256), torch.randint(0, 10, (1024,))
    else:

        def block(cin, cout):
            return [torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False), torch.nn.BatchNorm2d(cout), act()]

        net = torch.nn.Sequential(
            *block(3, 32),
            *block(32, 32),
            torch.nn.MaxPool2d(2),
            *block(32, 64),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(64, 10),
        )
        x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
    return net, x, y


def make_runner(model, variant, mode, task):
    import torch_sugar

    net, x, y = build(model, variant)
    if variant == "converted":
        torch_sugar.convert(net, SURROGATE, functional=True)
    forward = torch.compile(net, fullgraph=True) if mode == "compiled" else net
    run = make_step(net, forward, x, y, task)
    if variant != "patched":
        return run
    patch = torch_sugar.patch(SURROGATE)

    def patched_run():
        with patch:
            run()

    return patched_run


def make_step(net, forward, x, y, task):
    if task == "train":
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()

        def run():
            opt.zero_grad(set_to_none=True)
            loss_fn(forward(x), y).backward()
            opt.step()
    else:
        net.eval()

        def run():
            with torch.no_grad():
                forward(x)

    return run


# ---------------------------------------------------------------------------------------------
# Timing


def timed(run, iters):
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(iters):
        run()
    return (time.process_time() - c0) / iters, (time.perf_counter() - w0) / iters


def bench_models(args):
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for model in args.models:
            for mode in args.modes:
                for task in ("train", "infer"):
                    torch._dynamo.reset()
                    runners = {v: make_runner(model, v, mode, task) for v in args.variants}
                    for run in runners.values():  # compile and warm up
                        for _ in range(3):
                            run()
                    cpu_one = max(timed(runners["relu"], 1)[0], 1e-6)
                    iters = max(1, int(args.min_sample_ms / 1000 / cpu_one))
                    samples = {v: [] for v in runners}
                    order = list(runners)
                    for rep in range(args.repeats):
                        for v in order[rep % len(order) :] + order[: rep % len(order)]:
                            samples[v].append(timed(runners[v], iters))
                    base = samples["relu"]
                    for v in runners:
                        cpu_ratios = [s[0] / b[0] for s, b in zip(samples[v], base)]
                        # The patch's own cost: against SugarReLU modules doing the same math.
                        to_sugar = (
                            statistics.median(s[0] / b[0] for s, b in zip(samples[v], samples["sugar"]))
                            if v in ("patched", "converted") and "sugar" in samples
                            else None
                        )
                        wall_ratios = [s[1] / b[1] for s, b in zip(samples[v], base)]
                        row = {
                            "threads": threads,
                            "model": model,
                            "mode": mode,
                            "task": task,
                            "variant": v,
                            "cpu_ms": 1e3 * statistics.median(s[0] for s in samples[v]),
                            "wall_ms": 1e3 * statistics.median(s[1] for s in samples[v]),
                            "ratio_cpu": statistics.median(cpu_ratios),
                            "ratio_cpu_iqr": quartiles(cpu_ratios),
                            "ratio_wall": statistics.median(wall_ratios),
                            "ratio_cpu_to_sugar": to_sugar,
                        }
                        rows.append(row)
                    print_group(rows[-len(runners) :])
    return rows


def quartiles(values):
    q = statistics.quantiles(values, n=4) if len(values) >= 2 else [values[0]] * 3
    return [q[0], q[2]]


def print_group(rows):
    r0 = rows[0]
    print(f"\n{r0['model']} {r0['task']}, {r0['mode']}, {r0['threads']} thread(s)")
    print(
        f"  {'variant':12s} {'ms (cpu)':>9s} {'ms (wall)':>9s} {'/ relu (cpu)':>13s} {'iqr':>13s} {'/ relu (wall)':>13s}"
    )
    for r in rows:
        lo, hi = r["ratio_cpu_iqr"]
        to_sugar = "" if r.get("ratio_cpu_to_sugar") is None else f"   / sugar {r['ratio_cpu_to_sugar']:.3f}x"
        print(
            f"  {r['variant']:12s} {r['cpu_ms']:9.3f} {r['wall_ms']:9.3f} {r['ratio_cpu']:12.3f}x "
            f"{lo:6.3f}-{hi:.3f} {r['ratio_wall']:12.3f}x{to_sugar}",
            flush=True,
        )


# ---------------------------------------------------------------------------------------------
# Memory of the in-place spellings under torch_sugar.patch

MEMORY_ROWS = [
    # (row, activation module factory, under the patch)
    ("nn.ReLU(inplace=True)", lambda: torch.nn.ReLU(inplace=True), False),
    ("nn.ReLU()", torch.nn.ReLU, False),
    ("nn.ReLU(inplace=True) under torch_sugar.patch", lambda: torch.nn.ReLU(inplace=True), True),
    ("nn.ReLU() under torch_sugar.patch", torch.nn.ReLU, True),
    ("SugarReLU (convert)", None, False),
]


def saved_bytes(net, x, y, patched):
    """Bytes that autograd keeps for backward after the forward pass (distinct storages: the
    output an in-place ReLU saves is also the next convolution's saved input)."""
    import torch_sugar

    storages = {}

    def pack(t):
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch_sugar.patch(SURROGATE) if patched else contextlib.nullcontext():
            loss = torch.nn.functional.cross_entropy(net(x), y)
    del loss
    return sum(storages.values())


def bench_memory():
    import torch_sugar

    rows = []
    print("\nsaved for backward, CNN (batch 64, 32x32), in-place ReLUs under the patch:")
    for name, factory, patched in MEMORY_ROWS:
        net, x, y = build("cnn", make_act=factory or (lambda: torch_sugar.SugarReLU(SURROGATE)))
        rows.append({"row": name, "saved_mb": saved_bytes(net.train(), x, y, patched) / 2**20})
    base = rows[0]["saved_mb"]
    for r in rows:
        r["ratio"] = r["saved_mb"] / base
        print(f"  {r['row']:48s} {r['saved_mb']:8.1f} MB  {r['ratio']:.2f}x", flush=True)
    return rows


# ---------------------------------------------------------------------------------------------
# Per call

CALL_SETUP = """
import torch, torch_sugar
torch.set_num_threads(1)
x = torch.randn(1024)
xg = x.clone().requires_grad_()
g = torch.randn(1024)
relu_module = torch.nn.ReLU()
sugar_module = torch_sugar.SugarReLU("bsilu")
patch = torch_sugar.patch("bsilu")
F = torch.nn.functional
"""

# (row, baseline statement, sugar statement)
CALL_ROWS = [
    ("forward, no grad", "torch.relu(x)", "torch_sugar.relu(x)"),
    ("forward, with grad", "torch.relu(xg)", "torch_sugar.relu(xg)"),
    ("forward+backward", "torch.relu(xg).backward(g)", "torch_sugar.relu(xg).backward(g)"),
    ("module, with grad", "relu_module(xg)", "sugar_module(xg)"),
    ("torch.ops.sugar.relu, with grad", "torch.relu(xg)", "torch.ops.sugar.relu(xg)"),
    # torch_sugar.patch's cost per call: entering it, F.relu seen by the mode, backward inside it.
    (
        "patched F.relu, forward+backward",
        "torch_sugar.relu(xg).backward(g)",
        "with patch: F.relu(xg).backward(g)",
    ),
]

CPP_SOURCE = r"""
#include <torch/extension.h>
#include <torch_sugar/sugar.h>
#include <chrono>

// n calls under InferenceMode; returns seconds per call.
double loop(const at::Tensor& x, int64_t n, bool sugar_op) {
  c10::InferenceMode guard;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; ++i) {
    at::Tensor y = sugar_op ? sugar::relu(x, "bsilu") : torch::relu(x);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / n;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("loop", &loop); }
"""


def cpp_extension():
    from torch.utils.cpp_extension import load_inline

    import torch_sugar

    lib_dir = os.path.dirname(torch_sugar.library_path)
    return load_inline(
        name="sugar_bench_calls",
        cpp_sources=[CPP_SOURCE],
        verbose=False,
        extra_include_paths=[os.path.join(torch_sugar.cmake_prefix_path, "include")],
        extra_ldflags=[f"-L{lib_dir}", "-l:libtorch_sugar.so", f"-Wl,-rpath,{lib_dir}"],
        extra_cflags=["-O2"],
        build_directory=tempfile.mkdtemp(prefix="sugar-bench-"),
    )


def time_calls(stmt_a, stmt_b, namespace, repeats, number):
    """Interleaved: median per-call seconds of a and b, and the median of the per-repeat ratios."""
    import timeit

    ta, tb = timeit.Timer(stmt_a, globals=namespace), timeit.Timer(stmt_b, globals=namespace)
    a, b = [], []
    for rep in range(repeats):
        pair = (ta, tb) if rep % 2 == 0 else (tb, ta)
        results = [t.timeit(number) / number for t in pair]
        if rep % 2:
            results.reverse()
        a.append(results[0])
        b.append(results[1])
    return statistics.median(a), statistics.median(b), statistics.median(y / x for x, y in zip(a, b))


def callgrind_count(stmt, setup, number=500):
    from torch.utils.benchmark import Timer

    env_path = os.path.dirname(sys.executable)
    os.environ["PATH"] = env_path + os.pathsep + os.environ.get("PATH", "")  # the subprocess's python
    stats = Timer(stmt, setup=setup).collect_callgrind(number=number, repeats=1)
    stats = stats[0] if isinstance(stats, tuple) else stats
    return stats.counts(denoise=True) / number


def bench_calls(args):
    torch.set_num_threads(1)
    namespace = {}
    exec(CALL_SETUP, namespace)
    repeats = 5 if args.quick else 21
    number = 2000 if args.quick else 20000
    rows = []
    for name, base, sugar in CALL_ROWS:
        ta, tb, ratio = time_calls(base, sugar, namespace, repeats, number)
        row = {
            "row": name,
            "baseline": base,
            "sugar": sugar,
            "baseline_us": ta * 1e6,
            "sugar_us": tb * 1e6,
            "ratio_time": ratio,
        }
        if args.callgrind:
            row["baseline_instructions"] = callgrind_count(base, CALL_SETUP)
            row["sugar_instructions"] = callgrind_count(sugar, CALL_SETUP)
            row["ratio_instructions"] = row["sugar_instructions"] / row["baseline_instructions"]
        rows.append(row)
        print_call(row)
    if not args.no_cpp:
        try:
            ext = cpp_extension()
        except Exception as exc:  # noqa: BLE001  (no compiler: say so, keep the Python rows)
            print(f"  C++ row skipped: the extension did not build ({type(exc).__name__}: {exc})")
        else:
            ns = {"ext": ext, "x": namespace["x"]}
            n = 2000 if args.quick else 20000
            ta, tb, ratio = time_calls(f"ext.loop(x, {n}, False)", f"ext.loop(x, {n}, True)", ns, repeats, 1)
            row = {
                "row": "C++, InferenceMode",
                "baseline": "torch::relu(x)",
                "sugar": 'sugar::relu(x, "bsilu")',
                "baseline_us": ta * 1e6 / n,
                "sugar_us": tb * 1e6 / n,
                "ratio_time": ratio,
            }
            rows.append(row)
            print_call(row)
    return rows


def print_call(row):
    extra = ""
    if "ratio_instructions" in row:
        extra = (
            f"   instructions {row['baseline_instructions']:8.0f} -> {row['sugar_instructions']:8.0f}"
            f" ({row['ratio_instructions']:.2f}x)"
        )
    print(
        f"  {row['row']:32s} {row['baseline_us']:7.2f} us -> {row['sugar_us']:7.2f} us "
        f"({row['ratio_time']:.2f}x){extra}",
        flush=True,
    )


# ---------------------------------------------------------------------------------------------


def markdown(model_rows, call_rows, memory_rows=()):
    out = []
    if model_rows:
        for threads in sorted({r["threads"] for r in model_rows}):
            out.append(
                f"\n{threads} thread(s); CPU time per step as a multiple of nn.ReLU's in the same mode "
                "(median of interleaved repeats):\n"
            )
            shown = [v for v in VARIANTS[1:] if any(r["variant"] == v for r in model_rows)]
            out.append("| model | task | mode | " + " | ".join(shown) + " |")
            out.append("|---|---|---|" + "---|" * len(shown))
            keys = sorted(
                {(r["model"], r["task"], r["mode"]) for r in model_rows if r["threads"] == threads},
                key=lambda k: (k[0], k[1] != "train", k[2]),
            )
            for model, task, mode in keys:
                cells = []
                for v in shown:
                    r = next(
                        (
                            r
                            for r in model_rows
                            if (r["threads"], r["model"], r["task"], r["mode"], r["variant"])
                            == (threads, model, task, mode, v)
                        ),
                        None,
                    )
                    cell = f"{r['ratio_cpu']:.2f}x" if r else "-"
                    if r and r.get("ratio_cpu_to_sugar") is not None:
                        cell += f" ({r['ratio_cpu_to_sugar']:.2f}x sugar)"
                    cells.append(cell)
                out.append(f"| {model} | {task} | {mode} | " + " | ".join(cells) + " |")
            compiled_gain = [
                (r["model"], r["task"], r["variant"], e["cpu_ms"] and r["cpu_ms"] / e["cpu_ms"])
                for r in model_rows
                if r["threads"] == threads and r["mode"] == "compiled"
                for e in model_rows
                if e["threads"] == threads
                and e["mode"] == "eager"
                and (e["model"], e["task"], e["variant"]) == (r["model"], r["task"], r["variant"])
            ]
            if compiled_gain:
                out.append(
                    "\ncompiled / eager time of the same variant: "
                    + ", ".join(
                        f"{m} {t} {v} {g:.2f}x" for m, t, v, g in compiled_gain if v in ("relu", "sugar")
                    )
                )
    if memory_rows:
        out.append("\nSaved for backward, bench's CNN (batch 64, 32x32, float32):\n")
        out.append("| activations | saved | vs nn.ReLU(inplace=True) |")
        out.append("|---|---|---|")
        for r in memory_rows:
            out.append(f"| {r['row']} | {r['saved_mb']:.1f} MB | {r['ratio']:.2f}x |")
    if call_rows:
        out.append("\nPer call, 2^10 float32 elements, 1 thread:\n")
        has_ir = any("ratio_instructions" in r for r in call_rows)
        out.append(
            "| call | baseline | time: baseline -> sugar | ratio |"
            + (" instructions | ratio |" if has_ir else "")
        )
        out.append("|---|---|---|---|" + ("---|---|" if has_ir else ""))
        for r in call_rows:
            line = (
                f"| {r['row']} | `{r['baseline']}` | {r['baseline_us']:.2f} -> {r['sugar_us']:.2f} us | "
                f"{r['ratio_time']:.2f}x |"
            )
            if has_ir:
                line += (
                    f" {r['baseline_instructions']:.0f} -> {r['sugar_instructions']:.0f} | "
                    f"{r['ratio_instructions']:.2f}x |"
                    if "ratio_instructions" in r
                    else " - | - |"
                )
            out.append(line)
    return "\n".join(out)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TORCHINDUCTOR_FORCE_DISABLE_CACHES", "1")  # never time a stale compile
    import torch_sugar  # noqa: F401

    info = bench_ops.machine_info("cpu", args.threads)
    print(
        f"torch {info['torch']}, torch-sugar {info['torch_sugar']}, {info['cpu_model']}, "
        f"{info['cpu_count']} CPUs, load {info['load_average']}"
    )
    model_rows = [] if args.no_models else bench_models(args)
    memory_rows = [] if args.no_memory else bench_memory()
    call_rows = []
    if not args.no_calls:
        print("\nper call, 2^10 float32 elements, 1 thread (baseline -> sugar):")
        call_rows = bench_calls(args)
    if args.markdown:
        print(markdown(model_rows, call_rows, memory_rows))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(
                {"machine": info, "models": model_rows, "calls": call_rows, "memory": memory_rows},
                f,
                indent=1,
            )
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
