"""The models of ``--model``, in plain PyTorch (no torchvision), each activation an ``nn.ReLU``
module of its own (so :class:`~torch_sugar.DeadUnitMonitor` sees every call site and
:func:`torch_sugar.convert` swaps every one).

- ``mlp``: Linear -> [norm] -> ReLU -> [dropout] per hidden width, then a Linear classifier; with
  categorical columns the usual deep CTR baseline: an embedding per categorical column
  (:class:`FeatureEmbedding`), concatenated with the numeric columns, into that MLP;
- ``dcn``: DCN-v2 (Wang et al. 2021, "DCN V2"), parallel form: the same embeddings, a cross
  network of :data:`DCN_CROSS_LAYERS` full-rank cross layers x_{l+1} = x_0 * (W x_l + b) + x_l
  beside the MLP, both concatenated into the classifier (tabular data only);
- ``cnn``: three 3x3 conv blocks (32, 64, 128 channels x width), global average pool, Linear;
- ``vgg16``: the CIFAR-style VGG-16 (13 3x3 convs, 5 max pools, one Linear classifier);
- ``resnet18``: the CIFAR-style ResNet-18 (3x3 stem, no stem pool, 4 stages of 2 basic blocks).

The conv nets take any input of at least 1x1; a max pool is left out where the feature map is
already 1 pixel wide, so 8x8 digits work as well as 32x32 CIFAR images.
"""

from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from .errors import UsageError
from .preprocess import InputSpec

MODELS = ("mlp", "dcn", "cnn", "vgg16", "resnet18")
DCN_CROSS_LAYERS = 3
EMBEDDING_INIT_STD = 0.01
VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def _norm2d(norm: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if norm == "batch" else nn.Identity()


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


class MLP(nn.Module):
    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        n_classes: int,
        dropout: float = 0.0,
        norm: str = "none",
    ):
        super().__init__()
        layers: List[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.body(x))


class FeatureEmbedding(nn.Module):
    """Tabular input row (see :class:`~.data.InputSpec`) -> numeric columns concatenated with one
    embedding per categorical column. ``x[:, :numeric]`` are the numeric values and
    ``x[:, numeric:]`` the category indices (floats holding exact integers). Embedding weights
    start as N(0, EMBEDDING_INIT_STD^2)."""

    def __init__(self, spec: InputSpec):
        super().__init__()
        self.numeric = spec.numeric
        self.embeddings = nn.ModuleList(
            nn.Embedding(c.cardinality, c.embedding_dim) for c in spec.categorical
        )
        # small vectors to start, next to numeric columns of unit variance: with nn.Embedding's
        # N(0, 1) the ids begin as loud noise (README data: test AUC 0.73 instead of 0.77)
        for embedding in self.embeddings:
            nn.init.normal_(embedding.weight, std=EMBEDDING_INIT_STD)
        self.out_features = spec.numeric + sum(c.embedding_dim for c in spec.categorical)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = x[:, self.numeric :].long()
        parts = [x[:, : self.numeric]]
        for j, embedding in enumerate(self.embeddings):
            parts.append(embedding(index[:, j]))
        return torch.cat(parts, dim=1)


class EmbeddingMLP(nn.Module):
    """Embeddings + MLP: the usual deep click-prediction baseline."""

    def __init__(
        self, spec: InputSpec, hidden: Sequence[int], n_classes: int, dropout: float = 0.0, norm: str = "none"
    ):
        super().__init__()
        self.embed = FeatureEmbedding(spec)
        self.mlp = MLP(self.embed.out_features, hidden, n_classes, dropout, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.embed(x))


class CrossLayer(nn.Module):
    """DCN-v2 cross layer: x0 * (W x + b) + x."""

    def __init__(self, features: int):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x0 * self.linear(x) + x


