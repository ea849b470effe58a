"""Python's numbers for the consumer project (run by run_consumer.py).

    python make_reference.py --out DIR (--use-package | --library libtorch_sugar.so)

grads.txt           for every surrogate (default and non-default alpha, both scopes): x, the
                    incoming gradient v, and the gradient of torch_sugar.relu with respect to x
model.pt            a scripted model with SugarReLU layers (torch.ops.sugar.relu inside)
model_reference.pt  its input x, a gradient v for its output, its output and x's gradient
"""

import argparse
import os

import torch
from torch import nn


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--use-package", action="store_true", help="the torch_sugar Python package")
    source.add_argument("--library", help="an op library to load with torch.ops.load_library")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    if args.use_package:
        import torch_sugar

        relu = torch_sugar.relu
        names = [(s.name, s.default_alpha) for s in torch_sugar.surrogates()]
        activation = lambda: torch_sugar.SugarReLU("nelu", alpha=0.05)  # noqa: E731
    else:
        torch.ops.load_library(args.library)
        relu = torch.ops.sugar.relu
        names = [
            (n, a)
            for n, a in [
                ("relu", None),
                ("bsilu", 1.67),
                ("nelu", 0.01),
                ("elu", 1.0),
                ("selu", None),
                ("leaky_relu", 0.01),
                ("gelu", None),
                ("gelu_tanh", None),
                ("silu", None),
                ("swish", None),
                ("mish", None),
            ]
        ]
        activation = None

    torch.manual_seed(0)
    x = torch.cat(
        [
            torch.tensor([0.0, 1e-6, -1e-6, 4.0, -4.0, 15.0, -15.0], dtype=torch.float64),
            3 * torch.randn(41, dtype=torch.float64),
        ]
    )
    v = torch.randn_like(x)
    fmt = lambda t: " ".join(f"{value:.17g}" for value in t.tolist())  # noqa: E731
    lines = []
    for name, default_alpha in names:
        alphas = [None] + ([0.3 if name == "leaky_relu" else 0.37] if default_alpha is not None else [])
        for alpha in alphas:
            for negative_only in (False, True):
                xg = x.clone().requires_grad_(True)
                relu(xg, name, alpha, negative_only).backward(v)
                lines.append(
                    f"{name} {'none' if alpha is None else repr(alpha)} {int(negative_only)} {x.numel()}"
                )
                lines += [fmt(x), fmt(v), fmt(xg.grad)]
    with open(os.path.join(args.out, "grads.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(5, 12)
            self.fc2 = nn.Linear(12, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc2(torch.ops.sugar.relu(self.fc1(x), "nelu", 0.05, False))

    class PackageModel(nn.Module):
        """The same model built the way a torch_sugar user builds it."""

        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(5, 12)
            self.act = activation()
            self.fc2 = nn.Linear(12, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc2(self.act(self.fc1(x)))

    torch.manual_seed(1)
    model = (PackageModel() if activation is not None else Model()).double()
    scripted = torch.jit.script(model)
    xm = torch.randn(16, 5, dtype=torch.float64, requires_grad=True)
    vm = torch.randn(16, 3, dtype=torch.float64)
    out = scripted(xm)
    (out * vm).sum().backward()
    scripted.save(os.path.join(args.out, "model.pt"))

    class Tensors(nn.Module):
        def __init__(self, tensors):
            super().__init__()
            for key, value in tensors.items():
                self.register_buffer(key, value)

        def forward(self) -> int:
            return 0

    refs = {"x": xm.detach(), "v": vm, "out": out.detach(), "grad_x": xm.grad}
    torch.jit.script(Tensors(refs)).save(os.path.join(args.out, "model_reference.pt"))
    print(
        f"make_reference: {len(lines) // 4} gradient cases and a scripted model in {args.out} "
        f"({'torch_sugar package' if args.use_package else args.library})"
    )


if __name__ == "__main__":
    main()
