"""One tabular pipeline for every path: the same file gives the same column roles, the same
errors and warnings in memory and with ``--stream``; with ``--split hash`` it gives the same
preprocessing.json and the same encoded rows. (Before the one pipeline, a text column holding
numbers was numeric in memory but categorical under --stream, a ``--na-values`` marker in the
target was an error in memory but a class under --stream, and the id-like-column warning existed
in memory only.)"""

import json
import math

import numpy as np
import pytest
import torch

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pa_csv = pytest.importorskip("pyarrow.csv")

from test_compare import load, load_results, run_cli  # noqa: E402
from test_compare_errors import assert_one_line_error  # noqa: E402
from test_compare_jobs import without_timings  # noqa: E402

from torch_sugar.experiments import preprocess, sources, synthetic  # noqa: E402
from torch_sugar.experiments.split import hash_parts  # noqa: E402

TINY = ["--hidden", "4", "--epochs", "1", "--seeds", "1", "--activations", "relu", "--quiet", "--no-plots"]


def write_parquet(path, columns, row_group_size=120):
    pq.write_table(pa.table(columns), str(path), row_group_size=row_group_size)
    return str(path)


def table_columns(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return {
        "amount": pa.array([f"{v:.3f}" for v in rng.normal(10, 3, n) + y], pa.string()),  # numbers as text
        "city": pa.array(rng.choice(["paris", "rome", "oslo"], n).tolist(), pa.string()),
        "x": pa.array(rng.normal(0, 1, n) - y, pa.float64()),
        "y": pa.array([str(v) for v in y], pa.string()),
    }


@pytest.mark.parametrize("stream", [False, True], ids=["memory", "stream"])
def test_a_text_column_of_numbers_is_numeric_on_every_path(tmp_path, capsys, stream):
    path = write_parquet(tmp_path / "t.parquet", table_columns())
    out = tmp_path / "out"
    argv = ["compare", "--parquet", path, "--target", "y", "--out", str(out)] + TINY
    code, _, err = run_cli(argv + (["--stream"] if stream else []), capsys)
    assert code == 0, err
    spec = load_results(out)["input_spec"]
    assert spec["numeric_names"] == ["amount", "x"]
    assert [c["name"] for c in spec["categorical"]] == ["city"]


@pytest.mark.parametrize("stream", [False, True], ids=["memory", "stream"])
def test_a_na_values_marker_in_the_target_is_an_error_on_every_path(tmp_path, capsys, stream):
    columns = table_columns()
    labels = columns["y"].to_pylist()
    labels[250] = "?"
    columns["y"] = pa.array(labels, pa.string())
    path = write_parquet(tmp_path / "t.parquet", columns)
    argv = ["compare", "--parquet", path, "--target", "y", "--na-values", "?"] + TINY
    code, _, err = run_cli(argv + (["--stream"] if stream else []), capsys)
    assert_one_line_error(
        code, err, "--target: target column 'y' has 1 missing value(s) (empty or ?), first on row 250"
    )


@pytest.mark.parametrize("stream", [False, True], ids=["memory", "stream"])
def test_the_id_like_column_warning_on_every_path(tmp_path, capsys, stream):
    columns = table_columns()
    columns["account"] = pa.array(np.arange(400) * 7 % 397, pa.int64())  # integers, 397 distinct
    path = write_parquet(tmp_path / "t.parquet", columns)
    out = tmp_path / "out"
    argv = ["compare", "--parquet", path, "--target", "y", "--out", str(out)] + TINY
    code, _, err = run_cli(argv + (["--stream"] if stream else []), capsys)
    assert code == 0, err
    assert "warning: integer column(s) account have 100 or more distinct values and look like ids" in err
    assert any("look like ids" in note for note in load_results(out)["data"]["notes"])
    assert json.dumps(load_results(out)["input_spec"]).count("account") == 1  # numeric, as warned


# ------------------------------------------------------------ memory and --stream, --split hash
@pytest.fixture(scope="module")
def clicks(tmp_path_factory):
    """synthetic-ctr, 4000 rows, as CSV and as two Parquet files of several row groups each."""
    root = tmp_path_factory.mktemp("pipeline")
    synthetic.write_synthetic_ctr_csv(str(root / "c.csv"), 4000, 80, seed=7)
    table = pa_csv.read_csv(str(root / "c.csv"))
    (root / "parts").mkdir()
    pq.write_table(table.slice(0, 2500), str(root / "parts" / "a.parquet"), row_group_size=700)
    pq.write_table(table.slice(2500), str(root / "parts" / "b.parquet"), row_group_size=400)
    return {"csv": ["--csv", str(root / "c.csv")], "parquet": ["--parquet", str(root / "parts")]}


def training_rows_in_file_order(data):
    """A streamed run's training rows, encoded, batch by batch in file order (no shuffling)."""
    stream = data.train.stream
    got = list(stream._encoded(range(stream.source.batch_count())))
    return torch.cat([x for x, _ in got]).numpy(), torch.cat([y for _, y in got]).numpy()


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_memory_and_stream_give_the_same_preprocessing_and_rows_with_split_hash(clicks, source, monkeypatch):
    """Statistics blocks of 900 rows and CSV blocks of 1000 rows: the blocks cross the batches, and
    the streamed numbers still equal the in-memory ones bit for bit."""
    monkeypatch.setattr(preprocess, "STATS_BLOCK_ROWS", 900)
    monkeypatch.setattr(sources, "CSV_BATCH_ROWS", 1000)
    flags = clicks[source] + "--target clicked --group user --categorical user,item --fill mean".split()
    flags += "--na-values ad3 --ignore hour_cos --split hash".split()
    memory = load(flags)
    streamed = load(flags + ["--stream", "--eval-rows", "4000"])
    assert streamed.train.stream.source.batch_count() == (4 if source == "csv" else 8)
    assert memory.preprocessing == streamed.preprocessing
    assert memory.preprocessing["split"] == "splitmix64 hash of the row number and --data-seed"
    assert memory.spec == streamed.spec and memory.class_names == streamed.class_names
    for a, b in ((memory.val, streamed.val), (memory.test, streamed.test)):
        np.testing.assert_array_equal(a.x.numpy(), b.x.numpy())
        np.testing.assert_array_equal(a.y.numpy(), b.y.numpy())
        np.testing.assert_array_equal(a.rows, b.rows)
        np.testing.assert_array_equal(a.groups, b.groups)
    x, y = training_rows_in_file_order(streamed)
    np.testing.assert_array_equal(memory.train.x.numpy(), x)
    np.testing.assert_array_equal(memory.train.y.numpy(), y)
    np.testing.assert_array_equal(memory.example_rows().numpy(), streamed.example_rows().numpy())
    np.testing.assert_array_equal(memory.train_class_counts(), streamed.train_class_counts())
    # the hash split itself: the rows' parts by the splitmix64 hash of their row numbers
    first_row = 2 if source == "csv" else 0
    parts = hash_parts(np.arange(4000), 0, 0.15, 0.2)
    np.testing.assert_array_equal(memory.test.rows - first_row, np.flatnonzero(parts == 2))


def test_numeric_statistics_do_not_depend_on_batching(monkeypatch):
    """NumericStats: the same bits whatever the batches; numpy's nanmean/nanstd within one block;
    within 1e-12 of an exact (math.fsum) mean and two-pass standard deviation over blocks."""
    rng = np.random.default_rng(3)
    x = rng.normal(5.0, 3.0, (5000, 3)).astype(np.float32).astype(np.float64)
    x[rng.random((5000, 3)) < 0.1] = np.nan
    x[:, 2] = np.nan  # a column without a value
    one = preprocess.NumericStats(3)
    one.add(x)
    mean_one, std_one = one.result()
    assert np.array_equal(mean_one[:2], np.nanmean(x[:, :2], axis=0)) and mean_one[2] == 0
    assert np.array_equal(std_one[:2], np.nanstd(x[:, :2], axis=0)) and std_one[2] == 0
    monkeypatch.setattr(preprocess, "STATS_BLOCK_ROWS", 700)
    results = []
    for sizes in ([5000], [1, 699, 1300, 3000], [333] * 15 + [5]):
        stats = preprocess.NumericStats(3)
        for chunk in np.split(x, np.cumsum(sizes)[:-1]):
            stats.add(chunk)
        results.append(stats.result())
    for mean, std in results[1:]:
        assert np.array_equal(mean, results[0][0]) and np.array_equal(std, results[0][1])
    for j in range(2):
        col = x[:, j][~np.isnan(x[:, j])]
        exact_mean = math.fsum(col) / len(col)
        exact_std = math.sqrt(math.fsum((v - exact_mean) ** 2 for v in col) / len(col))
        assert results[0][0][j] == pytest.approx(exact_mean, rel=1e-12)
        assert results[0][1][j] == pytest.approx(exact_std, rel=1e-12)


def test_csv_stream_with_jobs_gives_the_serial_numbers(clicks, tmp_path, capsys):
    """--stream reads a CSV file too, and --jobs 2 workers each read the stream themselves: the
    numbers of --jobs 1."""
    flags = clicks["csv"] + "--target clicked --group user --categorical user,item --stream".split()
    flags += "--hidden 8 --epochs 2 --seeds 2 --activations relu,bsilu --shuffle-buffer 500".split()
    flags += "--quiet --no-plots --threads 1".split()
    results = []
    for jobs in ("1", "2"):
        code, _, err = run_cli(["compare"] + flags + ["--jobs", jobs, "--out", str(tmp_path / jobs)], capsys)
        assert code == 0, err
        results.append(load_results(tmp_path / jobs))
    serial, parallel = results
    assert serial["complete"] and parallel["complete"] and len(serial["runs"]) == 4
    assert [without_timings(r) for r in parallel["runs"]] == [without_timings(r) for r in serial["runs"]]
    assert serial["runs"][0]["loss"] != serial["runs"][2]["loss"]
