"""Exceptions raised by the core.

Every error about user data names the file and the problem, so that the CLI can
print it as one line and napari can show it as a notification.
"""

from __future__ import annotations

from pathlib import Path


class CrackALError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(CrackALError):
    """A file given by the user cannot be used.

    Parameters
    ----------
    path : str or Path or None
        The offending file or folder.
    problem : str
        What is wrong with it, in words a user understands.
    """

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{problem}")


class ImageReadError(InputError):
    """An image cannot be read (corrupt, truncated, empty, wrong shape, too large...)."""


class MaskError(InputError):
    """A mask cannot be read or written, or does not match its image."""


class ProjectError(InputError):
    """A project folder cannot be created, opened or updated."""


class CheckpointError(InputError):
    """A model checkpoint cannot be loaded (truncated, unsafe, incompatible)."""


class ModelOutputError(CheckpointError):
    """A model ran but its output cannot be used (NaN, wrong shape, out of memory)."""


class ConfigError(CrackALError, ValueError):
    """A configuration value is invalid; the message lists the valid options."""


class ExportError(InputError):
    """An export would overwrite a file, escape its folder, or cannot be written."""
