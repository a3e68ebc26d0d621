"""npe2 reader: a range image, a crack mask, or a whole crack project.

* A range image (``.png .tif .tiff .npy``) opens as an Image layer of the file's
  values, unaltered (a colour photograph stays RGB); its contrast limits come from the
  valid pixels and its validity mask is in the layer's ``metadata["valid"]``.
* A binary 8-bit file (only 0/1/255, as this plugin writes masks) opens as a
  Labels layer (1 = crack).
* A project folder gives two layers: its first queued image and that image's mask
  (draft, else annotation, else suggestion, else empty) as Labels. Both carry the
  project folder in ``metadata["crack_al_reader_project"]``; the "Crack project"
  panel, when it is open or once it is opened, takes the project over from them
  (queue, accept, skip). The reader itself only returns layer data: it adds no
  widget and touches no viewer.

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
from .core.io.range_io import SUPPORTED_IMAGE_SUFFIXES

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
    """Layer data of a :class:`~napari_crack_al.core.io.range_io.RangeImage` for napari."""
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
    """Read one range image (or binary mask) as napari layer data, its values unaltered.

    Raises
    ------
    ImageReadError
        The file cannot be read (corrupt, empty, no valid pixel, too large...).
    """
    from .core.normalize import display_contrast_limits
    from .core.io.range_io import load_array, range_image_from_array

    single = _single_path(path)
    if single is None:
        raise ProjectError(None, "open one image at a time with napari-crack-al")
    raw = load_array(single)  # as stored; checks the header's size first
    if raw.ndim == 3 and raw.shape[-1] == 1:
        raw = raw[..., 0]
    if raw.ndim == 2 and _is_binary_mask(raw):
        return [((raw > 0).astype(np.uint8), {"name": single.stem, "metadata": {"path": str(single)}},
                 "labels")]
    image = range_image_from_array(raw, single)  # the valid pixels and the display limits
    data = raw
    rgb = data.ndim == 3 and data.shape[-1] in (3, 4)
    meta: dict[str, Any] = {
        "name": single.stem,
        "rgb": rgb,
        "metadata": {"valid": image.valid, "path": str(single), "source_dtype": image.source_dtype,
                     "crack_al_name": single.stem},
    }
    if not rgb:
        meta["colormap"] = "gray"
        meta["contrast_limits"] = list(display_contrast_limits(image))
    return [(data, meta, "image")]


def read_project(path: str | Path | Sequence[str | Path]) -> list[LayerData]:
    """Open a project folder as layer data: its first queued image and that image's mask.

    Both layers name the project in ``metadata["crack_al_reader_project"]``, so the "Crack
    project" panel can take the project over; the reader adds no widget.

    Raises
    ------
    ProjectError
        The folder is not a project, has no images, or its database cannot be opened.
    """
    single = _single_path(path)
    if single is None:
        raise ProjectError(None, "open one project at a time")
    from .widgets.reader_handoff import READER_PROJECT_KEY

    layers = _project_layers(single)
    for _data, meta, _kind in layers:
        meta.setdefault("metadata", {})[READER_PROJECT_KEY] = str(single)
    return layers


def _project_layers(root: Path) -> list[LayerData]:
    from .core.project import Project
    from .core.io.range_io import read_range_image
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
