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

from ..lazy import lazy_exports

_EXPORTS = {
    "TrainConfig": "config",
    "TrainingImage": "data",
    "from_range_image": "data",
    "load_training_image": "data",
    "load_labeled_folder": "data",
    "load_unlabeled_folder": "lazy_images",
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

__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), _EXPORTS)
