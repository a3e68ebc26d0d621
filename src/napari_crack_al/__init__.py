"""napari-crack-al: semi-automatic pixel annotation of pavement cracks.

Importing the package is cheap: it imports neither torch nor Qt nor napari.
The napari-free core lives in :mod:`napari_crack_al.core`, the widgets in
:mod:`napari_crack_al.widgets` and the command line in :mod:`napari_crack_al.cli`.
"""

from __future__ import annotations

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("napari-crack-al")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
