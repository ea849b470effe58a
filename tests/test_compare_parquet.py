"""``torch-sugar compare --parquet``: Parquet files (one, or a directory) read with pyarrow give
the same data, and the same results, as the same table written as CSV; the column flags and the
errors are those of --csv."""

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pa_csv = pytest.importorskip("pyarrow.csv")

from test_compare import load, load_results, run_cli  # noqa: E402
from test_compare_errors import assert_one_line_error  # noqa: E402

from torch_sugar.experiments import synthetic  # noqa: E402
from torch_sugar.experiments.columns import ColumnPlan  # noqa: E402
from torch_sugar.experiments.sources import RowBatch, open_csv, open_parquet  # noqa: E402


@pytest.fixture(scope="module")
def clicks(tmp_path_factory):
    """synthetic-ctr as CSV, and the same table as one Parquet file and as a directory of three
    (several row groups each). The Parquet columns are typed by pyarrow's CSV reader: ids as text,
    features as float64, the target as int64."""
    root = tmp_path_factory.mktemp("parquet")
    csv_path = root / "clicks.csv"
    synthetic.write_synthetic_ctr_csv(str(csv_path), 3000, 60, seed=3)
    table = pa_csv.read_csv(str(csv_path))
    assert table.schema.field("user").type == pa.string()
    assert table.schema.field("user_f0").type == pa.float64()
    assert table.schema.field("clicked").type == pa.int64()
    pq.write_table(table, str(root / "clicks.parquet"), row_group_size=700)
    (root / "parts").mkdir()
    for i, start in enumerate((0, 1000, 2000)):
        pq.write_table(
            table.slice(start, 1000), str(root / "parts" / f"part-{i}.parquet"), row_group_size=300
        )
    return {"csv": str(csv_path), "file": str(root / "clicks.parquet"), "dir": str(root / "parts")}


def assert_same_data(a, b, row_offset):
    """The same encoded rows, classes and preprocessing; row ids differ by ``row_offset`` (CSV line
    numbers start at 2, Parquet rows at 0)."""
    assert a.preprocessing == b.preprocessing and a.spec == b.spec and a.class_names == b.class_names
    for split_a, split_b in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        np.testing.assert_array_equal(split_a.x.numpy(), split_b.x.numpy())
        np.testing.assert_array_equal(split_a.y.numpy(), split_b.y.numpy())
        np.testing.assert_array_equal(split_a.groups, split_b.groups)
        np.testing.assert_array_equal(split_a.rows + row_offset, split_b.rows)


@pytest.mark.parametrize("which", ["file", "dir"])
def test_parquet_reads_as_the_csv(clicks, which):
    flags = ["--target", "clicked", "--group", "user", "--categorical", "user,item", "--ignore", "hour_cos"]
    from_csv = load(["--csv", clicks["csv"]] + flags)
    from_parquet = load(["--parquet", clicks[which]] + flags)
    assert_same_data(from_parquet, from_csv, row_offset=2)
    assert "hour_cos" not in from_parquet.spec.numeric_names and from_parquet.spec.shape == (13,)
    assert sorted(
        np.concatenate([from_parquet.train.rows, from_parquet.val.rows, from_parquet.test.rows])
    ) == list(range(3000))  # Parquet row numbers for predictions


def read_rows(source, **columns):
    """Every row of a source as the column plan reads it."""
    plan = ColumnPlan.decide(source, **columns)
    return plan, plan.read(RowBatch.concat(list(source.batches(plan.columns))))


def test_typed_columns_nulls_na_values_and_fill(tmp_path):
    """Nulls, NaN, --na-values, --fill, dictionary/bool columns and a text column of numbers: the
    same roles and values as the CSV text."""
    csv_text = (
        "n,f,city,flag,code,y\n"
        "1,0.5,paris,true,7,no\n2,,?,false,8,yes\n3,1.25,,true,?,no\n4,2.5,rome,false,9,yes\n"
        "5,,paris,true,10,no\n6,3.0,rome,false,11,yes\n"
    )
    (tmp_path / "t.csv").write_text(csv_text)
    table = pa.table(
        {
            "n": pa.array([1, 2, 3, 4, 5, 6], pa.int32()),
            "f": pa.array([0.5, None, 1.25, 2.5, float("nan"), 3.0], pa.float64()),
            "city": pa.array(["paris", "?", None, "rome", "paris", "rome"]).dictionary_encode(),
            "flag": pa.array([True, False, True, False, True, False]),
            "code": pa.array(["7", "8", "?", "9", " 10", "11"], pa.string()),
            "y": pa.array(["no", "yes", "no", "yes", "no", "yes"]),
        }
    )
    pq.write_table(table, str(tmp_path / "t.parquet"))
    columns = dict(target="y", na_values=["?"], fill="mean")
    plan_csv, from_csv = read_rows(open_csv(str(tmp_path / "t.csv")), **columns)
    plan_parquet, from_parquet = read_rows(open_parquet(str(tmp_path / "t.parquet")), **columns)
    assert (plan_csv.numeric, plan_csv.categorical) == (plan_parquet.numeric, plan_parquet.categorical)
    assert plan_parquet.numeric == ["n", "f", "code"] and plan_parquet.categorical == ["city", "flag"]
    for key in ("numeric", "categorical", "labels"):
        np.testing.assert_array_equal(getattr(from_parquet, key), getattr(from_csv, key))
    assert from_parquet.categorical[:, 0].tolist() == ["paris", "", "", "rome", "paris", "rome"]
    assert np.isnan(from_parquet.numeric[[1, 4], 1]).all() and np.isnan(from_parquet.numeric[2, 2])


