"""Deterministic synthetic pavement range images with a ground-truth crack mask.

The generator builds a surface height map in millimetres from a few physical
components and encodes it like a laser (LCMS-style) range image:

``height = transverse profile + scan-line bounce + macrotexture - crack depressions``,
then sealant bands and joints (look-alike distractors that are *not* cracks),
sensor noise, and dropout pixels (value 0 = no laser return). The result is
``uint16`` with ``1 unit = 1 / units_per_mm`` mm around ``base_value``.

Rows are the driving direction (longitudinal), columns the transverse direction.
Everything is vectorised numpy plus a few scikit-image filters; one 512 x 512
image takes a few tens of milliseconds. See ``docs/synthetic-data.md``.

This module composes the components into :func:`generate_range_image`; the parts
live in :mod:`.config` (parameters, re-exported here),
:mod:`.surface` (road shape and texture), :mod:`.cracks` and
:mod:`.distractors` (sealant, joints, dropout).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from skimage.filters import gaussian
from skimage.morphology import dilation

from ..errors import ConfigError
from .config import CRACK_KINDS, DISTRACTOR_KINDS, SyntheticConfig
from .cracks import _alligator, _branching_crack, _line_crack
from .distractors import _dropout, _joint, _sealed
from .surface import _band_noise, _profile, _texture

__all__ = [
    "CRACK_KINDS",
    "DISTRACTOR_KINDS",
    "SyntheticConfig",
    "SyntheticSample",
    "generate_range_image",
]

log = logging.getLogger(__name__)

_FOOT3 = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class SyntheticSample:
    """One generated image.

    Attributes
    ----------
    range_image : ndarray of uint16, (H, W)
        The range image; 0 marks dropout (no return).
    mask : ndarray of bool, (H, W)
        Ground truth, True = crack.
    kinds : tuple of str
        Crack kind of each crack drawn (empty for a crack-free image).
    distractors : tuple of str
        Distractors drawn ("sealed", "joint").
    distractor_mask : ndarray of bool, (H, W)
        Where the distractors are (never overlaps ``mask``).
    height_mm : ndarray of float32, (H, W)
        Noise-free surface height in mm relative to ``base_value`` (before encoding).
    profile_mm : ndarray of float32, (H, W)
        The smooth road shape (cross-slope, ruts, bounce, offset) included in ``height_mm``:
        ``range_image / units_per_mm`` minus it leaves texture, cracks, distractors and noise.
    """

    range_image: np.ndarray
    mask: np.ndarray
    kinds: tuple[str, ...]
    distractors: tuple[str, ...]
    distractor_mask: np.ndarray
    height_mm: np.ndarray
    profile_mm: np.ndarray


# --------------------------------------------------------------------------- main entry
def generate_range_image(seed: int | Sequence[int], config: SyntheticConfig | None = None
                         ) -> SyntheticSample:
    """Generate one synthetic range image and its crack mask, deterministically.

    Parameters
    ----------
    seed : int or sequence of int
        Seed of ``numpy.random.default_rng``; ``(seed, i)`` gives the i-th image of a series.
    config : SyntheticConfig, optional
        Generator parameters (defaults: 512 x 512, 1 mm pixels).

    Returns
    -------
    SyntheticSample
        ``range_image`` (uint16), ``mask`` (bool) and what was drawn.
    """
    cfg = config if config is not None else SyntheticConfig()
    seq = [int(seed)] if isinstance(seed, (int, np.integer)) else [int(s) for s in seed]
    if any(s < 0 for s in seq):
        raise ConfigError(f"seed must be non-negative integer(s), got {seed!r}")
    rng = np.random.default_rng(seq)
    shape = cfg.shape

    profile = _profile(rng, cfg)
    height = profile + _texture(rng, cfg)

    mask = np.zeros(shape, dtype=bool)
    depth = np.zeros(shape)
    kinds: list[str] = []
    if cfg.crack_kinds and cfg.n_cracks[1] > 0 and rng.random() >= cfg.no_crack_fraction:
        n = int(rng.integers(cfg.n_cracks[0], cfg.n_cracks[1] + 1))
        for _ in range(n):
            kind = str(rng.choice(cfg.crack_kinds))
            kinds.append(kind)
            if kind == "alligator":
                _alligator(rng, cfg, mask, depth)
            elif kind == "branching":
                _branching_crack(rng, cfg, mask, depth)
            else:
                _line_crack(rng, cfg, kind, mask, depth)
    if mask.any():
        # steep but rounded walls; walls spill half a pixel beyond the mask, rough bottom
        soft = gaussian(mask.astype(np.float64), sigma=0.6, preserve_range=True)
        shape_w = np.clip(soft * 1.6, 0.0, 1.0)
        bottom = 1.0 + 0.15 * _band_noise(rng, shape, 1.5)
        height -= shape_w * dilation(depth, _FOOT3) * bottom

    distractors: list[str] = []
    distractor_mask = np.zeros(shape, dtype=bool)
    if cfg.distractors:
        if rng.random() < cfg.distractor_probability and "sealed" in cfg.distractor_kinds:
            bw = _sealed(rng, cfg)
            fill = profile + rng.uniform(0.1, 1.0) + 0.1 * _band_noise(rng, shape, 2.0)
            height = height * (1.0 - bw) + fill * bw
            distractors.append("sealed")
            distractor_mask |= bw > 0.5
        if rng.random() < cfg.distractor_probability and "joint" in cfg.distractor_kinds:
            jw, jdepth = _joint(rng, cfg)
            height -= jdepth * jw
            distractors.append("joint")
            distractor_mask |= jw > 0.5
    mask &= ~distractor_mask

    noisy = height + np.float32(cfg.noise_mm) * rng.standard_normal(shape, dtype=np.float32)
    offset = rng.uniform(-20.0, 20.0)
    values = np.rint(cfg.base_value + (noisy + offset) * cfg.units_per_mm)
    image = np.clip(values, 1, 65535).astype(np.uint16)

    drop = _dropout(rng, cfg)
    if cfg.dropout_fraction > 0 and mask.any():
        # deep narrow cracks often return no light
        deep = mask & (depth > 0.7 * cfg.depth_mm[1])
        drop |= deep & (rng.random(shape) < 0.1)
    image[drop] = 0
    log.debug("synthetic image seed=%s kinds=%s distractors=%s crack=%.4f", seq, kinds,
              distractors, mask.mean())
    return SyntheticSample(range_image=image, mask=mask, kinds=tuple(kinds),
                           distractors=tuple(distractors), distractor_mask=distractor_mask,
                           height_mm=(height + offset).astype(np.float32),
                           profile_mm=(profile + offset).astype(np.float32))
