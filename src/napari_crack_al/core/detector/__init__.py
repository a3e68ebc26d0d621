"""The training-free crack detector (ridge filtering) and the first suggestions it makes.

numpy and scikit-image only; importing this package does not import torch.
"""

from __future__ import annotations

from .calibrate import DetectorCalibration, calibrate_detector, stored_calibration
from .ridge import Detection, DetectorConfig, detect_cracks, ridge_response
from .suggest import (BUILTIN_VERSION, DetectorTuned, SuggestionReady, iter_builtin_suggestions,
                      iter_tune_detector, needs_builtin_suggestion, tuned_detector_mask)

__all__ = [
    "BUILTIN_VERSION",
    "Detection",
    "DetectorCalibration",
    "DetectorTuned",
    "DetectorConfig",
    "SuggestionReady",
    "calibrate_detector",
    "detect_cracks",
    "iter_builtin_suggestions",
    "iter_tune_detector",
    "needs_builtin_suggestion",
    "ridge_response",
    "stored_calibration",
    "tuned_detector_mask",
]
