"""The typed configuration of ``torch-sugar compare``: one dataclass per section (data, model,
comparison, training, run), every field typed (``Literal`` for a choice) and documented by the
docstring under it, which is also its ``--help`` text.

The command line builds a :class:`CompareConfig` from the flags, and :meth:`CompareConfig.check`
validates it once; everything below the command line receives these objects. results.json stores
:meth:`CompareConfig.as_dict`, and :meth:`CompareConfig.from_dict` reads it back (``--config``),
checking every value with the same rule as its flag.

Each field is a flag: ``--`` + its name with ``-`` for ``_``. Field metadata (:func:`setting`) says
how a flag's text becomes a value (``parse``), its metavar, its help group (the section) and
whether it changes a run's numbers (``affects_results``: ``--resume`` insists that those match).

This module imports neither numpy nor torch: ``torch-sugar compare --help`` works without them.
"""

import ast
import inspect
import math
import textwrap
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any, Callable, Dict, List, Literal, Optional, Tuple, get_args, get_origin, get_type_hints

from .errors import UsageError

DEFAULT_SHUFFLE_BUFFER = 65536
DEFAULT_EVAL_ROWS = 100000
BUILTIN_DATASETS = ("digits", "breast_cancer", "wine", "synthetic-ctr")
#: The data source fields: at most one is set (the default is ``dataset = "digits"``).
SOURCES = ("dataset", "csv", "parquet", "images", "cifar")
TABLE_SOURCES = ("csv", "parquet")


# ------------------------------------------------------------------------ flag value parsers
# Each takes a flag's text and returns the value or raises ValueError("expected ..., got 'x'").
def _expected(what: str, text: str) -> ValueError:
    return ValueError(f"expected {what}, got {text!r}")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _expected("a positive integer", text) from None
    if value < 1:
        raise _expected("a positive integer", text)
    return value


def nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _expected("an integer >= 0", text) from None
    if value < 0:
        raise _expected("an integer >= 0", text)
    return value


