"""Training: configuration, data, augmentation, losses, EMA teacher and the U2PL trainer.

Public names are re-exported lazily, so ``from napari_crack_al.core.training import
TrainConfig`` does not import torch; the trainer, losses and EMA modules do.

Typical use::

    from napari_crack_al.core.training import TrainConfig, load_labeled_folder, train

    labeled = load_labeled_folder("images", "masks")
    for event in train(labeled, [], TrainConfig(mode="supervised"), out_dir="models"):
        ...
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "config",
    "TrainingImage": "data",
    "from_range_image": "data",
    "load_training_image": "data",
    "load_labeled_folder": "data",
    "load_unlabeled_folder": "data",
    "pair_by_stem": "data",
    "BatchSampler": "data",
    "weak_augment": "augment",
    "cutmix_masks": "augment",
    "apply_cutmix": "augment",
    "EMATeacher": "ema",
    "ema_decay": "ema",
    "ema_update": "ema",
    "TrainResult": "trainer",
    "train": "trainer",
    "poly_lr": "trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
