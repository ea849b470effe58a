"""The ``torch-sugar`` command (also ``python -m torch_sugar``).

    torch-sugar compare [flags]   ReLU vs SUGAR on a data set (the main job)
    torch-sugar run SCRIPT [ARGS] a Python program with SUGAR for every ReLU it computes
    torch-sugar surrogates        the surrogate table
    torch-sugar synthetic-ctr F   write the generated click data (user and item ids) as a CSV file
    torch-sugar info              how this copy was built

Bad input is one line on stderr and exit code 2; Ctrl-C during compare keeps the finished runs
and exits with 130. The machinery lives in :mod:`torch_sugar.experiments`.
"""

import argparse
import json
import math
import os
import sys
from typing import List, Optional, Sequence

PROG = "torch-sugar"
DEFAULT_ACTIVATIONS = "relu,bsilu,nelu"
DEFAULT_HIDDEN = "16,16,16,16,16,16,16,16"
DEFAULT_SHUFFLE_BUFFER = 65536
DEFAULT_EVAL_ROWS = 100000


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (no usage dump) and exits with 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------------- flag value types
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _float_in(lo: float, hi: float, lo_open: bool, hi_open: bool, what: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        ok = (
            math.isfinite(value)
            and (value > lo if lo_open else value >= lo)
            and (value < hi if hi_open else value <= hi)
        )
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_float = _float_in(0.0, math.inf, True, True, "a positive number")
_nonneg_float = _float_in(0.0, math.inf, False, True, "a number >= 0")
_fraction = _float_in(0.0, 1.0, True, True, "a fraction strictly between 0 and 1")
_dropout = _float_in(0.0, 1.0, False, True, "a probability in [0, 1)")


def _int_list(text: str) -> List[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers like 256,128, got {text!r}"
        ) from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers like 256,128, got {text!r}"
        )
    return values


def _seeds(text: str) -> List[int]:
    """'3' -> 0,1,2; '0,4,7' -> those; '5-9' -> 5..9 inclusive."""
    bad = argparse.ArgumentTypeError(
        f"expected a count (3 = seeds 0,1,2), a list (0,4,7) or a range (5-9), got {text!r}"
    )
    text = text.strip()
    try:
        if "," in text:
            values = [int(v) for v in text.split(",") if v.strip()]
        elif "-" in text[1:]:
            lo, hi = (int(v) for v in text.split("-", 1))
            if hi < lo:
                raise bad
            values = list(range(lo, hi + 1))
        else:
            count = int(text)
            if count < 1:
                raise bad
            values = list(range(count))
    except ValueError:
        raise bad from None
    if not values or any(v < 0 for v in values):
        raise bad
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"seed listed twice in {text!r}")
    return values


