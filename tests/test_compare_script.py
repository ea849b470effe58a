"""``torch-sugar compare --script`` on a user's training script, and ``torch_sugar.report``.

The script here is small and quick: a two-layer network written with F.relu on fixed random
data (biases start at -1, so plain ReLU has dead units), trained a few SGD steps, reporting its
loss each step. Its numbers depend only on the activation and the seed, so two comparisons give
the same numbers and ReLU and B-SiLU runs differ."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_compare import ctrl_c_reaches, load_results, run_cli

import torch_sugar
from torch_sugar._report import REPORT_FILE_ENV

SCRIPT = """
import argparse, sys, time
import torch, torch.nn.functional as F
import torch_sugar

p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--fail-seed", type=int)
p.add_argument("--mode", default="ok", choices=["ok", "nan", "nothing"])
p.add_argument("--sleep", type=float, default=0.0)
args = p.parse_args()
if args.seed == args.fail_seed:
    print("about to fail", file=sys.stderr)
    raise SystemExit("training failed on purpose")
torch.set_num_threads(1)
g = torch.Generator().manual_seed(1234)  # the data: the same for every run
x, y = torch.randn(64, 8, generator=g), torch.randn(64, 1, generator=g)
w1 = (torch.randn(8, 16) / 3).requires_grad_()  # the weights: from torch-sugar run's --seed
b1 = torch.full((16,), -1.0, requires_grad=True)
w2 = (torch.randn(16, 1) / 4).requires_grad_()
opt = torch.optim.SGD([w1, b1, w2], lr=0.1)
for step in range(1, args.epochs + 1):
    loss = F.mse_loss(F.relu(x @ w1 + b1) @ w2, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    time.sleep(args.sleep)
    if args.mode == "nan":
        torch_sugar.report(step=step, loss=float("nan"))
    elif args.mode == "ok":
        torch_sugar.report(step=step, loss=loss.item(), accuracy=1.0 / (1.0 + loss.item()))
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    return str(path)


def compare(script_cmd, out, capsys, *extra):
    argv = ["compare", "--script", script_cmd, "--seeds", "2", "--activations", "relu,bsilu"]
    argv += ["--out", str(out), "--quiet", *extra]
    return run_cli(argv, capsys)


def test_table_results_and_plots_and_the_same_numbers_twice(script, tmp_path, capsys):
    code, out, err = compare(f"python {script} --seed {{seed}}", tmp_path / "a", capsys, "--jobs", "2")
    assert code == 0, err
    assert "Difference to relu, paired by seed" in out and "Δ loss" in out
    assert [line.split()[0] for line in out.splitlines() if line.startswith(("relu ", "bsilu "))] == [
        "relu",
        "bsilu",
        "bsilu",
    ]  # the table's two rows and the difference row
    res = load_results(tmp_path / "a")
    assert res["complete"] and res["config"]["script"]["script"].startswith("python ")
    assert [(r["activation"], r["seed"]) for r in res["runs"]] == [
        ("relu", 0),
        ("bsilu", 0),
        ("relu", 1),
        ("bsilu", 1),
    ]
    for run in res["runs"]:
        assert run["status"] == "done" and run["exit_code"] == 0 and run["seconds"] > 0
        assert [r["step"] for r in run["reports"]] == [1, 2, 3] and run["selected_report"] == 2
        assert run["metrics"] == run["reports"][-1]["metrics"] and set(run["metrics"]) == {"loss", "accuracy"}
        log = tmp_path / "a" / run["log"]
        assert (
            log.parent.name == f"{run['activation']}-seed{run['seed']}"
            and "report: step 3" in log.read_text()
        )
        assert run["command"][1:4] == ["-m", "torch_sugar", "run"] and "--seed" in run["command"]
    summary = res["summary"]
    loss = [r["metrics"]["loss"] for r in res["runs"] if r["activation"] == "relu"]
    assert summary["activations"]["relu"]["loss"]["mean"] == pytest.approx(np.mean(loss))
    assert summary["activations"]["relu"]["loss"]["std"] == pytest.approx(np.std(loss, ddof=1))
    vs = summary["vs_baseline"]["bsilu"]["loss"]
    diffs = [
        b["metrics"]["loss"] - a["metrics"]["loss"] for a, b in zip(res["runs"][0::2], res["runs"][1::2])
    ]
    assert vs["diff_mean"] == pytest.approx(np.mean(diffs)) and vs["n"] == 2
    assert summary["better_when"] == {"loss": "lower", "accuracy": "higher"}
    assert (tmp_path / "a" / "learning_curves.png").stat().st_size > 0
    assert (tmp_path / "a" / "results.csv").read_text().splitlines()[0].startswith("activation,seed,status")
    # The same (activation, seed): the same numbers in another comparison (serial this time);
    # ReLU and B-SiLU differ (the script's F.relu calls are SUGAR under the run).
    code, _, err = compare(f"python {script} --seed {{seed}}", tmp_path / "b", capsys)
    assert code == 0, err
    again = load_results(tmp_path / "b")
    assert [r["reports"] for r in again["runs"]] == [
        [{k: v for k, v in rep.items()} for rep in r["reports"]] for r in res["runs"]
    ]
    assert res["runs"][0]["metrics"] != res["runs"][1]["metrics"]


def test_failed_runs_are_shown_and_left_out(script, tmp_path, capsys):
    code, out, err = compare(f"python {script} --seed {{seed}} --fail-seed 1", tmp_path / "f", capsys)
    assert code == 0, err
    runs = load_results(tmp_path / "f")["runs"]
    failed = [r for r in runs if r["status"] == "failed"]
    assert [(r["activation"], r["seed"]) for r in failed] == [("relu", 1), ("bsilu", 1)]
    assert failed[0]["exit_code"] == 1 and failed[0]["error"] == "exit code 1"
    assert failed[0]["stderr_tail"][-2:] == ["about to fail", "training failed on purpose"]
    assert "Failed runs (left out of the statistics" in out and "| training failed on purpose" in out
    summary = load_results(tmp_path / "f")["summary"]["activations"]["relu"]
    assert (summary["done"], summary["failed"], summary["loss"]["n"]) == (1, 1, 1)


@pytest.mark.parametrize(
    "mode, error, stderr",
    [
        ("nothing", "reported nothing: call torch_sugar.report", None),
        ("nan", "exit code 1", "ValueError: torch_sugar.report: metric 'loss' is nan"),
    ],
)
def test_a_script_that_reports_nothing_or_nan(script, tmp_path, capsys, mode, error, stderr):
    code, out, err = compare(f"python {script} --mode {mode}", tmp_path / mode, capsys, "--seeds", "1")
    assert code == 1, (out, err)  # no run finished
    runs = load_results(tmp_path / mode)["runs"]
    assert all(r["status"] == "failed" and r["error"].startswith(error) for r in runs), runs
    if stderr:
        assert stderr in runs[0]["stderr_tail"][-1]


def test_select_by_a_reported_metric(script, tmp_path, capsys):
    code, _, err = compare(
        f"python {script} --epochs 4", tmp_path / "s", capsys, "--select-by", "accuracy:min"
    )
    assert code == 0, err
    for run in load_results(tmp_path / "s")["runs"]:
        accuracies = [r["metrics"]["accuracy"] for r in run["reports"]]
        assert run["selected_report"] == int(np.argmin(accuracies))
    code, _, err = compare(f"python {script}", tmp_path / "t", capsys, "--select-by", "auc_nope:max")
    assert code == 1 and "never reported 'auc_nope'" in load_results(tmp_path / "t")["runs"][0]["error"]


def test_ctrl_c_keeps_finished_runs_and_resume_finishes_them(script, tmp_path, capsys):
    cmd = f"python {script} --seed {{seed}} --sleep 1"
    argv = [sys.executable, "-m", "torch_sugar", "compare", "--script", cmd, "--seeds", "2"]
    argv += ["--activations", "relu,bsilu", "--out", str(tmp_path / "c"), "--quiet"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_reaches
    )
    results = tmp_path / "c" / "results.json"
    deadline = time.time() + 180
    while time.time() < deadline:
        if results.exists() and json.loads(results.read_text())["runs"]:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    kept = json.loads(results.read_text())
    assert kept["interrupted"] and 1 <= len(kept["runs"]) < 4 and "--resume runs the rest" in err
    time.sleep(0.5)  # no child of the interrupted run is left
    running = subprocess.run(["pgrep", "-f", script], capture_output=True, text=True).stdout.split()
    assert not running, running
    code, _, err = run_cli(
        ["compare", "--script", cmd, "--seeds", "2", "--activations", "relu,bsilu"]
        + ["--out", str(tmp_path / "c"), "--quiet", "--resume"],
        capsys,
    )
    assert code == 0, err
    resumed = load_results(tmp_path / "c")
    assert resumed["complete"] and resumed["resumed"]["kept_runs"] == len(kept["runs"])
    assert resumed["runs"][: len(kept["runs"])] == kept["runs"]  # kept, not run again
    code, _, err = compare(cmd.replace(" --sleep 1", ""), tmp_path / "whole", capsys)
    whole = load_results(tmp_path / "whole")
    assert [r["metrics"] for r in resumed["runs"]] == [r["metrics"] for r in whole["runs"]]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--lr", "0.1"], "--lr does not apply to --script"),
        (["--dataset", "wine"], "--dataset does not apply to --script"),
        (["--select-by", "auc"], "with --script, give METRIC:min|max"),
        (["--activations", "relu,plain:gelu"], "a plain activation cannot be put into a script"),
        (["--save-models", "m"], "--save-models does not apply to --script"),
    ],
)
def test_bad_script_settings(script, tmp_path, capsys, extra, message):
    code, _, err = run_cli(
        ["compare", "--script", f"python {script}", "--out", str(tmp_path / "x"), *extra], capsys
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    "command, message",
    [
        ("bash run.sh", "does not run a Python script"),
        ("python nowhere.py", "no such file: nowhere.py"),
        ("python -u train.py", "Python option '-u'"),
        ("python 'unclosed", "cannot split"),
    ],
)
def test_bad_commands(tmp_path, capsys, command, message):
    code, _, err = run_cli(["compare", "--script", command, "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and message in err, err


def test_select_by_metric_needs_script(capsys):
    code, _, err = run_cli(["compare", "--select-by", "val_loss:min"], capsys)
    assert code == 2 and "METRIC:min|max applies to --script" in err


# ---------------------------------------------------------------------------------------------
# torch_sugar.report


def test_report_alone_prints_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(REPORT_FILE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    torch_sugar.report(epoch=3, val_loss=0.41, val_auc=np.float32(0.75))
    torch_sugar.report(2, loss=1)
    assert capsys.readouterr().out == "report: epoch=3  val_loss=0.41  val_auc=0.75\nreport: step 2  loss=1\n"
    assert os.listdir(tmp_path) == []


def test_report_under_compare_appends_records(tmp_path, monkeypatch):
    import torch

    path = tmp_path / "reports.jsonl"
    monkeypatch.setenv(REPORT_FILE_ENV, str(path))
    torch_sugar.report(val_loss=torch.tensor(0.5))
    torch_sugar.report(step=7, acc=1)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["step"], r["metrics"]) for r in records] == [(None, {"val_loss": 0.5}), (7, {"acc": 1.0})]
    monkeypatch.setenv("RANK", "1")  # another rank of a distributed script: nothing
    torch_sugar.report(acc=2)
    assert len(path.read_text().splitlines()) == 2


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"loss": "0.5"}, TypeError, "metric 'loss' must be a number (int or float), got str"),
        ({"ok": True}, TypeError, "metric 'ok' must be a number"),
        ({"loss": float("nan")}, ValueError, "metric 'loss' is nan"),
        ({"loss": float("inf")}, ValueError, "metric 'loss' is inf"),
        ({}, TypeError, "give at least one metric"),
        ({"step": -1, "loss": 1.0}, TypeError, "step must be an int >= 0 or None"),
        ({"step": 1.5, "loss": 1.0}, TypeError, "step must be an int >= 0 or None"),
    ],
)
def test_report_rejects_what_is_not_a_number(kwargs, error, match):
    with pytest.raises(error, match=match.replace("(", r"\(").replace(")", r"\)")):
        torch_sugar.report(**kwargs)
