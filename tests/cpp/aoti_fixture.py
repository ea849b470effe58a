"""The AOTInductor test of the C++ examples (ctest): a package saved by `torch-sugar compare`
scored by examples/cpp/score_aoti.cpp, with no Python, against Python's scores.

    python aoti_fixture.py make --out DIR                       # ctest: aoti_fixture (setup)
    python aoti_fixture.py check --program score_aoti --out DIR  # ctest: example_score_aoti

make: DIR/clicks.csv (`torch-sugar synthetic-ctr`, 1500 rows), then a tiny `torch-sugar compare`
on it (bsilu, 1 seed, 1 epoch, hidden 16,16, user and item embeddings) with --save-models
DIR/models (the TorchScript file and the AOTInductor package) and --save-predictions. Writes the
run's test rows, encoded (DIR/rows.csv), and their class probabilities from the package loaded in
Python (DIR/expected.csv), after checking that the TorchScript file and the run's own predictions
(the trained model in memory) give the same probabilities.
check: runs the program on the package and rows.csv, BATCH_ROWS rows at a time (300 rows: 23
batches of 13 and one of 1, sizes the package was not exported with), and compares its
probabilities with expected.csv; then on rows one value short, which must be an error naming the
width the package expects (score_aoti turns on the package's input checks).

Exits 77 (ctest: skipped) when this Python has no built torch_sugar package (`make build`).
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys

#: Largest difference allowed between two probabilities of the same row: float32 logits of
#: different batch sizes differ by about 1e-6 (another GEMM blocking); a wrong model by far more.
TOLERANCE = 1e-5
BATCH_ROWS = 13
SKIPPED = 77


def read_numbers(path):
    with open(path) as f:
        return [[float(v) for v in row] for row in csv.reader(f) if row]


def write_numbers(path, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([[f"{v:.9g}" for v in row] for row in rows])


def largest_difference(a, b):
    if len(a) != len(b) or any(len(r) != len(s) for r, s in zip(a, b)):
        raise SystemExit(f"aoti_fixture: shapes differ: {len(a)} rows against {len(b)}")
    return max(abs(x - y) for r, s in zip(a, b) for x, y in zip(r, s))


def run_compare(out):
    """The tiny comparison; returns its results.json."""
    from torch_sugar import cli

    clicks = os.path.join(out, "clicks.csv")
    assert cli.main(["synthetic-ctr", clicks, "--rows", "1500", "--users", "30"]) == 0
    flags = "--target clicked --categorical user,item --hidden 16,16 --epochs 1 --seeds 1"
    code = cli.main(
        ["compare", "--csv", clicks, *flags.split(), "--activations", "bsilu"]
        + ["--save-models", os.path.join(out, "models"), "--save-format", "torchscript,aoti"]
        + ["--save-predictions", "--out", os.path.join(out, "results"), "--quiet", "--no-plots"]
    )
    if code != 0:
        raise SystemExit(f"aoti_fixture: torch-sugar compare failed (exit code {code})")
    with open(os.path.join(out, "results", "results.json")) as f:
        return json.load(f)


def make(out):
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    # A fresh compile: no inductor cache from an earlier build may answer for today's code.
    os.environ["TORCHINDUCTOR_FORCE_DISABLE_CACHES"] = "1"
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(out, "inductor-cache")
    try:
        import torch_sugar  # noqa: F401
    except ImportError as exc:
        print(f"aoti_fixture: cannot import a built torch_sugar package ({exc}); skipped")
        with open(os.path.join(out, "skipped"), "w") as f:
            f.write(str(exc) + "\n")
        return SKIPPED
    import torch
    import torch._inductor

    from torch_sugar.experiments.config import CompareConfig
    from torch_sugar.experiments.loading import load_data

    results = run_compare(out)
    run, saved = results["runs"][0], results["runs"][0]["saved"]
    if "aoti" not in saved:
        raise SystemExit(f"aoti_fixture: compare wrote no AOTInductor package: {saved}")
    rows = load_data(CompareConfig.from_dict(results["config"], "results.json").check().data).test.x
    package = torch._inductor.aoti_load_package(saved["aoti"])
    scripted = torch.jit.load(saved["torchscript"])
    with torch.no_grad():
        expected = torch.softmax(package(rows), 1).tolist()
        by_torchscript = torch.softmax(scripted(rows), 1).tolist()
    predictions = os.path.join(out, "results", "predictions", f"{run['activation']}-seed{run['seed']}.csv")
    with open(predictions) as f:
        by_run = [[float(p[k]) for k in p if k.startswith("p_")] for p in csv.DictReader(f)]
    for what, other in (("the TorchScript file", by_torchscript), ("the run's predictions", by_run)):
        diff = largest_difference(expected, other)
        if not diff <= TOLERANCE:
            raise SystemExit(f"aoti_fixture: the package and {what} differ by {diff:.3g} > {TOLERANCE}")
    write_numbers(os.path.join(out, "rows.csv"), rows.tolist())
    write_numbers(os.path.join(out, "expected.csv"), expected)
    print(
        f"aoti_fixture: {saved['aoti']} (compiled in {saved['aoti_seconds']} s); {len(expected)} rows "
        f"of {rows.shape[1]} values in {out}/rows.csv, their probabilities in expected.csv"
    )
    return 0


def check(out, program):
    if os.path.exists(os.path.join(out, "skipped")):
        print("aoti_fixture: the fixture was skipped (no built torch_sugar package); skipped")
        return SKIPPED
    with open(os.path.join(out, "results", "results.json")) as f:
        package = json.load(f)["runs"][0]["saved"]["aoti"]
    rows = os.path.join(out, "rows.csv")
    cmd = [program, package, rows, str(BATCH_ROWS)]
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"aoti_fixture: {program} failed (exit code {proc.returncode})")
    got = [[float(v) for v in line.split(",")] for line in proc.stdout.splitlines() if line]
    expected = read_numbers(os.path.join(out, "expected.csv"))
    diff = largest_difference(got, expected)
    print(f"aoti_fixture: {len(got)} rows scored in C++, largest difference to Python {diff:.3g}")
    if not diff <= TOLERANCE:
        raise SystemExit(f"aoti_fixture: C++ and Python differ by {diff:.3g} > {TOLERANCE}")
    narrow = os.path.join(out, "rows_narrow.csv")
    width = len(read_numbers(rows)[0])
    write_numbers(narrow, [row[:-1] for row in read_numbers(rows)])
    proc = subprocess.run([program, package, narrow], capture_output=True, text=True)
    if proc.returncode != 1 or f"expected: {width}, but got: {width - 1}" not in proc.stderr:
        raise SystemExit(
            f"aoti_fixture: rows of {width - 1} values: expected an error naming width {width}, got "
            f"exit code {proc.returncode}: {proc.stderr[:500]}"
        )
    print(f"aoti_fixture: rows of {width - 1} values: {proc.stderr.splitlines()[0][:200]}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["make", "check"])
    parser.add_argument("--out", required=True, help="the fixture's directory")
    parser.add_argument("--program", help="check: the score_aoti program")
    args = parser.parse_args()
    out = os.path.abspath(args.out)
    if args.step == "make":
        return make(out)
    if not args.program:
        parser.error("check needs --program")
    return check(out, args.program)


if __name__ == "__main__":
    sys.exit(main())
