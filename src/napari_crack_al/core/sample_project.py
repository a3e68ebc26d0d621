"""Write a folder of synthetic range images with ground truth (``make-sample``).

Layout::

    ROOT/images/sample_0000.png        uint16 range image (0 = no laser return)
    ROOT/ground_truth/sample_0000.png  0/255 crack mask

Image ``i`` is generated from the seed ``(seed, i)``, so a larger ``n`` extends a
smaller one with identical first images. Every file is written atomically.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .io.atomic import atomic_write_bytes
from .errors import ConfigError, ProjectError
from .io.mask_io import write_mask
from .synthetic import SyntheticConfig, generate_range_image

__all__ = ["IMAGES_DIR", "GROUND_TRUTH_DIR", "sample_name", "write_png16", "write_sample_images"]

log = logging.getLogger(__name__)

IMAGES_DIR = "images"
GROUND_TRUTH_DIR = "ground_truth"
_SAMPLE_RE = re.compile(r"^sample_\d{4,}\.png$")


def sample_name(i: int) -> str:
    """Stem of the ``i``-th sample image (``sample_0000``)."""
    return f"sample_{i:04d}"


def write_png16(path: str | Path, image: np.ndarray) -> Path:
    """Write a 2-D ``uint16`` array atomically as a 16-bit grayscale PNG.

    Parameters
    ----------
    path : str or Path
        Destination (its folder must exist).
    image : ndarray of uint16, (H, W)
        The pixel values.

    Returns
    -------
    Path
        ``path``.
    """
    from PIL import Image

    arr = np.ascontiguousarray(image)
    if arr.ndim != 2 or arr.dtype != np.uint16:
        raise ValueError(f"expected a 2-D uint16 array, got {arr.dtype} {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue(), error=ProjectError)


def _prepare(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise ProjectError(folder, "exists and is not a folder")
    if folder.is_dir():
        existing = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        if existing and not overwrite:
            raise ProjectError(folder, f"is not empty ({len(existing)} files, e.g. {existing[0]}); "
                                       "refusing to overwrite without overwrite/--force")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProjectError(folder, f"cannot create the folder ({exc.strerror or exc})") from exc


def write_sample_images(root: str | Path, n: int = 50, size: int | tuple[int, int] = 512,
                        seed: int = 0, *, pixel_size_mm: float = 1.0,
                        config: SyntheticConfig | None = None, overwrite: bool = False,
                        progress: Callable[[int, int], None] | None = None) -> list[Path]:
    """Write ``n`` synthetic range images and their ground-truth masks under ``root``.

    Parameters
    ----------
    root : str or Path
        Destination folder (created if missing).
    n : int
        Number of images (>= 1).
    size : int or (int, int)
        Image shape; ignored when ``config`` is given.
    seed : int
        Series seed; image ``i`` uses ``(seed, i)``.
    pixel_size_mm : float
        Ground sampling distance; ignored when ``config`` is given.
    config : SyntheticConfig, optional
        Full generator configuration.
    overwrite : bool
        Allow a non-empty ``root/images``; stale ``sample_*.png`` files beyond ``n`` are removed
        from ``images/`` and ``ground_truth/`` so that the two folders stay paired.
    progress : callable, optional
        Called as ``progress(done, total)`` after each image.

    Returns
    -------
    list of Path
        The image files, in order.

    Raises
    ------
    ProjectError
        ``root/images`` is not empty (and ``overwrite`` is False), or a folder cannot be written.
    ConfigError
        ``n``, ``size`` or ``seed`` is invalid.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"n must be a positive integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    cfg = config if config is not None else SyntheticConfig(size=size, pixel_size_mm=pixel_size_mm)
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ProjectError(root, "exists and is not a folder")
    images_dir, truth_dir = root / IMAGES_DIR, root / GROUND_TRUTH_DIR
    _prepare(images_dir, overwrite)
    _prepare(truth_dir, overwrite)
    keep = {sample_name(i) + ".png" for i in range(n)}
    for folder in (images_dir, truth_dir):
        for stale in folder.iterdir():
            if _SAMPLE_RE.match(stale.name) and stale.name not in keep:
                log.info("removing stale sample file %s", stale)
                stale.unlink()
    paths: list[Path] = []
    for i in range(int(n)):
        sample = generate_range_image((int(seed), i), cfg)
        name = sample_name(i) + ".png"
        # ground truth first: an image never exists without its mask
        write_mask(truth_dir / name, sample.mask, values=255)
        paths.append(write_png16(images_dir / name, sample.range_image))
        if progress is not None:
            progress(i + 1, int(n))
    log.info("wrote %d synthetic images (%dx%d) to %s", n, *cfg.shape, images_dir)
    return paths
