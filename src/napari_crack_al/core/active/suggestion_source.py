"""Which suggestion a round gives the annotator: the model's, the detector's, or none.

A suggestion is only worth something if fixing it is faster than drawing. After
training, a round measures on its held-out images (paired: the same images for every
source) the edit fraction — ``(missed + false crack pixels) / crack pixels``, what the
project records at every accept — of

* the new model's masks at its calibrated threshold,
* the training-free detector's masks with the settings tuned on the project
  (:mod:`napari_crack_al.core.detector.calibrate`; skipped when the tuned detector is off),
* an empty mask (drawing from scratch: exactly 1),

and the waiting images get the cheapest (:func:`pick_source`; ties go to the model, then
the detector). A weak early model on few labels often paints more false crack than it
finds; its ranking and probability overlay are still used, only its masks are not
suggested. The detector's settings were tuned on accepted images that may include the
held-out ones, which flatters it slightly; the model is preferred on ties.

Without a held-out crack pixel there is nothing to measure: the model's masks are used.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..events import CancelToken, ProgressEvent

__all__ = ["SOURCES", "SourceChoice", "pick_source", "iter_choose_source", "iter_apply_source"]

logger = logging.getLogger(__name__)

#: The suggestion sources, in the order ties are broken.
SOURCES = ("model", "detector", "none")


@dataclass(frozen=True)
class SourceChoice:
    """The measured edit fractions of a round's suggestion sources and the one chosen.

    Attributes
    ----------
    source : str
        One of :data:`SOURCES`.
    model_edit : float
        Edit fraction of the model's masks on the held-out images (NaN: not measured).
    detector_edit : float or None
        The tuned detector's (None: not a candidate — off, or no held-out image).
    n_images : int
        Held-out images measured on.
    """

    source: str
    model_edit: float
    detector_edit: float | None
    n_images: int

    def describe(self, version: str) -> str:
        """One line, e.g. ``"suggestions: detector (held-out edit fraction 0.79; round-001 1.09)"``."""
        if self.source == "model":
            return f"suggestions: {version} (held-out edit fraction {self.model_edit:.2f})"
        best = 1.0 if self.source == "none" else float(self.detector_edit or 0.0)
        what = "the tuned detector" if self.source == "detector" else "none (draw from scratch)"
        return (f"suggestions: {what} \u2014 held-out edit fraction {best:.2f} against "
                f"{self.model_edit:.2f} for {version}'s masks, on {self.n_images} image(s)")


def pick_source(model_edit: float, detector_edit: float | None) -> str:
    """The source with the lowest edit fraction; an empty mask costs exactly 1.

    Ties go to the model, then the detector; a NaN model edit (not measured) picks the model.
    """
    if not math.isfinite(model_edit):
        return "model"
    options = [("model", model_edit)]
    if detector_edit is not None and math.isfinite(detector_edit):
        options.append(("detector", detector_edit))
    options.append(("none", 1.0))
    return min(options, key=lambda o: o[1])[0]  # min keeps the first of equal ones


def _edit(masks: Sequence[np.ndarray], truths: Sequence[np.ndarray],
          valids: Sequence[np.ndarray]) -> float:
    fix = sum(int(np.count_nonzero((m != t) & v)) for m, t, v in zip(masks, truths, valids))
    crack = sum(int(np.count_nonzero(t & v)) for t, v in zip(truths, valids))
    return fix / crack if crack else math.nan


def iter_choose_source(project: Any, model: Any, validation: Sequence[Any], threshold: float, *,
                       tile: int = 512, overlap: int = 32, cancel: CancelToken | None = None,
                       ) -> Generator[Any, None, SourceChoice | None]:
    """Measure the sources on the held-out images and pick one (see the module docstring).

    Parameters
    ----------
    project : Project
        The project (its tuned detector settings; the held-out images' files).
    model : Segmenter
        The round's model.
    validation : sequence of TrainingImage
        The held-out images, with their masks.
    threshold : float
        The model's crack-probability threshold.
    tile, overlap : int
        Inference tiling.
    cancel : CancelToken, optional

    Returns
    -------
    SourceChoice or None
        None when cancelled; the model's choice (NaN edits) without a held-out crack pixel.
    """
    from ..detector import detect_cracks, stored_calibration
    from ..inference import predict_image
    from ..io.range_io import read_range_image

    tuned = stored_calibration(project)
    use_detector = tuned is not None and tuned.useful
    model_masks, detector_masks, truths, valids = [], [], [], []
    for i, item in enumerate(validation):
        if cancel is not None and cancel.cancelled:
            return None
        yield ProgressEvent(i, len(validation), "measuring the suggestions")
        prob = predict_image(model, item.image, tile=tile, overlap=overlap).probability
        model_masks.append(prob > threshold)
        truths.append(np.asarray(item.mask, bool))
        valids.append(np.asarray(item.valid, bool))
        if use_detector:
            raw = read_range_image(project.image_path(item.name))
            detector_masks.append(detect_cracks(raw.data, raw.valid, tuned.config).mask)
    yield ProgressEvent(len(validation), len(validation), "measuring the suggestions")
    model_edit = _edit(model_masks, truths, valids)
    detector_edit = _edit(detector_masks, truths, valids) if use_detector else None
    if detector_edit is not None and not math.isfinite(detector_edit):
        detector_edit = None
    choice = SourceChoice(source=pick_source(model_edit, detector_edit), model_edit=model_edit,
                          detector_edit=detector_edit, n_images=len(validation))
    logger.info("%s", choice.describe("the model"))
    return choice


def iter_apply_source(project: Any, choice: SourceChoice, version: str, *,
                      cancel: CancelToken | None = None) -> Generator[Any, None, list[str]]:
    """Replace the model's fresh suggestions by the chosen source's (nothing for ``"model"``).

    Only waiting images whose suggestion on disk is ``version``'s and that have no draft
    are changed: with the detector, its tuned masks (version ``"builtin"``); with none,
    empty masks (version kept: the model's round decided them).

    Returns
    -------
    list of str
        The images whose suggestion was replaced.
    """
    from ..detector import BUILTIN_VERSION, stored_calibration, tuned_detector_mask
    from ..errors import InputError
    from ..project import ImageStatus

    if choice.source == "model":
        return []
    tuned = stored_calibration(project) if choice.source == "detector" else None
    names = [r.name for r in project.records()
             if r.status in (ImageStatus.NEW, ImageStatus.SUGGESTED)
             and r.suggestion_file_version == version and not project.has_draft(r.name)]
    done = []
    for i, name in enumerate(names):
        if cancel is not None and cancel.cancelled:
            break
        yield ProgressEvent(i, len(names), f"suggestions: {choice.source}")
        shape = project.image_shape(name)
        if tuned is None:
            project.set_suggestion(name, np.zeros(shape, bool), version)
        else:
            try:
                mask = tuned_detector_mask(project, name)
            except InputError as exc:
                logger.warning("kept the model's suggestion of %s: %s", name, exc)
                continue
            project.set_suggestion(name, mask, BUILTIN_VERSION)
        done.append(name)
    yield ProgressEvent(len(names), len(names), f"suggestions: {choice.source}")
    return done
