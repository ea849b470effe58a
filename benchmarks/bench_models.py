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

(on request, --variants: sugar_decomposed and sugar_extern, SugarReLU with its backward compiled
op by op from the decomposition, as before the lowering, or as a call of the eager kernel;
sugar_relu and sugar_nelu, SugarReLU with the control surrogate or nelu) and timed for a training step (forward, loss, backward, Adam step) and for inference
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

Per kernel (--kernels): compiled CNN training, 1 thread, for nn.ReLU, SugarReLU (its two other
backward lowerings, two other surrogates), the autograd.Function and FGI: each step's time split into the
generated kernels of the forward and of the backward (each), the convolutions and an extern
SUGAR call (torch.profiler, interleaved steps, medians), and what the compiled code is: inductor's
count of the bytes each graph's kernels read and write, the backward's kernels and full-size
buffers, the bytes saved for the backward.

Examples:
  python benchmarks/bench_models.py --markdown              # the README tables (~15 minutes)
  python benchmarks/bench_models.py --no-models --no-calls --kernels --markdown  # per kernel
  python benchmarks/bench_models.py --quick                 # smoke run
  python benchmarks/bench_models.py --no-models --callgrind # the per-call table only
"""

import argparse
import contextlib
import functools
import json
import logging
import math
import os
import re
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench_ops  # noqa: E402  (the FGI form, the autograd.Function, machine info)
import torch  # noqa: E402

VARIANTS = ("relu", "sugar", "fgi", "autograd_fn", "patched", "converted")
# SugarReLU with relu_backward compiled another way (torch_sugar._pt2.set_inductor_relu_backward):
# op by op from its decomposition (as before the lowering), or the eager kernel as an extern call.
# Differ from "sugar" only under torch.compile; run on request (--variants, --kernels).
SUGAR_BACKWARD_VARIANTS = {"sugar_decomposed": "decomposition", "sugar_extern": "extern"}
# SugarReLU with another surrogate, for what the surrogate's arithmetic costs: the control "relu"
# (the same compiled loops as "sugar", no arithmetic) and nelu (a division, no exp).
SURROGATE_VARIANTS = {"sugar_relu": "relu", "sugar_nelu": "nelu"}
ALL_VARIANTS = VARIANTS + tuple(SUGAR_BACKWARD_VARIANTS) + tuple(SURROGATE_VARIANTS)
KERNEL_VARIANTS = (
    "relu",
    "sugar",
    "sugar_decomposed",
    "sugar_extern",
    "sugar_relu",
    "sugar_nelu",
    "autograd_fn",
    "fgi",
)
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
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma list of {', '.join(ALL_VARIANTS)} (default: {','.join(VARIANTS)})",
    )
    p.add_argument("--repeats", type=int, default=11, help="timed samples per measurement (default 11)")
    p.add_argument("--min-sample-ms", type=float, default=60.0, help="CPU time per sample (default 60 ms)")
    p.add_argument("--no-models", action="store_true", help="skip the model benchmark")
    p.add_argument(
        "--kernels",
        action="store_true",
        help="add the per-kernel profile of compiled CNN training (1 thread; what each backward moves)",
    )
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
        ("variants", ALL_VARIANTS),
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

    if variant in SUGAR_BACKWARD_VARIANTS or variant in SURROGATE_VARIANTS:
        return sugar_type(variant)(SURROGATE_VARIANTS.get(variant, SURROGATE))
    return {
        "relu": torch.nn.ReLU,
        "sugar": lambda: torch_sugar.SugarReLU(SURROGATE),
        "fgi": FGI,
        "autograd_fn": AutogradFn,
        "patched": Functional,
        "converted": Functional,
    }[variant]()


@functools.cache
def sugar_type(variant):
    """A SugarReLU subclass of its own: dynamo reuses compiled code for a model with the same
    module types and attributes (it cannot know how torch_sugar lowers the op, see compiled_as),
    and each of these variants must compile apart from "sugar"'s model."""
    import torch_sugar

    return type(f"SugarReLU_{variant}", (torch_sugar.SugarReLU,), {})


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


@contextlib.contextmanager
def compiled_as(variant):
    """Graphs compiled inside compute relu_backward the way `variant` asks (SUGAR_BACKWARD_VARIANTS)."""
    from torch_sugar import _pt2

    mode = SUGAR_BACKWARD_VARIANTS.get(variant)
    previous = _pt2.set_inductor_relu_backward(mode) if mode else None
    try:
        yield
    finally:
        if mode:
            _pt2.set_inductor_relu_backward(previous)


def warm_up(run, variant, calls=3):
    with compiled_as(variant):  # the first call compiles (the backward at its first backward)
        for _ in range(calls):
            run()


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
                    for v, run in runners.items():  # compile and warm up
                        warm_up(run, v)
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
# Per kernel: compiled CNN training, 1 thread. Where the time of each variant's step goes (the
# generated kernels of the forward and the backward, the convolutions), measured with
# torch.profiler over interleaved steps (inductor's kernels report themselves with
# config.cpp.enable_kernel_profile), and what the compiled code is: inductor's count of the bytes
# each graph's kernels read and write, the backward's kernels (vectorized or not) and full-size
# buffers, and the bytes saved for the backward.

