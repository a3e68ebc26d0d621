"""Training images read from disk when a batch needs them, with a small cache.

A semi-supervised round draws a few unlabelled crops per step from a pool of
thousands of images. Holding the whole normalised pool in memory makes a round's
memory grow with the number and size of the images; :class:`LazyImages` instead
reads and normalises an image when a batch asks for it and keeps the most recently
used ones up to a byte budget (least recently used dropped first), so memory stays
bounded whatever the pool.

An image that cannot be read is reported once (logged, listed in :attr:`LazyImages.failed`)
and the next readable image of the pool is used instead: one bad file does not stop a
round. numpy only (no torch).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

from ..errors import ImageReadError, InputError
from .data import TrainingImage

__all__ = ["DEFAULT_CACHE_BYTES", "LazyImages", "NoReadableImage", "image_names",
           "load_unlabeled_folder"]

logger = logging.getLogger(__name__)

#: Default byte budget of the cache (about 50 normalised 2048 x 1024 images or 400 of 512²).
DEFAULT_CACHE_BYTES = 512 * 2**20


class NoReadableImage(InputError):
    """No image of a lazy pool can be read (each was tried once)."""


def _nbytes(item: TrainingImage) -> int:
    """Bytes an image holds in memory (normalised image, valid pixels, mask)."""
    total = item.image.nbytes + item.valid.nbytes
    return total + (item.mask.nbytes if item.mask is not None else 0)


class LazyImages(Sequence[TrainingImage]):
    """A sequence of training images, each read by ``load(name)`` when it is indexed.

    Parameters
    ----------
    names : iterable of str
        The images, in order (``self[i]`` is ``load(names[i])``).
    load : callable
        ``load(name) -> TrainingImage``; raises :class:`~napari_crack_al.core.errors.InputError`
        for a file that cannot be read.
    cache_bytes : int
        Most bytes of images kept between uses (the image being returned is always
        kept, even when it alone is larger).

    Attributes
    ----------
    failed : dict of str to str
        ``{name: problem}`` of the images that could not be read (each tried once).
    loads : int
        Number of reads so far (cache misses).
    peak_bytes : int
        Most bytes the cache held at any time.
    """

    def __init__(self, names: Iterable[str], load: Callable[[str], TrainingImage], *,
                 cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if isinstance(cache_bytes, bool) or not isinstance(cache_bytes, int) or cache_bytes < 0:
            raise ValueError(f"cache_bytes must be an integer >= 0, got {cache_bytes!r}")
        self._names = list(names)
        self._load = load
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[str, TrainingImage] = OrderedDict()
        self._bytes = 0
        self.failed: dict[str, str] = {}
        self.loads = 0
        self.peak_bytes = 0

    @property
    def names(self) -> list[str]:
        """The image names, in order (nothing is read)."""
        return list(self._names)

    @property
    def cached_bytes(self) -> int:
        """Bytes of images held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._names)

    @overload
    def __getitem__(self, index: int) -> TrainingImage: ...

    @overload
    def __getitem__(self, index: slice) -> list[TrainingImage]: ...

    def __getitem__(self, index: int | slice) -> TrainingImage | list[TrainingImage]:
        """The image at ``index`` (read now unless cached), or the next readable one.

        Raises
        ------
        IndexError
            ``index`` is out of range.
        NoReadableImage
            No image of the pool can be read.
        """
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self._names)
        if not -n <= index < n:
            raise IndexError(f"image index {index} out of range for {n} images")
        start = index % n
        for k in range(n):
            item = self._get(self._names[(start + k) % n])
            if item is not None:
                return item
        raise NoReadableImage(None, f"none of the {n} images can be read "
                               f"(first: {next(iter(self.failed.items()))[1]})")

    def __iter__(self) -> Iterator[TrainingImage]:
        for i in range(len(self)):
            yield self[i]

    def _get(self, name: str) -> TrainingImage | None:
        """The cached or freshly read image ``name``; None when it cannot be read."""
        if name in self._cache:
            self._cache.move_to_end(name)
            return self._cache[name]
        if name in self.failed:
            return None
        try:
            item = self._load(name)
        except InputError as exc:
            self.failed[name] = exc.problem
            logger.warning("skipping %s for training: %s", name, exc)
            return None
        self.loads += 1
        self._keep(name, item)
        return item

    def _keep(self, name: str, item: TrainingImage) -> None:
        """Cache ``item``, dropping the least recently used images beyond the budget."""
        self._cache[name] = item
        self._bytes += _nbytes(item)
        while self._bytes > self.cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._bytes -= _nbytes(old)
        self.peak_bytes = max(self.peak_bytes, self._bytes)


def image_names(images: Sequence[Any]) -> list[str]:
    """The names of a sequence of training images, without reading a lazy one."""
    names = getattr(images, "names", None)
    if isinstance(names, list):
        return list(names)
    return [t.name for t in images]


def load_unlabeled_folder(images_dir: str | Path, *, profile: str = "none",
                          exclude: Iterable[str] = (),
                          cache_bytes: int = DEFAULT_CACHE_BYTES) -> LazyImages:
    """The images of a folder without masks, read when a batch uses them.

    Parameters
    ----------
    images_dir : str or Path
        The folder.
    profile : str
        Transverse-profile removal of the normalisation.
    exclude : iterable of str
        Names (file stems) left out, e.g. the labelled images.
    cache_bytes : int
        Byte budget of the cache.

    Returns
    -------
    LazyImages
        Empty when every image is excluded.

    Raises
    ------
    ImageReadError
        The folder is missing or holds no image.
    """
    from ..io.range_io import list_images
    from .data import load_training_image

    every = list_images(images_dir)
    if not every:
        raise ImageReadError(images_dir, "no images found (supported: .png, .tif, .tiff, .npy)")
    skip = set(exclude)
    by_name = {p.stem: p for p in every if p.stem not in skip}
    if not by_name:
        logger.warning("%s: every image is excluded (it has a mask)", images_dir)
    return LazyImages(by_name, lambda name: load_training_image(by_name[name], profile=profile),
                      cache_bytes=cache_bytes)
