"""A training script written the way PyTorch's tutorials write one: a network with F.relu calls in
its forward, its own loop, argparse flags, and a dataset that ships with scikit-learn (the 8x8
handwritten digits; nothing is downloaded). Nothing in it makes SUGAR: it only reports its
numbers with torch_sugar.report (one printed line per epoch when run alone).

    python examples/train_digits.py                       # plain ReLU
    torch-sugar run examples/train_digits.py              # the same script, every ReLU SUGAR (B-SiLU)
    torch-sugar run --surrogate nelu --alpha 0.05 examples/train_digits.py --epochs 30
    torch-sugar compare --script "python examples/train_digits.py" --seeds 3   # ReLU vs SUGAR

Each epoch it reports the validation loss and accuracy and the fraction of ReLU units that never
fire on the validation set (torch_sugar.DeadUnitMonitor, which also counts ReLUs computed as
calls).
"""

import argparse

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import torch_sugar


class Net(nn.Module):
    """A deep, narrow MLP (the kind where ReLU units die), written tutorial-style."""

    def __init__(self, hidden: int, depth: int):
        super().__init__()
        self.input = nn.Linear(64, hidden)
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth - 1))
        self.output = nn.Linear(hidden, 10)

    def forward(self, x):
        x = F.relu(self.input(x))
        for layer in self.hidden:
            x = F.relu(layer(x))
        return self.output(x)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=20, help="passes over the training set (default 20)")
    p.add_argument("--lr", type=float, default=0.01, help="Adam's learning rate (default 0.01)")
    p.add_argument("--hidden", type=int, default=16, help="units per hidden layer (default 16)")
    p.add_argument("--depth", type=int, default=8, help="hidden layers (default 8)")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size (default 32)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the weights and the batches")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: fastest for this size)")
    return p.parse_args()


def load(seed):
    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    return x_train, y_train, x_val, y_val


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train()
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def dead_fraction(model, x):
    """Fraction of the ReLU units that never fire on x."""
    model.eval()
    with torch_sugar.DeadUnitMonitor(model) as monitor, torch.no_grad():
        model(x)
    model.train()
    return monitor.results().fraction


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_train, y_train, x_val, y_val = load(args.seed)
    model = Net(args.hidden, args.depth)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(x_train))
        for start in range(0, len(order), args.batch_size):
            batch = order[start : start + args.batch_size]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
        val_loss, val_acc = evaluate(model, x_val, y_val)
        torch_sugar.report(
            step=epoch, val_loss=val_loss, val_acc=val_acc, dead_fraction=dead_fraction(model, x_val)
        )


if __name__ == "__main__":
    main()
