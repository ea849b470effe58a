"""The supported torch versions (README, "Supported torch versions"): the range pyproject.toml states
is the one CI tests, and what differs between versions behaves the same on each. (The direct eager
entry's argument checks, whose pybind11 casters changed in torch 2.14, are in test_eager_entry.py.)"""

import os
import re
import subprocess
import sys
import warnings

import pytest
import torch
from packaging.requirements import Requirement
from packaging.version import Version

import torch_sugar
from torch_sugar._compat import TORCHSCRIPT_DEPRECATION, without_torchscript_deprecation

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH = Version(torch.__version__.split("+")[0])


def read(name):
    with open(os.path.join(ROOT, name)) as f:
        return f.read()


def pinned_torch(requirements_file):
    """The X.Y.Z of the `torch==X.Y.Z` line of a requirements file."""
    (version,) = re.findall(r"^torch==([0-9.]+)\s*$", read(requirements_file), flags=re.M)
    return Version(version)


def torch_dependency():
    """pyproject.toml's torch requirement, as written there (the build's is the same)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads(read("pyproject.toml"))
    (text,) = [r for r in pyproject["project"]["dependencies"] if Requirement(r).name == "torch"]
    (build,) = [r for r in pyproject["build-system"]["requires"] if Requirement(r).name == "torch"]
    assert build == text, "pyproject.toml: the build's torch range differs from the package's"
    return text


def test_pyproject_range_is_the_tested_one():
    """pyproject.toml's torch range starts at the torch `make test-oldest` installs and ends after
    the one `make test-newest` installs (its minor release); `make test`'s lies inside."""
    spec = Requirement(torch_dependency()).specifier
    oldest, newest, dev = (
        pinned_torch(f) for f in ("requirements-oldest.txt", "requirements-cuda.txt", "requirements-dev.txt")
    )
    lower = [Version(s.version) for s in spec if s.operator == ">="]
    upper = [Version(s.version) for s in spec if s.operator == "<"]
    assert lower == [oldest], (str(spec), oldest)
    assert upper == [Version(f"{newest.major}.{newest.minor + 1}")], (str(spec), newest)
    assert all(v in spec for v in (oldest, newest, dev))
    assert oldest < dev <= newest


def test_readme_names_the_tested_versions():
    text = read("README.md")
    section = text[text.index("## Supported torch versions") :]
    section = section[: section.index("\n## ", 1)]
    for f in ("requirements-oldest.txt", "requirements-dev.txt", "requirements-cuda.txt"):
        assert str(pinned_torch(f)) in section, f
    assert torch_dependency() in section


def test_running_torch_is_the_one_built_against():
    """The suite tests the build made for the torch it runs on (make test-newest and test-oldest
    put their own build on PYTHONPATH): a library built against another torch release would fail
    in ways that say nothing (the C++ API changes between releases)."""
    info = torch_sugar.build_info()
    assert info["torch_built_against"].split("+")[0] == str(TORCH), info


def test_torchscript_notice_hidden_only_inside_the_helper():
    @without_torchscript_deprecation
    def script_and_warn():
        scripted = torch.jit.script(torch_sugar.SugarReLU("gelu"))
        traced = torch.jit.trace(torch_sugar.SugarReLU("gelu"), torch.randn(3))
        warnings.warn("a warning of the caller's own", UserWarning)
        return scripted, traced

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scripted, traced = script_and_warn()
    messages = [str(w.message) for w in caught]
    assert "a warning of the caller's own" in messages
    assert not [m for m in messages if re.search(TORCHSCRIPT_DEPRECATION, m)], messages
    x = torch.randn(5)
    assert torch.equal(scripted(x), torch.relu(x)) and torch.equal(traced(x), torch.relu(x))

    # The pattern matches torch's own notice, which torch 2.11 and later raise (2.14: FutureWarning).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.jit.script(torch_sugar.SugarReLU("gelu"))
    notices = [w for w in caught if re.search(TORCHSCRIPT_DEPRECATION, str(w.message))]
    if TORCH >= Version("2.11"):
        assert notices, [str(w.message) for w in caught]
    if TORCH >= Version("2.14"):
        assert all(w.category is FutureWarning for w in notices)


def test_compare_save_models_quiet_prints_nothing(tmp_path):
    """`compare --save-models --quiet` writes TorchScript without torch's deprecation notice on
    stderr (torch 2.14 and later print it as a FutureWarning on every torch.jit call)."""
    argv = ["compare", "--epochs", "1", "--seeds", "1", "--hidden", "8", "--activations", "relu,bsilu"]
    argv += ["--threads", "1", "--no-plots", "--quiet", "--out", str(tmp_path / "out")]
    argv += ["--save-models", str(tmp_path / "models")]
    proc = subprocess.run(
        [sys.executable, "-m", "torch_sugar"] + argv, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    saved = sorted(os.listdir(tmp_path / "models"))
    assert any(name.endswith(".torchscript.pt") for name in saved), saved
