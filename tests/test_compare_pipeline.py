"""One tabular pipeline for every path: the same file gives the same column roles, the same
errors and warnings in memory and with ``--stream``; with ``--split hash`` it gives the same
preprocessing.json and the same encoded rows. (Before the one pipeline, a text column holding
numbers was numeric in memory but categorical under --stream, a ``--na-values`` marker in the
target was an error in memory but a class under --stream, and the id-like-column warning existed
in memory only.)"""

import json

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from test_compare import load_results, run_cli  # noqa: E402
from test_compare_errors import assert_one_line_error  # noqa: E402

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
