"""Where an export may write: a checked output folder and file names kept inside it.

Every target of an export is checked before anything is written: a name that would
land outside the output folder (odd names, symbolic links) is refused, so are the
project's own folders, and an output folder that cannot be written is reported by name.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ExportError
from ..io.atomic import probe_writable

__all__ = ["named_paths", "safe_target", "refuse_project_folders", "prepare_folder"]

_MAX_NAMED = 10




def named_paths(paths: Sequence[Path], root: Path) -> str:
    """The first few of ``paths`` for a message (names only for files in ``root``)."""
    shown = [p.name if p.parent == root else str(p) for p in paths[:_MAX_NAMED]]
    more = f" and {len(paths) - _MAX_NAMED} more" if len(paths) > _MAX_NAMED else ""
    return ", ".join(shown) + more


def safe_target(out_dir: Path, resolved_out: Path, filename: str) -> Path:
    """``out_dir / filename``, refusing names that would put the file anywhere else."""
    bad = (not filename or filename in (".", "..") or "/" in filename or "\\" in filename
           or "\0" in filename or os.path.isabs(filename) or (os.altsep and os.altsep in filename))
    target = out_dir / filename
    if not bad:
        try:
            bad = target.resolve().parent != resolved_out
        except (OSError, RuntimeError):  # symlink loops and the like
            bad = True
    if bad:
        raise ExportError(out_dir, f"refusing to write {filename!r}: the file would not be inside "
                                   "the output folder (image names must be plain file names)")
    return target


def refuse_project_folders(project: Any, out_dir: Path) -> None:
    """Refuse an output folder that is the project's image or mask folder or in its store.

    Exported files there would become new "images" on the next refresh, or replace the
    annotator's accepted masks.
    """
    resolved = out_dir.resolve()
    for attr, what in (("images_dir", "image folder"), ("annotations_dir", "mask folder"),
                       ("state_dir", "internal store")):
        folder = getattr(project, attr, None)
        if folder is None:
            continue
        folder = Path(folder).resolve()
        if resolved == folder or folder in resolved.parents:
            raise ExportError(out_dir, f"is inside the project's {what} ({folder}); choose an "
                                       "output folder outside it")


def prepare_folder(out_dir: Path) -> Path:
    """Create ``out_dir`` when missing and check that files can be created in it."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(out_dir, "is a file, not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except PermissionError as exc:
        raise ExportError(out_dir, "cannot create the output folder (permission denied)") from exc
    except OSError as exc:
        raise ExportError(out_dir,
                          f"cannot create the output folder ({exc.strerror or exc})") from exc
    try:
        probe_writable(out_dir)
    except PermissionError as exc:
        raise ExportError(out_dir, "output folder is not writable (permission denied)") from exc
    except OSError as exc:
        raise ExportError(out_dir,
                          f"output folder is not writable ({exc.strerror or exc})") from exc
    return out_dir.resolve()
