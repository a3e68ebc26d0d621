"""First suggestions of a new project, before any model: the training-free detector's masks.

:func:`iter_builtin_suggestions` runs :func:`~.ridge.detect_cracks` on the images of a
project that have neither an annotation nor a suggestion, and stores each mask as the
image's suggestion (model version :data:`BUILTIN_VERSION`) and its evidence map as the
crack probability overlay. The napari session runs it in a thread worker when a
project without a model opens, the current image first; the first training round
replaces these suggestions with the model's.

With the settings tuned on the project's accepted masks (:mod:`.calibrate`), stored in
the project, the detector adapts to the project before any model exists:
:func:`iter_tune_detector` calibrates after an accept and re-suggests the images whose
detector suggestion is still untouched; where the calibration found the detector not
worth fixing, the suggestion is empty.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..events import CancelToken, MessageEvent, ProgressEvent
from .calibrate import DETECTOR_META_KEY, CalibrationTally, DetectorCalibration, stored_calibration
from .ridge import DetectorConfig, detect_cracks

__all__ = ["BUILTIN_VERSION", "SuggestionReady", "DetectorTuned", "needs_builtin_suggestion",
           "iter_builtin_suggestions", "tuned_detector_mask", "tuning_samples",
           "iter_tune_detector"]

logger = logging.getLogger(__name__)

#: Model version recorded for the detector's suggestions.
BUILTIN_VERSION = "builtin"


@dataclass(frozen=True)
class SuggestionReady:
    """Event: the detector's suggestion of image ``name`` was stored."""

    name: str
    crack_pixels: int


@dataclass(frozen=True)
class DetectorTuned:
    """Event: the detector was calibrated on the project's accepted masks (and stored)."""

    calibration: DetectorCalibration


def needs_builtin_suggestion(project: Any, name: str, *, replace_builtin: bool = False) -> bool:
    """Whether ``name`` is still waiting with nothing to start from (no mask of any kind).

    With ``replace_builtin``, an image whose only mask is the detector's own untouched
    suggestion also counts (it is re-detected with newly tuned settings).
    """
    from ..project import ImageStatus

    rec = project.record(name)
    if rec.status not in (ImageStatus.NEW, ImageStatus.SUGGESTED) or project.has_draft(name):
        return False
    version = rec.suggestion_model_version
    return version is None or (replace_builtin and version == BUILTIN_VERSION)


def iter_builtin_suggestions(project: Any, names: Sequence[str] | None = None, *,
                             config: DetectorConfig | None = None,
                             replace_builtin: bool = False,
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
        Detector settings (default: those tuned on the project, see :mod:`.calibrate`,
        else the defaults; a project where the tuned detector is off gets empty masks).
    replace_builtin : bool
        Also re-detect images whose suggestion is the detector's and untouched.
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
    from ..io.range_io import read_range_image

    import numpy as np

    tuned = stored_calibration(project) if config is None else None
    cfg = tuned.config if tuned is not None else config
    off = tuned is not None and not tuned.useful
    order = list(names) if names is not None else [r.name for r in project.records()]
    done: list[str] = []
    for i, name in enumerate(order):
        if cancel is not None and cancel.cancelled:
            break
        yield ProgressEvent(i, len(order), "first suggestions")
        if not needs_builtin_suggestion(project, name, replace_builtin=replace_builtin):
            continue
        try:
            image = read_range_image(project.image_path(name))
        except InputError as exc:
            yield MessageEvent(f"skipped: {exc}")
            continue
        found = detect_cracks(image.data, image.valid, cfg)
        if not needs_builtin_suggestion(project, name, replace_builtin=replace_builtin):
            continue  # a model or the annotator was faster
        mask = np.zeros_like(found.mask) if off else found.mask
        project.set_suggestion(name, mask, BUILTIN_VERSION)
        if store_probabilities:
            write_probability(project, name, found.score)
        done.append(name)
        yield SuggestionReady(name=name, crack_pixels=int(mask.sum()))
    yield ProgressEvent(len(order), len(order), "first suggestions")
    logger.info("detector suggestions for %d image(s)", len(done))
    return done


def tuned_detector_mask(project: Any, name: str) -> Any:
    """The detector's mask of image ``name`` with the project's tuned setting.

    The default setting without a calibration; an empty mask where the calibration
    found the detector not worth fixing (``useful`` is False).

    Raises
    ------
    InputError
        The image cannot be read (naming the file).
    """
    from ..io.range_io import read_range_image

    import numpy as np

    tuned = stored_calibration(project)
    image = read_range_image(project.image_path(name))
    if tuned is not None and not tuned.useful:
        return np.zeros(image.shape, dtype=bool)
    return detect_cracks(image.data, image.valid, tuned.config if tuned else None).mask


def tuning_samples(project: Any, max_images: int = 6) -> list[str]:
    """The accepted images the detector is tuned on: the ``max_images`` accepted last."""
    from ..project import ImageStatus

    accepted = [r for r in project.records() if r.status is ImageStatus.ANNOTATED]
    accepted.sort(key=lambda r: r.updated_at, reverse=True)
    return [r.name for r in accepted[:max_images]]


def iter_tune_detector(project: Any, names: Sequence[str] | None = None, *,
                       max_images: int = 6, store_probabilities: bool = True,
                       cancel: CancelToken | None = None,
                       ) -> Generator[Any, None, DetectorCalibration | None]:
    """Tune the detector on the accepted masks, store it, re-suggest untouched images.

    Parameters
    ----------
    project : Project
        The open project (it should have no model yet: a model's suggestions are never
        replaced, whatever this finds).
    names : sequence of str, optional
        Images to re-suggest, in this order (default: the queue order).
    max_images : int
        Calibrate on at most this many accepted images (the last accepted; bounds the time).
    store_probabilities : bool
        Also store the detector's evidence maps.
    cancel : CancelToken, optional
        Checked between images.

    Yields
    ------
    ProgressEvent, DetectorTuned, SuggestionReady, MessageEvent

    Returns
    -------
    DetectorCalibration or None
        None when the accepted images hold no crack (nothing is changed then) or cancelled.
    """
    from ..io.range_io import read_range_image

    chosen = tuning_samples(project, max_images)
    tally = CalibrationTally()
    for i, name in enumerate(chosen):
        if cancel is not None and cancel.cancelled:
            return None
        yield ProgressEvent(i, len(chosen), "tuning the detector")
        try:
            image = read_range_image(project.image_path(name))
        except InputError as exc:
            yield MessageEvent(f"not tuned on {name}: {exc}")
            continue
        mask = project.read_annotation(name)
        if mask is not None and mask.shape == image.data.shape:
            tally.add(image.data, image.valid, mask)
    found = tally.result()
    if found is None:
        return None
    project.set_meta(DETECTOR_META_KEY, found.to_dict())
    yield DetectorTuned(found)
    yield from iter_builtin_suggestions(project, names, replace_builtin=True,
                                        store_probabilities=store_probabilities, cancel=cancel)
    return found
