"""``torch-sugar run``: a Python program under :func:`torch_sugar.patch`, unchanged.

    torch-sugar run [--surrogate S] [--alpha A] [--negative-only] [--seed N] [--quiet] SCRIPT.py [ARGS...]
    torch-sugar run [options] -m MODULE [ARGS...]

The program runs the way ``python SCRIPT.py ARGS...`` (or ``python -m MODULE``) would run it, as
``python -m cProfile`` and ``coverage run`` run one: as ``__main__``, with its own ``sys.argv``
and ``sys.path[0]``; its exit code and uncaught exceptions pass through. Options come before the
program; everything after it belongs to the program.
"""

import argparse
import contextlib
import functools
import importlib.util
import multiprocessing.process
import os
import random
import runpy
import sys
import warnings
from typing import List, Optional, Sequence, Tuple

PROG = "torch-sugar run"
# Frames of these modules sit between `torch-sugar run` and the program: tracebacks leave them out.
_RUNNER_MODULES = frozenset((__name__, "runpy", "contextlib"))

_WITH_VALUE = ("--surrogate", "--alpha", "--seed")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        usage=f"{PROG} [--surrogate S] [--alpha A] [--negative-only] [--seed N] [--quiet] "
        "(SCRIPT.py | -m MODULE) [ARGS...]",
        description="Run a Python program with SUGAR for every ReLU it computes: the program runs "
        "unchanged under torch_sugar.patch (nn.ReLU, F.relu, torch.relu, x.relu() and their in-place "
        "forms, SugarReLU modules), as `python SCRIPT.py ARGS...` would run it.",
        epilog="The program sees its own sys.argv, runs as __main__, and its exit code and uncaught "
        "exceptions pass through. Child processes it starts with multiprocessing (fork, spawn or "
        "forkserver; torch.multiprocessing, DataLoader workers) run under the same patch. Under torchrun: "
        "`torchrun --nproc_per_node 2 -m torch_sugar run [options] train.py [ARGS...]`. TorchScript code "
        "(torch.jit.script/trace/load) cannot be patched and keeps its ReLUs. `--surrogate relu` is the "
        "control: exact ReLU gradients.",
    )
    p.add_argument(
        "--surrogate",
        default="bsilu",
        metavar="S",
        help="the surrogate whose derivative the backward uses (default bsilu; `torch-sugar surrogates` "
        "lists them; relu = plain ReLU gradients, the control)",
    )
    p.add_argument("--alpha", type=float, metavar="A", help="the surrogate's parameter (default: its own)")
    p.add_argument(
        "--negative-only",
        action="store_true",
        help="use the surrogate's derivative only where x <= 0 (exact ReLU gradient where x > 0)",
    )
    p.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="seed Python's random, numpy (when installed) and torch before the program starts",
    )
    p.add_argument(
        "--quiet", action="store_true", help="print nothing of its own (default: one line on stderr)"
    )
    return p


def split_argv(argv: Sequence[str]) -> Tuple[List[str], Optional[str], Optional[str], List[str]]:
    """(our options, script, module, the program's arguments): our options end at the program."""
    argv = list(argv)
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            rest = argv[i + 1 :]
            return argv[:i], (rest[0] if rest else None), None, rest[1:]
        if token == "-m":
            if i + 1 == len(argv):
                return argv, None, None, []  # "-m" stays among the options: an error below
            return argv[:i], None, argv[i + 1], argv[i + 2 :]
        if token in _WITH_VALUE:
            i += 2
        elif token.startswith("-"):
            i += 1  # our flags, `--name=value`, and unknown options (argparse names them)
        else:
            return argv[:i], token, None, argv[i + 1 :]
    return argv, None, None, []