def float_in(lo: float, hi: float, lo_open: bool, hi_open: bool, what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _expected(what, text) from None
        ok = (
            math.isfinite(value)
            and (value > lo if lo_open else value >= lo)
            and (value < hi if hi_open else value <= hi)
        )
        if not ok:
            raise _expected(what, text)
        return value

    return parse


positive_float = float_in(0.0, math.inf, True, True, "a positive number")
nonneg_float = float_in(0.0, math.inf, False, True, "a number >= 0")
fraction = float_in(0.0, 1.0, True, True, "a fraction strictly between 0 and 1")
probability = float_in(0.0, 1.0, False, True, "a probability in [0, 1)")
momentum = float_in(0.0, 1.0, False, True, "a number in [0, 1)")


def int_list(text: str) -> Tuple[int, ...]:
    what = "comma-separated positive integers like 256,128"
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise _expected(what, text) from None
    if not values or any(v < 1 for v in values):
        raise _expected(what, text)
    return values


def seed_list(text: str) -> Tuple[int, ...]:
    """'3' -> 0,1,2; '0,4,7' -> those; '5-9' -> 5..9 inclusive; '7,' -> 7."""
    bad = _expected("a count (3 = seeds 0,1,2), a list (0,4,7) or a range (5-9)", text)
    text = text.strip()
    try:
        if "," in text:
            values = [int(v) for v in text.split(",") if v.strip()]
        elif "-" in text[1:]:
            lo, hi = (int(v) for v in text.split("-", 1))
            values = list(range(lo, hi + 1))
        else:
            values = list(range(int(text)))
    except ValueError:
        raise bad from None
    if not values or any(v < 0 for v in values):
        raise bad
    if len(set(values)) != len(values):
        raise ValueError(f"seed listed twice in {text!r}")
    return tuple(values)


def name_list(text: str) -> Tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def select_by_text(text: str) -> str:
    """loss | auc (a model's epoch selection) or METRIC:min|max (a --script's report selection)."""
    if text in ("loss", "auc"):
        return text
    metric, _, direction = text.rpartition(":")
    if metric.strip() and direction in ("min", "max"):
        return f"{metric.strip()}:{direction}"
    raise _expected("loss or auc, or METRIC:min|max with --script (e.g. val_loss:min)", text)


def pos_weight(text: str) -> str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise _expected("auto or a positive number", text)
    return text


def value_text(value: Any) -> str:
    """A value as its flag's text (what :func:`setting`'s ``parse`` reads back): a sequence
    comma-joined (one item gets a trailing comma: ``--seeds 7,`` is seed 7, ``--seeds 7`` seven
    seeds), a float by ``repr`` (exact)."""
    if isinstance(value, (list, tuple)):
        return ",".join(value_text(v) for v in value) + ("," if len(value) == 1 else "")
    if isinstance(value, float):
        return repr(value)
    return str(value)


# ------------------------------------------------------------------------------ field helper
def setting(
    default: Any,
    *,
    parse: Optional[Callable[[str], Any]] = None,
    metavar: Optional[str] = None,
    affects_results: bool = True,
    source: bool = False,
) -> Any:
    """A config field. ``parse``: the flag's text -> value (default: by the field's type);
    ``affects_results=False``: may differ between an interrupted run and its ``--resume``;
    ``source``: one of the mutually exclusive data sources."""
    meta = {"parse": parse, "metavar": metavar, "affects_results": affects_results, "source": source}
    return field(default=default, metadata=meta)


# ------------------------------------------------------------------------------------ sections
@dataclass(frozen=True)
class DataConfig:
    """data (one source; the default is --dataset digits)"""

    dataset: Optional[Literal["digits", "breast_cancer", "wine", "synthetic-ctr"]] = setting(
        None, source=True
    )
    """built-in data: scikit-learn's bundled digits (8x8 images, 10 classes), breast_cancer (30
    features, 2 classes) or wine (13 features, 3 classes); synthetic-ctr: generated click data with
    user and item ids (AUC, PR-AUC, uAUC)"""
    csv: Optional[str] = setting(None, metavar="PATH", source=True)
    """your CSV file with a header row; needs --target. A column is numeric when every value is a
    number, else categorical (embedded), as are --categorical ones; only empty cells (and
    --na-values) are missing"""
    parquet: Optional[str] = setting(None, metavar="PATH", source=True)
    """a Parquet file or a directory of them (read with pyarrow); needs --target. Same column flags
    and rules as --csv: integer and float columns are numeric (null is missing), text columns are
    numeric when every value is a number, else categorical"""
    images: Optional[str] = setting(None, metavar="DIR", source=True)
    """a folder with one sub-folder of images per class (read with Pillow)"""
    cifar: Optional[str] = setting(None, metavar="DIR", source=True)
    """CIFAR-10 (cifar-10-batches-py) or CIFAR-100 (cifar-100-python) in the python format, or
    their parent folder; never downloaded"""
    target: Optional[str] = setting(None, metavar="COL")
    """--csv, --parquet: the class column; classes are its distinct values in sorted order
    (numerically if all are numbers), and with two classes the second (1, true, yes) is the
    positive one for AUC; a missing target value is an error"""
    group: Optional[str] = setting(None, metavar="COL")
    """--csv, --parquet: a group column (user id, query id); enables uAUC for two classes"""
    ignore: Tuple[str, ...] = setting((), parse=name_list, metavar="COLS")
    """--csv, --parquet: comma-separated columns to leave out (ids, timestamps)"""
    categorical: Tuple[str, ...] = setting((), parse=name_list, metavar="COLS")
    """--csv, --parquet: comma-separated columns to treat as categorical ids (user, item): an
    embedding each; text columns are categorical anyway. The --group column is a feature only when
    listed here"""
    hash_buckets: Optional[int] = setting(None, parse=positive_int, metavar="N")
    """a categorical column with more than N distinct training values is hashed (crc32) into N
    buckets; default: a full vocabulary per column"""
    embedding_dim: Optional[int] = setting(None, parse=positive_int, metavar="N")
    """embedding width of every categorical column (default: min(16, round(1.6 *
    categories^0.56)) per column)"""
    na_values: Tuple[str, ...] = setting((), parse=name_list, metavar="VALUES")
    """--csv, --parquet: comma-separated cell values that also mean missing, e.g. '?,NA', in every
    column (default: only empty cells are missing)"""
    fill: Optional[Literal["mean", "zero"]] = setting(None)
    """--csv, --parquet: fill missing numeric values with the training rows' mean or zero (default:
    a missing numeric value is an error; a missing categorical value is always a category of its
    own)"""
    max_classes: int = setting(100, parse=positive_int, metavar="N")
    """--csv, --parquet: most distinct target values accepted"""
    stream: bool = setting(False)
    """--csv, --parquet: data larger than memory: one streaming pass for the vocabularies and
    scaling, training rows streamed by row group (CSV: blocks of rows) through a shuffle buffer;
    the split is --split hash"""
    split: Optional[Literal["stratified", "hash"]] = setting(None)
    """how rows are split into training, validation and test rows: stratified (scikit-learn's
    stratified shuffle split; needs every label at once) or hash (a hash of the row number and
    --data-seed, as --stream does); default: stratified, hash with --stream"""
    shuffle_buffer: Optional[int] = setting(None, parse=positive_int, metavar="N")
    f"""--stream: rows shuffled together within the shuffled row groups (default
    {DEFAULT_SHUFFLE_BUFFER})"""
    eval_rows: Optional[int] = setting(None, parse=positive_int, metavar="N")
    f"""--stream: at most N validation and N test rows, the first ones, are kept in memory (default
    {DEFAULT_EVAL_ROWS})"""
    image_size: int = setting(32, parse=positive_int, metavar="N")
    """--images: resize every image to N x N pixels"""
    grayscale: bool = setting(False)
    """--images: read images as one channel"""
    cifar_labels: Literal["fine", "coarse"] = setting("fine")
    """--cifar with CIFAR-100: 100 fine or 20 coarse classes"""
    ctr_rows: int = setting(20000, parse=positive_int, metavar="N")
    """synthetic-ctr: impressions to generate"""
    ctr_users: int = setting(400, parse=positive_int, metavar="N")
    """synthetic-ctr: users"""
    data_seed: int = setting(0, parse=nonneg_int, metavar="N")
    """seed of the train/validation/test split (and of synthetic-ctr); the same split is used for
    every run"""
    val_fraction: float = setting(0.15, parse=fraction, metavar="F")
    """share of rows for validation (per-epoch curves, epoch selection)"""
    test_fraction: float = setting(0.2, parse=fraction, metavar="F")
    """share of rows held out for the final metrics (CIFAR uses its own test set)"""
    limit: Optional[int] = setting(None, parse=positive_int, metavar="N")
    """use a stratified random subset of N rows (CIFAR: N training images and N/5 test images), for
    quick runs"""

    @property
    def table(self) -> bool:
        """A CSV or Parquet source (the column flags apply)."""
        return self.csv is not None or self.parquet is not None

    @property
    def source_flag(self) -> str:
        return next(f"--{name}" for name in SOURCES if getattr(self, name) is not None)

    @property
    def split_method(self) -> str:
        return self.split or ("hash" if self.stream else "stratified")

    @property
    def shuffle_rows(self) -> int:
        return self.shuffle_buffer or DEFAULT_SHUFFLE_BUFFER

    @property
    def held_rows(self) -> int:
        return self.eval_rows or DEFAULT_EVAL_ROWS


@dataclass(frozen=True)
class ModelConfig:
    """model"""

    model: Literal["mlp", "dcn", "cnn", "vgg16", "resnet18"] = setting("mlp")
    """mlp (any data; with categorical columns: embeddings + mlp), dcn (tabular: embeddings, a
    DCN-v2 cross network beside the mlp), or for images: a small 3-layer cnn, or CIFAR-style vgg16 /
    resnet18"""
    model_fn: Optional[str] = setting(None, metavar="FILE.py:FUNC")
    """your own model: FUNC(spec, n_outputs) returns an nn.Module with nn.ReLU activations
    (converted with torch_sugar.convert); see examples/model_fn_example.py. Replaces --model"""
    hidden: Tuple[int, ...] = setting((16,) * 8, parse=int_list, metavar="W,W,...")
    """mlp: hidden layer widths; the default is deep and narrow"""
    width: float = setting(1.0, parse=positive_float, metavar="X")
    """cnn/vgg16/resnet18: multiply every channel count by X (0.25 for quick CPU runs)"""
    dropout: float = setting(0.0, parse=probability, metavar="P")
    """dropout after each hidden activation (mlp) or before the classifier"""
    norm: Literal["auto", "batch", "none"] = setting("auto")
    """batch norm before each activation; auto = batch for vgg16/resnet18, none for mlp/cnn"""
    init: Literal["torch", "kaiming"] = setting("kaiming")
    """weight initialization: torch = PyTorch's layer defaults; kaiming = He normal weights for
    ReLU, zero biases"""


@dataclass(frozen=True)
class ComparisonConfig:
    """activations and seeds (the runs: every activation x every seed)"""

    activations: str = setting("relu,bsilu,nelu", metavar="NAMES")
    """comma-separated activations to compare, see below"""
    negative_only: bool = setting(False)
    """every SUGAR activation uses its surrogate only where x <= 0 (same as the -neg suffix)"""
    baseline: Optional[str] = setting(None, metavar="NAME")
    """the activation the others are compared with (default relu if listed, else the first)"""
    seeds: Tuple[int, ...] = setting(tuple(range(5)), parse=seed_list, metavar="S")
    """seeds: a count (3 = 0,1,2), a list (0,4,7) or a range (5-9); each seed sets the initial
    weights, batch order and dropout"""


@dataclass(frozen=True)
class TrainConfig:
    """training"""

    epochs: int = setting(30, parse=positive_int, metavar="N")
    """training epochs per run"""
    lr: float = setting(0.01, parse=positive_float, metavar="LR")
    """learning rate (high for Adam on purpose, the demo's regime; 1e-3 is Adam's usual, 0.01-0.1
    SGD's)"""
    optimizer: Literal["sgd", "adam", "adamw"] = setting("adam")
    """optimizer"""
    momentum: float = setting(0.9, parse=momentum, metavar="M")
    """sgd momentum"""
    weight_decay: Optional[float] = setting(None, parse=nonneg_float, metavar="WD")
    """weight decay (default: the optimizer's own: 0, adamw 0.01)"""
    schedule: Literal["constant", "cosine"] = setting("constant")
    """learning-rate schedule over the epochs"""
    batch_size: int = setting(64, parse=positive_int, metavar="N")
    """training batch size"""
    eval_batch_size: int = setting(1024, parse=positive_int, metavar="N")
    """batch size for evaluation passes"""
    clip_grad: Optional[float] = setting(None, parse=positive_float, metavar="NORM")
    """clip the gradient norm to NORM (default: no clipping)"""
    augment: bool = setting(False)
    """image data: random 4-pixel-padded crops and horizontal flips in training"""
    select_by: Optional[str] = setting(None, parse=select_by_text, metavar="loss|auc|METRIC:min|max")
    """the test metrics are those of the epoch with the best validation loss (the weighted loss
    with --pos-weight; the default) or AUC (two classes). With --script: METRIC:min|max picks, per
    run, the report with the lowest or highest METRIC (default: each run's last report)"""
    patience: Optional[int] = setting(None, parse=positive_int, metavar="N")
    """stop a run after N epochs without a better validation score (default: train all --epochs)"""
    pos_weight: Optional[str] = setting(None, parse=pos_weight, metavar="auto|X")
    """two classes: weight the positive class's loss by X, or by negatives / positives of the
    training rows with auto (rare clicks)"""


@dataclass(frozen=True)
class RunConfig:
    """running and output"""

    device: Literal["cpu", "cuda"] = setting("cpu")
    """where to train; cuda needs a CUDA build of torch-sugar for the SUGAR activations"""
    threads: int = setting(1, parse=positive_int, metavar="N")
    """CPU threads for torch (fixed so that the same seed gives the same numbers, and fastest for
    small models; raise it for conv nets)"""
    jobs: int = setting(1, parse=positive_int, metavar="N", affects_results=False)
    """train N (activation, seed) runs at a time, each in a worker process with --threads threads;
    the numbers are the same as with one"""
    out: Optional[str] = setting(None, metavar="DIR", affects_results=False)
    """output folder (default results/compare-<data set>); files there are overwritten unless
    --resume"""
    save_predictions: bool = setting(False)
    """also write predictions/<activation>-seed<N>.csv: test rows (CSV line numbers for --csv),
    group, target, prediction, class probabilities"""
    save_models: Optional[str] = setting(None, metavar="DIR")
    """save each run's selected model in DIR: <activation>-seed<N>.state_dict.pt and
    .torchscript.pt (torch.jit.load after import torch_sugar, or torch::jit::load in C++), and
    preprocessing.json (vocabularies, scaling)"""
    no_plots: bool = setting(False, affects_results=False)
    """skip the PNG plots"""
    quiet: bool = setting(False, affects_results=False)
    """no progress bars and no header; only the table and the file paths"""


@dataclass(frozen=True)
class ScriptConfig:
    """your own training script (--script: it loads its data, builds its model and trains its own
    way, so the data, model and training flags do not apply)"""

    script: Optional[str] = setting(None, metavar="COMMAND")
    """compare on your training script: a command line, split as a shell would (not run by one),
    e.g. "python train.py --epochs 10 --seed {seed}". Each (activation, seed) runs it as a child
    process under `torch-sugar run` (every ReLU it computes is that activation; torch, numpy and
    random are seeded with the seed), in its own folder --out/runs/<activation>-seed<N> with its
    output in log.txt; {seed} and {activation} in the command become the run's; the numbers it
    passes to torch_sugar.report() are what is compared"""
    lower_is_better: Tuple[str, ...] = setting((), parse=name_list, metavar="METRICS")
    """--script: reported metrics for which lower is better, beyond those whose name says so (a
    name with loss, error, err, mse, mae, rmse, nll, perplexity, ppl, time, seconds, dead or dormant); every other
    metric counts as better when higher"""
    timeout: Optional[float] = setting(None, parse=positive_float, metavar="SECONDS")
    """--script: stop a run that takes longer than this; it counts as failed"""


SECTIONS: Dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "comparison": ComparisonConfig,
    "training": TrainConfig,
    "run": RunConfig,
    "script": ScriptConfig,
}


