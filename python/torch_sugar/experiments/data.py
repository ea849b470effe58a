"""Data for ``torch-sugar compare``: loading, checking, splitting and standardizing.

Sources: scikit-learn's bundled ``digits``/``breast_cancer``/``wine`` (no download), a generated
click-through data set with user ids (``synthetic-ctr``), a user's CSV file, a folder of images
with one sub-folder per class, and CIFAR-10/100 in their python (pickle) format. Nothing is ever
downloaded.

Every loader returns a :class:`RawData`; :func:`prepare` turns it into train/validation/test
tensors with a stratified, seeded split and standardization fitted on the training rows only.
Bad input raises :class:`~.errors.UsageError` with a one-line message.
"""
import csv
import math
import os
import pickle
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .errors import UsageError

BUILTIN_DATASETS = ("digits", "breast_cancer", "wine", "synthetic-ctr")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
MISSING = {"", "nan", "na", "n/a", "null", "none", "?"}


@dataclass
class RawData:
    """A loaded data set before splitting.

    ``x``: float array ``(rows, features)`` (tabular) or ``(rows, C, H, W)`` (images);
    ``y``: int class index per row; ``groups``: group id per row (uAUC) or None;
    ``standardize``: per-feature bool mask of the columns to standardize (tabular only);
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

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> dict:
        """For results.json."""
        return {
            "name": self.name,
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "classes": list(self.class_names),
            "n_train": len(self.train), "n_val": len(self.val), "n_test": len(self.test),
            "test_class_counts": np.bincount(self.test.y.numpy(), minlength=self.n_classes).tolist(),
            "group": self.group_name,
            "features": self.feature_names,
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
        raise UsageError(f"--dataset {name} needs scikit-learn: pip install scikit-learn "
                         "(or pip install 'torch-sugar[experiments]')") from None
    if name == "digits":
        bunch = skd.load_digits()
        x = bunch.images.astype(np.float32)[:, None, :, :] / 16.0  # (n, 1, 8, 8), pixels 0..16
        return RawData("digits", "image", x, bunch.target.astype(np.int64),
                       [str(c) for c in bunch.target_names])
    if name in ("breast_cancer", "wine"):
        bunch = skd.load_breast_cancer() if name == "breast_cancer" else skd.load_wine()
        x = bunch.data.astype(np.float32)
        return RawData(name, "tabular", x, bunch.target.astype(np.int64),
                       [str(c) for c in bunch.target_names],
                       feature_names=[str(f) for f in bunch.feature_names],
                       standardize=np.ones(x.shape[1], bool))
    raise UsageError(f"--dataset: unknown data set {name!r}; valid: {', '.join(BUILTIN_DATASETS)}")


def make_synthetic_ctr(rows: int = 20000, users: int = 400, seed: int = 0) -> RawData:
    """Generated click data with user ids, shaped like a click-through-rate problem.

    Impressions of ads to users. Users differ in activity (Zipf-like), in their base click
    propensity and in a hidden taste vector; ads have a quality and a hidden attribute vector.
    The click probability is sigmoid(base + user propensity + ad quality + taste . attributes +
    position and time-of-day effects + a feature interaction), about 5% positives. The model sees
    noisy observable proxies of these (user and ad features, historical CTRs, one-hot ad category
    and device, position, hour), never the hidden vectors; the group is the user id, so uAUC
    measures how well the model ranks ads *within* one user's impressions, which the user
    propensity cannot help with (as in real CTR data, uAUC < AUC).
    """
    if rows < 100:
        raise UsageError(f"--ctr-rows: need at least 100 rows, got {rows}")
    if not 2 <= users <= rows // 5:
        raise UsageError(f"--ctr-users: need 2 <= users <= rows/5 = {rows // 5}, got {users}")
    rng = np.random.default_rng(seed)
    n_ads, dim, n_cat, n_dev = 300, 4, 8, 3
    # users: activity, propensity, taste, observable proxies
    activity = 1.0 / np.arange(1, users + 1) ** 0.7
    activity = rng.permutation(activity / activity.sum())
    propensity = rng.normal(0.0, 0.8, users)
    taste = rng.normal(0.0, 1.0, (users, dim))
    user_feat = taste[:, :2] + rng.normal(0.0, 0.6, (users, 2))
    user_hist_ctr = 1 / (1 + np.exp(-(-3.0 + propensity + rng.normal(0.0, 0.4, users))))
    device = rng.choice(n_dev, users, p=[0.6, 0.3, 0.1])
    # ads: quality, hidden attributes, observable proxies
    quality = rng.normal(0.0, 0.6, n_ads)
    attributes = rng.normal(0.0, 1.0, (n_ads, dim))
    ad_feat = attributes[:, :3] + rng.normal(0.0, 0.5, (n_ads, 3))
    category = (np.digitize(attributes[:, 3], [-1.15, -0.67, -0.32, 0, 0.32, 0.67, 1.15])
                + rng.binomial(1, 0.15, n_ads)) % n_cat
    ad_hist_ctr = 1 / (1 + np.exp(-(-3.0 + quality + rng.normal(0.0, 0.3, n_ads))))
    # impressions
    user = rng.choice(users, rows, p=activity)
    ad = rng.integers(0, n_ads, rows)
    position = rng.integers(1, 6, rows)
    hour = rng.integers(0, 24, rows)
    hour_sin, hour_cos = np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24)
    logit = (-3.6 + propensity[user] + quality[ad]
             + 0.8 * np.einsum("ij,ij->i", taste[user], attributes[ad])
             - 0.35 * (position - 1)
             + 0.5 * taste[user, 2] * hour_sin
             + 0.4 * ad_feat[ad, 0] * ad_feat[ad, 1]
             + 0.3 * (device[user] == 2) * (category[ad] < 2))
    click = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)

    columns = [user_feat[user, 0], user_feat[user, 1], np.log(user_hist_ctr[user]),
               ad_feat[ad, 0], ad_feat[ad, 1], ad_feat[ad, 2], np.log(ad_hist_ctr[ad]),
               position.astype(float), hour_sin, hour_cos]
    names = ["user_f0", "user_f1", "user_log_hist_ctr", "ad_f0", "ad_f1", "ad_f2",
             "ad_log_hist_ctr", "position", "hour_sin", "hour_cos"]
    numeric = len(columns)
    for c in range(n_cat):
        columns.append((category[ad] == c).astype(float))
        names.append(f"ad_category={c}")
    for d in range(n_dev):
        columns.append((device[user] == d).astype(float))
        names.append(f"device={d}")
    x = np.stack(columns, axis=1).astype(np.float32)
    standardize = np.arange(x.shape[1]) < numeric
    note = (f"synthetic-ctr: {rows} impressions, {users} users, {click.mean():.1%} clicks, "
            f"generator seed {seed}")
    return RawData("synthetic-ctr", "tabular", x, click, ["no click", "click"],
                   groups=user.astype(np.int64), group_name="user", feature_names=names,
                   standardize=standardize, notes=[note])


# ----------------------------------------------------------------------------------------- CSV
def _is_missing(value: str) -> bool:
    return value.strip().lower() in MISSING


def _as_float(value: str) -> Optional[float]:
    try:
        return float(value)
    except ValueError:
        return None


def load_csv(path: str, target: str, group: Optional[str] = None, ignore: Sequence[str] = (),
             max_categories: int = 20, max_classes: int = 100) -> RawData:
    """A CSV file with a header row. ``target`` is the class column; ``group`` (optional) the
    group id for uAUC; ``ignore`` columns are dropped. Numeric columns become features;
    non-numeric ones with at most ``max_categories`` distinct values are one-hot encoded, others
    are an error. Missing values (empty, NaN, NA, null, ?) and infinities are an error.
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
            raise UsageError(f"--csv: {path} line {line_num} has {len(row)} fields, the header "
                             f"has {len(header)}")

    def column_index(flag: str, name: str) -> int:
        if name not in header:
            raise UsageError(f"{flag}: column {name!r} is not in {path}; columns: {', '.join(header)}")
        return header.index(name)

    t_idx = column_index("--target", target)
    g_idx = column_index("--group", group) if group is not None else None
    ignored = {column_index("--ignore", name) for name in ignore}
    if t_idx in ignored or (g_idx is not None and g_idx in ignored):
        raise UsageError("--ignore: cannot ignore the --target or --group column")
    line_nums = np.array([n for n, _ in lines])
    cells = [[c.strip() for c in row] for _, row in lines]

    def missing_check(idx: int, what: str) -> List[str]:
        values = [row[idx] for row in cells]
        bad = [i for i, v in enumerate(values) if _is_missing(v)]
        if bad:
            raise UsageError(f"NaNs in the data: {what} column {header[idx]!r} has {len(bad)} "
                             f"missing/NaN value(s), first on line {line_nums[bad[0]]} of {path}; "
                             "fill or drop them first")
        return values

    # target: classes sorted numerically when they are numbers
    t_values = missing_check(t_idx, "target")
    distinct = sorted(set(t_values))
    if all(_as_float(v) is not None for v in distinct):
        distinct.sort(key=float)
    if len(distinct) < 2:
        raise UsageError(f"--target: column {target!r} has a single class ({distinct[0]!r}) in "
                         f"{path}; a classifier needs at least two")
    if len(distinct) > max_classes:
        raise UsageError(f"--target: column {target!r} has {len(distinct)} distinct values (more "
                         f"than --max-classes {max_classes}); compare trains classifiers, not "
                         "regression")
    class_index = {v: i for i, v in enumerate(distinct)}
    y = np.array([class_index[v] for v in t_values], dtype=np.int64)
    groups = np.array(missing_check(g_idx, "group"), dtype=object) if g_idx is not None else None

    features, names, standardize = [], [], []
    for idx, name in enumerate(header):
        if idx in (t_idx, g_idx) or idx in ignored:
            continue
        values = missing_check(idx, "feature")
        numbers = [_as_float(v) for v in values]
        if all(n is not None for n in numbers):
            col = np.array(numbers, dtype=np.float64)
            if not np.all(np.isfinite(col)):
                first = int(np.flatnonzero(~np.isfinite(col))[0])
                raise UsageError(f"NaNs in the data: feature column {name!r} has non-finite "
                                 f"values, first on line {line_nums[first]} of {path}")
            features.append(col[:, None])
            names.append(name)
            standardize.append(True)
            continue
        levels = sorted(set(values))
        if len(levels) > max_categories:
            raise UsageError(f"--csv: column {name!r} is not numeric and has {len(levels)} distinct "
                             f"values (more than --max-categories {max_categories}); drop it with "
                             "--ignore, encode it yourself, or raise --max-categories")
        onehot = np.array([[v == level for level in levels] for v in values], dtype=np.float64)
        features.append(onehot)
        names.extend(f"{name}={level}" for level in levels)
        standardize.extend([False] * len(levels))
    if not features:
        raise UsageError(f"--csv: {path} has no feature columns left besides --target/--group/--ignore")
    x = np.concatenate(features, axis=1).astype(np.float32)
    note = f"{os.path.basename(path)}: {len(y)} rows, {len(header)} columns -> {x.shape[1]} features"
    return RawData(os.path.splitext(os.path.basename(path))[0], "tabular", x, y, distinct,
                   groups=groups, group_name=group, feature_names=names,
                   standardize=np.array(standardize), rows=line_nums, notes=[note])


