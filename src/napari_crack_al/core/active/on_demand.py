"""A fresh suggestion for one image, when the annotator opens it and the round did not.

A round scores a bounded candidate set for a bounded time, so in a large pool most
waiting images keep the suggestion of an older model (or the detector's, or none). When
the annotator opens such an image, :func:`iter_fresh_suggestion` computes its suggestion
with the current model — in a thread worker of the widget, never on the UI thread — and
stores it like a round would: the model's mask at its calibrated threshold, unless the
round chose another source (:mod:`.suggestion_source`): then the tuned detector's mask,
or an empty one. Images with a draft, annotated or skipped ones are never touched.

napari-free; torch is imported by the model loading only.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..events import CancelToken, MessageEvent

__all__ = ["SOURCE_META", "FreshSuggestion", "needs_fresh_suggestion", "iter_fresh_suggestion",
           "remember_source"]

logger = logging.getLogger(__name__)

#: Project meta: ``{"version": model version, "source": "model" | "detector" | "none"}``.
SOURCE_META = "suggestion_source"


@dataclass(frozen=True)
class FreshSuggestion:
    """Event: the suggestion of ``name`` was stored with ``version`` (``source`` made it)."""

    name: str
    version: str
    source: str
    crack_pixels: int


def remember_source(project: Any, version: str, source: str) -> None:
    """Store which source suggests for model ``version`` (read by on-demand suggestions)."""
    project.set_meta(SOURCE_META, {"version": str(version), "source": str(source)})


def _source_of(project: Any, version: str) -> str:
    stored = project.get_meta(SOURCE_META, {}, kind=dict)
    if isinstance(stored, dict) and stored.get("version") == version \
            and stored.get("source") in ("model", "detector", "none"):
        return str(stored["source"])
    return "model"


def _fresh_version(project: Any, version: str) -> str:
    """The suggestion version an image would get now (the detector's is "builtin")."""
    from ..detector import BUILTIN_VERSION

    return BUILTIN_VERSION if _source_of(project, version) == "detector" else version


def needs_fresh_suggestion(project: Any, name: str) -> bool:
    """Whether ``name`` waits with a suggestion older than the current model's (or none).

    False without a model, for annotated or skipped images and for images with a draft
    (the annotator's work always wins).
    """
    from ..project import ImageStatus

    current = project.current_model()
    if current is None:
        return False
    try:
        record = project.record(name)
    except KeyError:  # removed from the project meanwhile
        return False
    if record.status not in (ImageStatus.NEW, ImageStatus.SUGGESTED) or project.has_draft(name):
        return False
    if record.suggestion_file_version is None:
        return True
    return record.suggestion_file_version != _fresh_version(project, str(current["version"]))


def iter_fresh_suggestion(project: Any, name: str, *, device: Any = None, tile: int = 512,
                          overlap: int = 64, cancel: CancelToken | None = None,
                          ) -> Generator[Any, None, FreshSuggestion | None]:
    """Compute and store the suggestion of ``name`` with the current model (or its source).

    Parameters
    ----------
    project : Project
        The project; its current model suggests.
    name : str
        The image.
    device : str or torch.device, optional
        Where the model runs (default CPU).
    tile, overlap : int
        Tiled inference settings.
    cancel : CancelToken, optional
        Checked between tiles.

    Yields
    ------
    MessageEvent, FreshSuggestion
        The event once the suggestion is stored.

    Returns
    -------
    FreshSuggestion or None
        None when nothing was needed, or when cancelled.
    """
    if not needs_fresh_suggestion(project, name):
        return None
    current = project.current_model()
    version = str(current["version"])
    source = _source_of(project, version)
    if source == "none":
        mask = np.zeros(project.image_shape(name), dtype=bool)
    elif source == "detector":
        from ..detector import tuned_detector_mask

        mask = tuned_detector_mask(project, name)
    else:
        mask = yield from _model_mask(project, Path(current["path"]), name,
                                      device=device, tile=tile, overlap=overlap, cancel=cancel)
        if mask is None:
            return None
    if not needs_fresh_suggestion(project, name):  # a draft or an accept came meanwhile
        return None
    project.set_suggestion(name, mask, _fresh_version(project, version))
    event = FreshSuggestion(name=name, version=version, source=source,
                            crack_pixels=int(np.count_nonzero(mask)))
    yield event
    return event


def _model_mask(project: Any, path: Path, name: str, *, device: Any, tile: int, overlap: int,
                cancel: CancelToken | None) -> Generator[Any, None, np.ndarray | None]:
    """The model's mask of ``name`` at its calibrated threshold (None when cancelled)."""
    from ..calibration import model_threshold
    from ..inference import Prediction, iter_predict_image
    from ..io.range_io import read_range_image
    from ..model import load_model
    from ..normalize import normalize_for_model

    model, ckpt = load_model(path, device=device)
    profile = str(ckpt.train_config.get("profile", "none"))
    image = normalize_for_model(read_range_image(project.image_path(name)), profile=profile)
    yield MessageEvent(f"suggesting {name} with {path.name}")
    pred = None
    for ev in iter_predict_image(model, image, tile=tile, overlap=min(overlap, tile // 2),
                                 device=device, cancel=cancel):
        if isinstance(ev, Prediction):
            pred = ev
    if pred is None:
        return None
    return pred.probability > model_threshold(ckpt.metadata)
