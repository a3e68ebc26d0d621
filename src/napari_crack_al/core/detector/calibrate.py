"""The detector tuned to a project: the settings that cost its annotator the least editing.

The detector's defaults (:class:`~.ridge.DetectorConfig`) suit range images but over-paint
photographs, whose texture and shadows look like cracks to a ridge filter. As soon as a
project has accepted masks, :func:`calibrate_detector` picks, on a small grid of its
thresholds and clean-up sizes, the settings whose masks would have needed the fewest
pixel edits on those images — the edit fraction ``(missed + false crack pixels) /
crack pixels`` the project records at every accept. When even the best settings cost
at least as much as drawing from scratch (edit fraction >= 1), the detector is *off* for
the project: its suggestions are empty and the annotator is told why.

The ridge response (the costly filter) is computed once per image; each grid point only
re-thresholds it.

numpy + scikit-image; no torch.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .ridge import DetectorConfig, detection_from_response, ridge_response

__all__ = ["DETECTOR_META_KEY", "DetectorCalibration", "CalibrationTally", "crack_window",
           "calibration_grid", "calibrate_detector", "stored_calibration"]

logger = logging.getLogger(__name__)

#: Project meta key of the stored :class:`DetectorCalibration`.
DETECTOR_META_KEY = "detector_calibration"


@dataclass(frozen=True)
class DetectorCalibration:
    """The detector settings chosen on a project's accepted masks.

    Attributes
    ----------
    config : DetectorConfig
        The settings with the lowest edit fraction on the calibration images.
    edit_fraction : float
        Their edit fraction there (pixels to fix / crack pixels).
    default_edit_fraction : float
        The default settings' edit fraction on the same images.
    n_images : int
        Accepted images calibrated on.
    """

    config: DetectorConfig
    edit_fraction: float
    default_edit_fraction: float
    n_images: int

    @property
    def useful(self) -> bool:
        """Whether fixing the detector's masks costs less than drawing (edit fraction < 1)."""
        return self.edit_fraction < 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for the project's meta table)."""
        return {"config": self.config.to_dict(), "edit_fraction": float(self.edit_fraction),
                "default_edit_fraction": float(self.default_edit_fraction),
                "n_images": int(self.n_images)}

    @classmethod
    def from_dict(cls, data: Any) -> DetectorCalibration:
        """Rebuild from :meth:`to_dict` (ConfigError / KeyError / TypeError on bad data)."""
        return cls(config=DetectorConfig.from_dict(data["config"]),
                   edit_fraction=float(data["edit_fraction"]),
                   default_edit_fraction=float(data["default_edit_fraction"]),
                   n_images=int(data["n_images"]))

    def describe(self) -> str:
        """One line for the annotator."""
        if self.useful:
            return (f"Detector tuned on {self.n_images} accepted image(s): edit fraction "
                    f"{self.edit_fraction:.2f} (default settings {self.default_edit_fraction:.2f})")
        return (f"Detector off: on {self.n_images} accepted image(s) its masks cost more to fix "
                f"than drawing (edit fraction {self.edit_fraction:.2f} at best)")


def calibration_grid(base: DetectorConfig | None = None) -> list[DetectorConfig]:
    """The settings tried: hysteresis thresholds, darkness and shortest crack (60 points).

    ``base`` (default :class:`DetectorConfig`) is always among them, so a calibration is
    never worse than the defaults on its own images.
    """
    cfg = base or DetectorConfig()
    grid = [replace(cfg, high=float(high), low=float(min(low, high)), darker=float(dark),
                    min_length=int(length))
            for high, low, dark, length in itertools.product(
                (4, 6, 10, 16, 28), (2, 4), (0.5, 1.0, 2.0), (32, 64))]
    unique = list(dict.fromkeys(grid))
    if cfg not in unique:
        unique.insert(0, cfg)
    return unique