# --------------------------------------------------------------------------- the whole config
@dataclass(frozen=True)
class CompareConfig:
    """Everything ``torch-sugar compare`` needs, section by section."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    comparison: ComparisonConfig = field(default_factory=ComparisonConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)
    script: ScriptConfig = field(default_factory=ScriptConfig)

    def as_dict(self) -> Dict[str, Dict[str, Any]]:
        """JSON-ready: {section: {field: value}} (tuples as lists); results.json's ``config``."""
        return {
            name: {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(getattr(self, name)).items()}
            for name in SECTIONS
        }

    def with_values(self, values: Dict[str, Any]) -> "CompareConfig":
        """A copy with flat ``{field: value}`` settings replaced (field names are unique across the
        sections). Setting one data source clears the others."""
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(unknown)}")
        if any(name in values for name in SOURCES):
            values = {**{name: None for name in SOURCES}, **values}
        sections = {}
        for section, cls in SECTIONS.items():
            mine = {k: v for k, v in values.items() if FIELDS[k][0] == section}
            sections[section] = replace(getattr(self, section), **mine) if mine else getattr(self, section)
        return CompareConfig(**sections)

    @classmethod
    def from_dict(cls, obj: Any, where: str) -> "CompareConfig":
        """The config of :meth:`as_dict` (missing fields take their defaults); every value is
        checked with its flag's rule. ``where`` names the origin in messages (``--config FILE``)."""
        if not isinstance(obj, dict):
            raise UsageError(f"{where}: expected a JSON object of sections, got {type(obj).__name__}")
        values: Dict[str, Any] = {}
        for section, entries in obj.items():
            if section not in SECTIONS:
                raise UsageError(
                    f"{where}: unknown section {section!r}; the sections are {', '.join(SECTIONS)}"
                )
            if not isinstance(entries, dict):
                raise UsageError(f"{where}: section {section!r} is not a JSON object")
            for name, value in entries.items():
                if name not in FIELDS or FIELDS[name][0] != section:
                    raise UsageError(f"{where}: {section} has no setting {name!r}")
                values[name] = _checked_value(name, value, where)
        return cls().with_values(values)

    def check(self) -> "CompareConfig":
        """Validates the combination of settings (each value was checked by its parser); returns
        the config with the default data source filled in. Raises UsageError."""
        if self.script.script is not None:
            return _check_script(self)
        for name in ("lower_is_better", "timeout"):
            if getattr(self.script, name):
                raise UsageError(f"{flag_name(name)} only applies to --script")
        if self.training.select_by not in (None, "loss", "auc"):
            raise UsageError(
                f"--select-by {self.training.select_by}: METRIC:min|max applies to --script; a model's "
                "epochs are selected by loss or auc"
            )
        data = self.data
        if not any(getattr(data, name) is not None for name in SOURCES):
            data = replace(data, dataset="digits")
        sources = [f"--{name}" for name in SOURCES if getattr(data, name) is not None]
        if len(sources) > 1:
            raise UsageError(f"{sources[1]}: not allowed with {sources[0]} (one data source)")
        _check_data(data)
        return replace(self, data=data)