# -------------------------------------------------------------------------------------- images
def load_image_folder(root: str, size: int = 32, grayscale: bool = False) -> RawData:
    """``root/<class>/<image>``: each sub-folder is a class; images are resized to size x size."""
    try:
        from PIL import Image
    except ImportError:
        raise UsageError("--images needs Pillow: pip install pillow") from None
    if not os.path.isdir(root):
        raise UsageError(f"--images: no such directory: {root}")
    classes = sorted(d for d in os.listdir(root)
                     if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    if len(classes) < 2:
        raise UsageError(f"--images: {root} needs one sub-folder per class (at least two); "
                         f"found {len(classes)}")
    images, labels = [], []
    for label, cls in enumerate(classes):
        folder = os.path.join(root, cls)
        files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise UsageError(f"--images: class folder {folder} has no images "
                             f"({', '.join(IMAGE_EXTENSIONS)})")
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
    return RawData(os.path.basename(os.path.normpath(root)), "image", x,
                   np.array(labels, np.int64), classes, notes=[note])


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
        names = [n.decode() for n in meta.get(meta_key, [])] or [str(i) for i in range(100 if labels == "fine" else 20)]
        name, test_file = "cifar100", "test"
    else:
        raise UsageError(f"--cifar: {root} is not a CIFAR python-format folder (expected "
                         "data_batch_1..5 + test_batch for CIFAR-10, or train + test for CIFAR-100; "
                         "nothing is downloaded)")

    def read(files: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for fname in files:
            batch = _unpickle(os.path.join(root, fname))
            if b"data" not in batch or key not in batch:
                raise UsageError(f"--cifar: {os.path.join(root, fname)} has no {key.decode()!r} "
                                 "entry (wrong CIFAR variant or file)")
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
                raise UsageError(f"--cifar: {os.path.join(root, fname)} data has shape "
                                 f"{data.shape}, expected (N, 3072)")
            xs.append(data.reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[key], dtype=np.int64))
        return np.concatenate(xs).astype(np.float32) / 255.0, np.concatenate(ys)

    x, y = read(parts)
    x_test, y_test = read([test_file])
    n_classes = max(len(names), int(max(y.max(), y_test.max())) + 1)
    names = names + [str(i) for i in range(len(names), n_classes)]
    test = RawData(name, "image", x_test, y_test, names)
    return RawData(name, "image", x, y, names, test=test,
                   notes=[f"{root}: {len(y)} training and {len(y_test)} test images, "
                          f"{n_classes} classes"])


# ----------------------------------------------------------------------- splitting, scaling
def stratified_subset(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of about ``n`` rows with the class proportions of ``y`` (each class keeps >= 1)."""
    if n >= len(y):
        return np.arange(len(y))
    keep = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        keep.append(idx[:max(1, int(round(len(idx) * n / len(y))))])
    return np.sort(np.concatenate(keep))


def stratified_split(y: np.ndarray, fractions: Sequence[float], rng: np.random.Generator
                     ) -> List[np.ndarray]:
    """Splits row indices into ``len(fractions) + 1`` parts (the last takes the rest), class by
    class so every part keeps the class proportions; each class keeps >= 1 row in the last part."""
    parts: List[List[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        start = 0
        for p, frac in enumerate(fractions):
            count = min(int(round(len(idx) * frac)), len(idx) - start - 1)
            parts[p].append(idx[start:start + count])
            start += count
        parts[-1].append(idx[start:])
    return [np.sort(np.concatenate(p)) for p in parts]


def prepare(raw: RawData, val_fraction: float = 0.15, test_fraction: float = 0.2, seed: int = 0,
            limit: Optional[int] = None) -> Data:
    """Seeded stratified train/validation/test split; standardization with training statistics.

    Tabular data: each standardized column gets (x - mean) / std of the training rows. Images:
    each channel gets (x - mean) / std over the training pixels. Columns or channels that are
    constant on the training rows are only centered.
    """
    rng = np.random.default_rng(seed)
    notes = list(raw.notes)
    x, y, groups = raw.x, raw.y, raw.groups
    rows = raw.rows if raw.rows is not None else np.arange(len(y))
    if not np.all(np.isfinite(x)):
        raise UsageError(f"NaNs in the data: {raw.name} has non-finite feature values")
    if limit is not None and limit < len(y):
        keep = stratified_subset(y, limit, rng)
        x, y, rows = x[keep], y[keep], rows[keep]
        groups = groups[keep] if groups is not None else None
        notes.append(f"--limit {limit}: using {len(y)} of {len(raw.y)} rows (stratified)")
    if raw.test is not None:
        val_idx, train_idx = stratified_split(y, [val_fraction], rng)
        test_raw = raw.test
        t_keep = np.arange(len(test_raw.y))
        if limit is not None:
            t_keep = stratified_subset(test_raw.y, max(1, limit // 5), rng)
        test_part = (test_raw.x[t_keep], test_raw.y[t_keep],
                     test_raw.groups[t_keep] if test_raw.groups is not None else None, t_keep)
    else:
        test_idx, val_idx, train_idx = stratified_split(y, [test_fraction, val_fraction], rng)
        test_part = (x[test_idx], y[test_idx], groups[test_idx] if groups is not None else None,
                     rows[test_idx])
    if len(val_idx) == 0 or len(test_part[1]) == 0:
        raise UsageError(f"{raw.name}: {len(y)} rows are too few to split off a validation and a "
                         "test set; use more data or larger --val-fraction/--test-fraction")
    missing = sorted(set(range(len(raw.class_names))) - set(np.unique(y[train_idx]).tolist()))
    if missing:
        raise UsageError(f"{raw.name}: classes {[raw.class_names[m] for m in missing]} have no rows "
                         "in the training data")

    x_train = x[train_idx].astype(np.float64)
    if raw.kind == "tabular":
        mask = raw.standardize if raw.standardize is not None else np.ones(x.shape[1], bool)
        mean = np.where(mask, x_train.mean(axis=0), 0.0)
        std = x_train.std(axis=0)
        std = np.where(mask & (std > 1e-12), std, 1.0)
    else:
        axes = (0, 2, 3)
        mean = x_train.mean(axis=axes, keepdims=True)[0]
        std = x_train.std(axis=axes, keepdims=True)[0]
        std = np.where(std > 1e-12, std, 1.0)

    def split(xs, ys, gs, rs) -> Split:
        xs = ((xs - mean) / std).astype(np.float32)
        return Split(torch.from_numpy(np.ascontiguousarray(xs)), torch.from_numpy(ys.astype(np.int64)),
                     gs, np.asarray(rs))

    def take(idx):
        return (x[idx], y[idx], groups[idx] if groups is not None else None, rows[idx])

    return Data(raw.name, raw.kind, split(*take(train_idx)), split(*take(val_idx)), split(*test_part),
                list(raw.class_names), tuple(x.shape[1:]), raw.group_name, raw.feature_names, notes)
