"""The training-free crack detector (ridge filtering) and the first suggestions it makes.

numpy and scikit-image only; importing this package does not import torch.
"""

from __future__ import annotations

from .ridge import Detection, DetectorConfig, detect_cracks, ridge_response
from .suggest import BUILTIN_VERSION, SuggestionReady, iter_builtin_suggestions, needs_builtin_suggestion

__all__ = [
    "BUILTIN_VERSION",
    "Detection",
    "DetectorConfig",
    "SuggestionReady",
    "detect_cracks",
    "iter_builtin_suggestions",
    "needs_builtin_suggestion",
    "ridge_response",
]
