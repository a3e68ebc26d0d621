"""``torch.load`` made safe: ``weights_only=True`` and one clear error naming the file.

:func:`safe_torch_load` tells a file of another kind (a PNG, a text file, a zip archive
that ``torch.save`` did not write) from its first bytes before ``torch.load`` sees it,
and turns every failure of ``torch.load`` into a :class:`CheckpointError`. Checkpoints
(:mod:`.checkpoint`) and encoder weights (:mod:`.segmenter`) load through it.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..io.sniff import describe_content, read_head

__all__ = ["safe_torch_load"]


def _zip_not_from_torch_save(path: Path) -> str | None:
    """Why a zip archive is not a ``torch.save`` file (no ``data.pkl``); None if it may be one."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):  # a cut archive: torch.load reports it as truncated
        return None
    if any(n.endswith("data.pkl") for n in names):
        return None
    return "looks like a zip archive that torch.save did not write"


def _not_a_checkpoint(path: Path) -> str | None:
    """What ``path`` is when its content shows it is no ``torch.save`` file, else None."""
    try:
        what = describe_content(read_head(path))
    except OSError:
        return None  # torch.load reports it
    if what == "the file is empty" or what.endswith(("a Python pickle", "a tar archive")):
        return None  # empty, or the legacy (pickle / tar) formats: left to torch.load
    if what == "looks like a zip archive":
        return _zip_not_from_torch_save(path)
    return what


def safe_torch_load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with a :class:`CheckpointError` naming the file.

    Raises
    ------
    CheckpointError
        Missing file, folder, a file of another kind ("not a PyTorch checkpoint
        (looks like a PNG image)"), truncated or corrupt file, or a file holding
        objects other than tensors and plain data (refused unpickled: nothing is
        executed).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "file does not exist")
    if not path.is_file():
        raise CheckpointError(path, "is not a file")
    foreign = _not_a_checkpoint(path)
    if foreign is not None:
        raise CheckpointError(path, f"not a PyTorch checkpoint ({foreign})")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "weights only" in first.lower():
            raise CheckpointError(
                path, "refused: the file contains Python objects other than tensors and plain "
                "data (unsafe pickle); it was not loaded"
            ) from None
        raise CheckpointError(path, f"not a PyTorch file or corrupt ({first[:120]})") from None
    except EOFError:
        raise CheckpointError(path, "file is empty or truncated") from None
    except (RuntimeError, zipfile.BadZipFile) as exc:
        msg = str(exc).lower()
        if "zip" in msg or "central directory" in msg or "eof" in msg:
            raise CheckpointError(
                path, "file is truncated or corrupt (incomplete zip archive)"
            ) from None
        raise CheckpointError(
            path, f"cannot be read as a PyTorch file ({str(exc)[:120]})"
        ) from None
    except (KeyError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise CheckpointError(path, f"not a PyTorch file ({type(exc).__name__})") from None
    except OSError as exc:
        raise CheckpointError(path, f"cannot be read ({exc.strerror or exc})") from None
