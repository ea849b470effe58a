"""torch-sugar compare end to end: every data source, the output files, uAUC on a CSV with a group
column, determinism, Ctrl-C. Runs are tiny (1-3 epochs, small models) to keep this file fast."""

import csv
import json
import os
import pickle
import signal

import numpy as np
import pytest

from torch_sugar import cli
from torch_sugar.experiments import compare as compare_mod

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FAST = ["--epochs", "2", "--seeds", "2", "--hidden", "16,16", "--activations", "relu,bsilu", "--threads", "1"]


def ctrl_c_reaches(*_):
    """A ``preexec_fn`` for a child that a test stops with SIGINT: SIGINT as a terminal gives it.
    A shell starts its background jobs with SIGINT ignored, and a Python started that way never
    raises KeyboardInterrupt (a CI script run with ``&`` would fail these tests, not the code)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(argv, capsys):
    """main() in this process: (exit code, stdout, stderr)."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def load(argv):
    """The Data that `torch-sugar compare ARGV` trains on."""
    from torch_sugar.cli.compare import parse_config
    from torch_sugar.experiments.loading import load_data

    return load_data(parse_config(list(argv)).data)


def load_results(out_dir):
    with open(os.path.join(out_dir, "results.json")) as f:
        return json.load(f)


def check_results(res, activations, seeds, binary, grouped):
    assert res["complete"] is True and res["interrupted"] is False
    assert [(r["activation"], r["seed"]) for r in res["runs"]] == [(a, s) for s in seeds for a in activations]
    for run in res["runs"]:
        assert run["status"] == "done"
        assert 0 <= run["loss"] < 50
        assert 0 <= run["accuracy"] <= 1
        if binary:
            assert 0 <= run["auc"] <= 1
        else:
            assert run["auc"] is None
        if grouped:
            assert 0 <= run["uauc"] <= 1 and run["uauc_groups"] >= 1
        else:
            assert run["uauc"] is None
        for key in ("dead_fraction_start", "dead_fraction_end"):
            assert 0 <= run[key] <= 1
        assert run["dead_end"]["units"] > 0
        assert set(run["dead_end"]["layers"]) == set(run["dead_start"]["layers"])
        assert run["epoch_seconds"] > 0
        assert [h["epoch"] for h in run["history"]] == list(range(run["epochs_run"] + 1))
    summary = res["summary"]
    assert summary["baseline"] == activations[0]
    for a in activations:
        assert summary["activations"][a]["loss"]["n"] == len(seeds)
    for a in activations[1:]:
        assert summary["vs_baseline"][a]["loss"]["n"] == len(seeds)


