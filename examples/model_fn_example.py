"""An example for ``torch-sugar compare --model-fn examples/model_fn_example.py:build``.

compare calls ``build(spec, n_outputs)`` once per run, after setting the run's seed, so every
activation of a seed starts from the same weights. ``spec`` (torch_sugar.experiments.data.InputSpec)
describes one input row:

- ``spec.kind``: "tabular" or "image"; ``spec.shape``: the shape of one row;
- tabular: ``spec.numeric`` standardized numeric columns first (``spec.numeric_names``), then one
  column per ``spec.categorical`` entry (``name``, ``cardinality``, ``embedding_dim``) holding the
  category index as a float: ``x[:, spec.numeric:].long()``.

The model returns one logit per class, ``(rows, n_outputs)``. Write every activation that should
be compared as an ``nn.ReLU`` *module*: compare swaps them with ``torch_sugar.convert`` (calls of
``torch.relu``/``F.relu`` inside ``forward`` are code and stay ReLU). ``FeatureEmbedding`` does the
embedding lookup; anything else is up to you.
"""

import torch
from torch import nn

from torch_sugar.experiments.models import FeatureEmbedding


class ResidualTower(nn.Module):
    """Embeddings, then two residual ReLU blocks of one width, then a linear head."""

    def __init__(self, spec, n_outputs: int, width: int = 64):
        super().__init__()
        self.embed = FeatureEmbedding(spec)
        self.stem = nn.Sequential(nn.Linear(self.embed.out_features, width), nn.ReLU())
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width)) for _ in range(2)
        )
        self.act = nn.ModuleList(nn.ReLU() for _ in range(2))
        self.head = nn.Linear(width, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(self.embed(x))
        for block, act in zip(self.blocks, self.act):
            h = act(h + block(h))
        return self.head(h)


def build(spec, n_outputs: int) -> nn.Module:
    if spec.kind != "tabular":
        raise ValueError(f"this example is for tabular data, got {spec.kind}")
    return ResidualTower(spec, n_outputs)
