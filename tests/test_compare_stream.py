"""``torch-sugar compare --parquet PATH --stream``: the one streaming pass computes the statistics
that numpy computes from the whole table, the training stream yields every training row once per
epoch in a shuffled order, and a streamed run completes."""

import json
import os

import numpy as np
import pytest
import torch

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pa_csv = pytest.importorskip("pyarrow.csv")

from test_compare import load, load_results, run_cli  # noqa: E402
from test_compare_errors import assert_one_line_error  # noqa: E402

from torch_sugar.experiments import sources, synthetic  # noqa: E402
from torch_sugar.experiments.split import hash_parts  # noqa: E402

FLAGS = [
    "--target",
    "clicked",
    "--group",
    "user",
    "--categorical",
    "user,item",
    "--stream",
    "--ignore",
    "hour_cos",
    "--batch-size",
    "64",
    "--shuffle-buffer",
    "300",
]


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """synthetic-ctr, 3000 rows, as two Parquet files of several row groups; and the whole table."""
    root = tmp_path_factory.mktemp("stream")
    synthetic.write_synthetic_ctr_csv(str(root / "c.csv"), 3000, 60, seed=5)
    table = pa_csv.read_csv(str(root / "c.csv"))
    (root / "parts").mkdir()
    pq.write_table(table.slice(0, 1700), str(root / "parts" / "a.parquet"), row_group_size=400)
    pq.write_table(table.slice(1700), str(root / "parts" / "b.parquet"), row_group_size=250)
    return str(root / "parts"), table


def load_streamed(path, *extra):
    return load(["--parquet", path] + FLAGS + list(extra))


def reference(table, seed=0):
    """numpy over the whole table: the training rows' statistics and encoded rows."""
    part = hash_parts(np.arange(table.num_rows), seed, 0.15, 0.2)
    train = part == 0
    numeric = [
        n
        for n in table.column_names
        if n not in ("user", "item", "ad_category", "device", "clicked", "hour_cos")
    ]
    x = np.stack([table.column(n).to_numpy() for n in numeric], axis=1)[train]
    x = x.astype(np.float32).astype(np.float64)  # the model's precision: statistics of these values
    mean, std = x.mean(axis=0), x.std(axis=0)
    cats = {
        c: np.asarray(table.column(c).to_pylist(), dtype=object)[train]
        for c in ("user", "item", "ad_category", "device")
    }
    vocab = {c: sorted(set(v.tolist())) for c, v in cats.items()}
    idx = [
        np.array([vocab[c].index(v) + 1 for v in cats[c]]) for c in ("user", "item", "ad_category", "device")
    ]
    rows = np.concatenate([(x - mean) / std, np.stack(idx, axis=1)], axis=1)
    y = np.asarray(table.column("clicked").to_numpy())[train]
    return part, numeric, mean, std, vocab, rows, y


