"""Settings of a label-efficiency simulation: the arms compared and the loop sizes.

:class:`SimulationConfig` holds what every arm shares; :class:`Arm` is one
labelling policy (a selection strategy and a training mode) and :func:`parse_arm`
reads one from its name (``"full"`` or ``"STRATEGY-MODE"``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import Problems
from ..errors import ConfigError
from ..training.config import TRAIN_MODES, TrainConfig
from ..training.data import HELDOUT_FRACTION
from .curves import FULL_STRATEGY, arm_name
from ..active.strategies import STRATEGY_NAMES

__all__ = ["SIM_STRATEGIES", "Arm", "SimulationConfig", "parse_arm"]

#: Strategies a simulation arm may use ("full" = every training image, supervised).
SIM_STRATEGIES: tuple[str, ...] = tuple(s for s in STRATEGY_NAMES
                                        if s not in ("disagreement", "bald")) + (FULL_STRATEGY,)


@dataclass(frozen=True)
class Arm:
    """One simulated labelling policy: a strategy and a training mode."""

    strategy: str
    mode: str

    @property
    def name(self) -> str:
        """``"full"`` or ``"STRATEGY-MODE"``."""
        return arm_name(self.strategy, self.mode)


@dataclass(frozen=True)
class SimulationConfig:
    """Settings of a simulation (shared by every arm).

    Parameters
    ----------
    train : TrainConfig
        Training settings of ONE round (``iterations`` per round); ``mode`` and
        ``seed`` are set per arm and round.
    strategies : tuple of str
        Selection strategies compared (:data:`SIM_STRATEGIES`); ``"full"`` adds the
        full-supervision reference.
    modes : tuple of str
        Training modes compared ("semi", "supervised"); every strategy runs in every mode.
    initial : int
        Images annotated before the first round (round-0 selection).
    per_round : int
        Images annotated after each round.
    rounds : int
        Training rounds (models) per arm.
    seed : int
        Seed of the selections and the training (round r trains with ``seed * 1000 + r``).
    threshold : float or None
        Crack probability threshold of the validation masks and the suggestions; None:
        each round's model's own threshold (calibrated on the project's held-out images,
        as in the plugin).
    heldout_fraction : float
        Share of each project's annotated images held out for the threshold and the
        no-worse guard, as in the plugin (the reported metrics use the external
        validation images).
    builtin_first : bool
        The round-0 images start from the training-free detector's suggestions (what a
        new project shows before its first model), so row 0 has an edit fraction.
    tile, overlap : int
        Tiled inference settings.
    full_reference : bool
        Also run the ``"full"`` arm (same as listing it in ``strategies``).
    arm_list : tuple of str
        Explicit arms by name (``"random-supervised"``, ``"hybrid-semi"``, ``"full"``, ...);
        when given it replaces the product of ``strategies`` and ``modes``.
    choose_source : bool
        Each round suggests the cheapest of the model's masks, the tuned detector's and
        none, by their held-out edit fraction, as the plugin does (False: always the model's).
    """

    train: TrainConfig
    strategies: tuple[str, ...] = ("hybrid",)
    modes: tuple[str, ...] = ("semi",)
    initial: int = 5
    per_round: int = 5
    rounds: int = 4
    seed: int = 0
    threshold: float | None = None
    heldout_fraction: float = HELDOUT_FRACTION
    builtin_first: bool = True
    choose_source: bool = True
    tile: int = 512
    overlap: int = 64
    full_reference: bool = False
    arm_list: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems: list[str] = []
        if isinstance(self.arm_list, str) or not isinstance(self.arm_list, tuple):
            problems.append(f"arm_list must be a tuple of arm names (got {self.arm_list!r})")
        else:
            for name in self.arm_list:
                try:
                    parse_arm(name)
                except ConfigError as exc:
                    problems.append(str(exc))
            if len(set(self.arm_list)) != len(self.arm_list):
                problems.append(f"arm_list has repeated arms: {', '.join(self.arm_list)}")
        if not isinstance(self.train, TrainConfig):
            problems.append(f"train must be a TrainConfig (got {type(self.train).__name__})")
        for name, options in (("strategies", SIM_STRATEGIES), ("modes", TRAIN_MODES)):
            values = getattr(self, name)
            if isinstance(values, str) or not isinstance(values, tuple) or not values:
                problems.append(f"{name} must be a non-empty tuple (got {values!r})")
                continue
            bad = [v for v in values if v not in options]
            if bad:
                problems.append(f"unknown {name} {', '.join(map(repr, bad))}; valid: "
                                + ", ".join(options))
            if len(set(values)) != len(values):
                problems.append(f"{name} are repeated: {', '.join(values)}")
        check = Problems(self)
        for message in problems:
            check.add(message)
        for name, low in (("initial", 1), ("per_round", 1), ("rounds", 1), ("seed", 0),
                          ("tile", 16), ("overlap", 0)):
            check.integer(name, low)
        check.number("threshold", 0.0, 1.0, low_open=True, high_open=True, none_ok=True)
        check.number("heldout_fraction", 0.0, 1.0, high_open=True)
        check.boolean("full_reference", "builtin_first", "choose_source")
        check.raise_if_any("SimulationConfig")

    @property
    def arms(self) -> list[Arm]:
        """The arms in run order: ``arm_list`` if given, else every (strategy, mode), then
        the full reference once (also after ``arm_list`` with ``full_reference``)."""
        if self.arm_list:
            arms = [parse_arm(name) for name in self.arm_list]
            if self.full_reference and FULL_STRATEGY not in self.arm_list:
                arms.append(Arm(FULL_STRATEGY, "supervised"))
            return arms
        out = [Arm(s, m) for s in self.strategies if s != FULL_STRATEGY for m in self.modes]
        if self.full_reference or FULL_STRATEGY in self.strategies:
            out.append(Arm(FULL_STRATEGY, "supervised"))
        return out

    @property
    def labels_needed(self) -> int:
        """Training images an active arm annotates: ``initial + (rounds - 1) * per_round``."""
        return self.initial + (self.rounds - 1) * self.per_round


def parse_arm(name: str) -> Arm:
    """The :class:`Arm` called ``name`` (``"full"`` or ``"STRATEGY-MODE"``).

    Raises
    ------
    ConfigError
        Unknown strategy or mode; the message lists the valid ones.
    """
    if name == FULL_STRATEGY:
        return Arm(FULL_STRATEGY, "supervised")
    strategy, _, mode = str(name).rpartition("-")
    if strategy not in SIM_STRATEGIES or strategy == FULL_STRATEGY or mode not in TRAIN_MODES:
        raise ConfigError(f"unknown arm {name!r}: expected 'full' or STRATEGY-MODE with a "
                          f"strategy in {', '.join(s for s in SIM_STRATEGIES if s != 'full')} "
                          f"and a mode in {', '.join(TRAIN_MODES)}")
    return Arm(strategy, mode)
