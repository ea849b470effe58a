"""Image data for ``torch-sugar compare``: scikit-learn's bundled digits, a folder with one
sub-folder of images per class (Pillow), CIFAR-10/100 in their python (pickle) format. Nothing is
ever downloaded. :func:`prepare_images` splits them (``--split``, ``--limit``) and standardizes
each channel with the training pixels' mean and standard deviation."""

import os
import pickle
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from .config import DataConfig
from .data import Data, Split
from .errors import UsageError
from .preprocess import InputSpec
from .split import SPLIT_TEXT, TEST, TRAIN, VALIDATION, assign_parts, check_part_counts, stratified

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


@dataclass
class ImageSet:
    """Images ``x`` (n, C, H, W) float32 in [0, 1], class index ``y`` per image; ``test``: a data
    set's own test images (CIFAR), else None."""

    name: str
    kind: str
    x: np.ndarray
    y: np.ndarray
    class_names: List[str]
    test: Optional["ImageSet"] = None
    notes: List[str] = field(default_factory=list)


def load_digits() -> ImageSet:
    import sklearn.datasets as skd

    bunch = skd.load_digits()
    x = bunch.images.astype(np.float32)[:, None, :, :] / 16.0  # (n, 1, 8, 8), pixels 0..16
    return ImageSet("digits", "image", x, bunch.target.astype(np.int64), [str(c) for c in bunch.target_names])


def load_images(cfg: DataConfig) -> ImageSet:
    if cfg.images is not None:
        return load_image_folder(cfg.images, cfg.image_size, cfg.grayscale)
    if cfg.cifar is not None:
        return load_cifar(cfg.cifar, cfg.cifar_labels)
    return load_digits()


def load_image_folder(root: str, size: int = 32, grayscale: bool = False) -> ImageSet:
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
    return ImageSet(
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


def load_cifar(root: str, labels: str = "fine") -> ImageSet:
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
    test = ImageSet(name, "image", x_test, y_test, names)
    return ImageSet(
        name,
        "image",
        x,
        y,
        names,
        test=test,
        notes=[f"{root}: {len(y)} training and {len(y_test)} test images, {n_classes} classes"],
    )


def _test_part(
    images: ImageSet, limit: Optional[int], seed: int
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, row numbers) of a data set's own test images, ``limit // 5`` of them with --limit."""
    test = images.test
    keep = np.arange(len(test.y))
    if limit is not None and max(1, limit // 5) < len(keep):
        _, keep = stratified(keep, test.y, max(1, limit // 5), seed, "test subset")
    return test.x[keep], test.y[keep], keep


def prepare_images(images: ImageSet, cfg: DataConfig) -> Data:
    """The split (``--split``, ``--limit``) and the per-channel standardization fitted on the
    training images: ``(pixel - mean) / std`` per channel (only centered where constant)."""
    x, y = images.x, images.y
    if (~np.isfinite(x)).any():
        raise UsageError(f"{images.name} has non-finite feature values (NaN or infinity)")
    own_test = images.test is not None
    rows = np.arange(len(y))
    method = cfg.split_method
    parts = assign_parts(
        y, rows, method, cfg.data_seed, cfg.val_fraction, cfg.test_fraction, cfg.limit, own_test
    )
    check_part_counts(images.name, np.bincount(parts[parts >= 0], minlength=3), own_test)
    notes = list(images.notes)
    if cfg.limit is not None and cfg.limit < len(y):
        notes.append(f"--limit {cfg.limit}: using {int((parts >= 0).sum())} of {len(y)} rows (stratified)")
    train_idx = np.flatnonzero(parts == TRAIN)
    missing = sorted(set(range(len(images.class_names))) - set(np.unique(y[train_idx]).tolist()))
    if missing:
        raise UsageError(
            f"{images.name}: classes {[images.class_names[m] for m in missing]} have no rows in the training data"
        )
    x_train = x[train_idx].astype(np.float64)
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)[0]
    std = x_train.std(axis=(0, 2, 3), keepdims=True)[0]
    std = np.where(std > 1e-12, std, 1.0)

    def split(xs: np.ndarray, ys: np.ndarray, rs: np.ndarray) -> Split:
        xs = ((xs.astype(np.float64) - mean) / std).astype(np.float32)
        return Split(
            torch.from_numpy(np.ascontiguousarray(xs)), torch.from_numpy(ys.astype(np.int64)), None, rs
        )

    def part(p: int) -> Split:
        idx = np.flatnonzero(parts == p)
        return split(x[idx], y[idx], rows[idx])

    train = part(TRAIN)
    preprocessing = {
        "kind": images.kind,
        "classes": list(images.class_names),
        "input": "float32 image (C, H, W), pixels in [0, 1], then (pixel - mean) / std per channel",
        "mean": mean.ravel().tolist(),
        "std": std.ravel().tolist(),
        "split": SPLIT_TEXT[method],
    }
    return Data(
        images.name,
        images.kind,
        train,
        part(VALIDATION),
        split(*_test_part(images, cfg.limit, cfg.data_seed)) if own_test else part(TEST),
        list(images.class_names),
        InputSpec("image", tuple(x.shape[1:])),
        preprocessing,
        train.x[:2],
        notes=notes,
    )