def crack_window(shape: tuple[int, int], truth: np.ndarray, side: int = 1024,
                 ) -> tuple[slice, slice]:
    """The ``side`` x ``side`` window (on a half-side grid) holding the most crack pixels.

    Bounds the time of a calibration on large images: a 4096 x 2048 scan is tuned on its
    1024 x 1024 window with the most accepted crack (the whole image when it is smaller).
    """
    h, w = shape
    if h <= side and w <= side:
        return slice(0, h), slice(0, w)
    step = side // 2
    csum = np.pad(np.asarray(truth, np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    best, where = -1, (0, 0)
    for y in range(0, max(h - side, 0) + 1, step):
        for x in range(0, max(w - side, 0) + 1, step):
            y1, x1 = min(y + side, h), min(x + side, w)
            n = csum[y1, x1] - csum[y, x1] - csum[y1, x] + csum[y, x]
            if n > best:
                best, where = int(n), (y, x)
    y, x = where
    return slice(y, min(y + side, h)), slice(x, min(x + side, w))


def _counts(image: np.ndarray, valid: np.ndarray, truth: np.ndarray,
            grid: Sequence[DetectorConfig]) -> np.ndarray:
    """(len(grid), 2) true and false positive pixels of every setting on one image."""
    resp, flat = ridge_response(image, valid, grid[0])
    out = np.zeros((len(grid), 2), np.int64)
    for j, cfg in enumerate(grid):
        mask = detection_from_response(resp, flat, valid, cfg).mask
        out[j] = (np.count_nonzero(mask & truth), np.count_nonzero(mask & ~truth))
    return out


class CalibrationTally:
    """Edit counts of every grid setting, summed image by image (for progress between images).

    Parameters
    ----------
    base : DetectorConfig, optional
        The settings to start from (their filter scales and background size are kept).
    """

    def __init__(self, base: DetectorConfig | None = None) -> None:
        self.base = base or DetectorConfig()
        self.grid = calibration_grid(self.base)
        self.positives = np.zeros((len(self.grid), 2), np.int64)
        self.crack = 0
        self.n_images = 0

    def add(self, image: np.ndarray, valid: np.ndarray | None, truth: np.ndarray) -> None:
        """Count one accepted image (float (H, W) image, bool valid or None, bool mask)."""
        img = np.asarray(image, dtype=np.float32)
        ok = np.isfinite(img) if valid is None else np.asarray(valid, bool) & np.isfinite(img)
        g = np.asarray(truth, bool) & ok
        win = crack_window(img.shape, g)
        img, ok, g = img[win], ok[win], g[win]
        self.positives += _counts(np.where(ok, img, 0.0).astype(np.float32), ok, g, self.grid)
        self.crack += int(g.sum())
        self.n_images += 1

    def result(self) -> DetectorCalibration | None:
        """The best setting so far (None while no crack pixel was counted)."""
        if self.crack == 0:
            return None
        edit = (self.crack - self.positives[:, 0] + self.positives[:, 1]) / self.crack
        best = int(np.argmin(edit))  # the first (grid order) of equal ones
        default = self.grid.index(self.base)
        found = DetectorCalibration(config=self.grid[best], edit_fraction=float(edit[best]),
                                    default_edit_fraction=float(edit[default]),
                                    n_images=self.n_images)
        logger.info("%s", found.describe())
        return found


def calibrate_detector(samples: Sequence[tuple[np.ndarray, np.ndarray | None, np.ndarray]],
                       base: DetectorConfig | None = None) -> DetectorCalibration | None:
    """The grid settings that minimise the pooled edit fraction on accepted images.

    Parameters
    ----------
    samples : sequence of (image, valid, mask)
        Float (H, W) images, their bool valid masks (None: all valid) and accepted masks.
    base : DetectorConfig, optional
        The settings to start from (their filter scales and background size are kept).

    Returns
    -------
    DetectorCalibration or None
        None when the images hold no crack pixel (nothing to measure an edit against).
    """
    tally = CalibrationTally(base)
    for image, valid, truth in samples:
        tally.add(image, valid, truth)
    return tally.result()


def stored_calibration(project: Any) -> DetectorCalibration | None:
    """The calibration stored in ``project`` (None: none yet, or unreadable — then logged)."""
    try:
        data = project.get_meta(DETECTOR_META_KEY, kind=dict)
        return None if data is None else DetectorCalibration.from_dict(data)
    except Exception as exc:  # noqa: BLE001 - a bad meta value must not block suggestions
        logger.warning("ignoring the stored detector calibration: %s", exc)
        return None
