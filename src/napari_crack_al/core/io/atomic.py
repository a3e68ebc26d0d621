"""Atomic file writes: temporary file in the same folder, fsync, rename, fsync of the folder.

A reader (or a process restarted after a crash) sees either the old file or the
new one, never a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import InputError

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_path", "fsync_dir", "TMP_NAME_CHARS"]

#: Characters of the destination's name kept in a temporary file's name.
TMP_NAME_CHARS = 80
#: A temporary file of a destination older than this (seconds) is left over from a killed write.
STALE_SECONDS = 3600.0


def _remove_stale_temps(path: Path) -> None:
    """Remove what killed writes to ``path`` left (our temp names, older than an hour)."""
    import time

    prefix = f".{path.name[:TMP_NAME_CHARS]}."
    suffix = ".tmp" + path.suffix[:16]
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            if entry.name.startswith(prefix) and entry.name.endswith(suffix) \
                    and len(entry.name) == len(prefix) + 8 + len(suffix):
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime > STALE_SECONDS:
                        os.unlink(entry.path)


def _default_mode() -> int:
    """Permissions of a new file under the current umask (mkstemp alone gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entry table to disk (no-op where the OS does not support it)."""
    if os.name == "nt":  # pragma: no cover - Windows cannot open folders
        return
    fd = os.open(str(folder), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, error: type[InputError] = InputError) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path`` atomically.

    The caller writes the temporary file by any means (a library that wants a file
    name, say). The file is fsynced, renamed and the folder fsynced. On any error
    the temporary file is removed and ``path`` is left untouched. Temporary files of
    the same destination older than an hour (left by a write that was killed) are
    removed first.

    Parameters
    ----------
    path : str or Path
        The final destination.
    error : type of InputError
        Exception class raised when the folder is missing or not writable.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise error(folder, "folder does not exist")
    _remove_stale_temps(path)
    try:
        # a short prefix: a file name near the system's limit (255 bytes) must still fit
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name[:TMP_NAME_CHARS]}.",
                                        suffix=".tmp" + path.suffix[:16], dir=folder)
    except PermissionError as exc:
        raise error(folder, "folder is not writable (permission denied)") from exc
    except OSError as exc:
        raise error(folder, f"cannot create a file here ({exc.strerror})") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        try:
            mode = path.stat().st_mode & 0o7777  # keep the permissions of the file replaced
        except FileNotFoundError:
            mode = _default_mode()
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        fsync_dir(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], *,
                 error: type[InputError] = InputError) -> Path:
    """Write a file atomically through ``write(file_object)``.

    Parameters
    ----------
    path : str or Path
        The final destination.
    write : callable
        Receives a binary file object open for writing.
    error : type of InputError
        Exception class for folder problems.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    with atomic_path(path, error=error) as tmp:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
    return path


def atomic_write_bytes(path: str | Path, data: bytes, *, error: type[InputError] = InputError) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda fh: fh.write(data), error=error)


def probe_writable(folder: str | Path) -> None:
    """Create and remove a file in ``folder``: the real test of writability.

    ``os.access`` is wrong on read-only file systems, network shares and for root.

    Raises
    ------
    OSError
        The file could not be created (its ``errno`` says why).
    """
    fd, probe = tempfile.mkstemp(prefix=".write-test.", suffix=".tmp", dir=folder)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
