"""Data for ``torch-sugar compare``: loading, checking, splitting, encoding and standardizing.

Sources: scikit-learn's bundled ``digits``/``breast_cancer``/``wine`` (no download), a generated
click-through data set with user and item ids (``synthetic-ctr``, also written as a CSV file by
``torch-sugar synthetic-ctr``), a user's CSV file, a folder of images with one sub-folder per
class, and CIFAR-10/100 in their python (pickle) format. Nothing is ever downloaded.

Every loader returns a :class:`RawData`; :func:`prepare` turns it into train/validation/test
tensors with a stratified, seeded split (scikit-learn's ``train_test_split``), standardization
fitted on the training rows only and, for categorical columns, vocabularies of the training rows
(index 0 is the out-of-vocabulary bucket for values never seen in training) or hash buckets.

Tabular model input, one float32 row per example: the standardized numeric columns first, then one
column per categorical feature holding its category index (an exact integer in float32; models
embed it, see :class:`~.models.FeatureEmbedding`). :class:`InputSpec` describes the layout and
:attr:`Data.preprocessing` holds what is needed to encode new rows the same way (saved as JSON by
``--save-models``).

Bad input raises :class:`~.errors.UsageError` with a one-line message.
"""

import csv
import math
import os
import pickle
import sys
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from . import synthetic
from .errors import UsageError

BUILTIN_DATASETS = ("digits", "breast_cancer", "wine", "synthetic-ctr")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
#: A categorical value that is missing (an empty cell or one of --na-values) is this category.
MISSING_CATEGORY = ""
#: Integer columns with at least this many distinct values look like ids (a warning).
ID_LIKE_DISTINCT = 100
#: Category indices travel in float32 model input, exact up to 2**24.
MAX_CATEGORIES = 2**24
FILLS = ("mean", "zero")


def embedding_dim_rule(cardinality: int, fixed: Optional[int] = None) -> int:
    """The embedding width of a categorical column: ``fixed`` if given, else
    min(16, round(1.6 * cardinality ** 0.56)) (fastai's rule of thumb, capped at 16), at least 2."""
    if fixed is not None:
        return int(fixed)
    return int(max(2, min(16, round(1.6 * cardinality**0.56))))


@dataclass
class RawData:
    """A loaded data set before splitting.

    ``x``: float array ``(rows, features)`` (tabular: the numeric columns, NaN where a value is
    missing and ``fill`` says how to fill it) or ``(rows, C, H, W)`` (images);
    ``cat``: object array ``(rows, k)`` of the categorical columns' raw string values, or None;
    ``y``: int class index per row; ``groups``: group id per row (uAUC) or None;
    ``standardize``: per-feature bool mask of the numeric columns to standardize (tabular only);
    ``test``: a data set's own test part (CIFAR), else None and :func:`prepare` splits one off.
    """

    name: str
    kind: str  # "tabular" or "image"
    x: np.ndarray
    y: np.ndarray
    class_names: List[str]
    groups: Optional[np.ndarray] = None
    group_name: Optional[str] = None
    feature_names: Optional[List[str]] = None
    standardize: Optional[np.ndarray] = None
    rows: Optional[np.ndarray] = None  # source row numbers (CSV line numbers) for predictions
    test: Optional["RawData"] = None
    notes: List[str] = field(default_factory=list)
    cat: Optional[np.ndarray] = None
    cat_names: List[str] = field(default_factory=list)
    fill: Optional[str] = None  # "mean" or "zero" for NaNs in x; None: x has none
    target_name: Optional[str] = None
    na_values: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class CategoricalColumn:
    """One categorical feature as the model sees it: indices 0..cardinality-1."""

    name: str
    cardinality: int  #: vocabulary + 1 (index 0: values unseen in training), or the hash buckets
    embedding_dim: int
    hashed: bool = False


@dataclass(frozen=True)
class InputSpec:
    """What a model receives (``--model-fn`` factories get this).

    ``shape``: the shape of one input row. Tabular data: ``(numeric + len(categorical),)``, the
    ``numeric`` standardized columns first (names in ``numeric_names``), then one column per entry
    of ``categorical`` holding the category index as a float (``x[:, numeric:].long()``)."""

    kind: str
    shape: Tuple[int, ...]
    numeric: int = 0
    numeric_names: Tuple[str, ...] = ()
    categorical: Tuple[CategoricalColumn, ...] = ()

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "shape": list(self.shape),
            "numeric": self.numeric,
            "numeric_names": list(self.numeric_names),
            "categorical": [vars(c).copy() for c in self.categorical],
        }


@dataclass
class Split:
    """One part of the data, as tensors ready for the model."""

    x: torch.Tensor
    y: torch.Tensor
    groups: Optional[np.ndarray]
    rows: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass
