"""Image/mask pairs of a simulation: pairing two folders by stem, the validation split."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError, MaskError

__all__ = ["Pair", "pair_folders", "split_pairs", "check_unique"]

#: (image path, mask path).
Pair = tuple[Path, Path]


def pair_folders(images_dir: str | Path, masks_dir: str | Path) -> list[Pair]:
    """Pair every image of ``images_dir`` with its mask in ``masks_dir`` by file stem.

    Raises
    ------
    InputError
        Missing or empty folders, an image without a mask or a mask without an image
        (the message names them).
    """
    from ..errors import ImageReadError
    from ..io.range_io import list_images
    from ..training.data import check_mask_folder, list_images_as_masks, pair_by_stem

    check_mask_folder(images_dir, masks_dir)
    images = list_images(images_dir)
    if not images:
        raise ImageReadError(images_dir, "no images found (supported: .png, .tif, .tiff, .npy)")
    masks = list_images_as_masks(masks_dir)
    if not masks:
        raise MaskError(masks_dir, "no masks found (supported: .png, .tif, .tiff, .npy)")
    pairs, _ = pair_by_stem(images, masks, masks_dir=Path(masks_dir))
    return pairs


def split_pairs(pairs: Sequence[Pair], fraction: float, seed: int = 0
                ) -> tuple[list[Pair], list[Pair]]:
    """Split pairs into (training pool, validation) with ``round(n * fraction)`` validation pairs.

    The choice is a seeded permutation of the pairs sorted by image name, so it does
    not depend on the listing order. Both parts keep at least one pair.

    Raises
    ------
    ConfigError
        ``fraction`` is not in (0, 1), or there are fewer than 2 pairs.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
            or not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"the validation fraction must be a number in (0, 1) (got {fraction!r})")
    ordered = sorted(pairs, key=lambda p: p[0].stem)
    n = len(ordered)
    if n < 2:
        raise ConfigError(f"splitting needs at least 2 image/mask pairs (got {n})")
    n_val = min(n - 1, max(1, int(round(n * float(fraction)))))
    order = np.random.default_rng(seed).permutation(n)
    val_idx = set(int(i) for i in order[:n_val])
    train = [p for i, p in enumerate(ordered) if i not in val_idx]
    val = [p for i, p in enumerate(ordered) if i in val_idx]
    return train, val


def check_unique(pairs: Sequence[Pair], what: str) -> None:
    """Refuse pairs whose images share a file stem.

    Raises
    ------
    InputError
        Two or more images of ``what`` (e.g. ``"training"``) have the same stem.
    """
    stems = [p[0].stem for p in pairs]
    dup = sorted({s for s in stems if stems.count(s) > 1})
    if dup:
        raise InputError(pairs[0][0].parent, f"{what} images share names: {', '.join(dup[:5])}")
