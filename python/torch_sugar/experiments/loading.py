""":func:`load_data`: the :class:`~.data.Data` of the config's data section, from a table
(:mod:`.tables`: CSV, Parquet, breast_cancer, wine, synthetic-ctr) or images (:mod:`.images`:
digits, an image folder, CIFAR)."""

from .config import DataConfig
from .data import Data
from .images import load_images, prepare_images
from .tables import load_table


def load_data(cfg: DataConfig) -> Data:
    """The data of ``cfg`` (a checked config), split and encoded."""
    if cfg.images is not None or cfg.cifar is not None or cfg.dataset == "digits":
        return prepare_images(load_images(cfg), cfg)
    return load_table(cfg)