class Data:
    name: str
    kind: str
    train: Split
    val: Split
    test: Split
    class_names: List[str]
    input_shape: Tuple[int, ...]
    group_name: Optional[str] = None
    feature_names: Optional[List[str]] = None
    notes: List[str] = field(default_factory=list)
    spec: Optional[InputSpec] = None
    preprocessing: Optional[dict] = None

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def train_class_counts(self) -> np.ndarray:
        """Training rows per class (a streamed training split counts them in its scan)."""
        counts = getattr(self.train, "class_counts", None)
        if counts is not None:
            return np.asarray(counts)
        return np.bincount(self.train.y.numpy(), minlength=self.n_classes)

    def example_rows(self, k: int = 2) -> torch.Tensor:
        """The first ``k`` training rows, encoded (probing and tracing models)."""
        return self.train.x[:k]

    def describe(self) -> dict:
        """For results.json."""
        return {
            "name": self.name,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "classes": list(self.class_names),
            "n_train": len(self.train),
            "n_val": len(self.val),
            "n_test": len(self.test),
            "test_class_counts": np.bincount(self.test.y.numpy(), minlength=self.n_classes).tolist(),
            "train_class_counts": self.train_class_counts().tolist(),
            "group": self.group_name,
            "features": self.feature_names,
            "categorical": [] if self.spec is None else [vars(c).copy() for c in self.spec.categorical],
            "notes": list(self.notes),
        }


# ----------------------------------------------------------------------------------- built-ins
def load_builtin(name: str, ctr_rows: int = 20000, ctr_users: int = 400, seed: int = 0) -> RawData:
    """One of :data:`BUILTIN_DATASETS`."""
    if name == "synthetic-ctr":
        return make_synthetic_ctr(ctr_rows, ctr_users, seed)
    try:
        import sklearn.datasets as skd
    except ImportError:
        raise UsageError(
            f"--dataset {name} needs scikit-learn: pip install scikit-learn "
            "(or pip install 'torch-sugar[experiments]')"
        ) from None
    if name == "digits":
        bunch = skd.load_digits()
        x = bunch.images.astype(np.float32)[:, None, :, :] / 16.0  # (n, 1, 8, 8), pixels 0..16
        return RawData(
            "digits", "image", x, bunch.target.astype(np.int64), [str(c) for c in bunch.target_names]
        )
    if name in ("breast_cancer", "wine"):
        bunch = skd.load_breast_cancer() if name == "breast_cancer" else skd.load_wine()
        x = bunch.data.astype(np.float32)
        return RawData(
            name,
            "tabular",
            x,
            bunch.target.astype(np.int64),
            [str(c) for c in bunch.target_names],
            feature_names=[str(f) for f in bunch.feature_names],
            standardize=np.ones(x.shape[1], bool),
        )
    raise UsageError(f"--dataset: unknown data set {name!r}; valid: {', '.join(BUILTIN_DATASETS)}")


def make_synthetic_ctr(rows: int = 20000, users: int = 400, seed: int = 0) -> RawData:
    """:func:`.synthetic.make_synthetic_ctr` as :class:`RawData`."""
    table = synthetic.make_synthetic_ctr(rows, users, seed)
    return RawData(
        "synthetic-ctr",
        "tabular",
        table.x,
        table.clicked,
        ["0", "1"],
        groups=table.cat[:, 0].copy(),
        group_name="user",
        feature_names=list(synthetic.CTR_FEATURES),
        standardize=np.ones(table.x.shape[1], bool),
        notes=[table.note],
        cat=table.cat,
        cat_names=list(synthetic.CTR_CATEGORICAL),
        target_name="clicked",
    )


def write_table_csv(raw: RawData, path: str) -> None:
    """Writes tabular :class:`RawData` as a CSV file (categorical columns, numeric columns, the
    target last), e.g. ``torch-sugar synthetic-ctr clicks.csv``."""
    if raw.kind != "tabular":
        raise UsageError(f"{raw.name} is not tabular; only tabular data can be written as CSV")
    cat_names = list(raw.cat_names)
    names = cat_names + list(raw.feature_names) + [raw.target_name or "target"]
    try:
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(names)
            for i in range(len(raw.y)):
                cats = list(raw.cat[i]) if raw.cat is not None else []
                writer.writerow(cats + [f"{v:.6g}" for v in raw.x[i]] + [raw.class_names[raw.y[i]]])
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None


# ----------------------------------------------------------------------------------------- CSV
def _as_float(value: str) -> Optional[float]:
    try:
        return float(value)
    except ValueError:
        return None


def _warn(message: str) -> None:
    print(f"torch-sugar compare: warning: {message}", file=sys.stderr, flush=True)


