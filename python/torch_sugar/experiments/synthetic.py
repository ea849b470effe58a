"""``synthetic-ctr``: generated click data with user and item ids, shaped like a click-through-rate
problem (``--dataset synthetic-ctr``, and ``torch-sugar synthetic-ctr FILE`` writes it as CSV or
Parquet). Needs numpy only."""

import csv
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

from .errors import UsageError

CTR_DEVICES = ("mobile", "desktop", "tablet")
CTR_ADS = 300


def _ctr_population(rng: np.random.Generator, users: int) -> dict:
    """synthetic-ctr's users and ads: the generator's first draws."""
    n_ads, dim, n_cat, n_dev = CTR_ADS, 4, 8, 3
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
    category = (
        np.digitize(attributes[:, 3], [-1.15, -0.67, -0.32, 0, 0.32, 0.67, 1.15])
        + rng.binomial(1, 0.15, n_ads)
    ) % n_cat
    ad_hist_ctr = 1 / (1 + np.exp(-(-3.0 + quality + rng.normal(0.0, 0.3, n_ads))))
    return dict(
        activity=activity,
        propensity=propensity,
        taste=taste,
        user_feat=user_feat,
        user_hist_ctr=user_hist_ctr,
        device=device,
        quality=quality,
        attributes=attributes,
        ad_feat=ad_feat,
        category=category,
        ad_hist_ctr=ad_hist_ctr,
        n_ads=n_ads,
    )


def _ctr_impressions(
    rng: np.random.Generator, pop: dict, rows: int, users: int, as_text: bool = True
) -> Tuple[np.ndarray, object, np.ndarray]:
    """``rows`` impressions of the population: (numeric features, categorical columns, clicks);
    the categorical columns as text (an object array), or with ``as_text=False`` as the integer
    indices (user, ad, ad category, device)."""
    activity, propensity, taste = pop["activity"], pop["propensity"], pop["taste"]
    user_feat, user_hist_ctr, device = pop["user_feat"], pop["user_hist_ctr"], pop["device"]
    quality, attributes, ad_feat = pop["quality"], pop["attributes"], pop["ad_feat"]
    category, ad_hist_ctr, n_ads = pop["category"], pop["ad_hist_ctr"], pop["n_ads"]
    # impressions
    user = rng.choice(users, rows, p=activity)
    ad = rng.integers(0, n_ads, rows)
    position = rng.integers(1, 6, rows)
    hour = rng.integers(0, 24, rows)
    hour_sin, hour_cos = np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24)
    logit = (
        -3.6
        + propensity[user]
        + quality[ad]
        + 0.8 * np.einsum("ij,ij->i", taste[user], attributes[ad])
        - 0.35 * (position - 1)
        + 0.5 * taste[user, 2] * hour_sin
        + 0.4 * ad_feat[ad, 0] * ad_feat[ad, 1]
        + 0.3 * (device[user] == 2) * (category[ad] < 2)
    )
    click = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)

    columns = [
        user_feat[user, 0],
        user_feat[user, 1],
        np.log(user_hist_ctr[user]),
        ad_feat[ad, 0],
        ad_feat[ad, 1],
        ad_feat[ad, 2],
        np.log(ad_hist_ctr[ad]),
        position.astype(float),
        hour_sin,
        hour_cos,
    ]
    x = np.stack(columns, axis=1).astype(np.float32)
    if not as_text:
        return x, (user, ad, category[ad], device[user]), click
    cat = np.stack(
        [
            np.char.add("u", user.astype(str)),
            np.char.add("ad", ad.astype(str)),
            np.char.add("c", category[ad].astype(str)),
            np.array(CTR_DEVICES)[device[user]],
        ],
        axis=1,
    ).astype(object)
    return x, cat, click


CTR_FEATURES = [
    "user_f0",
    "user_f1",
    "user_log_hist_ctr",
    "ad_f0",
    "ad_f1",
    "ad_f2",
    "ad_log_hist_ctr",
    "position",
    "hour_sin",
    "hour_cos",
]
CTR_CATEGORICAL = ["user", "item", "ad_category", "device"]


@dataclass
class SyntheticCtr:
    """Generated impressions: ``x`` the numeric features (float32, :data:`CTR_FEATURES`), ``cat``
    the categorical columns as text (:data:`CTR_CATEGORICAL`), ``clicked`` 0/1 per row."""

    x: np.ndarray
    cat: np.ndarray
    clicked: np.ndarray
    note: str

    @property
    def header(self) -> List[str]:
        return list(CTR_COLUMNS)


