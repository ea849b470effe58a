"""Which rows train, which validate, which test: ``--split stratified|hash`` and ``--limit``.

- ``stratified``: scikit-learn's ``train_test_split`` with ``stratify``, seeded by ``--data-seed``
  (first the test rows, then the validation rows of the rest); it needs every label at once, so it
  applies to data in memory.
- ``hash``: a row's part is a function of its row number (its position in the source, from 0)
  and ``--data-seed`` alone: a splitmix64 hash mapped to [0, 1), below ``test_fraction`` test,
  below ``test_fraction + val_fraction`` validation, else training. Every pass over a stream
  agrees without storing it, and a file gives the same parts in memory and streamed.
"""

from typing import Optional, Tuple

import numpy as np

from .errors import UsageError

TRAIN, VALIDATION, TEST = 0, 1, 2
#: Rows left out by ``--limit``.
UNUSED = -1
SPLIT_TEXT = {
    "stratified": "stratified (scikit-learn's train_test_split, seeded by --data-seed)",
    "hash": "splitmix64 hash of the row number and --data-seed",
}

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def hash_parts(rows: np.ndarray, seed: int, val_fraction: float, test_fraction: float) -> np.ndarray:
    """:data:`TRAIN`, :data:`VALIDATION` or :data:`TEST` (int8) for each row number."""
    with np.errstate(over="ignore"):
        z = rows.astype(np.uint64) * _GOLDEN + np.uint64(seed) * np.uint64(0xD1B54A32D192ED03) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.where(
        u < test_fraction, TEST, np.where(u < test_fraction + val_fraction, VALIDATION, TRAIN)
    ).astype(np.int8)


def stratified(idx: np.ndarray, y: np.ndarray, size, seed: int, what: str) -> Tuple[np.ndarray, np.ndarray]:
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


def assign_parts(
    y: np.ndarray,
    rows: np.ndarray,
    method: str,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    limit: Optional[int] = None,
    own_test: bool = False,
) -> np.ndarray:
    """The part of every row held in memory (int8; :data:`UNUSED` for rows that ``--limit`` leaves
    out): ``y`` the class indices, ``rows`` the row numbers (for ``hash``). ``own_test``: the data
    has a test set of its own (CIFAR), so only validation rows are split off."""
    parts = np.full(len(y), UNUSED, np.int8)
    keep = np.arange(len(y))
    if limit is not None and limit < len(y):
        _, keep = stratified(keep, y, limit, seed, f"--limit {limit} subset")
    if method == "hash":
        parts[keep] = hash_parts(rows[keep], seed, val_fraction, 0.0 if own_test else test_fraction)
        return parts
    if own_test:
        train, val = stratified(keep, y, val_fraction, seed, "validation set")
    else:
        rest, test = stratified(keep, y, test_fraction, seed, "test set")
        train, val = stratified(rest, y, val_fraction / (1 - test_fraction), seed, "validation set")
        parts[test] = TEST
    parts[train], parts[val] = TRAIN, VALIDATION
    return parts


def check_part_counts(name: str, counts: np.ndarray, own_test: bool = False) -> None:
    """Every part needs a row (the hash split can leave one empty on small data)."""
    needed = (TRAIN, VALIDATION) if own_test else (TRAIN, VALIDATION, TEST)
    if any(counts[p] == 0 for p in needed):
        raise UsageError(
            f"{name} has too few rows to split ({counts[:3].tolist()} train/validation/test rows); "
            "use more data or other --val-fraction/--test-fraction"
        )
