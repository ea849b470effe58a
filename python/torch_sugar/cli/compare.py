"""``torch-sugar compare``: the flags are the fields of :class:`~torch_sugar.experiments.config.
CompareConfig` (one help group per section, each field's docstring its help); this module turns
them into the typed config, validated once, and hands it to
:func:`torch_sugar.experiments.compare.run`."""

import argparse
import json
import os
import sys
from typing import Any, Dict, Optional, Sequence

from ..experiments.config import FIELDS, SECTIONS, CompareConfig, FieldInfo, value_text
from ..experiments.errors import UsageError
from ._base import PROG, SCIENTIFIC_STACK, Subcommand

DESCRIPTION = """\
Train the same model with ReLU and with SUGAR (ReLU forward, a smooth surrogate's derivative in
backward) on one data set, over several seeds, and compare them on held-out data: loss,
accuracy, AUC and PR-AUC (two classes), uAUC (two classes and --group: mean AUC within each
group that has both classes), at the epoch with the best validation loss, the fraction of dead
units per layer (units whose output is never > 0 on the held-out rows) at the start and the end,
and time per epoch.

For each seed, every activation starts from the same initial weights and sees the same batches,
so the differences to the baseline are paired; the table shows mean ± std over seeds and a
paired t-test. Without flags it runs the README demo: a deep, narrow MLP (8 hidden layers of 16
units) on scikit-learn's digits, trained with Adam at lr 0.01 (ten times Adam's usual 1e-3), a
regime where plain ReLU loses units; 5 seeds x 3 activations, about a minute on one CPU core.

With --script "python train.py ARGS" it compares on your own training script instead: each
(activation, seed) runs the script under `torch-sugar run` (every ReLU it computes is that
activation), and the numbers it passes to torch_sugar.report() are compared the same way.
"""

EPILOG = """\
activation names (--activations, comma-separated):
  relu                    nn.ReLU, the control (the baseline when listed)
  bsilu, nelu, elu, ...   SUGAR with that surrogate (torch_sugar.convert); see `torch-sugar surrogates`
  NAME:ALPHA              set the surrogate's alpha, e.g. nelu:0.05
  NAME-neg                negative_only: the surrogate only where x <= 0, e.g. bsilu-neg
  plain:NAME[:ALPHA]      the smooth function itself, forward and backward, e.g. plain:gelu

examples:
  torch-sugar compare                                   # the demo (digits, deep narrow MLP)
  torch-sugar compare --dataset breast_cancer --hidden 64,64 --lr 0.01 --optimizer adam
  torch-sugar compare --dataset synthetic-ctr --hidden 256,128,64 --optimizer adam --lr 1e-3 \\
      --epochs 5 --activations relu,bsilu,nelu:0.05     # click data: loss, AUC, uAUC
  torch-sugar synthetic-ctr clicks.csv                  # a click-like CSV to try it on
  torch-sugar compare --csv clicks.csv --target clicked --group user --categorical user,item \\
      --hidden 64,32 --optimizer adam --lr 1e-3 --epochs 10 --patience 3 --save-models models/
  torch-sugar compare --csv clicks.csv --target clicked --model-fn my_model.py:build
  torch-sugar compare --parquet clicks/ --target clicked --group user --categorical user,item \\
      --jobs 2                                          # Parquet, two runs at a time
  torch-sugar synthetic-ctr big.parquet --rows 10000000
  torch-sugar compare --parquet big.parquet --stream --target clicked --categorical user,item
  torch-sugar compare --images photos/ --image-size 32 --model cnn --augment
  torch-sugar compare --cifar ~/data/cifar-10-batches-py --model vgg16 --optimizer sgd \\
      --lr 0.05 --schedule cosine --epochs 30 --batch-size 128 --augment --device cuda
  torch-sugar compare --activations relu,bsilu,nelu-neg,plain:gelu,plain:mish --seeds 0-4
  torch-sugar compare --config results/clicks/results.json --out again   # re-create a run
  torch-sugar compare --script "python train.py --epochs 10 --seed {seed}" --seeds 3 --jobs 2
                                                        # your own script (it calls torch_sugar.report)
  torch-sugar compare ... --resume                      # after Ctrl-C: run only what is left

output: a table on stdout, progress bars on stderr, and in --out: results.json (the whole
configuration, every run with its metrics and per-epoch history, the summary), results.csv (one
row per run), learning_curves.png, dead_units.png and, with --save-predictions,
predictions/*.csv; with --save-models DIR: per run a state_dict and a TorchScript file, and
preprocessing.json. Results are written after each run; Ctrl-C keeps the finished runs (exit code
130) and --resume continues them. Bad input: one line on stderr, exit code 2.
"""


