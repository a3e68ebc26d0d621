"""npe2 reader: a range image, a crack mask, or a whole crack project.

* A range image (``.png .tif .tiff .npy``) opens as a gray Image layer whose
  contrast limits come from the valid pixels; its validity mask is in the
  layer's ``metadata["valid"]``.
* A binary 8-bit file (only 0/1/255, as this plugin writes masks) opens as a
  Labels layer (1 = crack).
* A project folder opens its first queued image with its mask (draft, else
  annotation, else suggestion, else empty) as a Labels layer. Inside a viewer
  the "Crack project" dock widget is added and takes over (queue, accept,
  skip); without a viewer the two layers are returned.

Errors about the file raise an :class:`~napari_crack_al.core.errors.InputError`
naming the file and the problem; napari shows it in its reader error dialog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .core.errors import ProjectError
from .core.range_io import SUPPORTED_IMAGE_SUFFIXES

__all__ = ["get_reader", "read_image", "read_project", "PLUGIN_NAME", "PROJECT_WIDGET_NAME"]

logger = logging.getLogger(__name__)

PLUGIN_NAME = "napari-crack-al"
PROJECT_WIDGET_NAME = "Crack project"

LayerData = tuple[Any, dict[str, Any], str]
ReaderFunction = Callable[[Any], list[Any]]


def _single_path(path: str | Path | Sequence[str | Path]) -> Path | None:
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    return Path(path)


def get_reader(path: str | Path | Sequence[str | Path]) -> ReaderFunction | None:
    """npe2 ``get_reader`` hook: a reader function for ``path``, or None.

    Parameters
    ----------
    path : str, Path or list of one of them
        A range image file or a project folder.

    Returns
    -------
    callable or None
        :func:`read_project` for a project folder, :func:`read_image` for a
        supported image file, None otherwise (napari then tries other readers).
    """
    single = _single_path(path)
    if single is None:
        return None
    if single.is_dir():
        from .core.project import Project

        return read_project if Project.is_project(single) else None
    if single.suffix.lower() in SUPPORTED_IMAGE_SUFFIXES:
        return read_image
    return None


def _is_binary_mask(arr: np.ndarray) -> bool:
    if arr.dtype == bool:
        return True
    if arr.dtype != np.uint8:
        return False
    return bool(np.isin(np.unique(arr), (0, 1, 255)).all())


def image_layer_data(image: Any, name: str) -> LayerData:
    """Layer data of a :class:`~napari_crack_al.core.range_io.RangeImage` for napari."""
    from .core.normalize import display_contrast_limits

    meta = {
        "name": name,
        "colormap": "gray",
        "contrast_limits": list(display_contrast_limits(image)),
        "metadata": {"valid": image.valid, "path": str(image.path), "source_dtype": image.source_dtype,
                     "crack_al_name": name},
    }
    return image.data, meta, "image"


def read_image(path: str | Path | Sequence[str | Path]) -> list[LayerData]:
    """Read one range image (or binary mask) as napari layer data.

    Raises
    ------
    ImageReadError
        The file cannot be read (corrupt, empty, no valid pixel, too large...).
    """
    from .core.range_io import read_image_array, read_range_image

    single = _single_path(path)
    if single is None:
        raise ProjectError(None, "open one image at a time with napari-crack-al")
    raw = read_image_array(single)
    if _is_binary_mask(raw):
        return [((raw > 0).astype(np.uint8), {"name": single.stem, "metadata": {"path": str(single)}},
                 "labels")]
    image = read_range_image(single)
    return [image_layer_data(image, single.stem)]


def read_project(path: str | Path | Sequence[str | Path]) -> list[Any]:
    """Open a project folder.

    In a running viewer the "Crack project" dock widget is added and the
    viewer's annotation session opens the project (showing its first queued
    image); napari's "nothing more to add" sentinel ``[(None,)]`` is returned.
    Without a viewer the first queued image and its mask are returned as layers.

    Raises
    ------
    ProjectError
        The folder is not a project or its database cannot be opened.
    """
    single = _single_path(path)
    if single is None:
        raise ProjectError(None, "open one project at a time")
    try:
        import napari

        viewer = napari.current_viewer()
    except ImportError:  # pragma: no cover - napari is a dependency
        viewer = None
    if viewer is not None:
        from .widgets.session import get_session

        window = getattr(viewer, "window", None)
        if window is not None and hasattr(window, "add_plugin_dock_widget"):
            window.add_plugin_dock_widget(PLUGIN_NAME, PROJECT_WIDGET_NAME)
        get_session(viewer).open_project(single)
        return [(None,)]
    return _project_layers(single)


def _project_layers(root: Path) -> list[LayerData]:
    from .core.project import Project
    from .core.range_io import read_range_image
    from .widgets.session import MASK_COLORMAP, labels_layer_name

    project = Project.open(root)
    try:
        names = project.names()
        name = project.next_name() or (names[0] if names else None)
        if name is None:
            raise ProjectError(root, "the project has no images")
        image = read_range_image(project.image_path(name))
        mask, source = project.mask_for_editing(name)
    finally:
        project.close()
    labels = np.zeros(image.shape, np.uint8) if mask is None else (np.asarray(mask) > 0).astype(np.uint8)
    return [
        image_layer_data(image, name),
        (labels, {"name": labels_layer_name(source), "colormap": MASK_COLORMAP, "opacity": 0.7,
                  "metadata": {"crack_al_name": name, "mask_source": source}}, "labels"),
    ]