def load_csv(
    path: str,
    target: str,
    group: Optional[str] = None,
    ignore: Sequence[str] = (),
    categorical: Sequence[str] = (),
    na_values: Sequence[str] = (),
    fill: Optional[str] = None,
    max_classes: int = 100,
) -> RawData:
    """A CSV file with a header row. ``target`` is the class column; ``group`` (optional) the
    group id for uAUC (a feature too only when it is also in ``categorical``); ``ignore`` columns
    are dropped.

    Columns in ``categorical`` and every column with a non-numeric value become categorical
    features (embedded by the model); the other columns are numeric. Missing values are empty
    cells and the cells equal to one of ``na_values`` (e.g. ``?``); nothing else (``none``, ``NA``)
    is missing unless listed. A missing categorical value is a category of its own; a missing
    numeric value (also a ``nan`` number) is an error naming the column, unless ``fill`` is
    ``mean`` (the training rows' mean) or ``zero``; infinities are always an error. A missing
    target or group value is an error. Integer columns with many distinct values look like ids
    and get a warning suggesting ``--categorical`` or ``--ignore``.
    """
    if not os.path.exists(path):
        raise UsageError(f"--csv: no such file: {path}")
    if os.path.isdir(path):
        raise UsageError(f"--csv: {path} is a directory, not a CSV file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            sample = f.read(65536)
            f.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            reader = csv.reader(f, dialect)
            header = next(reader, None)
            lines = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except UnicodeDecodeError as exc:
        raise UsageError(f"--csv: {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise UsageError(f"--csv: cannot parse {path}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"--csv: cannot read {path}: {exc.strerror}") from None
    if not header:
        raise UsageError(f"--csv: {path} is empty (a header row is needed)")
    header = [h.strip() for h in header]
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise UsageError(f"--csv: {path} has duplicate column names: {', '.join(dup)}")
    if not lines:
        raise UsageError(f"--csv: {path} has a header but no data rows")
    for line_num, row in lines:
        if len(row) != len(header):
            raise UsageError(
                f"--csv: {path} line {line_num} has {len(row)} fields, the header has {len(header)}"
            )
    columns = [[row[j].strip() for _, row in lines] for j in range(len(header))]
    return _load_table(
        "--csv",
        "line",
        path,
        header,
        columns,
        np.array([n for n, _ in lines]),
        target,
        group,
        ignore,
        categorical,
        na_values,
        fill,
        max_classes,
    )


def _parquet_column(name: str, column, path: str):
    """One pyarrow column as :func:`_load_table` takes it: integers, floats and decimals as a
    float64 array (NaN where null); booleans as the text false/true; text, dictionary-encoded text
    and other types that arrow can write as text (dates, timestamps) as stripped text cells ("" where
    null)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = pc.fill_null(column.cast(pa.float64()), math.nan)
        return values.to_numpy() if len(values) else np.zeros(0)
    if pa.types.is_boolean(kind):
        return ["" if v is None else "true" if v else "false" for v in column.to_pylist()]
    try:
        text = column.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise UsageError(
            f"--parquet: column {name!r} of {path} has type {kind}, which cannot be read "
            "as numbers or text; leave it out with --ignore"
        ) from None
    return ["" if v is None else v.strip() for v in text.to_pylist()]


def parquet_files(path: str) -> List[str]:
    """``path`` itself, or the ``*.parquet`` files of a directory in sorted order."""
    if not os.path.exists(path):
        raise UsageError(f"--parquet: no such file or directory: {path}")
    if not os.path.isdir(path):
        return [path]
    files = sorted(
        os.path.join(path, f)
        for f in os.listdir(path)
        if f.endswith(".parquet") and os.path.isfile(os.path.join(path, f))
    )
    if not files:
        raise UsageError(f"--parquet: directory {path} has no .parquet files")
    return files


def load_parquet(
    path: str,
    target: str,
    group: Optional[str] = None,
    ignore: Sequence[str] = (),
    categorical: Sequence[str] = (),
    na_values: Sequence[str] = (),
    fill: Optional[str] = None,
    max_classes: int = 100,
) -> RawData:
    """A Parquet file, or a directory of ``*.parquet`` files with the same columns (read in
    sorted order), read with pyarrow; the columns then go through the same rules as CSV
    (:func:`load_csv`) with typed columns: integer, float and decimal columns are numeric (null is
    missing), boolean columns are the text false/true, and text columns are read like CSV cells
    (empty text, null and ``na_values`` are missing). Row numbers (predictions, messages) count
    from 0 over the files in order. Columns in ``ignore`` are never read."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(
            "--parquet needs pyarrow: pip install pyarrow (or pip install 'torch-sugar[experiments]')"
        ) from None
    tables, header = [], None
    for file in parquet_files(path):
        try:
            names = pq.read_schema(file).names
            if header is None:
                header = list(names)
                if len(set(header)) != len(header):
                    dup = sorted({h for h in header if header.count(h) > 1})
                    raise UsageError(f"--parquet: {file} has duplicate column names: {', '.join(dup)}")
                for name in ignore:
                    if name not in header:
                        raise UsageError(
                            f"--ignore: column {name!r} is not in {path}; columns: {', '.join(header)}"
                        )
            elif list(names) != header:
                raise UsageError(
                    f"--parquet: {file} has the columns {', '.join(names)}; the first "
                    f"file has {', '.join(header)}"
                )
            tables.append(pq.read_table(file, columns=[h for h in header if h not in ignore]))
        except (pa.ArrowException, OSError) as exc:
            raise UsageError(f"--parquet: cannot read {file}: {exc}") from None
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    if table.num_rows == 0:
        raise UsageError(f"--parquet: {path} has no rows")
    kept = list(table.column_names)
    columns = [_parquet_column(name, table.column(name), path) for name in kept]
    # the ignored columns were not read: empty text stands in for them
    full = [columns[kept.index(h)] if h in kept else [""] * table.num_rows for h in header]
    return _load_table(
        "--parquet",
        "row",
        path,
        header,
        full,
        np.arange(table.num_rows),
        target,
        group,
        ignore,
        categorical,
        na_values,
        fill,
        max_classes,
    )