#: Run settings that mean nothing for a script (it decides where and how it trains).
_NOT_FOR_SCRIPTS = ("device", "threads", "save_predictions", "save_models")


def _check_script(config: "CompareConfig") -> "CompareConfig":
    """--script: no data, model or training setting may be given (the script has its own), and
    --select-by is METRIC:min|max."""
    default = CompareConfig()
    for name, (section, info) in FIELDS.items():
        if name == "select_by" or (section == "run" and name not in _NOT_FOR_SCRIPTS):
            continue
        if section in ("data", "model", "training", "run") and (
            getattr(getattr(config, section), name) != getattr(getattr(default, section), name)
        ):
            raise UsageError(
                f"{info.flag} does not apply to --script: the script loads its data, builds its model "
                "and trains its own way"
            )
    if config.training.select_by in ("loss", "auc"):
        raise UsageError(
            f"--select-by {config.training.select_by}: with --script, give METRIC:min|max, a metric "
            "the script reports (e.g. val_loss:min); the default is each run's last report"
        )
    if not config.script.script.strip():
        raise UsageError("--script: the command is empty; e.g. --script 'python train.py --epochs 10'")
    return config


def _check_data(data: DataConfig) -> None:
    if not data.table:
        for flag, value in (
            ("--target", data.target),
            ("--group", data.group),
            ("--ignore", data.ignore),
            ("--categorical", data.categorical),
            ("--na-values", data.na_values),
            ("--fill", data.fill),
        ):
            if value:
                raise UsageError(f"{flag} only applies to --csv and --parquet")
    elif data.target is None:
        raise UsageError(f"{data.source_flag} needs --target COL (the class column)")
    if data.stream and not data.table:
        raise UsageError("--stream only applies to --csv and --parquet")
    for flag, value in (("--shuffle-buffer", data.shuffle_buffer), ("--eval-rows", data.eval_rows)):
        if value is not None and not data.stream:
            raise UsageError(f"{flag} only applies to --stream")
    if data.stream and data.limit is not None:
        raise UsageError("--limit does not apply to --stream (the split is a hash of the row number)")
    if data.stream and data.split == "stratified":
        raise UsageError(
            "--split stratified does not apply to --stream (it needs every label at once); "
            "--stream splits by --split hash"
        )
    if data.val_fraction + data.test_fraction > 0.8:
        raise UsageError(
            f"--val-fraction + --test-fraction must leave at least 20% for training, "
            f"got {data.val_fraction:g} + {data.test_fraction:g}"
        )