def check_files(out_dir, n_runs):
    for name in ("learning_curves.png", "dead_units.png"):
        with open(os.path.join(out_dir, name), "rb") as f:
            assert f.read(8) == PNG_MAGIC
    with open(os.path.join(out_dir, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n_runs and {"activation", "seed", "loss", "accuracy", "auc", "uauc"} <= set(rows[0])


@pytest.mark.parametrize(
    "dataset, binary, grouped, extra",
    [
        ("digits", False, False, []),
        ("breast_cancer", True, False, []),
        ("wine", False, False, []),
        (
            "synthetic-ctr",
            True,
            True,
            ["--ctr-rows", "3000", "--ctr-users", "60", "--optimizer", "adam", "--lr", "0.003"],
        ),
    ],
)
def test_builtin_datasets(tmp_path, capsys, dataset, binary, grouped, extra):
    out = tmp_path / dataset
    code, stdout, err = run_cli(["compare", "--dataset", dataset, "--out", str(out)] + FAST + extra, capsys)
    assert code == 0, err
    check_results(load_results(out), ["relu", "bsilu"], [0, 1], binary, grouped)
    check_files(out, 4)
    assert "Difference to relu" in stdout and str(out / "dead_units.png") in stdout
    assert "relu seed 0" in err and " rows/s" in err  # a progress bar per run, counting rows
    if grouped:
        assert "uAUC" in stdout


class RecordingBar:
    """What compare's progress bar is told: its total and every update."""

    made = []

    def __init__(self, quiet, total, desc):
        self.total, self.desc, self.updates, self.closed = total, desc, [], False
        RecordingBar.made.append(self)

    def update(self, n=1):
        self.updates.append(n)

    def set_postfix_str(self, text, refresh=True):
        pass

    def close(self):
        self.closed = True


def test_progress_bar_counts_training_rows(tmp_path, capsys, monkeypatch):
    """The bar's unit is a training row (its rate is rows/s, like results.json's per-epoch
    train_rows_per_second): total = training rows x epochs, one update of each batch's rows."""
    monkeypatch.setattr(RecordingBar, "made", [])
    monkeypatch.setattr(compare_mod, "_progress_bar", RecordingBar)
    out = tmp_path / "out"
    argv = ["compare", "--dataset", "breast_cancer", "--out", str(out), "--batch-size", "50", "--no-plots"]
    code, _, err = run_cli(argv + FAST, capsys)
    assert code == 0, err
    res = load_results(out)
    n_train = res["data"]["n_train"]
    assert n_train % 50 != 0  # a short last batch
    per_epoch = [50] * (n_train // 50) + [n_train % 50]
    assert [(b.total, b.updates, b.closed) for b in RecordingBar.made] == [
        (2 * n_train, 2 * per_epoch, True)
    ] * 4
    for run in res["runs"]:
        for h in run["history"][1:]:
            assert h["train_rows_per_second"] == pytest.approx(n_train / h["train_seconds"])


@pytest.mark.parametrize("model", ["cnn", "vgg16", "resnet18"])
def test_conv_models_on_digits(tmp_path, capsys, model):
    out = tmp_path / model
    code, stdout, err = run_cli(
        [
            "compare",
            "--model",
            model,
            "--width",
            "0.125",
            "--limit",
            "300",
            "--epochs",
            "1",
            "--seeds",
            "1",
            "--activations",
            "relu,nelu,plain:gelu",
            "--lr",
            "0.05",
            "--out",
            str(out),
            "--quiet",
            "--no-plots",
        ],
        capsys,
    )
    assert code == 0, err
    res = load_results(out)
    assert [r["activation"] for r in res["runs"]] == ["relu", "nelu", "plain:gelu"]
    layers = res["runs"][0]["dead_end"]["layers"]
    assert len(layers) == {"cnn": 3, "vgg16": 13, "resnet18": 17}[model]
    assert all(0 <= r["accuracy"] <= 1 for r in res["runs"])
    assert err == ""  # --quiet


def write_grouped_csv(path, rows=120, seed=0):
    """Clicks that depend on x1 and on the user; a text column; a group column."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user", "x1", "x2", "color", "clicked"])
        for i in range(rows):
            user = f"u{i % 6}"
            x1, x2 = rng.normal(), rng.normal()
            color = ["red", "green", "blue"][i % 3]
            clicked = int(x1 + 0.5 * (i % 6 == 0) + 0.3 * rng.normal() > 0.4)
            w.writerow([user, f"{x1:.4f}", f"{x2:.4f}", color, clicked])


def test_csv_with_group_uauc_matches_hand_count(tmp_path, capsys):
    path = tmp_path / "clicks.csv"
    write_grouped_csv(path)
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        [
            "compare",
            "--csv",
            str(path),
            "--target",
            "clicked",
            "--group",
            "user",
            "--epochs",
            "3",
            "--seeds",
            "1",
            "--hidden",
            "8",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--activations",
            "relu,bsilu",
            "--save-predictions",
            "--out",
            str(out),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    res = load_results(out)
    assert res["data"]["features"] == ["x1", "x2", "color"]  # a text column is categorical
    assert [c["name"] for c in res["data"]["categorical"]] == ["color"]
    assert res["data"]["group"] == "user" and res["data"]["classes"] == ["0", "1"]
    with open(path) as f:
        source = {i + 2: row for i, row in enumerate(csv.DictReader(f))}  # line 1 is the header
    for run in res["runs"]:
        with open(out / "predictions" / f"{run['activation']}-seed0.csv") as f:
            preds = list(csv.DictReader(f))
        assert len(preds) == res["data"]["n_test"]
        by_user = {}
        for p in preds:
            line = source[int(p["row"])]  # the prediction's row is the CSV line it came from
            assert (p["group"], p["target"]) == (line["user"], line["clicked"])
            by_user.setdefault(p["group"], []).append((int(p["target"]), float(p["p_1"])))
        aucs = []
        for pairs in by_user.values():
            pos = [s for y, s in pairs if y == 1]
            neg = [s for y, s in pairs if y == 0]
            if pos and neg:
                aucs.append(
                    sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
                    / (len(pos) * len(neg))
                )
        assert len(aucs) == run["uauc_groups"] >= 2
        assert run["uauc"] == pytest.approx(sum(aucs) / len(aucs), abs=1e-6)


def test_image_folder(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, base in (("cats", 40), ("dogs", 200)):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(8):
            pixels = np.clip(base + rng.normal(0, 20, (12, 10, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / cls / f"{i}.png")
    (tmp_path / "imgs" / "dogs" / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        [
            "compare",
            "--images",
            str(tmp_path / "imgs"),
            "--image-size",
            "8",
            "--model",
            "cnn",
            "--width",
            "0.25",
            "--epochs",
            "2",
            "--seeds",
            "1",
            "--activations",
            "relu,bsilu",
            "--out",
            str(out),
            "--quiet",
            "--no-plots",
        ],
        capsys,
    )
    assert code == 0, err
    res = load_results(out)
    assert res["data"]["classes"] == ["cats", "dogs"] and res["data"]["input_shape"] == [3, 8, 8]
    assert res["data"]["n_train"] + res["data"]["n_val"] + res["data"]["n_test"] == 16


def test_cifar_python_format(tmp_path, capsys):
    rng = np.random.default_rng(0)
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()

    def dump(name, n):
        labels = [i % 10 for i in range(n)]
        with open(root / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": labels}, f)

    for i in range(1, 6):
        dump(f"data_batch_{i}", 20)
    dump("test_batch", 30)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f)
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        [
            "compare",
            "--cifar",
            str(tmp_path),
            "--epochs",
            "1",
            "--seeds",
            "1",
            "--hidden",
            "8",
            "--activations",
            "relu,nelu",
            "--out",
            str(out),
            "--quiet",
            "--no-plots",
        ],
        capsys,
    )
    assert code == 0, err
    res = load_results(out)
    assert res["data"]["name"] == "cifar10" and res["data"]["n_test"] == 30  # its own test batch
    assert res["data"]["n_train"] + res["data"]["n_val"] == 100
    assert res["data"]["classes"][:2] == ["c0", "c1"]


def test_same_seed_same_numbers(tmp_path, capsys):
    args = [
        "compare",
        "--epochs",
        "2",
        "--hidden",
        "24,24,24",
        "--activations",
        "relu,bsilu,nelu",
        "--dropout",
        "0.1",
        "--quiet",
        "--no-plots",
    ]
    results = []
    for name, seed in (("a", "7,"), ("b", "7,"), ("c", "8,")):
        code, _, err = run_cli(args + ["--seeds", seed, "--out", str(tmp_path / name)], capsys)
        assert code == 0, err
        results.append(
            [
                {k: r[k] for k in ("activation", "loss", "accuracy", "dead_end", "history")}
                for r in load_results(tmp_path / name)["runs"]
            ]
        )
    for result in results:
        for run in result:
            for h in run["history"]:
                h.pop("train_seconds")
                h.pop("train_rows_per_second")
    assert results[0] == results[1]
    assert [r["loss"] for r in results[0]] != [r["loss"] for r in results[2]]  # the seed matters
    # pairing: every activation starts from the same weights, so the same dead units at epoch 0
    starts = {json.dumps(r["history"][0]["dead_layers"]) for r in results[0]}
    assert len(starts) == 1


def interrupt_third_run(monkeypatch):
    """Ctrl-C as the third run starts (compare's run_task raises KeyboardInterrupt)."""
    real, calls = compare_mod.run_task, []

    def interrupted_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(compare_mod, "run_task", interrupted_on_third)


def test_ctrl_c_keeps_finished_runs(tmp_path, capsys, monkeypatch):
    interrupt_third_run(monkeypatch)
    out = tmp_path / "out"
    code, stdout, err = run_cli(["compare", "--out", str(out), "--quiet"] + FAST, capsys)
    assert code == 130
    assert "interrupted; kept the 2 finished run(s) of 4" in err
    res = load_results(out)
    assert res["interrupted"] is True and res["complete"] is False
    assert [(r["activation"], r["seed"]) for r in res["runs"]] == [("relu", 0), ("bsilu", 0)]
    assert res["summary"]["vs_baseline"]["bsilu"]["loss"]["n"] == 1
    assert (out / "learning_curves.png").exists()


def test_surrogates_and_info_commands(capsys):
    code, out, _ = run_cli(["surrogates"], capsys)
    assert code == 0 and "bsilu" in out and "1.67" in out
    code, out, _ = run_cli(["info"], capsys)
    assert code == 0 and json.loads(out)["kernels"]["CPU"] is True
    code, out, _ = run_cli(["compare", "--help"], capsys)
    assert code == 0
    for flag in (
        "--dataset",
        "--csv",
        "--group",
        "--images",
        "--cifar",
        "--model",
        "--hidden",
        "--activations",
        "--seeds",
        "--epochs",
        "--lr",
        "--optimizer",
        "--batch-size",
        "--device",
        "--threads",
        "--out",
        "plain:gelu",
        "examples:",
        "--categorical",
        "--hash-buckets",
        "--embedding-dim",
        "--na-values",
        "--fill",
        "--model-fn",
        "--patience",
        "--select-by",
        "--pos-weight",
        "--save-models",
        "synthetic-ctr",
        "--jobs",
        "--parquet",
        "--stream",
        "--shuffle-buffer",
        "--eval-rows",
    ):
        assert flag in out


def test_run_leaves_torch_settings_as_they_were(tmp_path, capsys):
    import torch

    threads = torch.get_num_threads()
    code, _, err = run_cli(
        [
            "compare",
            "--epochs",
            "1",
            "--seeds",
            "1",
            "--hidden",
            "8",
            "--activations",
            "relu",
            "--threads",
            "1",
            "--out",
            str(tmp_path),
            "--quiet",
            "--no-plots",
        ],
        capsys,
    )
    assert code == 0, err
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


FUNCTIONAL_MODEL = """
import torch.nn.functional as F
from torch import nn


class Tutorial(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(n_in, 16), nn.Linear(16, 16), nn.Linear(16, n_out)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def build(spec, n_outputs):
    return Tutorial(spec.shape[0], n_outputs)
"""


def test_model_fn_with_functional_relus_gets_sugar(tmp_path, capsys):
    """A --model-fn model written with F.relu: SUGAR activations reach its calls (they differ from
    the ReLU run), a plain activation warns that it cannot."""
    path = tmp_path / "tutorial.py"
    path.write_text(FUNCTIONAL_MODEL)
    argv = ["compare", "--dataset", "wine", "--model-fn", f"{path}:build", "--epochs", "2", "--seeds", "1"]
    argv += ["--quiet", "--no-plots", "--threads", "1", "--out", str(tmp_path / "out")]
    code, _, err = run_cli(
        argv + ["--activations", "relu,bsilu", "--save-models", str(tmp_path / "m")],
        capsys,
    )
    assert code == 0, err
    runs = {r["activation"]: r for r in load_results(tmp_path / "out")["runs"]}
    assert runs["relu"]["history"][-1]["train_loss"] != runs["bsilu"]["history"][-1]["train_loss"]
    assert list(runs["relu"]["dead_end"]["layers"]) == ["(model)#relu0", "(model)#relu1"]
    with pytest.warns(UserWarning, match="has no nn.ReLU modules to replace"):
        code, _, err = run_cli(argv[:-1] + [str(tmp_path / "plain"), "--activations", "plain:gelu"], capsys)
    assert code == 0, err
