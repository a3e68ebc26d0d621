"""The held-out (validation) images of an active-learning project.

The user's list (project meta ``"heldout"``) wins; otherwise a share of the accepted
images is held out automatically and remembered in meta ``"heldout_auto"`` (once held
out, always held out). Meta ``"trained_images"`` records every image a registered
round trained on. :mod:`.round` re-exports these names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..training.data import stable_key

if TYPE_CHECKING:
    from .round_config import RoundConfig

__all__ = ["HELDOUT_META", "HELDOUT_AUTO_META", "TRAINED_META", "select_heldout"]

HELDOUT_META = "heldout"            # set by the user: used as is
HELDOUT_AUTO_META = "heldout_auto"  # managed here: only grows
TRAINED_META = "trained_images"     # every image some registered round trained on


def select_heldout(project: Any, annotated: Sequence[str], config: RoundConfig) -> list[str]:
    """The held-out images among ``annotated`` (updates meta ``"heldout_auto"``).

    The user's list (meta ``"heldout"``) wins. Otherwise, once ``min_heldout_pool``
    images are accepted, ``floor(n * heldout_fraction)`` of them are held out (every
    5th for 0.2): images already held out stay; new ones are drawn first among the
    images no registered model was trained on (meta ``"trained_images"``; a warm-started
    model has seen the others), in a fixed pseudo-random order of their names (seeded).
    """
    annotated = list(annotated)
    user = project.get_meta(HELDOUT_META, kind=list)
    if user:
        return sorted(set(map(str, user)) & set(annotated))
    previous = list(project.get_meta(HELDOUT_AUTO_META, kind=list) or [])
    kept = [n for n in previous if n in set(annotated)]
    if len(annotated) >= config.min_heldout_pool and config.heldout_fraction > 0:
        target = int(len(annotated) * config.heldout_fraction)
        trained = set(project.get_meta(TRAINED_META, kind=list) or [])
        pool = sorted((n for n in annotated if n not in set(kept)),
                      key=lambda n: (n in trained, stable_key(config.seed, n)))
        kept += pool[:max(0, target - len(kept))]
    # names no longer annotated are kept in the list: if re-accepted they stay held out
    stored = list(dict.fromkeys(previous + kept))
    if stored != previous:
        project.set_meta(HELDOUT_AUTO_META, stored)
    return sorted(kept)