CTR_TARGET = "clicked"
CTR_COLUMNS = (*CTR_CATEGORICAL, *CTR_FEATURES, CTR_TARGET)


def _check_size(rows: int, users: int) -> None:
    if rows < 100:
        raise UsageError(f"--ctr-rows: need at least 100 rows, got {rows}")
    if not 2 <= users <= rows // 5:
        raise UsageError(f"--ctr-users: need 2 <= users <= rows/5 = {rows // 5}, got {users}")


def make_synthetic_ctr(rows: int = 20000, users: int = 400, seed: int = 0) -> SyntheticCtr:
    """Generated click data with user and item ids, shaped like a click-through-rate problem.

    Impressions of ads (items) to users. Users differ in activity (Zipf-like), in their base click
    propensity and in a hidden taste vector; ads have a quality and a hidden attribute vector.
    The click probability is sigmoid(base + user propensity + ad quality + taste . attributes +
    position and time-of-day effects + a feature interaction), about 5% positives. The model sees
    the user and item ids (categorical: an embedding can learn propensity, quality and part of the
    taste), the ad category and device (categorical), and noisy numeric proxies (user and ad
    features, historical CTRs, position, hour), never the hidden vectors. The group is the user
    id, so uAUC measures how well the model ranks ads *within* one user's impressions, which the
    user propensity cannot help with (as in real CTR data, uAUC < AUC).
    """
    _check_size(rows, users)
    rng = np.random.default_rng(seed)
    x, cat, click = _ctr_impressions(rng, _ctr_population(rng, users), rows, users)
    note = (
        f"synthetic-ctr: {rows} impressions, {users} users, {CTR_ADS} items, {click.mean():.1%} "
        f"clicks, generator seed {seed}"
    )
    return SyntheticCtr(x, cat, click, note)


def write_synthetic_ctr_csv(path: str, rows: int, users: int = 400, seed: int = 0) -> float:
    """synthetic-ctr as a CSV file: the categorical columns, the numeric ones (6 significant
    digits), ``clicked`` last. Returns the click rate."""
    table = make_synthetic_ctr(rows, users, seed)
    try:
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(CTR_COLUMNS)
            for i in range(len(table.clicked)):
                writer.writerow(
                    list(table.cat[i]) + [f"{v:.6g}" for v in table.x[i]] + [str(table.clicked[i])]
                )
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    return float(table.clicked.mean())


def write_synthetic_ctr_parquet(
    path: str,
    rows: int,
    users: int = 400,
    seed: int = 0,
    chunk: int = 1_000_000,
    row_group_size: int = 100_000,
) -> float:
    """synthetic-ctr as a Parquet file, generated and written ``chunk`` rows at a time (cheap in
    memory, so large files can be made: ``torch-sugar synthetic-ctr clicks.parquet --rows
    10000000``); the columns of :func:`write_synthetic_ctr_csv`, features as float32. The first ``chunk``
    rows are those of ``make_synthetic_ctr(min(rows, chunk), users, seed)``. Returns the click rate."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(
            "writing Parquet needs pyarrow: pip install pyarrow (or pip install 'torch-sugar[experiments]')"
        ) from None
    _check_size(rows, users)
    rng = np.random.default_rng(seed)
    pop = _ctr_population(rng, users)
    schema = pa.schema(
        [(n, pa.string()) for n in CTR_CATEGORICAL]
        + [(n, pa.float32()) for n in CTR_FEATURES]
        + [("clicked", pa.int8())]
    )
    clicks = 0
    try:
        with pq.ParquetWriter(path, schema) as writer:
            for start in range(0, rows, chunk):
                x, (user, ad, category, device), click = _ctr_impressions(
                    rng, pop, min(chunk, rows - start), users, as_text=False
                )
                text = [
                    pc.binary_join_element_wise(prefix, pa.array(v).cast(pa.string()), "")
                    for prefix, v in (("u", user), ("ad", ad), ("c", category))
                ]
                text.append(pa.array(np.array(CTR_DEVICES)[device]))
                table = pa.table(
                    text + [pa.array(x[:, j]) for j in range(x.shape[1])] + [pa.array(click.astype(np.int8))],
                    schema=schema,
                )
                writer.write_table(table, row_group_size=row_group_size)
                clicks += int(click.sum())
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc}") from None
    return clicks / rows
