"""compare --save-models writes each model as an AOTInductor package too (--save-format): a
torch.export program with a dynamic batch dimension, compiled by inductor with the sugar ops'
decompositions, so it runs with torch alone. References: the TorchScript file, the model rebuilt
from the state_dict (eager, the op library's kernels) and the run's own predictions, on the same
encoded rows; the generated code itself.

One package is compiled for the whole module (10-40 s here); the other runs save TorchScript only
or fail before compiling. The C++ side (examples/cpp/score_aoti.cpp) is a ctest:
tests/cpp/aoti_fixture.py."""

import contextlib
import io
import json
import os
import subprocess
import sys
import types
import zipfile

import numpy as np
import pytest
import torch
from test_compare import load_results, run_cli

import torch_sugar
from torch_sugar import cli
from torch_sugar.experiments.config import CompareConfig
from torch_sugar.experiments.loading import load_data
from torch_sugar.experiments.models import build_model

# float32 logits of the same rows: the package against eager and TorchScript, and against itself
# at other batch sizes (another GEMM blocking moves the last bits: 1e-6 measured).
LOGIT_TOL = dict(rtol=1e-5, atol=1e-5)
HIDDEN = (16, 16)


def ctr_flags(clicks, tmp, epochs="1"):
    return [
        "compare",
        "--csv",
        str(clicks),
        "--target",
        "clicked",
        "--categorical",
        "user,item",
        "--hidden",
        ",".join(map(str, HIDDEN)),
        "--epochs",
        epochs,
        "--seeds",
        "1",
        "--out",
        str(tmp / "out"),
        "--quiet",
        "--no-plots",
    ]


@pytest.fixture(scope="module")
def clicks(tmp_path_factory):
    path = tmp_path_factory.mktemp("clicks") / "clicks.csv"
    assert cli.main(["synthetic-ctr", str(path), "--rows", "1500", "--users", "30"]) == 0
    return path


@pytest.fixture(scope="module")
def saved(clicks, tmp_path_factory):
    """One bsilu run saved in every format (the default --save-format), its results and test rows."""
    tmp = tmp_path_factory.mktemp("aoti")
    argv = ctr_flags(clicks, tmp, epochs="2") + ["--activations", "bsilu", "--save-predictions"]
    argv += ["--save-models", str(tmp / "models")]
    stdout, stderr = io.StringIO(), io.StringIO()
    # A fresh inductor cache: nothing compiled earlier may answer for today's decompositions.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp / "inductor-cache"))
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = cli.main(argv)
    assert code == 0, stderr.getvalue()
    results = load_results(tmp / "out")
    data = load_data(CompareConfig.from_dict(results["config"], "results.json").check().data)
    run = results["runs"][0]
    return types.SimpleNamespace(
        tmp=tmp,
        models=tmp / "models",
        stdout=stdout.getvalue(),
        stderr=stderr.getvalue(),
        results=results,
        run=run,
        files=run["saved"],
        data=data,
        rows=data.test.x,
    )


def test_every_format_is_written_and_listed(saved):
    files = saved.files
    assert saved.run["status"] == "done"
    assert files["aoti"] == str(saved.models / "bsilu-seed0.aoti.pt2")
    assert files["torchscript"] == str(saved.models / "bsilu-seed0.torchscript.pt")
    assert files["state_dict"] == str(saved.models / "bsilu-seed0.state_dict.pt")
    assert all(os.path.getsize(files[k]) > 0 for k in ("aoti", "torchscript", "state_dict"))
    assert 0 < files["aoti_seconds"] < 600
    assert saved.results["config"]["run"]["save_format"] == ["torchscript", "aoti"]
    pre = json.loads((saved.models / "preprocessing.json").read_text())
    assert {k: v["file"] for k, v in pre["files"].items()} == {
        "state_dict": "<activation>-seed<N>.state_dict.pt",
        "torchscript": "<activation>-seed<N>.torchscript.pt",
        "aoti": "<activation>-seed<N>.aoti.pt2",
    }
    assert "AOTIModelPackageLoader" in pre["files"]["aoti"]["load"]
    assert (
        f"models:  {saved.models}/ (state_dict, torchscript, aoti per run; preprocessing.json)"
        in saved.stdout
    )
    assert "warning" not in saved.stderr and "FutureWarning" not in saved.stderr


