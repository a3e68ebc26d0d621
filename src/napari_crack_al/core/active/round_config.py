"""The settings of one active-learning round (:class:`RoundConfig`), validated on creation.

Kept apart from :mod:`.round` so that the helpers a round uses (:mod:`.heldout`) can
take a config without importing the round itself; :mod:`.round` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..checks import Problems, is_int
from ..training.config import TrainConfig
from ..training.data import HELDOUT_FRACTION, MIN_HELDOUT_POOL
from ..training.lazy_images import DEFAULT_CACHE_BYTES
from .candidates import DEFAULT_MAX_CANDIDATES
from .next_suggestions import DEFAULT_SUGGEST_NEXT
from .scores import ScoreConfig
from .strategies import STRATEGY_NAMES

__all__ = ["RoundConfig"]


@dataclass(frozen=True)
class RoundConfig:
    """Settings of one active-learning round.

    Parameters
    ----------
    train : TrainConfig
        Training settings (its ``profile``, ``seed`` and ``device`` are used for scoring too).
    strategy : str
        Selection strategy (see :data:`~.strategies.STRATEGY_NAMES`). ``"disagreement"``
        needs a student model, which a round does not keep (use the CLI ``rank --student``).
    batch_size : int
        k, the number of suggested images (the first k of the ranking).
    random_share : float
        Share of those k places given to images drawn at random from the rest (1 in 5
        by default), so that no region of the data is starved; not applied to the
        ``random`` strategy.
    heldout_fraction : float
        Share of the accepted images held out for validation and threshold calibration,
        in [0, 1).
    min_heldout_pool : int
        Nothing is held out before this many images are accepted.
    suggest_threshold : float or None
        Crack probability above which a pixel is in the suggestion mask; None: the
        threshold the round calibrated on the held-out images (stored with the model).
    store_probabilities : bool
        Also store each unlabeled image's crack probability (uint8 PNG) for an overlay.
    mc_passes : int
        MC-dropout passes for the BALD score (0: none; else >= 2).
    seed : int
        Seed of the held-out choice, the strategy and the MC-dropout masks.
    embed_annotated : bool
        Also embed the annotated images, so the diversity strategies avoid near-copies
        of what is already annotated (one extra pass per annotated image).
    score : ScoreConfig
        How pixel uncertainties are aggregated.
    tile, overlap, infer_batch_size : int
        Tiled inference settings for scoring.
    max_candidates : int
        Waiting images scored per round at most (never-scored ones, the top of the
        queue, a random share: :func:`~.candidates.candidate_set`), so a round's cost
        does not grow with the pool; 0 scores every waiting image.
    choose_source : bool
        Suggest the cheapest of the model's masks, the tuned detector's and none, by their
        edit fraction on the held-out images (:mod:`.suggestion_source`); False always
        suggests the model's masks.
    score_seconds : float or None
        Scoring time of the round: no new image is scored once this has passed (and
        ``2 * batch_size`` are scored; the next images of the queue, then the never-scored
        ones come first), so a round's cost does not grow with the pool; the others keep
        their scores and places. None: half the round's training time; 0: no limit.
    cache_mb : int
        Memory (MiB) for the unlabelled images of a semi-supervised round: they are read
        from disk when a batch draws them and the most recently used are kept up to this
        budget, so a round's memory does not grow with the pool
        (:class:`~napari_crack_al.core.training.lazy_images.LazyImages`).
    suggest_next : int or None
        Images at the head of the re-sorted queue that get the new model's suggestion
        and probability map (:mod:`.next_suggestions`); the others keep theirs and get a
        fresh one in the background when opened. None writes them for every scored image.
    """

    train: TrainConfig
    strategy: str = "hybrid"
    batch_size: int = 5
    random_share: float = 0.2
    heldout_fraction: float = HELDOUT_FRACTION
    min_heldout_pool: int = MIN_HELDOUT_POOL
    suggest_threshold: float | None = None
    store_probabilities: bool = True
    mc_passes: int = 0
    seed: int = 0
    embed_annotated: bool = True
    score: ScoreConfig = field(default_factory=ScoreConfig)
    tile: int = 512
    overlap: int = 64
    infer_batch_size: int = 4
    max_candidates: int = DEFAULT_MAX_CANDIDATES
    choose_source: bool = True
    score_seconds: float | None = None
    cache_mb: int = DEFAULT_CACHE_BYTES // 2**20
    suggest_next: int | None = DEFAULT_SUGGEST_NEXT

    def __post_init__(self) -> None:
        check = Problems(self)
        if not isinstance(self.train, TrainConfig):
            check.add(f"train must be a TrainConfig (got {type(self.train).__name__})")
        check.choice("strategy", STRATEGY_NAMES)
        if self.strategy == "disagreement":
            check.add("strategy 'disagreement' needs a student model, which a round does "
                      "not keep; choose another strategy (valid: "
                      + ", ".join(s for s in STRATEGY_NAMES if s != "disagreement") + ")")
        for name, low in (("batch_size", 1), ("min_heldout_pool", 2), ("seed", 0), ("tile", 16),
                          ("overlap", 0), ("infer_batch_size", 1), ("mc_passes", 0),
                          ("max_candidates", 0), ("cache_mb", 0)):
            check.integer(name, low)
        if is_int(self.tile) and is_int(self.overlap) and self.overlap > self.tile // 2:
            check.add(f"overlap must be at most half the tile ({self.tile // 2} px; "
                      f"got {self.overlap})")
        if self.mc_passes == 1:
            check.add("mc_passes must be 0 (no BALD) or >= 2 (got 1)")
        if self.strategy == "bald" and self.mc_passes == 0:
            check.add("strategy 'bald' needs mc_passes >= 2")
        check.integer("suggest_next", 1, none_ok=True)
        check.number("random_share", 0.0, 1.0)
        check.number("score_seconds", 0.0, none_ok=True)
        check.number("heldout_fraction", 0.0, 1.0, high_open=True)
        check.number("suggest_threshold", 0.0, 1.0, low_open=True, high_open=True, none_ok=True)
        check.boolean("store_probabilities", "embed_annotated", "choose_source")
        if not isinstance(self.score, ScoreConfig):
            check.add(f"score must be a ScoreConfig (got {type(self.score).__name__})")
        check.raise_if_any("RoundConfig")
