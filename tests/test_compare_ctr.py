"""torch-sugar compare for click-prediction work (issue 11): categorical columns as embeddings,
missing values, best-epoch selection and early stopping, class weights, PR-AUC, --model-fn,
--save-models and the report. References: scikit-learn's metrics, zlib.crc32, hand-computed
vocabularies and means, and the saved files themselves, read back independently."""

import csv
import json
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score
from test_compare import load, run_cli

import torch_sugar
from torch_sugar import cli
from torch_sugar.experiments import UsageError
from torch_sugar.experiments import data as data_mod
from torch_sugar.experiments.models import EmbeddingMLP, build_model
from torch_sugar.experiments.report import format_tables, layer_labels, summarize

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(os.path.dirname(HERE), "examples", "model_fn_example.py")


@pytest.fixture(scope="module")
def clicks(tmp_path_factory):
    """A click-like CSV written by `torch-sugar synthetic-ctr` (user and item id columns)."""
    path = tmp_path_factory.mktemp("ctr") / "clicks.csv"
    assert cli.main(["synthetic-ctr", str(path), "--rows", "1500", "--users", "30"]) == 0
    return str(path)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------- encoding
def write(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_synthetic_ctr_csv_has_ids(clicks):
    rows = read_csv(clicks)
    assert len(rows) == 1500
    assert list(rows[0])[:4] == ["user", "item", "ad_category", "device"] and list(rows[0])[-1] == "clicked"
    assert len({r["user"] for r in rows}) <= 30 and len({r["item"] for r in rows}) > 100
    assert {r["clicked"] for r in rows} == {"0", "1"}


def cells_by_line(text, column):
    """{CSV line number: the stripped cell of ``column``} of a CSV text (the header is line 1)."""
    rows = list(csv.DictReader(text.splitlines()))
    return {line: row[column].strip() for line, row in enumerate(rows, start=2)}


def test_vocabulary_from_training_rows_and_oov(tmp_path):
    # 'cold' appears in one row only; whichever part it lands in, a value is in the vocabulary
    # exactly when a training row has it, and everything else gets index 0
    lines = ["color,n,y"] + [f"{c},{i},{i % 2}" for i, c in enumerate(["red", "blue", "none", ""] * 10)]
    lines.append("cold,41,1")
    text = "\n".join(lines) + "\n"
    data = load(["--csv", write(tmp_path, text), "--target", "y", "--data-seed", "3"])
    assert data.spec.numeric_names == ("n",) and [c.name for c in data.spec.categorical] == ["color"]
    by_line = cells_by_line(text, "color")
    (enc,) = data.preprocessing["categorical"]
    train_values = {by_line[r] for r in data.train.rows}
    assert {"none", ""} <= train_values  # 'none' is a value; '' the missing category
    assert enc["vocabulary"] == sorted(train_values)
    assert data.spec.categorical[0].cardinality == len(train_values) + 1
    for split in (data.train, data.val, data.test):
        for row, index in zip(split.rows, split.x[:, 1].tolist()):
            value = by_line[row]
            expected = enc["vocabulary"].index(value) + 1 if value in train_values else 0
            assert index == expected


def test_na_values_mark_missing_categories(tmp_path):
    text = "job,y\n" + "".join(f"{j},{i % 2}\n" for i, j in enumerate(["?", "none", "NA", "cook"] * 10))
    path, by_line = write(tmp_path, text), cells_by_line(text, "job")
    for na, missing in ((["--na-values", "?,NA"], {"?", "NA", ""}), ([], {""})):
        data = load(["--csv", path, "--target", "y"] + na)
        (enc,) = data.preprocessing["categorical"]
        assert enc["vocabulary"] == sorted(
            {"" if by_line[r] in missing else by_line[r] for r in data.train.rows}
        )
        for split in (data.train, data.val, data.test):
            for row, index in zip(split.rows, split.x[:, 0].tolist()):
                value = "" if by_line[row] in missing else by_line[row]  # ? and NA: the missing category
                assert index == enc["vocabulary"].index(value) + 1


def test_hash_buckets_are_crc32(tmp_path):
    text = "id,y\n" + "".join(f"id{i},{i % 2}\n" for i in range(60))
    path, by_line = write(tmp_path, text), cells_by_line(text, "id")
    data = load(["--csv", path, "--target", "y", "--hash-buckets", "7"])
    (col,) = data.spec.categorical
    assert col.hashed and col.cardinality == 7
    for row, index in zip(data.test.rows, data.test.x[:, 0].tolist()):
        assert index == zlib.crc32(by_line[row].encode("utf-8")) % 7
    # with enough buckets the column keeps its vocabulary
    assert not load(["--csv", path, "--target", "y", "--hash-buckets", "1000"]).spec.categorical[0].hashed


@pytest.mark.parametrize("cardinality, dim", [(2, 2), (3, 3), (11, 6), (61, 16), (10**6, 16)])
def test_embedding_dim_rule(cardinality, dim):
    assert data_mod.embedding_dim_rule(cardinality) == dim == min(16, max(2, round(1.6 * cardinality**0.56)))
    assert data_mod.embedding_dim_rule(cardinality, fixed=5) == 5


def test_numeric_categorical_and_id_warning(tmp_path, capsys):
    text = "user,age,y\n" + "".join(f"{i % 150},{20 + i % 7},{i % 2}\n" for i in range(300))
    path = write(tmp_path, text)
    data = load(["--csv", path, "--target", "y"])
    err = capsys.readouterr().err
    assert "warning: integer column(s) user have 100 or more distinct values and look like ids" in err
    assert "--categorical" in err and "age" not in err
    assert data.spec.numeric_names == ("user", "age") and data.spec.categorical == ()
    data = load(["--csv", path, "--target", "y", "--categorical", "user"])
    assert capsys.readouterr().err == ""
    assert data.spec.numeric_names == ("age",) and [c.name for c in data.spec.categorical] == ["user"]
    (enc,) = data.preprocessing["categorical"]
    assert set(enc["vocabulary"]) <= {str(i) for i in range(150)}  # the cell text is the category


@pytest.mark.parametrize("fill", ["mean", "zero"])
def test_fill_missing_numeric(tmp_path, fill):
    values = [1.0, 2.0, None, 4.0, 8.0, None, 3.0, 5.0, 6.0, 7.0] * 4
    text = "a,y\n" + "".join(f"{'' if v is None else v},{i % 2}\n" for i, v in enumerate(values))
    data = load(["--csv", write(tmp_path, text), "--target", "y", "--fill", fill, "--data-seed", "1"])
    (num,) = data.preprocessing["numeric"]
    train_present = [values[r - 2] for r in data.train.rows if values[r - 2] is not None]
    filled = np.mean(train_present) if fill == "mean" else 0.0
    assert num["fill"] == pytest.approx(filled, abs=1e-12)
    assert num["mean"] == pytest.approx(np.mean(train_present), abs=1e-12)
    assert num["std"] == pytest.approx(np.std(train_present), abs=1e-12)
    for split in (data.train, data.test):
        for row, got in zip(split.rows, split.x[:, 0].tolist()):
            raw_value = filled if values[row - 2] is None else values[row - 2]
            assert got == pytest.approx((raw_value - num["mean"]) / num["std"], abs=1e-6)
    assert any("--fill " + fill in note for note in data.notes)


def test_feature_embedding_and_default_ctr_model():
    spec = data_mod.InputSpec(
        "tabular",
        (4,),
        2,
        ("a", "b"),
        (data_mod.CategoricalColumn("user", 5, 3), data_mod.CategoricalColumn("item", 4, 2)),
    )
    torch.manual_seed(0)
    model = build_model("mlp", spec, 2, hidden=(8,))
    assert isinstance(model, EmbeddingMLP)
    x = torch.tensor([[0.5, -1.0, 4.0, 0.0], [1.5, 2.0, 0.0, 3.0]])
    emb = model.embed
    expected = torch.cat([x[:, :2], emb.embeddings[0].weight[[4, 0]], emb.embeddings[1].weight[[0, 3]]], 1)
    torch.testing.assert_close(emb(x), expected, rtol=0, atol=0)
    assert emb.out_features == 7
    numeric_only = data_mod.InputSpec("tabular", (3,), 3, ("a", "b", "c"))
    assert not isinstance(build_model("mlp", numeric_only, 2, hidden=(8,)), EmbeddingMLP)
    dcn = build_model("dcn", spec, 2, hidden=(8,))
    assert dcn(x).shape == (2, 2) and len(dcn.cross) == 3
    assert isinstance(torch.jit.script(torch_sugar.convert(dcn, "bsilu")), torch.jit.ScriptModule)


# --------------------------------------------------------------------------- end to end
def test_ctr_run_embeddings_selection_and_saved_models(clicks, tmp_path, capsys):
    out, models = tmp_path / "out", tmp_path / "models"
    code, stdout, err = run_cli(
        [
            "compare",
            "--csv",
            clicks,
            "--target",
            "clicked",
            "--group",
            "user",
            "--categorical",
            "user,item",
            "--hidden",
            "16",
            "--epochs",
            "6",
            "--patience",
            "2",
            "--lr",
            "0.01",
            "--seeds",
            "2",
            "--activations",
            "relu,bsilu",
            "--pos-weight",
            "auto",
            "--save-predictions",
            "--save-models",
            str(models),
            "--out",
            str(out),
            "--quiet",
            "--no-plots",
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    cats = {c["name"]: c for c in res["data"]["categorical"]}
    assert list(cats) == ["user", "item", "ad_category", "device"]  # text columns are categorical too
    assert "embeddings" in res["model"]
    counts = res["data"]["train_class_counts"]
    header = stdout.splitlines()[2]  # the title, a blank line, the table
    for name in ("loss", "AUC", "PR-AUC", f"uAUC ({res['runs'][0]['uauc_groups']} groups)", "epoch"):
        assert name in header
    assert "[seeds better/tied/worse]" in stdout
    for run in res["runs"]:
        assert run["pos_weight"] == pytest.approx(counts[0] / counts[1])
        history = run["history"]
        # the selected epoch is the best weighted validation loss (epoch 0 is not a candidate)
        losses = [h["val_weighted_loss"] for h in history[1:]]
        assert run["selected_epoch"] == 1 + int(np.argmin(losses))
        if run["stopped_early"]:
            assert run["epochs_run"] == run["selected_epoch"] + 2 < 6
        # the test metrics are those of the saved (selected) model: recompute from its predictions
        preds = read_csv(out / "predictions" / f"{run['activation']}-seed{run['seed']}.csv")
        y = np.array([int(p["target"]) for p in preds])
        score = np.array([float(p["p_1"]) for p in preds])
        assert run["auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-6)
        assert run["pr_auc"] == pytest.approx(average_precision_score(y, score), abs=1e-6)
        logloss = -np.mean(np.log(np.where(y == 1, score, 1 - score)))
        assert run["loss"] == pytest.approx(logloss, abs=1e-5)

    # the saved TorchScript model scores raw CSV rows encoded with preprocessing.json alone, in a
    # fresh process that only imports torch_sugar
    pre = json.loads((models / "preprocessing.json").read_text())
    assert [c["name"] for c in pre["categorical"]] == list(cats)
    source = {i + 2: row for i, row in enumerate(read_csv(clicks))}
    preds = read_csv(out / "predictions" / "bsilu-seed1.csv")
    rows = []
    for p in preds:
        line = source[int(p["row"])]
        numeric = [(float(line[c["name"]]) - c["mean"]) / c["std"] for c in pre["numeric"]]
        index = [
            c["vocabulary"].index(line[c["name"]]) + 1 if line[c["name"]] in c["vocabulary"] else 0
            for c in pre["categorical"]
        ]
        rows.append(numeric + index)
    np.save(tmp_path / "rows.npy", np.array(rows, dtype=np.float32))
    code = (
        "import sys, numpy as np, torch, torch_sugar\n"
        "m = torch.jit.load(sys.argv[1])\n"
        "with torch.no_grad():\n"
        "    p = torch.softmax(m(torch.from_numpy(np.load(sys.argv[2]))), 1)[:, 1]\n"
        "np.save(sys.argv[3], p.double().numpy())\n"
        "print(sum(1 for n in m.graph.nodes() if 'sugar' in n.kind()) + "
        "sum(1 for mod in m.modules() if mod.original_name == 'SugarReLU'))\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(models / "bsilu-seed1.torchscript.pt"),
            str(tmp_path / "rows.npy"),
            str(tmp_path / "p.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.strip()) >= 1  # SUGAR is in the saved model
    np.testing.assert_allclose(
        np.load(tmp_path / "p.npy"), [float(p["p_1"]) for p in preds], rtol=1e-5, atol=1e-7
    )
    # the state_dict fits a model built from the same spec
    spec = data_mod.InputSpec(
        "tabular",
        tuple(pre["input_spec"]["shape"]),
        pre["input_spec"]["numeric"],
        tuple(pre["input_spec"]["numeric_names"]),
        tuple(data_mod.CategoricalColumn(**c) for c in pre["input_spec"]["categorical"]),
    )
    model = torch_sugar.convert(build_model("mlp", spec, 2, hidden=(16,)), "bsilu")
    model.load_state_dict(torch.load(models / "bsilu-seed1.state_dict.pt"))
    with torch.no_grad():
        p = torch.softmax(model(torch.tensor(rows)), 1)[:, 1].numpy()
    np.testing.assert_allclose(p, [float(q["p_1"]) for q in preds], rtol=1e-5, atol=1e-7)


def test_select_by_auc_and_plain_activation_is_traced(clicks, tmp_path, capsys):
    out, models = tmp_path / "out", tmp_path / "models"
    code, stdout, err = run_cli(
        [
            "compare",
            "--csv",
            clicks,
            "--target",
            "clicked",
            "--categorical",
            "user,item",
            "--hidden",
            "8",
            "--epochs",
            "3",
            "--seeds",
            "1",
            "--activations",
            "relu,plain:gelu",
            "--select-by",
            "auc",
            "--model",
            "dcn",
            "--save-models",
            str(models),
            "--out",
            str(out),
            "--quiet",
            "--no-plots",
        ],
        capsys,
    )
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())
    for run in res["runs"]:
        aucs = [h["val_auc"] for h in run["history"][1:]]
        assert run["selected_epoch"] == 1 + int(np.argmax(aucs)) and run["selected_by"] == "auc"
    assert res["runs"][1]["saved"]["torchscript_by"] == "trace"  # plain:gelu holds a Python function
    assert torch.jit.load(res["runs"][1]["saved"]["torchscript"]) is not None


def test_model_fn_example(clicks, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        [
            "compare",
            "--csv",
            clicks,
            "--target",
            "clicked",
            "--group",
            "user",
            "--categorical",
            "user,item",
            "--model-fn",
            f"{EXAMPLE}:build",
            "--epochs",
            "2",
            "--seeds",
            "1",
            "--activations",
            "relu,nelu",
            "--save-models",
            str(tmp_path / "m"),
            "--out",
            str(out),
            "--no-plots",
        ],
        capsys,
    )
    assert code == 0, err
    assert "model_fn_example.py:build (ResidualTower" in stdout
    res = json.loads((out / "results.json").read_text())
    assert len(res["runs"][0]["dead_end"]["layers"]) == 5  # the example's five nn.ReLU modules
    scripted = torch.jit.load(res["runs"][1]["saved"]["torchscript"])
    assert sum(1 for m in scripted.modules() if m.original_name == "SugarReLU") == 5


MODEL_FNS = """
import torch
from torch import nn

def no_relu(spec, n):
    return nn.Sequential(nn.Linear(spec.shape[0], n), nn.Tanh())

class Functional(nn.Module):
    def __init__(self, d, n):
        super().__init__()
        self.fc = nn.Linear(d, n)
    def forward(self, x):
        return torch.relu(self.fc(x))

def functional_relu(spec, n):
    return Functional(spec.shape[0], n)

def not_a_module(spec, n):
    return "model"

def wrong_outputs(spec, n):
    return nn.Sequential(nn.Linear(spec.shape[0], n + 1), nn.ReLU())

def wrong_inputs(spec, n):
    return nn.Sequential(nn.Linear(spec.shape[0] + 5, n), nn.ReLU())

def raises(spec, n):
    raise RuntimeError("boom")

VALUE = 3
"""


@pytest.mark.parametrize(
    "func, match",
    [
        ("no_relu", "computes no ReLU (no nn.ReLU module, no F.relu/torch.relu/x.relu() call"),
        ("not_a_module", "returned a str, not an nn.Module"),
        ("wrong_outputs", "returns (2, 4) for 2 rows; expected (2, 3)"),
        ("wrong_inputs", "fails on a batch of input shape (2, 13)"),
        ("raises", "(spec, 3) raised RuntimeError: boom"),
        ("missing", "has no function 'missing'; its functions: Functional, functional_relu, no_relu"),
        ("VALUE", "has a non-callable 'VALUE'"),
    ],
)
def test_model_fn_errors(tmp_path, capsys, func, match):
    path = tmp_path / "fns.py"
    path.write_text(MODEL_FNS)
    code, out, err = run_cli(
        ["compare", "--dataset", "wine", "--model-fn", f"{path}:{func}", "--epochs", "1", "--quiet"], capsys
    )
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("torch-sugar compare: error: --model-fn: ") and match in err, err


def test_model_fn_import_error(tmp_path, capsys):
    path = tmp_path / "broken.py"
    path.write_text("import not_a_module_anywhere\n")
    code, out, err = run_cli(["compare", "--dataset", "wine", "--model-fn", f"{path}:f", "--quiet"], capsys)
    assert code == 2 and f"--model-fn: importing {path} failed: ModuleNotFoundError" in err


# ------------------------------------------------------------------------------- report
def fake_run(activation, seed, **metrics):
    run = {
        "activation": activation,
        "seed": seed,
        "status": "done",
        "selected_by": "loss",
        "dead_fraction_start": 0.1 * seed,
        "dead_fraction_end": 0.2,
        "epoch_seconds": 1.0,
        "selected_epoch": 3,
        "uauc_groups": 17,
    }
    run.update(metrics)
    return run


def test_better_tied_worse_and_group_count():
    runs = []
    for seed, (a, b) in enumerate([(0.80, 0.82), (0.80, 0.80), (0.70, 0.65), (0.75, 0.76)]):
        runs += [
            fake_run("relu", seed, loss=1 - a, accuracy=a, auc=a, uauc=a),
            fake_run("bsilu", seed, loss=1 - b, accuracy=b, auc=b, uauc=b),
        ]
    summary = summarize(runs, ["relu", "bsilu"], "relu")
    auc = summary["vs_baseline"]["bsilu"]["auc"]
    assert (auc["better"], auc["tied"], auc["worse"]) == (2, 1, 1)
    loss = summary["vs_baseline"]["bsilu"]["loss"]  # lower is better: the same seeds win
    assert (loss["better"], loss["tied"], loss["worse"]) == (2, 1, 1)
    start = summary["activations"]["relu"]["dead_fraction_start"]
    assert start["std"] == pytest.approx(np.std([0, 0.1, 0.2, 0.3], ddof=1))
    text = format_tables(summary, runs, 4)
    assert "uAUC (17 groups)" in text and "[2/1/1]" in text
    assert "0.0%" not in text.splitlines()[2] or "± 12.9" in text.splitlines()[2]  # start ± spread


def test_layer_labels_by_width():
    run = {"dead_start": {"layers": {"body.2": {"units": 16}, "body.4": {"units": 8}}}}
    assert layer_labels(run) == {"body.2": "layer 1 (16 units)", "body.4": "layer 2 (8 units)"}


def test_split_errors(tmp_path):
    path = write(tmp_path, "a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    with pytest.raises(UsageError, match="cannot split off the test set"):
        load(["--csv", path, "--target", "y", "--test-fraction", "0.05"])


# ------------------------------------------------------------------------- C++ (optional)
def test_saved_model_runs_in_cpp(clicks, tmp_path, capsys):
    """A C++ program linked with TorchSugar::TorchSugar opens a saved model with torch::jit::load
    and gets Python's output and input gradient. Uses tests/consumer's run_scripted, built
    elsewhere (ctest builds it); point TORCH_SUGAR_RUN_SCRIPTED at the binary to run this."""
    binary = os.environ.get("TORCH_SUGAR_RUN_SCRIPTED")
    if not binary or not os.access(binary, os.X_OK):
        pytest.skip("set TORCH_SUGAR_RUN_SCRIPTED to tests/consumer's run_scripted binary")
    models = tmp_path / "models"
    code, _, err = run_cli(
        [
            "compare",
            "--csv",
            clicks,
            "--target",
            "clicked",
            "--categorical",
            "user,item",
            "--hidden",
            "8",
            "--epochs",
            "1",
            "--seeds",
            "1",
            "--activations",
            "nelu",
            "--save-models",
            str(models),
            "--out",
            str(tmp_path / "out"),
            "--quiet",
            "--no-plots",
        ],
        capsys,
    )
    assert code == 0, err
    model = torch.jit.load(str(models / "nelu-seed0.torchscript.pt"))
    pre = json.loads((models / "preprocessing.json").read_text())
    n_cat = len(pre["categorical"])
    torch.manual_seed(0)
    x = torch.cat(
        [
            torch.randn(16, len(pre["numeric"])),
            torch.stack(
                [torch.randint(0, len(c["vocabulary"]) + 1, (16,)) for c in pre["categorical"]], 1
            ).float(),
        ],
        1,
    ).requires_grad_(True)
    assert n_cat == 4
    out = model(x)
    v = torch.randn_like(out)
    (out * v).sum().backward()

    class Tensors(torch.nn.Module):
        def __init__(self, tensors):
            super().__init__()
            for key, value in tensors.items():
                self.register_buffer(key, value)

        def forward(self) -> int:
            return 0

    refs = {"x": x.detach(), "v": v, "out": out.detach(), "grad_x": x.grad}
    torch.jit.script(Tensors(refs)).save(str(tmp_path / "reference.pt"))
    proc = subprocess.run(
        [binary, str(models / "nelu-seed0.torchscript.pt"), str(tmp_path / "reference.pt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_synthetic_ctr_command_errors(tmp_path, capsys):
    code, out, err = run_cli(["synthetic-ctr", str(tmp_path / "c.csv"), "--users", "1"], capsys)
    assert code == 2 and err.strip() == (
        "torch-sugar synthetic-ctr: error: --users: need 2 <= users <= rows/5 = 4000, got 1"
    )
    code, out, err = run_cli(
        ["synthetic-ctr", str(tmp_path / "no" / "c.csv"), "--rows", "500", "--users", "20"], capsys
    )
    assert code == 2 and "cannot write" in err and str(tmp_path / "no" / "c.csv") in err


def test_validation_curves_start_at_epoch_1():
    from torch_sugar.experiments.report import _curves

    runs = [
        {
            "activation": "relu",
            "status": "done",
            "history": [{"val_loss": 2.3 - 0.1 * e, "dead_fraction": 0.1} for e in range(4)],
        }
    ]
    epochs, mean, lo, hi = _curves(runs, "relu", "val_loss", first=1)
    assert epochs.tolist() == [1, 2, 3] and mean.tolist() == pytest.approx([2.2, 2.1, 2.0])
    assert _curves(runs, "relu", "dead_fraction")[0].tolist() == [0, 1, 2, 3]


def test_compare_without_scikit_learn(capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "sklearn" else real(name, *a)
    )
    code, out, err = run_cli(["compare", "--quiet"], capsys)
    assert code == 2 and err.strip() == (
        "torch-sugar compare: error: needs scikit-learn, which is not installed: "
        "pip install 'torch-sugar[experiments]'"
    )