SCORE_WITHOUT_TORCH_SUGAR = """
import json, sys, numpy as np, torch, torch._inductor
assert not hasattr(torch.ops.sugar, "relu")  # no op library in this process
package = torch._inductor.aoti_load_package(sys.argv[1])
rows = torch.from_numpy(np.load(sys.argv[2]))
with torch.no_grad():
    every = package(rows)
    # torch 2.9's packages refuse 1 row under the input checks (no aot_inductor.check_lowerbound
    # to turn that off): there a row is scored as two copies of itself, as score_aoti does
    one = hasattr(torch._inductor.config.aot_inductor, "check_lowerbound")
    one_by_one = torch.cat([package(rows[i : i + 1] if one else rows[[i, i]])[:1] for i in range(5)])
    seven = package(rows[:7])
    try:
        package(rows[:, :-1].contiguous())
        narrow = "no error"
    except RuntimeError as exc:
        narrow = str(exc)
np.savez(sys.argv[3], every=every.numpy(), one_by_one=one_by_one.numpy(), seven=seven.numpy())
print("torch_sugar" in sys.modules, hasattr(torch.ops.sugar, "relu"))
print(json.dumps(narrow))
"""


@pytest.fixture(scope="module")
def package_scores(saved):
    """The package's logits of the test rows, computed in a fresh Python that never imports
    torch_sugar, with the package's input checks on: all rows at once, the first five one at a
    time, the first seven; and its error for rows one value short."""
    rows_path, scores_path = saved.tmp / "rows.npy", saved.tmp / "scores.npz"
    np.save(rows_path, saved.rows.numpy())
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            SCORE_WITHOUT_TORCH_SUGAR,
            saved.files["aoti"],
            str(rows_path),
            str(scores_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "AOTI_RUNTIME_CHECK_INPUTS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    no_op_library, narrow = proc.stdout.splitlines()
    assert no_op_library == "False False"  # it ran with no op library at all
    width = saved.rows.shape[1]
    # in the exception (torch 2.13, 2.15), or on stderr under a generic exception (torch 2.9)
    expected = f"input_handles[0]: unmatched dim value at 1, expected: {width}, but got: {width - 1}"
    assert expected in json.loads(narrow) + proc.stderr, (narrow, proc.stderr)
    return {k: torch.from_numpy(v) for k, v in np.load(scores_path).items()}


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_package_scores_the_rows_like_torchscript_and_the_model(saved, package_scores):
    rows, every = saved.rows, package_scores["every"]
    assert every.shape == (len(rows), 2) and len(rows) == 300
    scripted = torch.jit.load(saved.files["torchscript"])
    model = torch_sugar.convert(build_model("mlp", saved.data.spec, 2, hidden=HIDDEN), "bsilu")
    model.load_state_dict(torch.load(saved.files["state_dict"]))
    with torch.no_grad():
        torch.testing.assert_close(every, scripted(rows), **LOGIT_TOL)
        torch.testing.assert_close(every, model.eval()(rows), **LOGIT_TOL)
    # the run's own predictions: the trained model in the training process (9 digits in the file)
    predictions = (saved.tmp / "out" / "predictions" / "bsilu-seed0.csv").read_text().splitlines()
    header = predictions[0].split(",")
    p_click = np.array([float(line.split(",")[header.index("p_1")]) for line in predictions[1:]])
    np.testing.assert_allclose(torch.softmax(every.double(), 1)[:, 1].numpy(), p_click, rtol=0, atol=1e-6)
    # a dynamic batch dimension: any number of rows, the same numbers
    torch.testing.assert_close(package_scores["one_by_one"], every[:5], **LOGIT_TOL)
    torch.testing.assert_close(package_scores["seven"], every[:7], **LOGIT_TOL)
    # SUGAR is in the model (the package cannot show it: at inference SUGAR is ReLU)
    assert sum(isinstance(m, torch_sugar.SugarReLU) for m in model.modules()) == len(HIDDEN)


def generated_sources(package_path):
    with zipfile.ZipFile(package_path) as z:
        return {n: z.read(n).decode() for n in z.namelist() if n.endswith(".cpp")}


def test_package_compiles_the_sugar_op_into_its_kernels(saved):
    """The op was lowered through its decomposition: the generated code names it only in comments
    (inductor's note of the source nodes of a kernel) and never calls out of the package for it
    (AOTInductor calls an op it cannot compile through the proxy executor)."""
    sources = generated_sources(saved.files["aoti"])
    assert any(name.endswith("wrapper.cpp") for name in sources), sorted(sources)
    code = "\n".join(sources.values())
    assert "Original ATen: [sugar.relu" in code  # the exported program held the sugar op
    assert "proxy_executor_call_function" not in code
    for line in code.splitlines():
        if "sugar" in line:
            assert line.strip().startswith("//"), line


def test_save_format_torchscript_skips_the_package(clicks, tmp_path, capsys):
    argv = ctr_flags(clicks, tmp_path) + ["--activations", "relu", "--save-models", str(tmp_path / "m")]
    code, stdout, err = run_cli(argv + ["--save-format", "torchscript"], capsys)
    assert code == 0, err
    files = load_results(tmp_path / "out")["runs"][0]["saved"]
    assert sorted(files) == ["state_dict", "torchscript", "torchscript_by"]
    assert sorted(os.listdir(tmp_path / "m")) == [
        "preprocessing.json",
        "relu-seed0.state_dict.pt",
        "relu-seed0.torchscript.pt",
    ]
    pre = json.loads((tmp_path / "m" / "preprocessing.json").read_text())
    assert sorted(pre["files"]) == ["state_dict", "torchscript"]
    assert "(state_dict, torchscript per run; preprocessing.json)" in stdout


@pytest.mark.parametrize(
    "value, message",
    [
        ("onnx", "--save-format: expected comma-separated formats from torchscript, aoti, got 'onnx'"),
        ("aoti,aoti", "--save-format: format listed twice in 'aoti,aoti'"),
        (",", "--save-format: expected comma-separated formats from torchscript, aoti, got ','"),
    ],
    ids=["unknown", "twice", "empty"],
)
def test_bad_save_format_is_a_clear_error(value, message, clicks, tmp_path, capsys):
    argv = ctr_flags(clicks, tmp_path) + ["--activations", "relu", "--save-models", str(tmp_path / "m")]
    code, _, err = run_cli(argv + ["--save-format", value], capsys)
    assert code == 2 and message in err, err
    assert not (tmp_path / "m").exists()


def test_save_format_needs_save_models(clicks, tmp_path, capsys):
    argv = ctr_flags(clicks, tmp_path) + ["--activations", "relu", "--save-format", "aoti"]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "--save-format only applies to --save-models" in err, err


DATA_DEPENDENT_MODEL = """
import torch
from torch import nn
from torch_sugar.experiments.models import FeatureEmbedding


class SignFlip(nn.Module):
    \"\"\"Scriptable, but its branch on the data cannot be exported.\"\"\"

    def __init__(self, spec, n_outputs):
        super().__init__()
        self.embed = FeatureEmbedding(spec)
        self.net = nn.Sequential(nn.Linear(self.embed.out_features, 8), nn.ReLU(), nn.Linear(8, n_outputs))

    def forward(self, x):
        h = self.embed(x)
        if bool(h.sum() > 0):
            return self.net(h)
        return self.net(-h)


def build(spec, n_outputs):
    return SignFlip(spec, n_outputs)
"""


def test_model_that_cannot_be_exported_keeps_the_other_formats(clicks, tmp_path, capsys):
    source = tmp_path / "sign_flip.py"
    source.write_text(DATA_DEPENDENT_MODEL)
    argv = ctr_flags(clicks, tmp_path) + ["--activations", "bsilu", "--model-fn", f"{source}:build"]
    code, _, err = run_cli(argv + ["--save-models", str(tmp_path / "m")], capsys)
    assert code == 0, err
    run = load_results(tmp_path / "out")["runs"][0]
    assert run["status"] == "done"
    files = run["saved"]
    assert "aoti" not in files and files["aoti_error"]
    assert os.path.exists(files["torchscript"]) and files["torchscript_by"] == "script"
    assert not (tmp_path / "m" / "bsilu-seed0.aoti.pt2").exists()
    warning = next(line for line in err.splitlines() if "warning" in line)
    assert f"no AOTInductor package {tmp_path / 'm' / 'bsilu-seed0.aoti.pt2'}" in warning
    assert "--save-format torchscript skips this one" in warning