def _names(text: str) -> List[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _pos_weight(text: str) -> str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected auto or a positive number, got {text!r}")
    return text


# ----------------------------------------------------------------------------------- parser
COMPARE_DESCRIPTION = """\
Train the same model with ReLU and with SUGAR (ReLU forward, a smooth surrogate's derivative in
backward) on one data set, over several seeds, and compare them on held-out data: loss,
accuracy, AUC and PR-AUC (two classes), uAUC (two classes and --group: mean AUC within each
group that has both classes), at the epoch with the best validation loss, the fraction of dead units per layer (units whose output is never > 0 on the
held-out rows) at the start and the end, and time per epoch.

For each seed, every activation starts from the same initial weights and sees the same batches,
so the differences to the baseline are paired; the table shows mean ± std over seeds and a
paired t-test. Without flags it runs the README demo: a deep, narrow MLP (8 hidden layers of 16
units) on scikit-learn's digits, trained with Adam at lr 0.01 (ten times Adam's usual 1e-3), a
regime where plain ReLU loses units; 5 seeds x 3 activations, about a minute on one CPU core.
"""

COMPARE_EPILOG = """\
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

output: a table on stdout, progress bars on stderr, and in --out: results.json (config, every
run with its metrics and per-epoch history, the summary), results.csv (one row per run),
learning_curves.png, dead_units.png and, with --save-predictions, predictions/*.csv; with
--save-models DIR: per run a state_dict and a TorchScript file, and preprocessing.json.
Results are written after each run; Ctrl-C keeps the finished runs (exit code 130).
Bad input: one line on stderr, exit code 2.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="torch-sugar: SUGAR (surrogate-gradient ReLU) as a native PyTorch operator, "
        "and a tool to compare it with ReLU on your data.",
        epilog="examples:\n  torch-sugar compare            # ReLU vs SUGAR on digits (the demo)\n"
        "  torch-sugar compare --help     # every flag of the experiment\n"
        "  torch-sugar run train.py ARGS  # your own program, every ReLU SUGAR (run --help)\n"
        "  torch-sugar surrogates         # the surrogate functions and their alphas\n"
        "  torch-sugar info               # build information",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    cmp_ = sub.add_parser(
        "compare",
        help="compare ReLU and SUGAR on a data set (the main job)",
        description=COMPARE_DESCRIPTION,
        epilog=COMPARE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = cmp_.add_argument_group("data (one source; the default is --dataset digits)")
    src = g.add_mutually_exclusive_group()
    src.add_argument(
        "--dataset",
        choices=["digits", "breast_cancer", "wine", "synthetic-ctr"],
        help="built-in data: scikit-learn's bundled digits (8x8 images, 10 classes), "
        "breast_cancer (30 features, 2 classes) or wine (13 features, 3 classes); "
        "synthetic-ctr: generated click data with user and item ids (AUC, PR-AUC, "
        "uAUC)",
    )
    src.add_argument(
        "--csv",
        metavar="PATH",
        help="your CSV file with a header row; needs --target. Numeric columns are "
        "features; text columns and --categorical ones are embedded; only empty "
        "cells (and --na-values) are missing",
    )
    src.add_argument(
        "--parquet",
        metavar="PATH",
        help="a Parquet file or a directory of them (read with pyarrow); needs "
        "--target. Same column flags and rules as --csv: integer and float "
        "columns are numeric (null is missing), text columns are categorical",
    )
    src.add_argument(
        "--images", metavar="DIR", help="a folder with one sub-folder of images per class (read with Pillow)"
    )
    src.add_argument(
        "--cifar",
        metavar="DIR",
        help="CIFAR-10 (cifar-10-batches-py) or CIFAR-100 (cifar-100-python) in the "
        "python format, or their parent folder; never downloaded",
    )
    g.add_argument(
        "--target",
        metavar="COL",
        help="--csv, --parquet: the class column; classes are its distinct values in sorted order "
        "(numerically if all are numbers), and with two classes the second (1, "
        "true, yes) is the positive one for AUC",
    )
    g.add_argument(
        "--group",
        metavar="COL",
        help="--csv, --parquet: a group column (user id, query id); enables uAUC for two classes",
    )
    g.add_argument(
        "--ignore",
        metavar="COLS",
        type=_names,
        default=[],
        help="--csv, --parquet: comma-separated columns to leave out (ids, timestamps)",
    )
    g.add_argument(
        "--categorical",
        metavar="COLS",
        type=_names,
        default=[],
        help="--csv, --parquet: comma-separated columns to treat as categorical ids (user, item): "
        "an embedding each; text columns are categorical anyway. The --group "
        "column is a feature only when listed here",
    )
    g.add_argument(
        "--hash-buckets",
        metavar="N",
        type=_positive_int,
        help="a categorical column with more than N distinct training values is hashed "
        "(crc32) into N buckets; default: a full vocabulary per column",
    )
    g.add_argument(
        "--embedding-dim",
        metavar="N",
        type=_positive_int,
        help="embedding width of every categorical column (default: min(16, "
        "round(1.6 * categories^0.56)) per column)",
    )
    g.add_argument(
        "--na-values",
        metavar="VALUES",
        type=_names,
        default=[],
        help="--csv, --parquet: comma-separated cell values that also mean missing, e.g. '?,NA' "
        "(default: only empty cells are missing)",
    )
    g.add_argument(
        "--fill",
        choices=["mean", "zero"],
        help="--csv, --parquet: fill missing numeric values with the training rows' mean or zero "
        "(default: a missing numeric value is an error; a missing categorical "
        "value is always a category of its own)",
    )
    g.add_argument(
        "--max-classes",
        metavar="N",
        type=_positive_int,
        default=100,
        help="--csv, --parquet: most distinct target values accepted (default %(default)s)",
    )
    g.add_argument(
        "--stream",
        action="store_true",
        help="--parquet: data larger than memory: one streaming pass for the "
        "vocabularies and scaling, training rows streamed by row group through a "
        "shuffle buffer, the split by a hash of the row number (not stratified)",
    )
    g.add_argument(
        "--shuffle-buffer",
        metavar="N",
        type=_positive_int,
        help=f"--stream: rows shuffled together within the shuffled row groups "
        f"(default {DEFAULT_SHUFFLE_BUFFER})",
    )
    g.add_argument(
        "--eval-rows",
        metavar="N",
        type=_positive_int,
        help=f"--stream: at most N validation and N test rows, the first ones, are kept "
        f"in memory (default {DEFAULT_EVAL_ROWS})",
    )
    g.add_argument(
        "--image-size",
        metavar="N",
        type=_positive_int,
        default=32,
        help="--images: resize every image to N x N pixels (default %(default)s)",
    )
    g.add_argument("--grayscale", action="store_true", help="--images: read images as one channel")
    g.add_argument(
        "--cifar-labels",
        choices=["fine", "coarse"],
        default="fine",
        help="--cifar with CIFAR-100: 100 fine or 20 coarse classes (default %(default)s)",
    )
    g.add_argument(
        "--ctr-rows",
        metavar="N",
        type=_positive_int,
        default=20000,
        help="synthetic-ctr: impressions to generate (default %(default)s)",
    )
    g.add_argument(
        "--ctr-users",
        metavar="N",
        type=_positive_int,
        default=400,
        help="synthetic-ctr: users (default %(default)s)",
    )
    g.add_argument(
        "--data-seed",
        metavar="N",
        type=_nonneg_int,
        default=0,
        help="seed of the train/validation/test split (and of synthetic-ctr); the same "
        "split is used for every run (default %(default)s)",
    )
    g.add_argument(
        "--val-fraction",
        metavar="F",
        type=_fraction,
        default=0.15,
        help="share of rows for validation (per-epoch curves, epoch selection) (default %(default)s)",
    )
    g.add_argument(
        "--test-fraction",
        metavar="F",
        type=_fraction,
        default=0.2,
        help="share of rows held out for the final metrics (default %(default)s; CIFAR "
        "uses its own test set)",
    )
    g.add_argument(
        "--limit",
        metavar="N",
        type=_positive_int,
        help="use a stratified random subset of N rows (CIFAR: N training images and "
        "N/5 test images), for quick runs",
    )
    g.add_argument(
        "--augment",
        action="store_true",
        help="image data: random 4-pixel-padded crops and horizontal flips in training",
    )

    g = cmp_.add_argument_group("model")
    g.add_argument(
        "--model",
        choices=["mlp", "dcn", "cnn", "vgg16", "resnet18"],
        default="mlp",
        help="mlp (any data; with categorical columns: embeddings + mlp), dcn "
        "(tabular: embeddings, a DCN-v2 cross network beside the mlp), or for "
        "images: a small 3-layer cnn, or CIFAR-style vgg16 / resnet18 (default "
        "%(default)s)",
    )
    g.add_argument(
        "--model-fn",
        metavar="FILE.py:FUNC",
        help="your own model: FUNC(spec, n_outputs) returns an nn.Module with nn.ReLU "
        "activations (converted with torch_sugar.convert); see "
        "examples/model_fn_example.py. Replaces --model",
    )
    g.add_argument(
        "--hidden",
        metavar="W,W,...",
        type=_int_list,
        default=_int_list(DEFAULT_HIDDEN),
        help=f"mlp: hidden layer widths (default {DEFAULT_HIDDEN}: deep and narrow)",
    )
    g.add_argument(
        "--width",
        metavar="X",
        type=_positive_float,
        default=1.0,
        help="cnn/vgg16/resnet18: multiply every channel count by X (0.25 for quick "
        "CPU runs) (default %(default)s)",
    )
    g.add_argument(
        "--dropout",
        metavar="P",
        type=_dropout,
        default=0.0,
        help="dropout after each hidden activation (mlp) or before the classifier (default %(default)s)",
    )
    g.add_argument(
        "--norm",
        choices=["auto", "batch", "none"],
        default="auto",
        help="batch norm before each activation; auto = batch for vgg16/resnet18, "
        "none for mlp/cnn (default %(default)s)",
    )
    g.add_argument(
        "--init",
        choices=["torch", "kaiming"],
        default="kaiming",
        help="weight initialization: torch = PyTorch's layer defaults; kaiming = He "
        "normal weights for ReLU, zero biases (default %(default)s)",
    )

    g = cmp_.add_argument_group("activations")
    g.add_argument(
        "--activations",
        metavar="NAMES",
        default=DEFAULT_ACTIVATIONS,
        help="comma-separated activations to compare, see below (default %(default)s)",
    )
    g.add_argument(
        "--negative-only",
        action="store_true",
        help="every SUGAR activation uses its surrogate only where x <= 0 (same as the -neg suffix)",
    )
    g.add_argument(
        "--baseline",
        metavar="NAME",
        help="the activation the others are compared with (default relu if listed, else the first)",
    )

    g = cmp_.add_argument_group("training")
    g.add_argument(
        "--seeds",
        metavar="S",
        type=_seeds,
        default=_seeds("5"),
        help="seeds: a count (3 = 0,1,2), a list (0,4,7) or a range (5-9); each seed "
        "sets the initial weights, batch order and dropout (default 5)",
    )
    g.add_argument(
        "--epochs",
        metavar="N",
        type=_positive_int,
        default=30,
        help="training epochs per run (default %(default)s)",
    )
    g.add_argument(
        "--lr",
        metavar="LR",
        type=_positive_float,
        default=0.01,
        help="learning rate (default %(default)s: high for Adam on purpose, the demo's "
        "regime; 1e-3 is Adam's usual, 0.01-0.1 SGD's)",
    )
    g.add_argument(
        "--optimizer",
        choices=["sgd", "adam", "adamw"],
        default="adam",
        help="optimizer (default %(default)s)",
    )
    g.add_argument(
        "--momentum",
        metavar="M",
        type=_float_in(0.0, 1.0, False, True, "a number in [0, 1)"),
        default=0.9,
        help="sgd momentum (default %(default)s)",
    )
    g.add_argument(
        "--weight-decay",
        metavar="WD",
        type=_nonneg_float,
        help="weight decay (default: the optimizer's own: 0, adamw 0.01)",
    )
    g.add_argument(
        "--schedule",
        choices=["constant", "cosine"],
        default="constant",
        help="learning-rate schedule over the epochs (default %(default)s)",
    )
    g.add_argument(
        "--batch-size",
        metavar="N",
        type=_positive_int,
        default=64,
        help="training batch size (default %(default)s)",
    )
    g.add_argument(
        "--eval-batch-size",
        metavar="N",
        type=_positive_int,
        default=1024,
        help="batch size for evaluation passes (default %(default)s)",
    )
    g.add_argument(
        "--clip-grad",
        metavar="NORM",
        type=_positive_float,
        help="clip the gradient norm to NORM (default: no clipping)",
    )
    g.add_argument(
        "--select-by",
        choices=["loss", "auc"],
        default="loss",
        help="the test metrics are those of the epoch with the best validation loss "
        "(the weighted loss with --pos-weight) or AUC (two classes) (default "
        "%(default)s)",
    )
    g.add_argument(
        "--patience",
        metavar="N",
        type=_positive_int,
        help="stop a run after N epochs without a better validation score (default: train all --epochs)",
    )
    g.add_argument(
        "--pos-weight",
        metavar="auto|X",
        type=_pos_weight,
        help="two classes: weight the positive class's loss by X, or by negatives / "
        "positives of the training rows with auto (rare clicks)",
    )

    g = cmp_.add_argument_group("running and output")
    g.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="where to train (default %(default)s); cuda needs a CUDA build of "
        "torch-sugar for the SUGAR activations",
    )
    g.add_argument(
        "--threads",
        metavar="N",
        type=_positive_int,
        default=1,
        help="CPU threads for torch (default %(default)s: fixed so that the same seed "
        "gives the same numbers, and fastest for small models; raise it for "
        "conv nets)",
    )
    g.add_argument(
        "--jobs",
        metavar="N",
        type=_positive_int,
        default=1,
        help="train N (activation, seed) runs at a time, each in a worker process "
        "with --threads threads; the numbers are the same as with one (default "
        "%(default)s)",
    )
    g.add_argument(
        "--out",
        metavar="DIR",
        help="output folder (default results/compare-<data set>); files there are overwritten",
    )
    g.add_argument(
        "--save-predictions",
        action="store_true",
        help="also write predictions/<activation>-seed<N>.csv: test rows (CSV line "
        "numbers for --csv), group, target, prediction, class probabilities",
    )
    g.add_argument(
        "--save-models",
        metavar="DIR",
        help="save each run's selected model in DIR: <activation>-seed<N>.state_dict.pt "
        "and .torchscript.pt (torch.jit.load after import torch_sugar, or "
        "torch::jit::load in C++), and preprocessing.json (vocabularies, scaling)",
    )
    g.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    g.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars and no header; only the table and the file paths",
    )

    sub.add_parser(  # listed for --help; main() hands `run ...` to _run.main before parsing
        "run",
        help="run a Python program with SUGAR for every ReLU it computes (torch-sugar run --help)",
        add_help=False,
    )
    sub.add_parser(
        "surrogates",
        help="list the surrogates, their default alphas and ranges",
        description="List every surrogate name the ops accept (torch_sugar.surrogates()).",
    )
    sub.add_parser(
        "info",
        help="print how this copy of torch-sugar was built (build_info())",
        description="Print torch_sugar.build_info() as JSON, plus the library paths.",
    )
    ctr = sub.add_parser(
        "synthetic-ctr",
        help="write generated click data as a CSV file",
        description="Write the synthetic-ctr data (impressions of ads to users: "
        "user and item ids, ad category, device, numeric features, "
        "clicked) as a CSV file, to try `compare --csv` on.",
    )
    ctr.add_argument(
        "path",
        metavar="FILE",
        help="the CSV file to write; a name ending in .parquet writes Parquet, "
        "generated a million rows at a time (for large files)",
    )
    ctr.add_argument(
        "--rows", metavar="N", type=_positive_int, default=20000, help="impressions (default %(default)s)"
    )
    ctr.add_argument(
        "--users", metavar="N", type=_positive_int, default=400, help="users (default %(default)s)"
    )
    ctr.add_argument(
        "--seed", metavar="N", type=_nonneg_int, default=0, help="generator seed (default %(default)s)"
    )
    return parser


def _check_compare_args(args) -> None:
    from .experiments import UsageError

    table = args.csv is not None or args.parquet is not None
    if not table:
        for flag, value in (("--target", args.target), ("--group", args.group)):
            if value is not None:
                raise UsageError(f"{flag} only applies to --csv and --parquet")
        for flag, value in (
            ("--ignore", args.ignore),
            ("--categorical", args.categorical),
            ("--na-values", args.na_values),
            ("--fill", args.fill),
        ):
            if value:
                raise UsageError(f"{flag} only applies to --csv and --parquet")
    elif args.target is None:
        raise UsageError(
            f"{'--csv' if args.csv is not None else '--parquet'} needs --target COL (the class column)"
        )
    if args.stream and args.parquet is None:
        raise UsageError("--stream only applies to --parquet")
    for flag, value, default in (
        ("--shuffle-buffer", args.shuffle_buffer, DEFAULT_SHUFFLE_BUFFER),
        ("--eval-rows", args.eval_rows, DEFAULT_EVAL_ROWS),
    ):
        if value is not None and not args.stream:
            raise UsageError(f"{flag} only applies to --stream")
    args.shuffle_buffer = args.shuffle_buffer or DEFAULT_SHUFFLE_BUFFER
    args.eval_rows = args.eval_rows or DEFAULT_EVAL_ROWS
    if args.stream and args.limit is not None:
        raise UsageError("--limit does not apply to --stream (the split is a hash of the row number)")
    if args.dataset is None and not table and args.images is None and args.cifar is None:
        args.dataset = "digits"
    if args.val_fraction + args.test_fraction > 0.8:
        raise UsageError(
            f"--val-fraction + --test-fraction must leave at least 20% for training, "
            f"got {args.val_fraction:g} + {args.test_fraction:g}"
        )


def _cmd_surrogates() -> int:
    import torch_sugar

    rows = [
        (
            s.name,
            "-" if s.default_alpha is None else f"{s.default_alpha:g}",
            s.alpha_range or "-",
            s.description
            + (f" (alias of {s.alias_of})" if s.alias_of and "alias" not in s.description else ""),
        )
        for s in torch_sugar.surrogates()
    ]
    header = ("name", "default alpha", "alpha range", "description")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header[:3])]
    for row in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:3], widths)) + "  " + row[3])
    return 0


def _cmd_info() -> int:
    import torch_sugar

    info = dict(torch_sugar.build_info())
    info["library_path"] = torch_sugar.library_path
    info["cmake_prefix_path"] = torch_sugar.cmake_prefix_path
    print(json.dumps(info, indent=2))
    return 0


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


# What `compare` and `synthetic-ctr` import beyond torch (import name, package name): the
# `experiments` extra of pyproject.toml. `import torch_sugar` and the other commands need none of it.
_NEEDS = {
    "compare": (("numpy", "numpy"), ("sklearn", "scikit-learn"), ("scipy", "scipy")),
    "synthetic-ctr": (("numpy", "numpy"),),
}
INSTALL_EXPERIMENTS = "pip install 'torch-sugar[experiments]'"


def _missing_packages(command: str) -> List[str]:
    import importlib.util

    missing = []
    for module, package in _NEEDS[command]:
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:  # a finder that refuses the name (an environment that blocks it)
            found = False
        if not found:
            missing.append(package)
    return missing


def _import_experiments(command: str, module: str):
    """``torch_sugar.experiments.<module>`` for ``command``, or None after one line on stderr
    naming what of the scientific stack is missing and how to install it."""
    import importlib

    missing = _missing_packages(command)
    if not missing:
        try:
            return importlib.import_module(f"{__package__}.experiments.{module}")
        except ImportError as exc:  # present but not importable (say, built for another numpy)
            top = (exc.name or "").partition(".")[0]
            if top not in dict(_NEEDS[command]):
                raise
            sys.stderr.write(f"{PROG} {command}: error: cannot import {top} ({exc}): {INSTALL_EXPERIMENTS}\n")
            return None
    names = missing[0] if len(missing) == 1 else ", ".join(missing[:-1]) + " and " + missing[-1]
    verb = "is" if len(missing) == 1 else "are"
    sys.stderr.write(
        f"{PROG} {command}: error: needs {names}, which {verb} not installed: {INSTALL_EXPERIMENTS}\n"
    )
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:  # its own parser: everything after the program is the program's
        from ._run import main as run_main

        return run_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    if args.command == "surrogates":
        return _cmd_surrogates()
    if args.command == "info":
        return _cmd_info()
    from .experiments import UsageError

    if args.command == "synthetic-ctr":
        data_mod = _import_experiments("synthetic-ctr", "data")
        if data_mod is None:
            return 2
        if args.path.endswith(".parquet"):
            try:
                rate = data_mod.write_synthetic_ctr_parquet(args.path, args.rows, args.users, args.seed)
            except UsageError as exc:
                print(f"{PROG} synthetic-ctr: error: {str(exc).replace('--ctr-', '--')}", file=sys.stderr)
                return 2
            print(
                f"{args.path}: {args.rows} impressions, {args.users} users, {rate:.1%} clicks, "
                f"generator seed {args.seed}; columns: {', '.join(data_mod.CTR_CATEGORICAL)}, "
                f"{', '.join(data_mod.CTR_FEATURES)}, clicked"
            )
            return 0
        try:
            raw = data_mod.make_synthetic_ctr(args.rows, args.users, args.seed)
            data_mod.write_table_csv(raw, args.path)
        except UsageError as exc:
            print(f"{PROG} synthetic-ctr: error: {str(exc).replace('--ctr-', '--')}", file=sys.stderr)
            return 2
        print(
            f"{args.path}: {raw.notes[0].split(': ', 1)[1]}; columns: user, item, ad_category, "
            f"device, {', '.join(raw.feature_names)}, {raw.target_name}"
        )
        return 0

    compare = _import_experiments("compare", "compare")
    if compare is None:
        return 2
    args.argv = argv
    try:
        _check_compare_args(args)
        code = compare.run(args)
    except UsageError as exc:
        # One write of the whole line: under torchrun every rank prints it to the same stream.
        sys.stderr.write(f"{PROG} compare: error: {exc}\n")
        sys.stderr.flush()
        code = 2
    except KeyboardInterrupt:  # before the first run started: nothing to keep
        print(f"\n{PROG} compare: interrupted before any run finished", file=sys.stderr)
        code = 130
    except BaseException:
        _leave_process_group()
        raise
    if _leave_process_group():
        _exit_rank(code)
    return code