def _column_text(column) -> List[str]:
    """A column's values as text cells: CSV columns are text already; a typed numeric column (a
    float64 array from Parquet, NaN where missing) gives integers without a decimal point, other
    numbers as ``repr`` and "" where missing."""
    if isinstance(column, np.ndarray):
        return [
            "" if math.isnan(v) else str(int(v)) if v == int(v) else repr(float(v)) for v in column.tolist()
        ]
    return column


def _load_table(
    flag: str,
    unit: str,
    path: str,
    header: List[str],
    columns: list,
    row_numbers: np.ndarray,
    target: str,
    group: Optional[str],
    ignore: Sequence[str],
    categorical: Sequence[str],
    na_values: Sequence[str],
    fill: Optional[str],
    max_classes: int,
) -> RawData:
    """What CSV and Parquet input share once read: ``columns`` holds one entry per ``header``
    name, a list of stripped text cells ("" where empty) or a float64 array (a typed numeric
    column, NaN where missing); ``row_numbers`` are the rows' CSV lines or Parquet rows (``unit``)
    for messages and predictions. See :func:`load_csv` for the rules."""
    if fill is not None and fill not in FILLS:
        raise UsageError(f"--fill: unknown fill {fill!r}; valid: {', '.join(FILLS)}")

    def column_index(flag: str, name: str) -> int:
        if name not in header:
            raise UsageError(f"{flag}: column {name!r} is not in {path}; columns: {', '.join(header)}")
        return header.index(name)

    t_idx = column_index("--target", target)
    g_idx = column_index("--group", group) if group is not None else None
    ignored = {column_index("--ignore", name) for name in ignore}
    cat_idx = {column_index("--categorical", name) for name in categorical}
    if t_idx in ignored or (g_idx is not None and g_idx in ignored):
        raise UsageError("--ignore: cannot ignore the --target or --group column")
    if t_idx in cat_idx:
        raise UsageError(f"--categorical: {target!r} is the --target column, not a feature")
    both = sorted(header[i] for i in cat_idx & ignored)
    if both:
        raise UsageError(f"--categorical: {', '.join(both)} also given to --ignore")
    line_nums = row_numbers
    na = {v.strip() for v in na_values}
    if na:
        columns = [c if isinstance(c, np.ndarray) else ["" if v in na else v for v in c] for c in columns]

    def required(idx: int, what: str, option: str) -> List[str]:
        values = _column_text(columns[idx])
        bad = [i for i, v in enumerate(values) if v == ""]
        if bad:
            markers = "empty" + (f" or {', '.join(sorted(na))}" if na else "")
            raise UsageError(
                f"{option}: {what} column {header[idx]!r} has {len(bad)} missing "
                f"value(s) ({markers}), first on {unit} {line_nums[bad[0]]} of {path}; "
                "fill or drop those rows first"
            )
        return values

    # target: classes sorted numerically when they are numbers
    t_values = required(t_idx, "target", "--target")
    distinct = sorted(set(t_values))
    if all(_as_float(v) is not None for v in distinct):
        distinct.sort(key=float)
    if len(distinct) < 2:
        raise UsageError(
            f"--target: column {target!r} has a single class ({distinct[0]!r}) in "
            f"{path}; a classifier needs at least two"
        )
    if len(distinct) > max_classes:
        raise UsageError(
            f"--target: column {target!r} has {len(distinct)} distinct values (more "
            f"than --max-classes {max_classes}); compare trains classifiers, not "
            "regression"
        )
    class_index = {v: i for i, v in enumerate(distinct)}
    y = np.array([class_index[v] for v in t_values], dtype=np.int64)
    groups = np.array(required(g_idx, "group", "--group"), dtype=object) if g_idx is not None else None

    numeric, names, cat_cols, cat_names, id_like, notes = [], [], [], [], [], []
    filled: Dict[str, int] = {}
    for idx, name in enumerate(header):
        if idx == t_idx or idx in ignored or (idx == g_idx and idx not in cat_idx):
            continue
        values = columns[idx]
        if isinstance(values, np.ndarray):
            numbers = None if idx in cat_idx else values
        else:
            numbers = None if idx in cat_idx else [_as_float(v) if v != "" else math.nan for v in values]
        if numbers is None or (not isinstance(numbers, np.ndarray) and any(n is None for n in numbers)):
            cat_cols.append(_column_text(values))
            cat_names.append(name)
            continue
        col = np.asarray(numbers, dtype=np.float64)
        if np.any(np.isinf(col)):
            first = int(np.flatnonzero(np.isinf(col))[0])
            raise UsageError(
                f"{flag}: numeric column {name!r} has infinite values, first on {unit} "
                f"{line_nums[first]} of {path}"
            )
        missing = np.isnan(col)
        if missing.any():
            if fill is None:
                raise UsageError(
                    f"{flag}: numeric column {name!r} has {int(missing.sum())} missing value(s) "
                    f"(empty{', ' + ', '.join(sorted(na)) if na else ''} or NaN), first on {unit} "
                    f"{line_nums[int(np.flatnonzero(missing)[0])]} of {path}; fill them with "
                    "--fill mean|zero, make the column --categorical, or drop it with --ignore"
                )
            filled[name] = int(missing.sum())
        present = col[~missing]
        if (
            len(present)
            and np.all(present == np.round(present))
            and len(np.unique(present)) >= ID_LIKE_DISTINCT
        ):
            id_like.append(name)
        numeric.append(col)
        names.append(name)
    if not numeric and not cat_cols:
        raise UsageError(f"{flag}: {path} has no feature columns left besides --target/--group/--ignore")
    if id_like:
        message = (
            f"integer column(s) {', '.join(id_like)} have {ID_LIKE_DISTINCT} or more distinct "
            "values and look like ids; they are read as one standardized number each. Pass "
            "them to --categorical (embeddings) or --ignore"
        )
        _warn(message)
        notes.append("warning: " + message)
    if filled:
        notes.append(
            f"--fill {fill}: missing values in " + ", ".join(f"{k} ({v})" for k, v in filled.items())
        )
    x = np.stack(numeric, axis=1) if numeric else np.zeros((len(y), 0))
    cat = np.array(cat_cols, dtype=object).T if cat_cols else None
    note = (
        f"{os.path.basename(os.path.normpath(path))}: {len(y)} rows, {len(header)} columns -> {len(names)} numeric"
        f" + {len(cat_names)} categorical features" + (f" ({', '.join(cat_names)})" if cat_names else "")
    )
    return RawData(
        os.path.splitext(os.path.basename(os.path.normpath(path)))[0],
        "tabular",
        x.astype(np.float32),
        y,
        distinct,
        groups=groups,
        group_name=group,
        feature_names=names,
        standardize=np.ones(len(names), bool),
        rows=line_nums,
        notes=[note] + notes,
        cat=cat,
        cat_names=cat_names,
        fill=fill if filled else None,
        target_name=target,
        na_values=sorted(na),
    )