def test_compare_on_parquet_gives_the_csv_results(clicks, tmp_path, capsys):
    common = [
        "--target",
        "clicked",
        "--group",
        "user",
        "--categorical",
        "user,item",
        "--hidden",
        "16",
        "--epochs",
        "1",
        "--seeds",
        "1",
        "--activations",
        "relu,bsilu",
        "--quiet",
        "--no-plots",
        "--threads",
        "1",
    ]
    runs = {}
    for source, path in (("--csv", clicks["csv"]), ("--parquet", clicks["dir"])):
        out = tmp_path / source.strip("-")
        code, _, err = run_cli(["compare", source, path, "--out", str(out)] + common, capsys)
        assert code == 0, err
        res = load_results(out)
        runs[source] = [
            {k: r[k] for k in ("activation", "loss", "accuracy", "auc", "uauc", "dead_end")}
            for r in res["runs"]
        ]
        assert res["data"]["n_train"] + res["data"]["n_val"] + res["data"]["n_test"] == 3000
    assert runs["--parquet"] == runs["--csv"]


@pytest.mark.parametrize(
    "case, extra, match",
    [
        ("missing", ["--target", "clicked"], "--parquet: no such file or directory: "),
        ("not_parquet", ["--target", "clicked"], "--parquet: cannot read "),
        ("empty_dir", ["--target", "clicked"], "has no .parquet files"),
        ("mixed", ["--target", "clicked"], "has the columns a, clicked; the first file has"),
        ("file", ["--target", "nope"], "--target: column 'nope' is not in"),
        ("file", ["--target", "clicked", "--ignore", "nope"], "--ignore: column 'nope' is not in"),
        (
            "file",
            ["--target", "clicked", "--categorical", "clicked"],
            "--categorical: 'clicked' is the --target column",
        ),
        (
            "nulls",
            ["--target", "clicked"],
            "--target: target column 'clicked' has 1 missing value(s) (empty), first on row 1 of",
        ),
        ("file", [], "--parquet needs --target COL"),
    ],
)
def test_parquet_errors(clicks, tmp_path, capsys, case, extra, match):
    paths = {
        "missing": str(tmp_path / "nothing.parquet"),
        "file": clicks["file"],
        "not_parquet": clicks["csv"],
        "empty_dir": str(tmp_path),
    }
    if case == "mixed":
        (tmp_path / "mixed").mkdir()
        pq.write_table(pa.table({"a": [1.0, 2.0], "clicked": [0, 1]}), str(tmp_path / "mixed" / "1.parquet"))
        pq.write_table(pa.table({"b": [1.0, 2.0], "clicked": [0, 1]}), str(tmp_path / "mixed" / "0.parquet"))
        paths["mixed"] = str(tmp_path / "mixed")
    if case == "nulls":
        paths["nulls"] = str(tmp_path / "nulls.parquet")
        pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "clicked": [0, None, 1]}), paths["nulls"])
    code, _, err = run_cli(["compare", "--parquet", paths[case], "--quiet"] + extra, capsys)
    assert_one_line_error(code, err, match)


def test_synthetic_ctr_parquet_is_make_synthetic_ctr(tmp_path, capsys):
    """`torch-sugar synthetic-ctr F.parquet`: the rows of make_synthetic_ctr, written a chunk at a
    time (the first chunk is make_synthetic_ctr of that many rows)."""
    code, out, err = run_cli(
        ["synthetic-ctr", str(tmp_path / "c.parquet"), "--rows", "3000", "--users", "60", "--seed", "5"],
        capsys,
    )
    assert code == 0, err
    made = synthetic.make_synthetic_ctr(3000, 60, seed=5)
    table = pq.read_table(str(tmp_path / "c.parquet"))
    assert table.column_names == list(synthetic.CTR_COLUMNS)
    for j, name in enumerate(synthetic.CTR_FEATURES):
        np.testing.assert_array_equal(table.column(name).to_numpy(), made.x[:, j])
    for j, name in enumerate(synthetic.CTR_CATEGORICAL):
        assert table.column(name).to_pylist() == made.cat[:, j].tolist()
    np.testing.assert_array_equal(table.column("clicked").to_numpy(), made.clicked)
    rate = synthetic.write_synthetic_ctr_parquet(
        str(tmp_path / "chunks.parquet"), 3000, 60, seed=5, chunk=1000, row_group_size=400
    )
    chunked = pq.ParquetFile(str(tmp_path / "chunks.parquet"))
    assert chunked.metadata.num_rows == 3000 and chunked.num_row_groups == 9
    first = synthetic.make_synthetic_ctr(1000, 60, seed=5)
    table = chunked.read()
    np.testing.assert_array_equal(np.asarray(table.column("clicked").to_numpy())[:1000], first.clicked)
    assert table.column("user").to_pylist()[:1000] == first.cat[:, 0].tolist()
    assert rate == pytest.approx(np.asarray(table.column("clicked").to_numpy()).mean())
