"""Suggestions for the next images of the queue only, after the ranking.

Scoring a pool of thousands of images used to write a suggestion mask and a
probability map for every image it scored, most of which the annotator reaches only
rounds later (by when a newer model has replaced them). With ``suggest_next``,
:func:`~.pool.iter_score_project` keeps no probability map while it scores; once the
queue is re-sorted, :func:`iter_suggest_next` predicts the first ``n`` images of the
new queue and writes theirs. An image opened further down the queue gets a suggestion
in the background (:mod:`.on_demand`). The cost of a round's files is then ``n``
images, whatever the pool.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from typing import Any

from ..errors import InputError
from ..events import CancelToken, ProgressEvent
from .probability import write_probability

__all__ = ["DEFAULT_SUGGEST_NEXT", "iter_suggest_next"]

logger = logging.getLogger(__name__)

#: Images at the head of the queue that get the new model's suggestion (four batches of 5).
DEFAULT_SUGGEST_NEXT = 20


def iter_suggest_next(project: Any, model: Any, model_version: str, names: Sequence[str],
                      images: Any, *, threshold: float, write_suggestions: bool = True,
                      store_probabilities: bool = True, tile: int = 512, overlap: int = 64,
                      batch_size: int = 4, device: Any = None,
                      cancel: CancelToken | None = None,
                      ) -> Generator[ProgressEvent, None, list[str]]:
    """Predict ``names`` (the head of the queue) and store their suggestions and probability maps.

    Parameters
    ----------
    project : Project
        Where the files go (``set_suggestion``, :func:`~.probability.write_probability`).
    model : nn.Module
        The model of ``model_version``.
    model_version : str
        Stored with the suggestions.
    names : sequence of str
        The images, in queue order.
    images : iterator
        Their :class:`~napari_crack_al.core.training.data.TrainingImage`, in the same
        order (an unreadable one is left out).
    threshold : float
        Crack probability above which a pixel is suggested.
    write_suggestions, store_probabilities : bool
        Which files to write.
    tile, overlap, batch_size, device, cancel
        Of the tiled inference.

    Yields
    ------
    ProgressEvent
        ``"suggestions"`` progress over ``names``.

    Returns
    -------
    list of str
        The images whose files were written (an image that cannot be written is logged
        and skipped: one bad file does not stop the others).
    """
    from ..inference import ImagePrediction, iter_predict_images

    total = len(names)
    pairs = ((item.name, item.image) for item in images)
    done: list[str] = []
    yield ProgressEvent(0, total, "suggestions")
    for event in iter_predict_images(model, pairs, total=total, tile=tile, overlap=overlap,
                                     batch_size=batch_size, device=device, cancel=cancel):
        if not isinstance(event, ImagePrediction):
            continue
        probability = event.prediction.probability
        try:
            if write_suggestions:
                project.set_suggestion(event.name, probability > threshold, model_version)
            if store_probabilities:
                write_probability(project, event.name, probability)
        except (InputError, OSError) as exc:
            logger.warning("%s: its suggestion could not be stored (%s)", event.name, exc)
            continue
        done.append(event.name)
        yield ProgressEvent(len(done), total, "suggestions")
    return done