CNN_MAP_NUMEL = 64 * 64 * 16 * 16  # the CNN's smallest activation map: a "full-size" buffer


class _GraphBytes(logging.Handler):
    """Inductor's num_bytes_accessed of every graph compiled while attached, in order."""

    def __init__(self):
        super().__init__()
        self.per_graph = []

    def emit(self, record):
        metrics = record.args if isinstance(record.args, dict) else None
        if metrics and "num_bytes_accessed" in metrics:
            self.per_graph.append(metrics["num_bytes_accessed"])


@contextlib.contextmanager
def counting_bytes():
    from torch._inductor.compile_fx import inductor_metrics_log  # inductor counts when INFO is on

    handler, level = _GraphBytes(), inductor_metrics_log.level
    inductor_metrics_log.addHandler(handler)
    inductor_metrics_log.setLevel(logging.INFO)
    try:
        yield handler.per_graph
    finally:
        inductor_metrics_log.removeHandler(handler)
        inductor_metrics_log.setLevel(level)


def kernel_sources(code):
    """The C++ source of each generated kernel in an inductor output module."""
    return re.findall(r"cpp_pybinding\(.*?r'''(.*?)'''\)", code, re.S)


def full_size_buffers(code):
    shapes = re.findall(r"empty_strided_cpu\(\(([\d, ]+)\)", code)
    return sum(
        1 for shape in shapes if math.prod(int(d) for d in shape.split(",") if d.strip()) >= CNN_MAP_NUMEL
    )


@contextlib.contextmanager
def output_code():
    """The output code of every graph inductor compiles while inside (as run_and_get_code, which
    also resets dynamo: the variants compiled before would compile again, unprofiled)."""
    from unittest import mock

    from torch._inductor.graph import GraphLowering

    codes = []
    with mock.patch.object(GraphLowering, "save_output_code", codes.append):
        yield codes


def compile_cnn_step(variant):
    """The compiled CNN training step of `variant`, warmed up, and what its compiled code is."""
    run = make_runner("cnn", variant, "compiled", "train")
    with counting_bytes() as graph_bytes, output_code() as codes, compiled_as(variant):
        run()
    if len(codes) != 2 or len(graph_bytes) != 2:
        raise RuntimeError(
            f"{variant}: expected a forward and a backward graph, got {len(codes)} and {graph_bytes}"
        )
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.nbytes) or t, lambda t: t):
        run()
    backward = kernel_sources(codes[1])
    facts = {
        "forward_mb": graph_bytes[0] / 1e6,
        "backward_mb": graph_bytes[1] / 1e6,
        "backward_kernels": len(backward),
        "backward_vectorized": sum("at::vec::" in k for k in backward),
        "backward_full_size_buffers": full_size_buffers(codes[1]),
        "saved_mb": sum(saved) / 1e6,
    }
    warm_up(run, variant)
    return run, facts


def profile_steps(runners, repeats):
    """Interleaved steps under torch.profiler: per variant, one {part: ms} dict per step."""
    from torch.profiler import ProfilerActivity, profile, record_function

    order, cpu = list(runners), {v: [] for v in runners}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for rep in range(repeats):
            for v in order[rep % len(order) :] + order[: rep % len(order)]:
                with record_function(f"step:{v}"):
                    t0 = time.thread_time()
                    runners[v]()
                    cpu[v].append(1e3 * (time.thread_time() - t0))
    steps = {v: [] for v in runners}
    current = {}
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        part = kernel_part(event)
        if event.name.startswith("step:"):
            current[event.id] = {"step (cpu)": None}
            steps[event.name[5:]].append(current[event.id])
        elif part is not None:
            root = step_of(event)
            if root is not None and root.id in current:
                table = current[root.id]
                table[part] = table.get(part, 0.0) + event.time_range.elapsed_us() / 1e3
    for v in runners:
        for step, cpu_ms in zip(steps[v], cpu[v]):
            step["step (cpu)"] = cpu_ms
    return steps


def kernel_part(event):
    """What a profiler event is in the step: a generated kernel, a convolution, an extern SUGAR."""
    name = event.name
    if "cpp_fused" in name:
        return ("bwd " if in_backward(event) else "fwd ") + re.sub(r"^graph_\d+_", "", name)
    if name in ("aten::mkldnn_convolution", "aten::convolution_backward", "sugar::relu_backward"):
        return name
    return None


def step_of(event):
    while event is not None and not event.name.startswith("step:"):
        event = event.cpu_parent
    return event


def in_backward(event):
    while event is not None:
        if event.name == "CompiledFunctionBackward":
            return True
        event = event.cpu_parent
    return False