# -------------------------------------------------------------------------------------- images
def load_image_folder(root: str, size: int = 32, grayscale: bool = False) -> RawData:
    """``root/<class>/<image>``: each sub-folder is a class; images are resized to size x size."""
    try:
        from PIL import Image
    except ImportError:
        raise UsageError(
            "--images needs Pillow: pip install pillow (or pip install 'torch-sugar[experiments]')"
        ) from None
    if not os.path.isdir(root):
        raise UsageError(f"--images: no such directory: {root}")
    classes = sorted(
        d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith(".")
    )
    if len(classes) < 2:
        raise UsageError(
            f"--images: {root} needs one sub-folder per class (at least two); found {len(classes)}"
        )
    images, labels = [], []
    for label, cls in enumerate(classes):
        folder = os.path.join(root, cls)
        files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise UsageError(f"--images: class folder {folder} has no images ({', '.join(IMAGE_EXTENSIONS)})")
        for name in files:
            path = os.path.join(folder, name)
            try:
                with Image.open(path) as img:
                    img = img.convert("L" if grayscale else "RGB").resize((size, size), Image.BILINEAR)
                    arr = np.asarray(img, dtype=np.float32) / 255.0
            except (OSError, ValueError) as exc:
                raise UsageError(f"--images: cannot read image {path}: {exc}") from None
            images.append(arr[None] if grayscale else arr.transpose(2, 0, 1))
            labels.append(label)
    x = np.stack(images)
    note = f"{root}: {len(labels)} images in {len(classes)} classes, resized to {size}x{size}"
    return RawData(
        os.path.basename(os.path.normpath(root)),
        "image",
        x,
        np.array(labels, np.int64),
        classes,
        notes=[note],
    )


