"""The machinery behind ``torch-sugar compare``: ReLU vs SUGAR on real data.

- :mod:`.data`: built-in, synthetic click, CSV, image-folder and CIFAR data, stratified splits;
- :mod:`.activations`: parsing ``--activations`` and swapping activations into a model;
- :mod:`.models`: MLP, small CNN, CIFAR-style VGG-16 and ResNet-18 in plain PyTorch;
- :mod:`.metrics`: loss, accuracy, AUC, uAUC and the paired t-test;
- :mod:`.train`: one seeded, deterministic training run with dead-unit tracking;
- :mod:`.report`: the terminal table, results.json/results.csv and the plots;
- :mod:`.compare`: the whole experiment (every activation x every seed).
"""
from .errors import UsageError

__all__ = ["UsageError"]