class DCN(nn.Module):
    """DCN-v2, parallel structure: embeddings -> [cross network | MLP] -> concat -> Linear."""

    def __init__(
        self,
        spec: InputSpec,
        hidden: Sequence[int],
        n_classes: int,
        dropout: float = 0.0,
        norm: str = "none",
        cross_layers: int = DCN_CROSS_LAYERS,
    ):
        super().__init__()
        self.embed = FeatureEmbedding(spec)
        width = self.embed.out_features
        self.cross = nn.ModuleList(CrossLayer(width) for _ in range(cross_layers))
        deep = MLP(width, hidden, 1, dropout, norm)
        self.deep = deep.body
        deep_width = hidden[-1] if hidden else width
        self.classifier = nn.Linear(width + deep_width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.embed(x)
        crossed = x0
        for layer in self.cross:
            crossed = layer(x0, crossed)
        return self.classifier(torch.cat([crossed, self.deep(x0)], dim=1))


class SmallCNN(nn.Module):
    def __init__(
        self,
        in_shape: Tuple[int, int, int],
        n_classes: int,
        width: float = 1.0,
        dropout: float = 0.0,
        norm: str = "none",
    ):
        super().__init__()
        channels, size, _ = in_shape
        layers: List[nn.Module] = []
        for i, out in enumerate(_scaled(c, width) for c in (32, 64, 128)):
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=norm != "batch"),
                _norm2d(norm, out),
                nn.ReLU(),
            ]
            if i < 2 and size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            channels = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class VGG16(nn.Module):
    def __init__(
        self,
        in_shape: Tuple[int, int, int],
        n_classes: int,
        width: float = 1.0,
        dropout: float = 0.0,
        norm: str = "batch",
    ):
        super().__init__()
        channels, size, _ = in_shape
        layers: List[nn.Module] = []
        for item in VGG16_CFG:
            if item == "M":
                if size >= 2:
                    layers.append(nn.MaxPool2d(2))
                    size //= 2
                continue
            out = _scaled(item, width)
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=norm != "batch"),
                _norm2d(norm, out),
                nn.ReLU(),
            ]
            channels = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """3x3 conv, norm, ReLU, 3x3 conv, norm, + shortcut, ReLU (two ReLU modules, not one reused)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, norm: str):
        super().__init__()
        bias = norm != "batch"
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=bias)
        self.bn1 = _norm2d(norm, out_ch)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=bias)
        self.bn2 = _norm2d(norm, out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=bias), _norm2d(norm, out_ch)
            )
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(
        self,
        in_shape: Tuple[int, int, int],
        n_classes: int,
        width: float = 1.0,
        dropout: float = 0.0,
        norm: str = "batch",
    ):
        super().__init__()
        channels = _scaled(64, width)
        self.stem = nn.Sequential(
            nn.Conv2d(in_shape[0], channels, 3, padding=1, bias=norm != "batch"),
            _norm2d(norm, channels),
            nn.ReLU(),
        )
        stages = []
        for i, planes in enumerate(_scaled(p, width) for p in (64, 128, 256, 512)):
            stride = 1 if i == 0 else 2
            stages.append(
                nn.Sequential(BasicBlock(channels, planes, stride, norm), BasicBlock(planes, planes, 1, norm))
            )
            channels = planes
        self.stages = nn.Sequential(*stages)
        head: List[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        self.pool = nn.Sequential(*head)
        self.classifier = nn.Linear(channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.stages(self.stem(x))))


INITS = ("torch", "kaiming")


def kaiming_init(model: nn.Module) -> nn.Module:
    """He initialization for ReLU nets: weights N(0, 2/fan_in), biases 0 (norm layers untouched)."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def build_model(
    name: str,
    spec: InputSpec,
    n_classes: int,
    hidden: Sequence[int] = (),
    width: float = 1.0,
    dropout: float = 0.0,
    norm: Optional[str] = None,
    init: str = "torch",
) -> nn.Module:
    """A freshly initialized model (uses the global torch RNG: seed it first).

    ``init``: "torch" keeps PyTorch's default layer initialization (uniform, std 1/sqrt(3 fan_in),
    biases uniform too); "kaiming" re-initializes with :func:`kaiming_init`."""
    if init not in INITS:
        raise UsageError(f"--init: unknown initialization {init!r}; valid: {', '.join(INITS)}")
    model = _build(name, spec, n_classes, hidden, width, dropout, norm)
    return kaiming_init(model) if init == "kaiming" else model


def _build(name, spec: InputSpec, n_classes, hidden, width, dropout, norm) -> nn.Module:
    if name not in MODELS:
        raise UsageError(f"--model: unknown model {name!r}; valid: {', '.join(MODELS)}")
    norm = resolve_norm(name, norm)
    input_shape, data_kind = spec.shape, spec.kind
    if name == "dcn":
        if data_kind != "tabular":
            raise UsageError(
                f"--model dcn needs tabular data (--csv, synthetic-ctr, breast_cancer, "
                f"wine); this data is {data_kind} with input shape {tuple(input_shape)}"
            )
        return DCN(spec, hidden, n_classes, dropout, norm)
    if name == "mlp":
        if spec.categorical:
            return EmbeddingMLP(spec, hidden, n_classes, dropout, norm)
        in_features = 1
        for d in input_shape:
            in_features *= d
        return MLP(in_features, hidden, n_classes, dropout, norm)
    if data_kind != "image" or len(input_shape) != 3:
        raise UsageError(
            f"--model {name} needs image data (--images, --cifar or --dataset digits); "
            f"this data is {data_kind} with input shape {tuple(input_shape)}"
        )
    cls = {"cnn": SmallCNN, "vgg16": VGG16, "resnet18": ResNet18}[name]
    return cls(tuple(input_shape), n_classes, width, dropout, norm)


def resolve_norm(name: str, norm: Optional[str]) -> str:
    """``auto`` means batch norm for vgg16/resnet18 and none for mlp/cnn."""
    if norm is None or norm == "auto":
        return "batch" if name in ("vgg16", "resnet18") else "none"
    return norm


def describe_model(name: str, model: nn.Module, hidden: Sequence[int], width: float) -> str:
    params = sum(p.numel() for p in model.parameters())
    embed = getattr(model, "embed", None)
    prefix = ""
    if isinstance(embed, FeatureEmbedding) and len(embed.embeddings):
        dims = "+".join(str(e.embedding_dim) for e in embed.embeddings)
        prefix = f"embeddings ({dims} wide) + "
    if name == "dcn":
        shape = "-".join(str(h) for h in hidden) or "linear"
        return f"{prefix}dcn-v2 ({len(model.cross)} cross layers | mlp {shape}) ({params:,} parameters)"
    if name == "mlp":
        shape = "-".join(str(h) for h in hidden) or "linear"
        return f"{prefix}mlp {shape} ({params:,} parameters)"
    return f"{name} width {width:g} ({params:,} parameters)"
