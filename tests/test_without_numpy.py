"""torch-sugar without the scientific stack (numpy, scikit-learn, scipy: the `experiments` extra).

`import torch_sugar` (the ops, modules, monitor) and `torch-sugar --help` need only torch; the
commands that need the stack (`compare`, `synthetic-ctr`) say so in one line, exit code 2, no
traceback. Each case runs in a fresh interpreter whose imports of the blocked packages fail, as
they do where the packages are not installed (a sys.meta_path finder that refuses the names)."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from reference import grad_input

INSTALL = "pip install 'torch-sugar[experiments]'"

# argv[1]: comma-separated names of modules to block (with their submodules); argv[2]: the code to run after blocking.
BLOCKER = r"""
import sys

class _Block:
    def __init__(self, names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in self.names):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

_blocked = set(sys.argv[1].split(","))
assert not _blocked & set(sys.modules), "already imported"
sys.meta_path.insert(0, _Block(_blocked))
exec(sys.argv[2])
"""


def run_blocked(blocked, code, *args, cwd=None):
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(blocked), code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def without_torch_warning(stderr):
    """stderr's lines less torch's own warning at import without numpy (the warning line and the
    source line Python prints under it), which every program that imports torch gets there."""
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        if "UserWarning: Failed to initialize NumPy" in line:
            return lines[:i] + lines[i + 2 :]
    return lines


def run_cli_blocked(blocked, argv, cwd=None):
    """The console entry point (python -m torch_sugar) with `blocked` unimportable."""
    code = (
        "import runpy; sys.argv = ['torch-sugar'] + sys.argv[3:]; "
        "runpy.run_module('torch_sugar', run_name='__main__')"
    )
    return run_blocked(blocked, code, *argv, cwd=cwd)


def test_the_blocker_blocks():
    """The test's premise: with numpy blocked, importing it fails as if it were not installed."""
    proc = run_blocked(["numpy"], "import numpy")
    assert proc.returncode == 1 and "ModuleNotFoundError: No module named 'numpy'" in proc.stderr


def test_ops_modules_and_monitor_without_numpy(tmp_path):
    """import torch_sugar, a relu forward/backward, SugarReLU, convert/revert and DeadUnitMonitor
    with numpy, scikit-learn and scipy unimportable; gradients checked here against the float64
    reference."""
    out = tmp_path / "out.pt"
    code = r"""
import torch
import torch_sugar

x = torch.linspace(-4, 4, 101, dtype=torch.float64, requires_grad=True)
grad = torch.linspace(0.5, 1.5, 101, dtype=torch.float64)
y = torch_sugar.relu(x, "bsilu")
y.backward(grad)

# Unit 0 of the hidden layer is dead by construction (weights 0, bias -1); the others live.
model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
with torch.no_grad():
    model[0].weight.copy_(torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]))
    model[0].bias.copy_(torch.tensor([-1.0, 0, 0, 0]))
model = torch_sugar.convert(model, "nelu")
kinds = [type(m).__name__ for m in model]
with torch_sugar.DeadUnitMonitor(model) as monitor:
    model(torch.eye(3)).sum().backward()
    res = monitor.results()
model = torch_sugar.revert(model)
kinds += [type(m).__name__ for m in model]
leaked = sorted(m for m in sys.modules if m.partition(".")[0] in ("numpy", "sklearn", "scipy"))
torch.save(
    {"x": x.detach(), "grad": grad, "y": y.detach(), "grad_x": x.grad, "kinds": kinds,
     "dead": (res.dead, res.units), "leaked": leaked},
    sys.argv[3],
)
"""
    proc = run_blocked(["numpy", "sklearn", "scipy"], code, str(out))
    assert proc.returncode == 0, proc.stderr
    got = torch.load(out)
    assert got["leaked"] == []
    assert got["kinds"] == ["Linear", "SugarReLU", "Linear", "Linear", "ReLU", "Linear"]
    assert got["dead"] == (1, 4)
    x = got["x"].numpy()
    np.testing.assert_array_equal(got["y"].numpy(), np.maximum(x, 0.0))
    np.testing.assert_allclose(
        got["grad_x"].numpy(), grad_input("bsilu", got["grad"].numpy(), x), rtol=1e-12, atol=1e-15
    )


@pytest.mark.parametrize("argv", [["--help"], ["compare", "--help"], ["surrogates"]])
def test_help_and_surrogates_without_numpy(argv):
    proc = run_cli_blocked(["numpy", "sklearn", "scipy"], argv)
    assert proc.returncode == 0, proc.stderr
    assert without_torch_warning(proc.stderr) == [], proc.stderr
    if "--help" in argv:
        assert proc.stdout.startswith("usage: torch-sugar"), proc.stdout
    else:
        assert "bsilu" in proc.stdout


@pytest.mark.parametrize(
    "blocked, argv, line",
    [
        (
            ["numpy"],
            ["compare", "--quiet"],
            f"torch-sugar compare: error: needs numpy, which is not installed: {INSTALL}",
        ),
        (
            ["numpy", "sklearn", "scipy"],
            ["compare", "--csv", "data.csv", "--target", "y"],
            f"torch-sugar compare: error: needs numpy, scikit-learn and scipy, which are not installed: "
            f"{INSTALL}",
        ),
        (
            ["sklearn"],
            ["compare", "--dataset", "synthetic-ctr"],
            f"torch-sugar compare: error: needs scikit-learn, which is not installed: {INSTALL}",
        ),
        (
            ["scipy"],
            ["compare"],
            f"torch-sugar compare: error: needs scipy, which is not installed: {INSTALL}",
        ),
        (  # installed but broken: found, fails to import
            ["numpy.random"],
            ["compare"],
            "torch-sugar compare: error: cannot import numpy (No module named 'numpy.random' (blocked by "
            f"the test)): {INSTALL}",
        ),
        (
            ["numpy"],
            ["synthetic-ctr", "clicks.csv"],
            f"torch-sugar synthetic-ctr: error: needs numpy, which is not installed: {INSTALL}",
        ),
    ],
)
def test_commands_that_need_the_stack_say_so(blocked, argv, line, tmp_path):
    proc = run_cli_blocked(blocked, argv, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert without_torch_warning(proc.stderr) == [line], proc.stderr
    assert not list(tmp_path.iterdir())  # nothing written


def test_synthetic_ctr_without_scikit_learn(tmp_path):
    """synthetic-ctr needs numpy only: it works with scikit-learn and scipy missing."""
    path = tmp_path / "clicks.csv"
    proc = run_cli_blocked(
        ["sklearn", "scipy"], ["synthetic-ctr", str(path), "--rows", "500", "--users", "20"]
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert len(path.read_text().splitlines()) == 501


def test_import_torch_without_numpy_warns_at_most():
    """torch itself imports without numpy (a UserWarning at most); what torch_sugar relies on."""
    proc = run_blocked(["numpy"], "import torch; print(torch.relu(torch.tensor([-1.0, 2.0])).tolist())")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[0.0, 2.0]"
    assert without_torch_warning(proc.stderr) == [], proc.stderr
