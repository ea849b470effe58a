"""ONNX export of SUGAR models: at inference SUGAR is ReLU, so the exported graph says Relu.

Both exporters work after `import torch_sugar` with nothing else to do: the torch.export-based
one (dynamo=True) through the ops' decompositions, the TorchScript-based one (dynamo=False)
through a symbolic registered for sugar::relu. onnxruntime's output equals PyTorch's.
"""

import subprocess
import sys
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import torch_sugar


def mlp():
    return torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3), torch.nn.ReLU()
    )


def cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(inplace=True),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, 5),
    )


class FunctionalNet(torch.nn.Module):
    """torch_sugar.relu called in forward (no module to convert)."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 8)

    def forward(self, x):
        return torch_sugar.relu(self.fc(x), "nelu", 0.05, True)


CASES = {
    "mlp-bsilu": (lambda: torch_sugar.convert(mlp(), "bsilu"), (5, 6)),
    "cnn-mish-neg": (lambda: torch_sugar.convert(cnn(), "mish", negative_only=True), (2, 3, 8, 8)),
    "functional-nelu": (FunctionalNet, (5, 6)),
}


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
@pytest.mark.parametrize("case", list(CASES))
def test_onnx_export_says_relu_and_onnxruntime_agrees(case, dynamo, tmp_path):
    torch.manual_seed(0)
    make, shape = CASES[case]
    model = make().eval()
    x = torch.randn(*shape)
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        torch.onnx.export(model, (x,), str(path), dynamo=dynamo)
    graph = onnx.load(str(path)).graph
    ops = [(node.domain, node.op_type) for node in graph.node]
    assert ("", "Relu") in ops, ops
    assert all(domain in ("", "ai.onnx") for domain, _ in ops), f"custom-domain nodes in the export: {ops}"
    assert not any("sugar" in op.lower() for _, op in ops), ops
    onnx.checker.check_model(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_registrations_hold_whichever_is_imported_first():
    """torch.onnx and inductor imported before torch_sugar (registered at once) or after (by the
    import hook): the same registrations either way."""
    check = (
        "import torch; {first}import torch_sugar; import torch.onnx; import torch._inductor.decomposition as d\n"
        "from torch.onnx._internal.torchscript_exporter import registration\n"
        "assert registration.registry.is_registered_op('sugar::relu', 17)\n"
        "assert torch.ops.sugar.relu_backward.default in d.select_decomp_table()\n"
        "print('ok')\n"
    )
    for first in ("", "import torch.onnx; import torch._inductor.decomposition; "):
        out = subprocess.run(
            [sys.executable, "-c", check.format(first=first)], capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
