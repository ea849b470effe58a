"""Writes the TorchScript fixtures of the C++ tests (a ctest fixture runs this before them).

    python make_fixtures.py --library build/libtorch_sugar.so --out build/tests/cpp/fixtures

mlp.pt            a float64 MLP scripted by Python whose activations are torch.ops.sugar.relu
                  (nelu alpha=0.05, then bsilu negative_only), for torch::jit::load in C++.
mlp_reference.pt  a scripted container of what Python computes with it: the batch x, y, the
                  output, the MSE loss, every parameter's gradient (grad_<name>), the parameters
                  after one SGD step with lr=0.1 (stepped_<name>) and the loss after that step.

The gradients are also checked here against a pure-PyTorch reference of the same network (the
stop-gradient form of SUGAR with d(x) written out), so the numbers handed to C++ are right.
The op library is loaded with torch.ops.load_library (the one CMake built, or, with
--use-package, the one of the installed torch_sugar package).
"""

import argparse
import math
import os
from typing import Dict

import torch
from torch import nn

LR = 0.1


class SugarMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 16)
        self.fc2 = nn.Linear(16, 16)
        self.fc3 = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.ops.sugar.relu(self.fc1(x), "nelu", 0.05, False)
        h = torch.ops.sugar.relu(self.fc2(h), "bsilu", None, True)
        return self.fc3(h)


class Tensors(nn.Module):
    """A scripted bag of tensors: C++ reads them with module.attr(name).toTensor()."""

    def __init__(self, tensors: Dict[str, torch.Tensor]):
        super().__init__()
        for name, value in tensors.items():
            self.register_buffer(name, value)

    def forward(self) -> int:
        return 0


def fgi(x, d):
    """Value relu(x), gradient d(x): the stop-gradient form of SUGAR."""
    h = x * d(x.detach())
    return h - h.detach() + torch.relu(x).detach()


def nelu_d(a):
    return lambda x: torch.where(x > 0, torch.ones_like(x), 2 * a * x / (1 + x * x) ** 2)


def bsilu_negative_d(a=1.67):
    def d(x):
        s = torch.sigmoid(x)
        return torch.where(x > 0, torch.ones_like(x), s + (x + a) * s * (1 - s))

    return d


def reference_forward(model, x):
    h = fgi(model.fc1(x), nelu_d(0.05))
    h = fgi(model.fc2(h), bsilu_negative_d())
    return model.fc3(h)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", help="the op library to load (libtorch_sugar.so)")
    parser.add_argument("--use-package", action="store_true", help="import torch_sugar instead")
    parser.add_argument("--out", required=True, help="directory to write the fixtures into")
    args = parser.parse_args()
    if args.use_package:
        import torch_sugar  # noqa: F401  (registers the ops)
    else:
        torch.ops.load_library(args.library)
    os.makedirs(args.out, exist_ok=True)

    torch.manual_seed(0)
    model = SugarMLP().double()
    x = torch.randn(64, 3, dtype=torch.float64)
    y = torch.sin(x.sum(dim=1, keepdim=True))

    scripted = torch.jit.script(model)
    out = scripted(x)
    loss = torch.nn.functional.mse_loss(out, y)
    scripted.zero_grad()
    loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in scripted.named_parameters()}

    # The same numbers from the pure-PyTorch reference.
    ref_loss = torch.nn.functional.mse_loss(reference_forward(model, x), y)
    ref_grads = torch.autograd.grad(ref_loss, list(model.parameters()))
    for (name, g), r in zip(grads.items(), ref_grads):
        err = (g - r).abs().max().item()
        if not err <= 1e-12:
            raise SystemExit(f"make_fixtures: gradient of {name} differs from the reference by {err}")
    # Both activations must matter: units on both sides of zero.
    with torch.no_grad():
        pre1 = model.fc1(x)
        if not (pre1 > 0).any() or not (pre1 <= 0).any():
            raise SystemExit("make_fixtures: degenerate fixture (all pre-activations on one side)")

    scripted.save(os.path.join(args.out, "mlp.pt"))

    with torch.no_grad():
        for p in scripted.parameters():
            p -= LR * p.grad
        loss_after = torch.nn.functional.mse_loss(scripted(x), y)
    tensors = {
        "x": x,
        "y": y,
        "out": out.detach(),
        "loss": loss.detach().reshape(1),
        "loss_after": loss_after.reshape(1),
        "lr": torch.tensor([LR], dtype=torch.float64),
    }
    for name, p in scripted.named_parameters():
        tensors["grad_" + name.replace(".", "_")] = grads[name]
        tensors["stepped_" + name.replace(".", "_")] = p.detach().clone()
    torch.jit.script(Tensors(tensors)).save(os.path.join(args.out, "mlp_reference.pt"))
    print(
        f"make_fixtures: wrote {args.out}/mlp.pt and mlp_reference.pt "
        f"(loss {loss.item():.6f} -> {loss_after.item():.6f} after one SGD step, lr={LR})"
    )
    assert math.isfinite(loss_after.item())


if __name__ == "__main__":
    main()