# ---------------------------------------------------------------------------- field catalogue
def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def field_docs(cls: type) -> Dict[str, str]:
    """The docstring under each field of a dataclass (the string literal after it), whitespace
    collapsed: the fields' ``--help`` text. Empty where the source cannot be read."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    docs: Dict[str, str] = {}
    body = tree.body[0].body
    for node, after in zip(body, body[1:]):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, (ast.Constant, ast.JoinedStr))
        ):
            text = after.value.value if isinstance(after.value, ast.Constant) else _joined_text(after.value)
            docs[node.target.id] = " ".join(str(text).split())
    return docs


def _joined_text(node: ast.JoinedStr) -> str:
    """An f-string docstring with module-level constants (``f"... {DEFAULT_EVAL_ROWS}"``)."""
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
        elif isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name):
            parts.append(str(globals().get(value.value.id, value.value.id)))
    return "".join(parts)


@dataclass(frozen=True)
class FieldInfo:
    """One setting as the command line and ``--config`` see it."""

    section: str
    name: str
    type: Any
    default: Any
    doc: str
    parse: Optional[Callable[[str], Any]]
    metavar: Optional[str]
    affects_results: bool
    source: bool

    @property
    def flag(self) -> str:
        return flag_name(self.name)

    @property
    def choices(self) -> Optional[Tuple[str, ...]]:
        kind = _unwrap_optional(self.type)
        return tuple(get_args(kind)) if get_origin(kind) is Literal else None

    @property
    def is_bool(self) -> bool:
        return self.type is bool

    def parse_text(self, text: str) -> Any:
        """The flag's text -> value; ValueError("expected ...") when it is not valid."""
        if self.parse is not None:
            return self.parse(text)
        if self.choices is not None:
            if text not in self.choices:
                raise ValueError(f"invalid choice: {text!r} (choose from {', '.join(self.choices)})")
            return text
        return text


