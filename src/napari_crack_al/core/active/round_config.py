"""The settings of one active-learning round (:class:`RoundConfig`), validated on creation.

Kept apart from :mod:`.round` so that the helpers a round uses (:mod:`.heldout`) can
take a config without importing the round itself; :mod:`.round` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..training.config import TrainConfig
from ..training.data import HELDOUT_FRACTION, MIN_HELDOUT_POOL
from .scores import ScoreConfig
from .strategies import STRATEGY_NAMES

__all__ = ["RoundConfig"]


def _num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(float(v))


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

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.train, TrainConfig):
            problems.append(f"train must be a TrainConfig (got {type(self.train).__name__})")
        if self.strategy not in STRATEGY_NAMES:
            problems.append(f"strategy must be one of {', '.join(STRATEGY_NAMES)} "
                            f"(got {self.strategy!r})")
        elif self.strategy == "disagreement":
            problems.append("strategy 'disagreement' needs a student model, which a round does "
                            "not keep; choose another strategy (valid: "
                            + ", ".join(s for s in STRATEGY_NAMES if s != "disagreement") + ")")
        for name, low in (("batch_size", 1), ("min_heldout_pool", 2), ("seed", 0), ("tile", 16),
                          ("overlap", 0), ("infer_batch_size", 1), ("mc_passes", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                problems.append(f"{name} must be an integer >= {low} (got {v!r})")
        if isinstance(self.tile, int) and isinstance(self.overlap, int) \
                and self.overlap > self.tile // 2:
            problems.append(f"overlap must be at most half the tile ({self.tile // 2} px; "
                            f"got {self.overlap})")
        if self.mc_passes == 1:
            problems.append("mc_passes must be 0 (no BALD) or >= 2 (got 1)")
        if self.strategy == "bald" and self.mc_passes == 0:
            problems.append("strategy 'bald' needs mc_passes >= 2")
        if not (_num(self.random_share) and 0.0 <= self.random_share <= 1.0):
            problems.append(f"random_share must be a number in [0, 1] (got {self.random_share!r})")
        if not (_num(self.heldout_fraction) and 0.0 <= self.heldout_fraction < 1.0):
            problems.append(f"heldout_fraction must be a number in [0, 1) "
                            f"(got {self.heldout_fraction!r})")
        if self.suggest_threshold is not None and not (
                _num(self.suggest_threshold) and 0.0 < self.suggest_threshold < 1.0):
            problems.append(f"suggest_threshold must be None or a number in (0, 1) "
                            f"(got {self.suggest_threshold!r})")
        for name in ("store_probabilities", "embed_annotated"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name} must be true or false (got {getattr(self, name)!r})")
        if not isinstance(self.score, ScoreConfig):
            problems.append(f"score must be a ScoreConfig (got {type(self.score).__name__})")
        if problems:
            raise ConfigError("invalid RoundConfig: " + "; ".join(problems))