def _unpickle(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise UsageError(f"--cifar: cannot read {path}: {exc}") from None


def load_cifar(root: str, labels: str = "fine") -> RawData:
    """CIFAR-10 (``cifar-10-batches-py``) or CIFAR-100 (``cifar-100-python``) in the python
    format, as unpacked from the official archives; ``root`` is that folder or its parent. The
    official test batch is the test set. (The files are Python pickles: only load ones you trust.)
    """
    if not os.path.isdir(root):
        raise UsageError(f"--cifar: no such directory: {root}")
    for sub in ("cifar-10-batches-py", "cifar-100-python"):
        if os.path.isdir(os.path.join(root, sub)):
            root = os.path.join(root, sub)
            break
    has = lambda name: os.path.isfile(os.path.join(root, name))  # noqa: E731
    if has("data_batch_1") and has("test_batch"):
        parts = [f"data_batch_{i}" for i in range(1, 6) if has(f"data_batch_{i}")]
        meta = _unpickle(os.path.join(root, "batches.meta")) if has("batches.meta") else {}
        names = [n.decode() for n in meta.get(b"label_names", [])] or [str(i) for i in range(10)]
        key, name, test_file = b"labels", "cifar10", "test_batch"
    elif has("train") and has("test"):
        parts = ["train"]
        meta = _unpickle(os.path.join(root, "meta")) if has("meta") else {}
        key = b"fine_labels" if labels == "fine" else b"coarse_labels"
        meta_key = b"fine_label_names" if labels == "fine" else b"coarse_label_names"
        names = [n.decode() for n in meta.get(meta_key, [])] or [
            str(i) for i in range(100 if labels == "fine" else 20)
        ]
        name, test_file = "cifar100", "test"
    else:
        raise UsageError(
            f"--cifar: {root} is not a CIFAR python-format folder (expected "
            "data_batch_1..5 + test_batch for CIFAR-10, or train + test for CIFAR-100; "
            "nothing is downloaded)"
        )

    def read(files: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for fname in files:
            batch = _unpickle(os.path.join(root, fname))
            if b"data" not in batch or key not in batch:
                raise UsageError(
                    f"--cifar: {os.path.join(root, fname)} has no {key.decode()!r} "
                    "entry (wrong CIFAR variant or file)"
                )
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
                raise UsageError(
                    f"--cifar: {os.path.join(root, fname)} data has shape {data.shape}, expected (N, 3072)"
                )
            xs.append(data.reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[key], dtype=np.int64))
        return np.concatenate(xs).astype(np.float32) / 255.0, np.concatenate(ys)

    x, y = read(parts)
    x_test, y_test = read([test_file])
    n_classes = max(len(names), int(max(y.max(), y_test.max())) + 1)
    names = names + [str(i) for i in range(len(names), n_classes)]
    test = RawData(name, "image", x_test, y_test, names)
    return RawData(
        name,
        "image",
        x,
        y,
        names,
        test=test,
        notes=[f"{root}: {len(y)} training and {len(y_test)} test images, {n_classes} classes"],
    )


# ----------------------------------------------------------------------- splitting, scaling
def _stratified(idx: np.ndarray, y: np.ndarray, size, seed: int, what: str) -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``train_test_split`` of the row indices ``idx``, stratified by ``y[idx]``:
    (the rest, the part of ``size`` rows or share), both sorted."""
    from sklearn.model_selection import train_test_split

    try:
        rest, part = train_test_split(idx, test_size=size, stratify=y[idx], random_state=seed)
    except ValueError as exc:
        raise UsageError(
            f"cannot split off the {what} ({len(idx)} rows, class counts "
            f"{np.bincount(y[idx]).tolist()}): {exc}; use more data or other "
            "--val-fraction/--test-fraction/--limit"
        ) from None
    return np.sort(rest), np.sort(part)


def _fit_categorical(
    name: str, train_values: np.ndarray, hash_buckets: Optional[int], embedding_dim: Optional[int]
) -> Tuple[CategoricalColumn, dict]:
    """The column's encoding from its training values: a vocabulary (index 0 = unseen in
    training, 1.. = the training values in sorted order) or, with more distinct values than
    ``hash_buckets``, crc32(value as UTF-8) % hash_buckets."""
    vocabulary = sorted(set(train_values.tolist()))
    if hash_buckets is not None and hash_buckets > MAX_CATEGORIES:
        raise UsageError(
            f"--hash-buckets: at most {MAX_CATEGORIES} (category indices travel as "
            f"exact float32 integers), got {hash_buckets}"
        )
    if hash_buckets is not None and len(vocabulary) > hash_buckets:
        column = CategoricalColumn(
            name, hash_buckets, embedding_dim_rule(hash_buckets, embedding_dim), hashed=True
        )
        return column, {
            "name": name,
            "hash_buckets": hash_buckets,
            "index": "zlib.crc32(value.encode('utf-8')) % hash_buckets",
            "distinct_in_training": len(vocabulary),
        }
    if len(vocabulary) + 1 > MAX_CATEGORIES:
        raise UsageError(
            f"--categorical: column {name!r} has {len(vocabulary)} distinct values in "
            f"the training rows (at most {MAX_CATEGORIES - 1}); use --hash-buckets N"
        )
    column = CategoricalColumn(
        name, len(vocabulary) + 1, embedding_dim_rule(len(vocabulary) + 1, embedding_dim)
    )
    return column, {
        "name": name,
        "vocabulary": vocabulary,
        "index": "1 + position in vocabulary; 0 for a value not in it",
    }


def encode_categorical(values: Sequence[str], encoding: dict) -> np.ndarray:
    """Category indices of raw string values with one column's encoding (from
    :attr:`Data.preprocessing`)."""
    if "hash_buckets" in encoding:
        n = encoding["hash_buckets"]
        return np.array([zlib.crc32(str(v).encode("utf-8")) % n for v in values], dtype=np.int64)
    lookup = {v: i + 1 for i, v in enumerate(encoding["vocabulary"])}
    return np.array([lookup.get(v, 0) for v in values], dtype=np.int64)


def tabular_preprocessing(
    classes: Sequence[str],
    target: str,
    group: Optional[str],
    na_values: Sequence[str],
    names: Sequence[str],
    mean: np.ndarray,
    std: np.ndarray,
    fill: Optional[np.ndarray],
    encodings: List[dict],
    split: Optional[str] = None,
) -> dict:
    """:attr:`Data.preprocessing` of a table (``--csv``, ``--parquet``, ``--parquet --stream``):
    what a fresh process needs to encode raw rows as the models saw them (``preprocessing.json``
    of ``--save-models``). One builder for every path, so that the format cannot drift: each
    numeric column's training mean, std and fill value (None: no filling), each categorical
    column's encoding (:func:`_fit_categorical`); ``split`` says how the rows were split where it
    is not the stratified split."""
    preprocessing = {
        "kind": "tabular",
        "classes": list(classes),
        "target": target,
        "group": group,
        "input": "float32 row: the numeric columns, (value - mean) / std, then one category index "
        "per categorical column",
        "na_values": list(na_values),
        "missing_category": MISSING_CATEGORY,
        "numeric": [
            {
                "name": n,
                "mean": float(mean[j]),
                "std": float(std[j]),
                "fill": None if fill is None else float(fill[j]),
            }
            for j, n in enumerate(names)
        ],
        "categorical": encodings,
    }
    if split is not None:
        preprocessing["split"] = split
    return preprocessing


def prepare(
    raw: RawData,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    seed: int = 0,
    limit: Optional[int] = None,
    hash_buckets: Optional[int] = None,
    embedding_dim: Optional[int] = None,
) -> Data:
    """Seeded stratified train/validation/test split; encoders fitted on the training rows.

    Tabular data: each numeric column gets (x - mean) / std of the training rows (missing values
    filled first per ``raw.fill``: the training mean, or zero); each categorical column gets a
    vocabulary of its training values (see :func:`_fit_categorical`). Images: each channel gets
    (x - mean) / std over the training pixels. Columns or channels that are constant on the
    training rows are only centered.
    """
    notes = list(raw.notes)
    x, y, groups, cat = raw.x, raw.y, raw.groups, raw.cat
    rows = raw.rows if raw.rows is not None else np.arange(len(y))
    bad = ~np.isfinite(x) if raw.fill is None else np.isinf(x)
    if bad.any():
        raise UsageError(f"{raw.name} has non-finite feature values (NaN or infinity)")
    all_idx = np.arange(len(y))
    if limit is not None and limit < len(y):
        _, keep = _stratified(all_idx, y, limit, seed, f"--limit {limit} subset")
        x, y, rows = x[keep], y[keep], rows[keep]
        groups = groups[keep] if groups is not None else None
        cat = cat[keep] if cat is not None else None
        notes.append(f"--limit {limit}: using {len(y)} of {len(raw.y)} rows (stratified)")
        all_idx = np.arange(len(y))
    if raw.test is not None:
        train_idx, val_idx = _stratified(all_idx, y, val_fraction, seed, "validation set")
        test_raw = raw.test
        t_keep = np.arange(len(test_raw.y))
        if limit is not None and max(1, limit // 5) < len(t_keep):
            _, t_keep = _stratified(t_keep, test_raw.y, max(1, limit // 5), seed, "test subset")
        test_part = (
            test_raw.x[t_keep],
            test_raw.y[t_keep],
            test_raw.groups[t_keep] if test_raw.groups is not None else None,
            t_keep,
            None,
        )
    else:
        rest, test_idx = _stratified(all_idx, y, test_fraction, seed, "test set")
        train_idx, val_idx = _stratified(rest, y, val_fraction / (1 - test_fraction), seed, "validation set")
        test_part = (
            x[test_idx],
            y[test_idx],
            groups[test_idx] if groups is not None else None,
            rows[test_idx],
            cat[test_idx] if cat is not None else None,
        )
    missing = sorted(set(range(len(raw.class_names))) - set(np.unique(y[train_idx]).tolist()))
    if missing:
        raise UsageError(
            f"{raw.name}: classes {[raw.class_names[m] for m in missing]} have no rows in the training data"
        )

    x_train = x[train_idx].astype(np.float64)
    columns: List[CategoricalColumn] = []
    encodings: List[dict] = []
    fill_value = None
    if raw.kind == "tabular":
        mask = raw.standardize if raw.standardize is not None else np.ones(x.shape[1], bool)
        with np.errstate(invalid="ignore"):
            train_mean = np.nanmean(x_train, axis=0) if len(x_train) else np.zeros(x.shape[1])
            std = np.nanstd(x_train, axis=0)
        train_mean = np.nan_to_num(train_mean)  # a column missing in every training row
        std = np.nan_to_num(std)
        if raw.fill is not None:
            fill_value = train_mean if raw.fill == "mean" else np.zeros(x.shape[1])
        mean = np.where(mask, train_mean, 0.0)
        std = np.where(mask & (std > 1e-12), std, 1.0)
        if cat is not None:
            for j, name in enumerate(raw.cat_names):
                column, encoding = _fit_categorical(name, cat[train_idx, j], hash_buckets, embedding_dim)
                columns.append(column)
                encodings.append(encoding)
        names = list(raw.feature_names or [f"x{j}" for j in range(x.shape[1])])
        preprocessing = tabular_preprocessing(
            raw.class_names,
            raw.target_name,
            raw.group_name,
            raw.na_values,
            names,
            mean,
            std,
            fill_value,
            encodings,
        )
        spec = InputSpec("tabular", (x.shape[1] + len(columns),), x.shape[1], tuple(names), tuple(columns))
    else:
        axes = (0, 2, 3)
        mean = x_train.mean(axis=axes, keepdims=True)[0]
        std = x_train.std(axis=axes, keepdims=True)[0]
        std = np.where(std > 1e-12, std, 1.0)
        preprocessing = {
            "kind": raw.kind,
            "classes": list(raw.class_names),
            "input": "float32 image (C, H, W), pixels in [0, 1], then (pixel - mean) / std per channel",
            "mean": mean.ravel().tolist(),
            "std": std.ravel().tolist(),
        }
        spec = InputSpec("image", tuple(x.shape[1:]))

    def split(xs, ys, gs, rs, cs) -> Split:
        xs = xs.astype(np.float64)
        if fill_value is not None:
            xs = np.where(np.isnan(xs), fill_value, xs)
        xs = (xs - mean) / std
        if cs is not None:
            idx = np.stack([encode_categorical(cs[:, j], e) for j, e in enumerate(encodings)], axis=1)
            xs = np.concatenate([xs, idx.astype(np.float64)], axis=1)
        return Split(
            torch.from_numpy(np.ascontiguousarray(xs.astype(np.float32))),
            torch.from_numpy(ys.astype(np.int64)),
            gs,
            np.asarray(rs),
        )

    def take(idx):
        return (
            x[idx],
            y[idx],
            groups[idx] if groups is not None else None,
            rows[idx],
            cat[idx] if cat is not None else None,
        )

    features = raw.feature_names
    if columns:
        features = list(raw.feature_names or []) + [c.name for c in columns]
    return Data(
        raw.name,
        raw.kind,
        split(*take(train_idx)),
        split(*take(val_idx)),
        split(*test_part),
        list(raw.class_names),
        spec.shape,
        raw.group_name,
        features,
        notes,
        spec,
        preprocessing,
    )