def test_scan_matches_numpy_on_the_whole_table(parts):
    path, table = parts
    data = load_streamed(path)
    part, numeric, mean, std, vocab, rows, y = reference(table)
    counts = np.bincount(part, minlength=3)
    assert counts.sum() == 3000 and abs(counts[2] / 3000 - 0.2) < 0.03 and abs(counts[1] / 3000 - 0.15) < 0.03
    assert (len(data.train), len(data.val), len(data.test)) == tuple(counts)
    pre = data.preprocessing
    assert [n["name"] for n in pre["numeric"]] == numeric
    np.testing.assert_allclose([n["mean"] for n in pre["numeric"]], mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose([n["std"] for n in pre["numeric"]], std, rtol=1e-10)
    assert {e["name"]: e["vocabulary"] for e in pre["categorical"]} == vocab
    np.testing.assert_array_equal(data.train_class_counts(), np.bincount(y, minlength=2))
    # the held-out rows: the validation part, in file order, encoded like the training rows
    val_rows = np.flatnonzero(part == 1)
    np.testing.assert_array_equal(data.val.rows, val_rows)
    np.testing.assert_array_equal(
        data.val.groups, np.asarray(table.column("user").to_pylist(), object)[val_rows]
    )
    np.testing.assert_allclose(data.example_rows().numpy(), rows[:2], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("source", ["parquet", "csv"])
def test_stream_yields_every_training_row_once_per_epoch_shuffled(parts, source, monkeypatch):
    """Parquet: 9 row groups in 2 files; CSV: blocks of 500 rows, so that the block order is shuffled too."""
    path, table = parts
    monkeypatch.setattr(sources, "CSV_BATCH_ROWS", 500)
    if source == "csv":
        data = load(["--csv", os.path.join(os.path.dirname(path), "c.csv")] + FLAGS)
        assert data.train.stream.source.batch_count() == 6
    else:
        data = load_streamed(path)
    *_, rows, y = reference(table)
    gen = torch.Generator().manual_seed(0)
    epochs = []
    for _ in range(2):
        batches = list(data.train.batches(64, gen))
        assert all(len(b[1]) == 64 for b in batches[:-1]) and 1 <= len(batches[-1][1]) <= 64
        assert len(batches) == -(-len(y) // 64)
        x = torch.cat([b[0] for b in batches]).numpy()
        yy = torch.cat([b[1] for b in batches]).numpy()
        # the same multiset of (row, label): both sorted, by the float32 rows and the label
        got = np.concatenate([x.astype(np.float64), yy[:, None]], axis=1)
        want = np.concatenate([rows.astype(np.float32).astype(np.float64), y[:, None]], axis=1)
        got, want = got[np.lexsort(got.T[::-1])], want[np.lexsort(want.T[::-1])]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(got[:, -1], want[:, -1])
        epochs.append(x)
    assert not np.array_equal(epochs[0], epochs[1])  # a new order every epoch
    # the same seed, the same stream
    again = torch.cat([b[0] for b in data.train.batches(64, torch.Generator().manual_seed(0))]).numpy()
    np.testing.assert_array_equal(again, epochs[0])


def test_compare_stream_run(parts, tmp_path, capsys):
    path, _ = parts
    out = tmp_path / "out"
    code, _, err = run_cli(
        ["compare", "--parquet", path]
        + FLAGS
        + [
            "--hidden",
            "16",
            "--epochs",
            "2",
            "--seeds",
            "1",
            "--activations",
            "relu,bsilu",
            "--quiet",
            "--no-plots",
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    res = load_results(out)
    assert res["complete"] and [r["epochs_run"] for r in res["runs"]] == [2, 2]
    for r in res["runs"]:
        assert 0 <= r["auc"] <= 1 and 0 <= r["uauc"] <= 1 and r["loss"] < 1
    assert res["data"]["n_train"] + res["data"]["n_val"] + res["data"]["n_test"] == 3000


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--dataset", "wine", "--stream"], "--stream only applies to --csv and --parquet"),
        (["--parquet", "{path}", "--stream", "--target", "nope"], "--target: column 'nope' is not in"),
        (
            ["--parquet", "{path}", "--stream", "--target", "clicked", "--limit", "100"],
            "--limit does not apply to --stream",
        ),
        (
            ["--parquet", "{path}", "--target", "clicked", "--shuffle-buffer", "10"],
            "--shuffle-buffer only applies to --stream",
        ),
    ],
)
def test_stream_errors(parts, capsys, extra, match):
    code, _, err = run_cli(["compare", "--quiet"] + [e.format(path=parts[0]) for e in extra], capsys)
    assert_one_line_error(code, err, match)


@pytest.mark.parametrize("source", ["csv", "parquet", "stream"])
def test_preprocessing_json_encodes_raw_rows_as_the_model_saw_them(parts, source):
    """The preprocessing.json description (--save-models) is one format for --csv, --parquet and
    --parquet --stream: after a JSON round trip, the README's recipe (which reads only it) turns the
    raw validation rows into exactly the model input that compare built."""
    path, table = parts
    flags = [f for f in FLAGS if f != "--stream"]
    flags = flags[: flags.index("--batch-size")]  # --batch-size and --shuffle-buffer: the stream's
    if source == "csv":
        argv = ["compare", "--csv", os.path.join(os.path.dirname(path), "c.csv")] + flags
    elif source == "parquet":
        argv = ["compare", "--parquet", path] + flags
    else:
        argv = ["compare", "--parquet", path] + FLAGS
    data = load(argv[1:])
    pre = json.loads(json.dumps(data.preprocessing))
    keys = ["kind", "classes", "target", "group", "input", "na_values", "missing_category", "numeric"]
    keys += ["categorical", "split"]
    assert list(pre) == keys
    assert pre["kind"] == "tabular" and pre["target"] == "clicked" and pre["group"] == "user"
    assert [c["name"] for c in pre["numeric"]] == [
        n
        for n in table.column_names
        if n not in ("user", "item", "ad_category", "device", "hour_cos", "clicked")
    ]
    assert all(list(c) == ["name", "mean", "std", "fill"] for c in pre["numeric"])
    assert [c["name"] for c in pre["categorical"]] == ["user", "item", "ad_category", "device"]

    raw = table.to_pylist()
    first_row = 2 if source == "csv" else 0  # CSV line numbers; Parquet row numbers from 0
    rows = []
    for r in data.val.rows:
        line = raw[int(r) - first_row]
        numeric = [(float(line[c["name"]]) - c["mean"]) / c["std"] for c in pre["numeric"]]
        index = [
            c["vocabulary"].index(str(line[c["name"]])) + 1 if str(line[c["name"]]) in c["vocabulary"] else 0
            for c in pre["categorical"]
        ]
        rows.append(numeric + index)
    np.testing.assert_allclose(data.val.x.numpy(), np.array(rows), rtol=1e-5, atol=1e-5)
