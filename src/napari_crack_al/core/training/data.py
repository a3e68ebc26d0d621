"""Training data: images with masks paired by file stem, batch sampling and batch assembly.

A :class:`TrainingImage` holds the *normalised* image (``normalize_for_model``),
its validity mask and, for labelled images, the crack mask. Images of any size
(and of different sizes) are used through random crops; images smaller than the
crop are padded with *ignore*. Colour photographs become one channel through
:func:`~napari_crack_al.core.io.range_io.read_range_image`.

numpy only (no torch): the trainer turns the arrays into tensors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageReadError, InputError, MaskError
from ..io.mask_io import read_mask
from ..normalize import normalize_for_model
from ..io.range_io import RangeImage, list_images, read_range_image
from .augment import make_target, weak_augment

__all__ = [
    "TrainingImage",
    "from_range_image",
    "load_training_image",
    "pair_by_stem",
    "load_labeled_folder",
    "check_mask_folder",
    "BatchSampler",
    "make_batch",
    "stable_key",
    "split_validation",
    "HELDOUT_FRACTION",
    "MIN_HELDOUT_POOL",
]

#: Share of the labelled images held out to calibrate the threshold and validate.
HELDOUT_FRACTION = 0.2
#: Nothing is held out from fewer labelled images than this.
MIN_HELDOUT_POOL = 5

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingImage:
    """One training (or validation) image.

    Attributes
    ----------
    name : str
        Image name (file stem).
    image : np.ndarray
        float32 (H, W), normalised for the model (invalid pixels 0).
    valid : np.ndarray
        bool (H, W).
    mask : np.ndarray or None
        bool (H, W) crack mask, ``None`` for an unlabelled image.
    """

    name: str
    image: np.ndarray
    valid: np.ndarray
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.image.ndim != 2:
            raise ValueError(f"{self.name}: image must be 2-D, got shape {self.image.shape}")
        if self.valid.shape != self.image.shape:
            raise ValueError(f"{self.name}: valid {self.valid.shape} differs from image "
                             f"{self.image.shape}")
        if self.mask is not None and self.mask.shape != self.image.shape:
            raise MaskError(None, f"{self.name}: mask size {self.mask.shape} differs from its image "
                                  f"{self.image.shape}")

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W)."""
        return (int(self.image.shape[0]), int(self.image.shape[1]))

    @property
    def labeled(self) -> bool:
        """Whether the image has a mask."""
        return self.mask is not None

    def target(self) -> np.ndarray:
        """uint8 (H, W) training target: 0 background, 1 crack, 255 ignore (invalid)."""
        return make_target(self.mask, self.valid)


def from_range_image(image: RangeImage, mask: np.ndarray | None = None, *, name: str | None = None,
                     profile: str = "none") -> TrainingImage:
    """Normalise a :class:`RangeImage` into a :class:`TrainingImage`.

    Parameters
    ----------
    image : RangeImage
        The image.
    mask : np.ndarray, optional
        bool (H, W) crack mask.
    name : str, optional
        Defaults to the image's file stem.
    profile : {"none", "column", "row"}
        Transverse-profile removal (see ``normalize_for_model``).
    """
    data = normalize_for_model(image, profile=profile)  # type: ignore[arg-type]
    m = None if mask is None else np.asarray(mask, dtype=bool)
    if m is not None and m.shape != image.shape:
        raise MaskError(image.path, f"mask is {m.shape[0]} x {m.shape[1]} pixels, image is "
                                    f"{image.shape[0]} x {image.shape[1]}")
    return TrainingImage(name=name if name is not None else image.name, image=data,
                         valid=np.asarray(image.valid, dtype=bool), mask=m)


def load_training_image(image_path: str | Path, mask_path: str | Path | None = None, *,
                        profile: str = "none") -> TrainingImage:
    """Read an image (and its mask) from disk.

    Raises
    ------
    ImageReadError, MaskError
        Unreadable files, or a mask whose size differs from its image.
    """
    img = read_range_image(image_path)
    mask = None if mask_path is None else read_mask(mask_path, expected_shape=img.shape)
    return from_range_image(img, mask, name=Path(image_path).stem, profile=profile)


def pair_by_stem(image_paths: Sequence[Path], mask_paths: Sequence[Path], *,
                 masks_dir: Path | None = None,
                 allow_unmasked: bool = False) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """Pair images with masks by file stem.

    Parameters
    ----------
    image_paths, mask_paths : sequence of Path
        The files (each list free of duplicate stems, as from ``list_images``).
    masks_dir : Path, optional
        Folder named in errors about missing masks.
    allow_unmasked : bool
        Return images without a mask separately instead of raising.

    Returns
    -------
    (list of (image, mask), list of Path)
        The pairs in image order, and the images without a mask.

    Raises
    ------
    MaskError
        A mask has no image of the same name, or (unless ``allow_unmasked``) an
        image has no mask; the message names them.
    """
    masks = {p.stem: p for p in mask_paths}
    images = {p.stem: p for p in image_paths}
    orphans = sorted(set(masks) - set(images))
    if orphans:
        shown = ", ".join(masks[s].name for s in orphans[:5]) + (" ..." if len(orphans) > 5 else "")
        raise MaskError(masks[orphans[0]], f"mask without an image of the same name: {shown}")
    pairs = [(p, masks[p.stem]) for p in image_paths if p.stem in masks]
    unmasked = [p for p in image_paths if p.stem not in masks]
    if unmasked and not allow_unmasked:
        shown = ", ".join(p.name for p in unmasked[:5]) + (" ..." if len(unmasked) > 5 else "")
        where = masks_dir if masks_dir is not None else unmasked[0]
        raise MaskError(where, f"no mask for image(s) {shown} (masks pair with images by file "
                               "name without suffix)")
    return pairs, unmasked


