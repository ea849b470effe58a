"""SugarReLU, convert/revert, and TorchScript: scripted, saved, loaded in a fresh process."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import torch_sugar
from torch_sugar import SugarReLU


def mlp():
    return nn.Sequential(
        nn.Linear(6, 12), nn.ReLU(), nn.Sequential(nn.Linear(12, 12), nn.ReLU(inplace=True)), nn.Linear(12, 2)
    )


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.ReLU(),
        )
        self.act = nn.ReLU()
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        return self.head(self.act(self.features(x).mean((2, 3))))


def count(model, cls):
    return sum(isinstance(m, cls) for m in model.modules())


def test_sugar_relu_module_forward_and_repr():
    m = SugarReLU("nelu", 0.05, negative_only=True)
    x = torch.randn(10)
    assert torch.equal(m(x), torch.relu(x))
    assert repr(m) == "SugarReLU(surrogate='nelu', alpha=0.05, negative_only=True)"
    assert repr(SugarReLU()) == "SugarReLU(surrogate='bsilu', alpha=1.67 (default))"
    assert repr(SugarReLU("gelu")) == "SugarReLU(surrogate='gelu')"


def test_sugar_relu_validates_at_construction():
    with pytest.raises(ValueError, match="unknown surrogate 'bogus'"):
        SugarReLU("bogus")
    with pytest.raises(ValueError, match="takes no alpha"):
        SugarReLU("mish", alpha=1.0)
    with pytest.raises(TypeError, match="negative_only must be a bool"):
        SugarReLU("mish", negative_only="yes")


@pytest.mark.parametrize("make", [mlp, SmallCNN])
def test_convert_and_revert(make):
    torch.manual_seed(0)
    model = make()
    x = torch.randn(5, 6) if make is mlp else torch.randn(2, 3, 6, 6)
    n_relu = count(model, nn.ReLU)
    base_out = model(x)
    converted = torch_sugar.convert(model, "elu", alpha=0.5)
    assert converted is model
    assert count(model, nn.ReLU) == 0 and count(model, SugarReLU) == n_relu
    assert all(m.surrogate == "elu" and m.alpha == 0.5 for m in model.modules() if isinstance(m, SugarReLU))
    torch.testing.assert_close(model(x), base_out)  # forward unchanged
    reverted = torch_sugar.revert(model)
    assert reverted is model and count(model, SugarReLU) == 0 and count(model, nn.ReLU) == n_relu
    if make is mlp:
        assert model[2][1].inplace is True  # revert restores nn.ReLU(inplace=True)


def test_convert_changes_gradients_only_where_relu_is_inactive():
    torch.manual_seed(1)
    relu_model = mlp()
    sugar_model = torch_sugar.convert(mlp(), "bsilu")
    sugar_model.load_state_dict(relu_model.state_dict())
    x = torch.randn(64, 6)
    relu_model(x).sum().backward()
    sugar_model(x).sum().backward()
    g_relu = relu_model[0].weight.grad
    g_sugar = sugar_model[0].weight.grad
    assert not torch.allclose(g_relu, g_sugar)
    # The last layer sees identical activations (forward is unchanged), so its gradient is equal.
    torch.testing.assert_close(relu_model[3].weight.grad, sugar_model[3].weight.grad)


def test_convert_a_bare_relu_and_bad_arguments():
    assert isinstance(torch_sugar.convert(nn.ReLU(), "gelu"), SugarReLU)
    assert isinstance(torch_sugar.revert(SugarReLU()), nn.ReLU)
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        torch_sugar.convert("not a model")
    model = mlp()
    with pytest.raises(ValueError, match="unknown surrogate"):
        torch_sugar.convert(model, "bogus")
    assert count(model, nn.ReLU) == 2  # nothing was changed by the failed call


def test_scripted_model_saved_and_loaded_in_a_fresh_process(tmp_path):
    torch.manual_seed(0)
    model = torch_sugar.convert(SmallCNN(), "mish", negative_only=True)
    scripted = torch.jit.script(model)
    assert "sugar::relu" in str(scripted.inlined_graph)
    x = torch.randn(2, 3, 6, 6)
    torch.save(x, tmp_path / "x.pt")
    path = tmp_path / "model.pt"
    scripted.save(str(path))

    def grads(m, inp):
        inp = inp.clone().requires_grad_()
        m(inp).square().sum().backward()
        return inp.grad

    expected = grads(scripted, x)
    torch.testing.assert_close(expected, grads(model, x))
    # A fresh interpreter that loads only the op library (as any TorchScript user would).
    script = textwrap.dedent(f"""
        import torch
        torch.ops.load_library({torch_sugar.library_path!r})
        m = torch.jit.load({str(path)!r})
        x = torch.load({str(tmp_path / "x.pt")!r}).requires_grad_()
        m(x).square().sum().backward()
        torch.save(x.grad, {str(tmp_path / "grad.pt")!r})
        """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = torch.load(tmp_path / "grad.pt")
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_scripted_function_uses_the_op():
    @torch.jit.script
    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.ops.sugar.relu(x, "nelu", 0.1, False) * 2

    assert "sugar::relu" in str(f.graph)
    x = torch.randn(8, requires_grad=True)
    f(x).sum().backward()
    expected = torch.ops.sugar.relu_backward(torch.full_like(x, 2.0), x.detach(), "nelu", 0.1, False)
    torch.testing.assert_close(x.grad, expected)


def test_build_info_and_paths():
    info = torch_sugar.build_info()
    assert info["version"] == torch_sugar.__version__
    assert info["kernels"]["CPU"] and info["kernels"]["Meta"] and info["kernels"]["Autograd"]
    assert info["kernels"]["CUDA"] == info["cuda_compiled"]
    assert os.path.exists(torch_sugar.library_path)
    json.dumps(info)
