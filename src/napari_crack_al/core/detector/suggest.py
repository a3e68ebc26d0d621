"""First suggestions of a new project, before any model: the training-free detector's masks.

:func:`iter_builtin_suggestions` runs :func:`~.ridge.detect_cracks` on the images of a
project that have neither an annotation nor a suggestion, and stores each mask as the
image's suggestion (model version :data:`BUILTIN_VERSION`) and its evidence map as the
crack probability overlay. The napari session runs it in a thread worker when a
project without a model opens, the current image first; the first training round
replaces these suggestions with the model's.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..events import CancelToken, MessageEvent, ProgressEvent
from .ridge import DetectorConfig, detect_cracks

__all__ = ["BUILTIN_VERSION", "SuggestionReady", "needs_builtin_suggestion",
           "iter_builtin_suggestions"]

logger = logging.getLogger(__name__)

#: Model version recorded for the detector's suggestions.
BUILTIN_VERSION = "builtin"


@dataclass(frozen=True)
class SuggestionReady:
    """Event: the detector's suggestion of image ``name`` was stored."""

    name: str
    crack_pixels: int


def needs_builtin_suggestion(project: Any, name: str) -> bool:
    """Whether ``name`` is still waiting with nothing to start from (no mask of any kind)."""
    from ..project import ImageStatus

    rec = project.record(name)
    if rec.status not in (ImageStatus.NEW, ImageStatus.SUGGESTED):
        return False
    return rec.suggestion_model_version is None and not project.has_draft(name)


def iter_builtin_suggestions(project: Any, names: Sequence[str] | None = None, *,
                             config: DetectorConfig | None = None,
                             store_probabilities: bool = True,
                             cancel: CancelToken | None = None,
                             ) -> Generator[Any, None, list[str]]:
    """Store the detector's suggestion of every image that has nothing to start from.

    Parameters
    ----------
    project : Project
        The open project.
    names : sequence of str, optional
        Images in the order to process them (default: the queue order); images that
        meanwhile got a mask, a draft or a model suggestion are skipped.
    config : DetectorConfig, optional
        Detector settings.
    store_probabilities : bool
        Also store the detector's evidence map for the probability overlay.
    cancel : CancelToken, optional
        Checked between images.

    Yields
    ------
    ProgressEvent, SuggestionReady, MessageEvent

    Returns
    -------
    list of str
        The images that got a suggestion.
    """
    from ..active.probability import write_probability
    from ..range_io import read_range_image

    order = list(names) if names is not None else [r.name for r in project.records()]
    done: list[str] = []
    for i, name in enumerate(order):
        if cancel is not None and cancel.cancelled:
            break
        yield ProgressEvent(i, len(order), "first suggestions")
        if not needs_builtin_suggestion(project, name):
            continue
        try:
            image = read_range_image(project.image_path(name))
        except InputError as exc:
            yield MessageEvent(f"skipped: {exc}")
            continue
        found = detect_cracks(image.data, image.valid, config)
        if not needs_builtin_suggestion(project, name):  # a model or the annotator was faster
            continue
        project.set_suggestion(name, found.mask, BUILTIN_VERSION)
        if store_probabilities:
            write_probability(project, name, found.score)
        done.append(name)
        yield SuggestionReady(name=name, crack_pixels=int(found.mask.sum()))
    yield ProgressEvent(len(order), len(order), "first suggestions")
    logger.info("detector suggestions for %d image(s)", len(done))
    return done