def bench_kernels(args):
    torch.set_num_threads(1)
    import torch._inductor.config as inductor_config

    # One model compiled per variant, all kept: dynamo counts them as recompiles of one frame
    # (nn.Sequential.forward), so the earlier groups' are dropped and the limit raised.
    torch._dynamo.reset()
    runners, facts = {}, {}
    with (
        torch._dynamo.config.patch(recompile_limit=max(8, len(KERNEL_VARIANTS))),
        inductor_config.patch({"cpp.enable_kernel_profile": True}),
    ):
        for v in KERNEL_VARIANTS:
            runners[v], facts[v] = compile_cnn_step(v)
        steps = profile_steps(runners, 3 if args.quick else args.repeats)
    rows = []
    for v in KERNEL_VARIANTS:
        parts = dict.fromkeys(p for step in steps[v] for p in step)  # in execution order
        median = {p: statistics.median(step.get(p, 0.0) for step in steps[v]) for p in parts}
        ratios = [a["step (cpu)"] / b["step (cpu)"] for a, b in zip(steps[v], steps["relu"])]
        rows.append({"variant": v, "ratio_cpu": statistics.median(ratios), "ms": median, **facts[v]})
    print_kernels(rows)
    return rows


def kernel_summary(row):
    """Milliseconds per step: forward kernels, backward kernels (each, in order), convolutions."""
    ms = row["ms"]
    fwd = sum(t for p, t in ms.items() if p.startswith("fwd "))
    bwd = [t for p, t in ms.items() if p.startswith("bwd ")]
    conv = ms.get("aten::mkldnn_convolution", 0.0) + ms.get("aten::convolution_backward", 0.0)
    extern = ms.get("sugar::relu_backward", 0.0)
    return fwd, bwd, conv, extern


def print_kernels(rows):
    print("\ncompiled CNN training, 1 thread, per kernel (ms per step, median of interleaved steps):")
    for r in rows:
        fwd, bwd, conv, extern = kernel_summary(r)
        print(
            f"  {r['variant']:16s} step {r['ms']['step (cpu)']:7.1f} ms cpu ({r['ratio_cpu']:.3f}x)  "
            f"fwd kernels {fwd:6.1f}  bwd kernels {sum(bwd):6.1f} [{' / '.join(f'{t:.1f}' for t in bwd)}]  "
            f"convolutions {conv:6.1f}  extern sugar {extern:5.1f}  |  bytes fwd {r['forward_mb']:.0f} MB, "
            f"bwd {r['backward_mb']:.0f} MB; bwd kernels {r['backward_kernels']} "
            f"({r['backward_vectorized']} vectorized), full-size bwd buffers {r['backward_full_size_buffers']}, "
            f"saved {r['saved_mb']:.1f} MB",
            flush=True,
        )


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

    with bench_ops.saved_storages() as storages:
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


def kernels_markdown(rows):
    out = [
        "\nCompiled CNN training, 1 thread: ms per step (median of interleaved steps, torch.profiler; "
        "the step in thread CPU time) and what the compiled code moves (inductor's count):\n",
        "| variant | step / nn.ReLU | forward kernels | backward kernels, in order | convolutions | extern SUGAR "
        "| bytes fwd / bwd | bwd kernels (vectorized) | full-size bwd buffers | saved |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fwd, bwd, conv, extern = kernel_summary(r)
        out.append(
            f"| {r['variant']} | {r['ratio_cpu']:.2f}x | {fwd:.1f} | {sum(bwd):.1f} ({' / '.join(f'{t:.1f}' for t in bwd)}) "
            f"| {conv:.1f} | {extern:.1f} | {r['forward_mb']:.0f} / {r['backward_mb']:.0f} MB "
            f"| {r['backward_kernels']} ({r['backward_vectorized']}) | {r['backward_full_size_buffers']} "
            f"| {r['saved_mb']:.1f} MB |"
        )
    return "\n".join(out)


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
    # Never time a stale compile: a cached graph is keyed by the FX graph, not by how
    # torch_sugar lowers it. The variable is read when torch is imported, so set the flag too.
    os.environ.setdefault("TORCHINDUCTOR_FORCE_DISABLE_CACHES", "1")
    torch.compiler.config.force_disable_caches = os.environ["TORCHINDUCTOR_FORCE_DISABLE_CACHES"] == "1"
    import torch_sugar  # noqa: F401

    info = bench_ops.machine_info("cpu", args.threads)
    print(
        f"torch {info['torch']}, torch-sugar {info['torch_sugar']}, {info['cpu_model']}, "
        f"{info['cpu_count']} CPUs, load {info['load_average']}"
    )
    model_rows = [] if args.no_models else bench_models(args)
    kernel_rows = bench_kernels(args) if args.kernels else []
    memory_rows = [] if args.no_memory else bench_memory()
    call_rows = []
    if not args.no_calls:
        print("\nper call, 2^10 float32 elements, 1 thread (baseline -> sugar):")
        call_rows = bench_calls(args)
    if args.markdown:
        print(markdown(model_rows, call_rows, memory_rows))
        if kernel_rows:
            print(kernels_markdown(kernel_rows))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(
                {
                    "machine": info,
                    "models": model_rows,
                    "kernels": kernel_rows,
                    "calls": call_rows,
                    "memory": memory_rows,
                },
                f,
                indent=1,
            )
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