class Compare(Subcommand):
    name = "compare"
    help = "compare ReLU and SUGAR on a data set (the main job)"
    description = DESCRIPTION
    epilog = EPILOG
    needs = SCIENTIFIC_STACK
    probes = ("numpy", "numpy.random")

    def parser_options(self) -> dict:
        # only the flags given appear in the namespace: the defaults live in the config classes
        return {"argument_default": argparse.SUPPRESS}

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_config_flags(parser)
        g = parser.add_argument_group("configuration and resuming")
        g.add_argument(
            "--config",
            metavar="FILE",
            help="start from the configuration in FILE (a results.json of an earlier run, or its "
            "'config' object alone); the flags given here override it",
        )
        g.add_argument(
            "--resume",
            action="store_true",
            help="continue an interrupted comparison in its --out folder: keep the finished runs of "
            "its results.json and run the rest (the configuration must match)",
        )

    def run(self, args: argparse.Namespace, argv: Sequence[str]) -> int:
        compare = self.import_experiments("compare")
        if compare is None:
            return 2
        try:
            config = config_from_args(args)
            code = compare.run(config, resume=getattr(args, "resume", False), command=[PROG, *argv])
        except UsageError as exc:
            code = self.error(str(exc))
        except ImportError as exc:  # the scientific stack, imported where it is used
            code = self.import_failed(exc)
        except KeyboardInterrupt:  # before the first run started: nothing to keep
            print(f"\n{PROG} compare: interrupted before any run finished", file=sys.stderr)
            code = 130
        except BaseException:
            _leave_process_group()
            raise
        if _leave_process_group():
            _exit_rank(code)
        return code


# ------------------------------------------------------------------------- flags from the config
def _help(info: FieldInfo) -> str:
    text = info.doc
    if info.default not in (None, False, ()) and "(default" not in text:
        text += f" (default {value_text(info.default).rstrip(',')})"
    return text.replace("%", "%%")


def _flag_type(info: FieldInfo):
    def parse(text: str) -> Any:
        try:
            return info.parse_text(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = info.name
    return parse


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One argument group per config section, one flag per field (the data sources mutually
    exclusive)."""
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group((cls.__doc__ or section).strip())
        sources = group.add_mutually_exclusive_group() if section == "data" else None
        for _, info in (entry for entry in FIELDS.values() if entry[0] == section):
            target = sources if info.source else group
            if info.is_bool:
                target.add_argument(info.flag, action="store_true", help=_help(info))
            elif info.choices is not None and info.parse is None:
                target.add_argument(info.flag, choices=info.choices, help=_help(info))
            else:
                target.add_argument(info.flag, metavar=info.metavar, type=_flag_type(info), help=_help(info))


def _read_config_file(path: str) -> CompareConfig:
    try:
        with open(path) as f:
            obj = json.load(f)
    except OSError as exc:
        raise UsageError(f"--config: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"--config: {path} is not JSON: {exc}") from None
    if isinstance(obj, dict) and obj.get("tool") == "torch-sugar compare":
        obj = obj.get("config")
    return CompareConfig.from_dict(obj, f"--config {path}")


def config_from_args(args: argparse.Namespace) -> CompareConfig:
    """The checked config: ``--config FILE`` (or the defaults), then the flags given."""
    given: Dict[str, Any] = {k: v for k, v in vars(args).items() if k in FIELDS}
    path: Optional[str] = getattr(args, "config", None)
    base = _read_config_file(path) if path is not None else CompareConfig()
    return base.with_values(given).check()


def parse_config(argv: Sequence[str]) -> CompareConfig:
    """The checked config of ``torch-sugar compare ARGV`` (for tests and other Python callers)."""
    from . import build_parser

    return config_from_args(build_parser().parse_args(["compare", *argv]))


# ------------------------------------------------------------------------------------ torchrun
def _leave_process_group() -> bool:
    """Under torchrun: wait for every rank (bounded), then leave the process group (compare.run
    has done so already unless it was interrupted early). Returns whether this process was in one."""
    distributed = sys.modules.get("torch_sugar.experiments.distributed")
    return distributed is not None and distributed.leave()


def _exit_rank(code: int) -> None:
    """Ends a torchrun rank once its work is done and its files are written: os._exit after
    flushing, skipping the interpreter's teardown, where gloo's and DDP's C++ threads sometimes
    made a finished rank abort (SIGABRT, "terminate called without an active exception"), which
    torchrun reports as the run failing."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
