"""The typed configuration of ``torch-sugar compare``: results.json stores it whole, ``--config
results.json`` re-creates a run from it, and ``--resume`` after a Ctrl-C finishes an interrupted
comparison with the numbers of an uninterrupted one."""

import json
import os

import pytest
from test_compare import interrupt_third_run, load_results, run_cli
from test_compare_errors import assert_one_line_error
from test_compare_jobs import without_timings

from torch_sugar.cli.compare import parse_config
from torch_sugar.experiments.config import FIELDS, SECTIONS, CompareConfig, differences

TINY = ["--dataset", "breast_cancer", "--hidden", "8,8", "--epochs", "2", "--seeds", "2"]
TINY += ["--activations", "relu,bsilu", "--threads", "1", "--quiet", "--no-plots"]


def metrics_of(results):
    """Every number of every run and of the summary, less the timings."""
    summary = {
        label: {k: v for k, v in entry.items() if k != "epoch_seconds"}
        for label, entry in results["summary"]["activations"].items()
    }
    return [without_timings(r) for r in results["runs"]], summary, results["summary"]["vs_baseline"]


# -------------------------------------------------------------------------------- the config
def test_every_setting_is_a_documented_flag_with_a_unique_name():
    for name, (section, info) in FIELDS.items():
        assert info.doc, f"{name} has no docstring (its --help)"
        assert info.flag == "--" + name.replace("_", "-") and name in {f for f in vars(SECTIONS[section]())}
    defaults = parse_config([])  # the demo
    assert defaults.data.dataset == "digits" and defaults.comparison.seeds == (0, 1, 2, 3, 4)


def test_config_round_trip_through_json():
    config = parse_config(
        [
            "--csv",
            "x.csv",
            "--target",
            "y",
            "--categorical",
            "a,b",
            "--na-values",
            "?",
            "--seeds",
            "7,",
            "--hidden",
            "32",
            "--lr",
            "0.003",
            "--pos-weight",
            "auto",
            "--split",
            "hash",
        ]
    )
    again = CompareConfig.from_dict(json.loads(json.dumps(config.as_dict())), "test")
    assert again == config and again.comparison.seeds == (7,) and again.model.hidden == (32,)
    assert differences(config.as_dict(), again) == []
    changed = CompareConfig.from_dict(config.as_dict(), "test").with_values({"lr": 0.01, "quiet": True})
    assert differences(config.as_dict(), changed) == ["--lr 0.003 there, 0.01 here"]  # --quiet: no matter


