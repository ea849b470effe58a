"""Bad input to torch-sugar compare: one line on stderr naming the problem, exit code 2, no traceback."""

import os
import subprocess
import sys

import pytest

from torch_sugar import cli


def run_cli(argv, capsys):
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, match):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("torch-sugar compare: error: "), err
    assert match in lines[0], err


@pytest.fixture
def table(tmp_path):
    def write(text, name="data.csv"):
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


GOOD = "a,b,color,y\n1,2,red,0\n2,3,blue,1\n3,1,red,0\n4,4,blue,1\n"


def test_subprocess_missing_file_and_unknown_activation(tmp_path):
    """The real console entry point (python -m torch_sugar), as a user runs it."""
    env = dict(os.environ)
    for argv, match in (
        (
            ["compare", "--csv", str(tmp_path / "nope.csv"), "--target", "y"],
            f"--csv: no such file: {tmp_path / 'nope.csv'}",
        ),
        (
            ["compare", "--activations", "relu,bsilu,swishy"],
            "unknown activation 'swishy'; valid names: relu,",
        ),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "torch_sugar"] + argv, capture_output=True, text=True, env=env, timeout=120
        )
        assert proc.stdout == ""
        assert_one_line_error(proc.returncode, proc.stderr, match)


@pytest.mark.parametrize(
    "text, extra, match",
    [
        (GOOD, ["--target", "label"], "--target: column 'label' is not in"),
        (GOOD, ["--target", "y", "--group", "user"], "--group: column 'user' is not in"),
        (GOOD, ["--target", "y", "--ignore", "zzz"], "--ignore: column 'zzz' is not in"),
        ("a,y\n1,1\n2,1\n3,1\n", ["--target", "y"], "--target: column 'y' has a single class ('1')"),
        (
            "a,b,y\n1,2,0\n2,nan,1\n3,1,0\n",
            ["--target", "y"],
            "--csv: numeric column 'b' has 1 missing value(s) (empty or NaN), first on line 3",
        ),
        ("a,b,y\n1,2,0\n2,,1\n3,1,0\n", ["--target", "y"], "numeric column 'b' has 1 missing value(s)"),
        (
            "a,b,y\n1,2,0\n2,?,1\n3,?,0\n",
            ["--target", "y", "--na-values", "?"],
            "numeric column 'b' has 2 missing value(s) (empty, ? or NaN), first on line 3",
        ),
        (
            "a,y\n1,0\n2,\n3,1\n",
            ["--target", "y"],
            "--target: target column 'y' has 1 missing value(s) (empty), first on line 3",
        ),
        (
            "u,a,y\nx,1,0\n,2,1\nz,3,1\n",
            ["--target", "y", "--group", "u"],
            "--group: group column 'u' has 1 missing value(s) (empty), first on line 3",
        ),
        (
            "a,y\n1,0\ninf,1\n3,1\n",
            ["--target", "y"],
            "numeric column 'a' has infinite values, first on line 3",
        ),
        (
            "a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(200)),
            ["--target", "a"],
            "--target: column 'a' has 200 distinct values",
        ),
        (GOOD, ["--target", "y", "--categorical", "zzz"], "--categorical: column 'zzz' is not in"),
        (GOOD, ["--target", "y", "--categorical", "y"], "--categorical: 'y' is the --target column"),
        (
            GOOD,
            ["--target", "y", "--categorical", "a", "--ignore", "a"],
            "--categorical: a also given to --ignore",
        ),
        (GOOD, ["--target", "y"], "cannot split off the test set (4 rows, class counts [2, 2])"),
        ("a,b,y\n1,2,0\n2,3\n", ["--target", "y"], "line 3 has 2 fields, the header has 3"),
        ("", ["--target", "y"], "is empty"),
        ("a,y\n", ["--target", "y"], "has a header but no data rows"),
        ("y,y\n1,2\n", ["--target", "y"], "duplicate column names: y"),
    ],
)
def test_bad_csv(table, capsys, text, extra, match):
    code, out, err = run_cli(["compare", "--csv", table(text), "--quiet"] + extra, capsys)
    assert_one_line_error(code, err, match)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--activations", "bsilu:abc"], "alpha in 'bsilu:abc' must be a number"),
        (["--activations", "gelu:0.3"], "'gelu:0.3' is not valid"),
        (["--activations", "plain:tanh"], "unknown smooth function in 'plain:tanh'"),
        (["--activations", "relu,relu"], "'relu' is listed twice"),
        (["--baseline", "nelu", "--activations", "relu,bsilu"], "--baseline: 'nelu' is not one of"),
        (["--epochs", "0"], "argument --epochs: expected a positive integer, got '0'"),
        (["--seeds", "x"], "argument --seeds: expected a count"),
        (["--seeds", "0"], "argument --seeds: expected a count"),
        (["--seeds", "3-1"], "argument --seeds: expected a count"),
        (["--lr", "-1"], "argument --lr: expected a positive number, got '-1'"),
        (["--lr", "nan"], "argument --lr: expected a positive number, got 'nan'"),
        (["--hidden", "64,0"], "argument --hidden: expected comma-separated positive integers"),
        (["--dropout", "1"], "argument --dropout: expected a probability in [0, 1)"),
        (["--val-fraction", "0.5", "--test-fraction", "0.4"], "must leave at least 20% for training"),
        (["--optimizer", "lion"], "argument --optimizer: invalid choice: 'lion'"),
        (["--dataset", "mnist"], "argument --dataset: invalid choice: 'mnist'"),
        (["--dataset", "wine", "--csv", "x.csv"], "argument --csv: not allowed with argument --dataset"),
        (["--target", "y"], "--target only applies to --csv"),
        (["--model", "cnn", "--dataset", "wine"], "--model cnn needs image data"),
        (["--device", "gpu"], "argument --device: invalid choice: 'gpu'"),
        (["--images", "/nonexistent/dir"], "--images: no such directory: /nonexistent/dir"),
        (["--cifar", "/nonexistent/dir"], "--cifar: no such directory: /nonexistent/dir"),
        (["--ctr-users", "1", "--dataset", "synthetic-ctr"], "--ctr-users: need 2 <= users"),
        (["--categorical", "a"], "--categorical only applies to --csv"),
        (["--na-values", "?"], "--na-values only applies to --csv"),
        (["--fill", "mean"], "--fill only applies to --csv"),
        (["--fill", "median"], "argument --fill: invalid choice: 'median'"),
        (["--pos-weight", "0"], "argument --pos-weight: expected auto or a positive number, got '0'"),
        (["--pos-weight", "x"], "argument --pos-weight: expected auto or a positive number, got 'x'"),
        (["--pos-weight", "auto"], "--pos-weight needs two classes; digits has 10"),
        (["--select-by", "auc"], "--select-by auc needs two classes; digits has 10"),
        (
            ["--select-by", "f1"],
            "argument --select-by: expected loss or auc, or METRIC:min|max with --script (e.g. val_loss:min), got 'f1'",
        ),
        (["--patience", "0"], "argument --patience: expected a positive integer, got '0'"),
        (["--hash-buckets", "0"], "argument --hash-buckets: expected a positive integer, got '0'"),
        (["--model", "dcn"], "--model dcn needs tabular data"),
        (["--model-fn", "nofile.py:build"], "--model-fn: no such file: nofile.py"),
        (["--model-fn", "build"], "--model-fn: expected FILE.py:FUNCTION, got 'build'"),
    ],
)
def test_bad_flags(capsys, argv, match):
    code, out, err = run_cli(["compare", "--quiet", "--epochs", "1"] + argv, capsys)
    err = err.replace("(see torch-sugar compare --help)", "").rstrip() + "\n"
    assert_one_line_error(code, err, match)


def test_cuda_without_cuda(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    code, out, err = run_cli(["compare", "--device", "cuda"], capsys)
    assert_one_line_error(code, err, "--device cuda: CUDA is not available")


def test_not_a_cifar_folder(tmp_path, capsys):
    (tmp_path / "junk.txt").write_text("x")
    code, out, err = run_cli(["compare", "--cifar", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "is not a CIFAR python-format folder")


def test_image_folder_errors(tmp_path, capsys):
    (tmp_path / "only").mkdir()
    code, out, err = run_cli(["compare", "--images", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "needs one sub-folder per class (at least two); found 1")
    (tmp_path / "empty").mkdir()
    (tmp_path / "only" / "broken.png").write_bytes(b"not a png")
    code, out, err = run_cli(["compare", "--images", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "class folder")
    (tmp_path / "empty" / "x.png").write_bytes(b"not a png")
    code, out, err = run_cli(["compare", "--images", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "cannot read image")
