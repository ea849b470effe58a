"""The machinery behind ``torch-sugar compare``: ReLU vs SUGAR on real data.

- :mod:`.data`: built-in, synthetic click, CSV, image-folder and CIFAR data, stratified splits,
  categorical vocabularies and scaling fitted on the training rows (:class:`.data.InputSpec`);
- :mod:`.activations`: parsing ``--activations`` and swapping activations into a model;
- :mod:`.models`: MLP, embeddings + MLP, DCN-v2, small CNN, CIFAR-style VGG-16 and ResNet-18 in
  plain PyTorch;
- :mod:`.user_model`: ``--model-fn`` (the user's own model) and ``--save-models``;
- :mod:`.metrics`: loss, accuracy, AUC, PR-AUC, uAUC (scikit-learn) and the paired t-test (scipy);
- :mod:`.train`: one seeded, deterministic training run with dead-unit tracking and best-epoch
  selection;
- :mod:`.report`: the terminal table, results.json/results.csv and the plots;
- :mod:`.compare`: the whole experiment (every activation x every seed).
"""

from .errors import UsageError

__all__ = ["UsageError"]