@pytest.mark.parametrize(
    "obj, match",
    [
        ({"training": {"lr": -1.0}}, "--lr: expected a positive number, got '-1.0'"),
        ({"training": {"epochs": "x"}}, "--epochs: expected a positive integer, got 'x'"),
        ({"training": {"optimizer": "lion"}}, "--optimizer: invalid choice: 'lion'"),
        ({"training": {"lr_max": 1.0}}, "training has no setting 'lr_max'"),
        ({"optim": {}}, "unknown section 'optim'"),
        ({"run": {"quiet": "yes"}}, "--quiet: expected true or false, got 'yes'"),
        ({"comparison": {"seeds": [0, 0]}}, "--seeds: seed listed twice"),
        ({"data": {"csv": "a.csv", "parquet": "b"}}, "--parquet: not allowed with --csv"),
    ],
)
def test_config_values_are_checked_with_their_flags_rules(obj, match):
    from torch_sugar.experiments import UsageError

    with pytest.raises(UsageError, match=match.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        CompareConfig.from_dict(obj, "--config f.json").check()


def test_flags_override_the_config_file_and_a_source_replaces_the_other(tmp_path):
    path = tmp_path / "c.json"
    config = CompareConfig().with_values({"csv": "x.csv", "target": "y", "epochs": 3})
    path.write_text(json.dumps({"tool": "torch-sugar compare", "config": config.as_dict()}))
    again = parse_config(["--config", str(path), "--epochs", "5"])
    assert (again.data.csv, again.data.target, again.training.epochs) == ("x.csv", "y", 5)
    other = parse_config(["--config", str(path), "--parquet", "p/", "--target", "z"])
    assert (other.data.csv, other.data.parquet, other.data.target) == (None, "p/", "z")


# ----------------------------------------------------------------------------- --config FILE
def test_config_results_json_recreates_the_run(tmp_path, capsys):
    """A CSV run with data flags (categorical, ignore, na-values, fill, hash buckets, split), then
    `--config its results.json` alone: the same numbers."""
    lines = ["user,city,amount,noise,y"]
    for i in range(400):
        amount = "" if i % 37 == 0 else f"{(i * 7) % 50 / 10:.1f}"
        city = "?" if i % 11 == 0 else ["paris", "rome", "oslo"][i % 3]
        lines.append(f"u{i % 40},{city},{amount},{i % 5},{int((i * 7) % 50 > 22) ^ (i % 9 == 0)}")
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    first = tmp_path / "first"
    argv = [
        "compare",
        "--csv",
        str(tmp_path / "t.csv"),
    ] + "--target y --categorical user --ignore noise".split()
    argv += "--na-values ? --fill mean --hash-buckets 16 --split hash --hidden 8 --epochs 2 --seeds 2".split()
    argv += "--activations relu,nelu:0.05 --lr 0.003".split()
    code, _, err = run_cli(argv + ["--quiet", "--no-plots", "--out", str(first)], capsys)
    assert code == 0, err
    stored = load_results(first)
    assert stored["config"]["data"]["na_values"] == ["?"] and stored["config"]["data"]["fill"] == "mean"
    again = tmp_path / "again"
    code, _, err = run_cli(["compare", "--config", str(first / "results.json"), "--out", str(again)], capsys)
    assert code == 0, err
    recreated = load_results(again)
    assert metrics_of(recreated) == metrics_of(stored)
    assert recreated["config"] == {**stored["config"], "run": {**stored["config"]["run"], "out": str(again)}}


@pytest.mark.parametrize(
    "text, match",
    [
        ("{", "is not JSON"),
        ('{"tool": "torch-sugar compare", "config": {"model": {"hidden": [0]}}}', "--hidden"),
    ],
)
def test_bad_config_file(tmp_path, capsys, text, match):
    (tmp_path / "c.json").write_text(text)
    code, _, err = run_cli(["compare", "--config", str(tmp_path / "c.json")], capsys)
    assert_one_line_error(code, err, match)


# ------------------------------------------------------------------------------------ --resume
def test_resume_after_ctrl_c_gives_the_uninterrupted_results(tmp_path, capsys, monkeypatch):
    whole = tmp_path / "whole"
    code, _, err = run_cli(["compare", *TINY, "--save-predictions", "--out", str(whole)], capsys)
    assert code == 0, err

    out = tmp_path / "out"
    interrupt_third_run(monkeypatch)
    code, _, err = run_cli(["compare", *TINY, "--save-predictions", "--out", str(out)], capsys)
    assert code == 130 and "the same command with --resume runs the rest" in err
    finished = load_results(out)["runs"]
    assert [(r["activation"], r["seed"]) for r in finished] == [("relu", 0), ("bsilu", 0)]
    monkeypatch.undo()

    # the rest in two worker processes (--jobs does not change the numbers, so it may differ)
    code, stdout, err = run_cli(
        [
            "compare",
            *[a for a in TINY if a != "--quiet"],
            "--save-predictions",
            "--out",
            str(out),
            "--resume",
            "--jobs",
            "2",
        ],
        capsys,
    )
    assert code == 0, err
    assert f"--resume: kept the 2 finished run(s) of {out / 'results.json'}; 2 left" in stdout
    resumed, uninterrupted = load_results(out), load_results(whole)
    assert (
        resumed["complete"] is True
        and resumed["interrupted"] is False
        and resumed["resumed"]["kept_runs"] == 2
    )
    assert resumed["runs"][:2] == finished  # kept as they were, timings included: not trained again
    assert metrics_of(resumed) == metrics_of(uninterrupted)
    for name in sorted(os.listdir(whole / "predictions")):
        assert (out / "predictions" / name).read_bytes() == (whole / "predictions" / name).read_bytes()


def test_resume_refuses_another_configuration(tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run_cli(["compare", *TINY, "--epochs", "1", "--out", str(out)], capsys)
    assert code == 0, err
    code, _, err = run_cli(["compare", *TINY, "--lr", "0.02", "--out", str(out), "--resume"], capsys)
    assert_one_line_error(
        code,
        err,
        f"--resume: {out / 'results.json'} is another comparison: --epochs 1 there, 2 here; --lr 0.01 there, 0.02 here",
    )
    # a finished comparison: --resume keeps every run and only writes the report again
    code, stdout, err = run_cli(["compare", *TINY, "--epochs", "1", "--out", str(out), "--resume"], capsys)
    assert code == 0 and "Difference to relu" in stdout, err


def test_resume_without_results_runs_everything(tmp_path, capsys):
    out = tmp_path / "fresh"
    code, stdout, err = run_cli(
        ["compare", *[a for a in TINY if a != "--quiet"], "--seeds", "1", "--out", str(out), "--resume"],
        capsys,
    )
    assert code == 0, err
    assert "--resume: no finished run in" in stdout and len(load_results(out)["runs"]) == 2
