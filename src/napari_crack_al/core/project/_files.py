"""File-level helpers of the project store: the folder lock, crash leftovers, image shapes."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

try:  # advisory locks are POSIX-only; elsewhere stale temp files are simply left alone
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["ProjectLock", "is_temp_file", "remove_temp_files", "image_shape"]

logger = logging.getLogger(__name__)


def is_temp_file(name: str) -> bool:
    """Whether a file name is a temporary file of an atomic write (``.X.tmp...``)."""
    return name.startswith(".") and ".tmp" in name


def remove_temp_files(folders: Iterable[Path]) -> list[Path]:
    """Delete the temporary files of interrupted atomic writes in ``folders``; return them."""
    removed = []
    for folder in folders:
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                if is_temp_file(entry.name) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
                        removed.append(Path(entry.path))
    return removed


class ProjectLock:
    """Advisory ``flock`` on ``.crack-al/project.lock``.

    Every open project holds it shared. Opening a project takes it exclusively
    for a moment, which succeeds only when no other live project object (in any
    process) has the folder open; only then are temporary files left by a crash
    removed, so an atomic write in progress elsewhere is never disturbed. A
    killed process releases its lock automatically.
    """

    def __init__(self, path: Path) -> None:
        self._fd: int | None = None
        if fcntl is None:  # pragma: no cover
            return
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:  # read-only medium: work without the lock
            logger.debug("cannot open lock file %s (%s)", path, exc)

    def try_exclusive(self) -> bool:
        """Take the lock exclusively if nobody else holds it; never blocks."""
        if self._fd is None:
            return False
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def share(self) -> None:
        """Hold the lock shared (waits only while another opener holds it exclusively)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_SH)

    def close(self) -> None:
        """Release the lock."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def image_shape(path: Path) -> tuple[int, int]:
    """(H, W) of an image from its header where cheap (PNG, NPY, TIFF), else by decoding it.

    Raises
    ------
    ImageReadError
        The file is missing, empty or unreadable.
    """
    from ..io.range_io import check_file, read_image_array

    path, head = check_file(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".png" and head[12:16] == b"IHDR":
            return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
        if suffix == ".npy":
            fmt = np.lib.format
            with open(path, "rb") as fh:
                version = fmt.read_magic(fh)
                header = (fmt.read_array_header_1_0(fh) if version == (1, 0)
                          else fmt.read_array_header_2_0(fh))
            shape = header[0]
            if len(shape) == 2 or (len(shape) == 3 and shape[-1] in (1, 2, 3, 4)):
                return int(shape[0]), int(shape[1])
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = tif.pages[0]
                return int(page.imagelength), int(page.imagewidth)
    except Exception:  # odd header: let the full reader decide
        logger.debug("header shape of %s not readable; decoding", path, exc_info=True)
    h, w = read_image_array(path).shape[:2]
    return int(h), int(w)