def main(argv: Sequence[str]) -> int:
    options, script, module, program_args = split_argv(argv)
    parser = build_parser()
    if "-m" in options:
        parser.error("-m needs a module name")
    args = parser.parse_args(options)
    if script is None and module is None:
        parser.error("no program given: name a SCRIPT.py or -m MODULE after the options")

    from ._ops import validate

    try:
        validate(args.surrogate, args.alpha, args.negative_only, fn=PROG)
    except (TypeError, ValueError) as exc:
        parser.exit(2, f"{PROG}: error: {str(exc).removeprefix(PROG + ': ')}\n")
    if script is not None and not os.path.isfile(script):
        parser.exit(2, f"{PROG}: error: can't open file {script!r}: no such file\n")
    # sys.path[0] as Python sets it for `python SCRIPT.py` (the script's folder) or `-m` (here).
    sys.path[0] = os.path.dirname(os.path.abspath(script)) if script is not None else os.getcwd()
    if module is not None and importlib.util.find_spec(module.split(".")[0]) is None:
        parser.exit(2, f"{PROG}: error: no module named {module!r}\n")

    settings = {"surrogate": args.surrogate, "alpha": args.alpha, "negative_only": args.negative_only}
    if args.seed is not None:
        seed_everything(args.seed)
    if not args.quiet and os.environ.get("RANK", "0") == "0":
        print(f"{PROG}: {describe(settings)} for every ReLU of {script or '-m ' + module}", file=sys.stderr)
    return run_program(script, module, program_args, settings)


def describe(settings: dict) -> str:
    from ._ops import surrogates

    name, alpha = settings["surrogate"], settings["alpha"]
    if name == "relu":
        return "plain ReLU gradients (the control)"
    if alpha is None:
        alpha = next((s.default_alpha for s in surrogates() if s.name == name), None)
    alpha_text = "" if alpha is None else f", alpha={alpha:g}"
    scope = ", x <= 0 only" if settings["negative_only"] else ""
    return f"SUGAR ({name}{alpha_text}{scope})"


def seed_everything(seed: int) -> None:
    """Seeds Python's random, numpy's global generator (when numpy is installed) and torch."""
    import torch

    random.seed(seed)
    if importlib.util.find_spec("numpy") is not None:
        import numpy

        numpy.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_program(script: Optional[str], module: Optional[str], program_args: List[str], settings: dict) -> int:
    """Runs the script (or module) as __main__ under the patch; returns 0, or 1 after printing an
    uncaught exception as Python would (SystemExit and KeyboardInterrupt pass through)."""
    from ._patch import patch

    # run_path/run_module set argv[0] to the script or the module's file, as Python does.
    sys.argv[:] = [script or module, *program_args]
    try:
        with patch(**settings), children_patched(settings), torchscript_warned():
            if script is not None:
                runpy.run_path(script, run_name="__main__")
            else:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:  # what Python does with an uncaught exception, minus our frames
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_globals.get("__name__") in _RUNNER_MODULES:
            tb = tb.tb_next
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        return 1
    return 0


class PatchedRun:
    """``Process.run`` of a child process started under ``torch-sugar run``: the process's own
    run() under the same patch. Pickled with the process object for spawn/forkserver children."""

    def __init__(self, process: multiprocessing.process.BaseProcess, settings: dict):
        self.process = process
        self.settings = settings

    def __call__(self):
        from ._patch import patch

        with patch(**self.settings):
            return type(self.process).run(self.process)


@contextlib.contextmanager
def children_patched(settings: dict):
    """While active, every multiprocessing process started in this process runs under the patch
    too (fork children inherit it anyway; spawn and forkserver children start a new interpreter)."""
    base = multiprocessing.process.BaseProcess
    original_start = base.start

    def start(self):
        if not isinstance(self.__dict__.get("run"), PatchedRun):
            self.run = PatchedRun(self, settings)
        return original_start(self)

    base.start = start
    try:
        yield
    finally:
        base.start = original_start


@contextlib.contextmanager
def torchscript_warned():
    """While active, torch.jit.script and torch.jit.load warn (once each) that the TorchScript code
    they make runs without Python, so the patch cannot reach its ReLUs. (torch.jit.trace records
    the calls as the patch rewrites them, SUGAR included: it needs no warning.)"""
    import torch.jit

    originals = {name: getattr(torch.jit, name) for name in ("script", "load")}
    warned = set()

    def wrap(name, original):
        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            if name not in warned:
                warned.add(name)
                warnings.warn(
                    f"{PROG}: the program calls torch.jit.{name}: TorchScript code runs without Python, so "
                    "its ReLUs keep the gradients they were scripted with (plain ReLU, or a SugarReLU's own "
                    "settings), not the patch's",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return original(*args, **kwargs)

        return wrapper

    for name, original in originals.items():
        setattr(torch.jit, name, wrap(name, original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(torch.jit, name, original)