def load_labeled_folder(images_dir: str | Path, masks_dir: str | Path, *, profile: str = "none",
                        allow_unmasked: bool = False) -> list[TrainingImage]:
    """Read every image of ``images_dir`` with its mask from ``masks_dir`` (paired by stem).

    Raises
    ------
    InputError
        Missing or empty folders, unpaired names, unreadable files, size mismatches.
    """
    check_mask_folder(images_dir, masks_dir)
    images = list_images(images_dir)
    if not images:
        raise ImageReadError(images_dir, "no images found (supported: .png, .tif, .tiff, .npy)")
    masks = list_images_as_masks(masks_dir)
    pairs, _ = pair_by_stem(images, masks, masks_dir=Path(masks_dir), allow_unmasked=allow_unmasked)
    if not pairs:
        raise MaskError(masks_dir, "no mask matches any image by name")
    out = [load_training_image(i, m, profile=profile) for i, m in pairs]
    logger.info("loaded %d labelled images from %s", len(out), images_dir)
    return out


def check_mask_folder(images_dir: str | Path, masks_dir: str | Path) -> None:
    """Refuse a mask folder that is the image folder (every image would be its own mask).

    Raises
    ------
    MaskError
        Naming the folder.
    """
    if Path(images_dir).expanduser().resolve() == Path(masks_dir).expanduser().resolve():
        raise MaskError(masks_dir, "is the image folder; the masks must be in a folder of their "
                                   "own (same file names as the images)")


def list_images_as_masks(folder: str | Path) -> list[Path]:
    """``list_images`` for a mask folder (errors are :class:`MaskError`)."""
    try:
        return list_images(folder)
    except ImageReadError as exc:
        raise MaskError(exc.path, exc.problem) from exc


class BatchSampler:
    """Draw indices of ``n`` items in shuffled passes, ``batch_size`` at a time.

    Every item is used once per pass; with fewer items than the batch size the
    passes are concatenated, so a batch repeats items (sampling with replacement
    across passes). One or two labelled images therefore work.

    Parameters
    ----------
    n : int
        Number of items (>= 1).
    batch_size : int
        Items per batch.
    rng : numpy.random.Generator
        Source of randomness.
    """

    def __init__(self, n: int, batch_size: int, rng: np.random.Generator) -> None:
        if n < 1:
            raise InputError(None, "no training images")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.n = int(n)
        self.batch_size = int(batch_size)
        self.rng = rng
        self._queue: list[int] = []

    def next(self) -> list[int]:
        """Indices of the next batch."""
        while len(self._queue) < self.batch_size:
            self._queue.extend(int(i) for i in self.rng.permutation(self.n))
        out, self._queue = self._queue[:self.batch_size], self._queue[self.batch_size:]
        return out


def make_batch(items: Sequence[TrainingImage], indices: Sequence[int], rng: np.random.Generator, *,
               crop_size: int, flip: bool = True, rotate90: bool = True, gain_jitter: float = 0.0,
               offset_jitter: float = 0.0, crack_prob: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Weakly augmented crops of ``items[indices]``.

    Returns
    -------
    (np.ndarray, np.ndarray)
        Images float32 ``(B, 1, crop, crop)`` and targets uint8 ``(B, crop, crop)``
        (0/1/255; unlabelled images: 0 or 255 = invalid or padding).
    """
    imgs = np.empty((len(indices), 1, crop_size, crop_size), dtype=np.float32)
    tgts = np.empty((len(indices), crop_size, crop_size), dtype=np.uint8)
    for k, i in enumerate(indices):
        item = items[i]
        img, tgt = weak_augment(item.image, item.target(), rng, crop_size=crop_size, flip=flip,
                                rotate90=rotate90, gain_jitter=gain_jitter,
                                offset_jitter=offset_jitter, crack_prob=crack_prob)
        imgs[k, 0] = img
        tgts[k] = tgt
    return imgs, tgts


def stable_key(seed: int, name: str) -> str:
    """A pseudo-random sort key of ``name`` that depends only on the name and the seed."""
    import hashlib

    return hashlib.sha1(f"{seed}:{name}".encode()).hexdigest()


def split_validation(items: Sequence[TrainingImage], fraction: float = HELDOUT_FRACTION, *,
                     seed: int = 0, min_pool: int = MIN_HELDOUT_POOL,
                     ) -> tuple[list[TrainingImage], list[TrainingImage]]:
    """Hold out ``floor(n * fraction)`` labelled images (none when ``n < min_pool``).

    The held-out images are the first in a fixed pseudo-random order of their names
    (:func:`stable_key`), so the split does not depend on the order of the files and
    the same images stay held out when more are added.

    Returns
    -------
    (list, list)
        Training images and held-out images, each in the input order.
    """
    if not 0.0 <= float(fraction) < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    items = list(items)
    if len(items) < max(2, min_pool):
        return items, []
    k = int(len(items) * float(fraction))
    held = {t.name for t in sorted(items, key=lambda t: stable_key(seed, t.name))[:k]}
    return [t for t in items if t.name not in held], [t for t in items if t.name in held]