def _unwrap_optional(kind: Any) -> Any:
    args = [a for a in get_args(kind) if a is not type(None)]
    return args[0] if get_origin(kind) is not Literal and len(args) == 1 else kind


def _catalogue() -> Dict[str, Tuple[str, FieldInfo]]:
    out: Dict[str, Tuple[str, FieldInfo]] = {}
    for section, cls in SECTIONS.items():
        hints, docs = get_type_hints(cls), field_docs(cls)
        for f in fields(cls):
            assert f.name not in out, f"setting {f.name!r} in two sections"
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            info = FieldInfo(
                section,
                f.name,
                hints[f.name],
                default,
                docs.get(f.name, ""),
                f.metadata.get("parse"),
                f.metadata.get("metavar"),
                f.metadata.get("affects_results", True),
                f.metadata.get("source", False),
            )
            out[f.name] = (section, info)
    return out


#: field name -> (section, FieldInfo), every setting of every section.
FIELDS: Dict[str, Tuple[str, FieldInfo]] = _catalogue()


def _checked_value(name: str, value: Any, where: str) -> Any:
    """A JSON value of setting ``name`` checked with its flag's rule."""
    info = FIELDS[name][1]
    if value is None:
        if info.default is None:
            return None
        raise UsageError(f"{where}: {info.flag} cannot be null")
    if info.is_bool:
        if not isinstance(value, bool):
            raise UsageError(f"{where}: {info.flag}: expected true or false, got {value!r}")
        return value
    if isinstance(value, (dict, bool)) or (isinstance(value, list) and not isinstance(info.default, tuple)):
        raise UsageError(f"{where}: {info.flag}: not a valid value: {value!r}")
    try:
        return info.parse_text(value_text(value))
    except ValueError as exc:
        raise UsageError(f"{where}: {info.flag}: {exc}") from None


def differences(stored: Dict[str, Dict[str, Any]], current: "CompareConfig") -> List[str]:
    """The settings that change a run's numbers and differ between a stored config (results.json's
    ``config``) and ``current``: ``--lr 0.001 there, 0.01 here`` per setting."""
    here = current.as_dict()
    out = []
    for name, (section, info) in FIELDS.items():
        if not info.affects_results:
            continue
        there = stored.get(section, {}).get(name, _json_default(info))
        if there != here[section][name]:
            out.append(f"{info.flag} {_shown(there)} there, {_shown(here[section][name])} here")
    return out


def _json_default(info: FieldInfo) -> Any:
    return list(info.default) if isinstance(info.default, tuple) else info.default


def _shown(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    return value_text(value).rstrip(",") if isinstance(value, list) else str(value)
