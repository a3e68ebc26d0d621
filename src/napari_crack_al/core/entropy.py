"""Entropy of class probabilities, the one implementation of the numpy side.

Scores (:mod:`.active.scores`), MC dropout and inference all use these; the trainer's
torch version is :func:`~napari_crack_al.core.training.pseudo_labels.entropy_map`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["entropy_from_probability", "binary_entropy"]


def entropy_from_probability(probs: np.ndarray, num_classes: int, *,
                             chunk_rows: int = 256) -> np.ndarray:
    """Normalised entropy of class probabilities.

    Parameters
    ----------
    probs : ndarray
        (num_classes - 1, H, W) probabilities of classes 1..C-1; class 0 is the rest.
    num_classes : int
        C >= 2.
    chunk_rows : int
        Rows processed at a time, which bounds the temporary memory.

    Returns
    -------
    ndarray
        float32 (H, W) entropy / ln(C), in [0, 1].
    """
    out = np.empty(probs.shape[1:], dtype=np.float32)
    scale = np.float32(1.0 / math.log(num_classes))
    for r in range(0, out.shape[0], max(1, chunk_rows)):
        p = probs[:, r:r + chunk_rows].astype(np.float32, copy=False)
        p0 = np.clip(1.0 - p.sum(axis=0), 0.0, 1.0)
        ent = -p0 * np.log(np.maximum(p0, 1e-12))
        for pc in p:
            ent -= pc * np.log(np.maximum(pc, 1e-12))
        out[r:r + chunk_rows] = np.clip(ent * scale, 0.0, 1.0)
    return out


def binary_entropy(probability: np.ndarray) -> np.ndarray:
    """Entropy of a two-class distribution given the crack probability, in [0, 1] (float32)."""
    p = np.asarray(probability, dtype=np.float32)
    return entropy_from_probability(np.atleast_1d(p)[None], 2).reshape(p.shape)
