"""Robust normalisation of range images: ONE normalisation, for the model and the display.

Statistics are computed over *valid* pixels only (see
:class:`~napari_crack_al.core.io.range_io.RangeImage`), with a median centre and a
MAD-based scale (IQR, then standard deviation as fall-backs), so a few spikes or
dropouts do not change the result. The transverse profile of the road
(cross-slope and rutting) can be removed first by subtracting a per-column or
per-row median profile.

The profile setting is stored with every model (``TrainConfig.profile``) and used by
``predict``, scoring and the napari display, so the annotator sees exactly what the
model sees. ``"auto"`` (:data:`DEFAULT_PROFILE`, chosen by measurement in
docs/model.md) removes the per-column profile from one-channel range images and
leaves colour photographs (converted to grey) as they are.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

from .errors import ConfigError
from .io.range_io import RangeImage

__all__ = [
    "PROFILE_AXES",
    "PROFILE_MODES",
    "DEFAULT_PROFILE",
    "NORMALIZATION_META",
    "resolve_profile",
    "MODEL_CLIP",
    "robust_stats",
    "remove_transverse_profile",
    "normalize_for_model",
    "display_contrast_limits",
    "display_data",
]

logger = logging.getLogger(__name__)

PROFILE_AXES = ("column", "row")
PROFILE_MODES = ("auto", "none", "column", "row")
#: The normalisation of new models and of the display (measured in docs/model.md).
DEFAULT_PROFILE = "auto"
#: Project meta key: the profile setting of the project's models (written by each round).
NORMALIZATION_META = "normalization"
MODEL_CLIP = 10.0  # normalised values are clipped to [-MODEL_CLIP, MODEL_CLIP]
_MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its sigma
_IQR_TO_SIGMA = 1.0 / 1.349
_MAX_SAMPLES = 4_000_000  # statistics of larger images use a deterministic strided sample
_MAX_PROFILE_LINES = 2048  # profile medians use at most this many (evenly spaced) lines


def _valid_values(data: np.ndarray, valid: np.ndarray) -> np.ndarray:
    values = np.asarray(data)[np.asarray(valid, dtype=bool)]
    if values.size > _MAX_SAMPLES:
        values = values[:: int(np.ceil(values.size / _MAX_SAMPLES))]
    return values.astype(np.float64, copy=False)


def robust_stats(data: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """Median and robust scale (sigma estimate) of the valid pixels.

    The scale is 1.4826 * MAD; where that is 0 (more than half the pixels equal),
    IQR / 1.349, then the standard deviation, then 1.0.

    Parameters
    ----------
    data : np.ndarray
        (H, W) values.
    valid : np.ndarray
        bool (H, W); only these pixels count.

    Returns
    -------
    (float, float)
        ``(center, scale)`` with ``scale > 0``; ``(0.0, 1.0)`` without valid pixels.
    """
    values = _valid_values(data, valid)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    center = float(np.median(values))
    scale = _MAD_TO_SIGMA * float(np.median(np.abs(values - center)))
    if not scale > 0:
        q1, q3 = np.percentile(values, [25.0, 75.0])
        scale = float(q3 - q1) * _IQR_TO_SIGMA
    if not scale > 0:
        scale = float(np.std(values))
    if not scale > 0 or not np.isfinite(scale):
        scale = 1.0
    return center, scale


def _nanmedian_rows(lines: np.ndarray) -> np.ndarray:
    """Median of the non-NaN values of each row (NaN for rows without any), by one sort."""
    ordered = np.sort(lines, axis=1)  # NaNs sort last
    count = np.count_nonzero(~np.isnan(lines), axis=1)
    lo = np.clip((count - 1) // 2, 0, None)
    hi = np.clip(count // 2, 0, lines.shape[1] - 1)
    rows = np.arange(lines.shape[0])
    med = 0.5 * (ordered[rows, lo].astype(np.float64) + ordered[rows, hi])
    med[count == 0] = np.nan
    return med.astype(np.float32)


def remove_transverse_profile(data: np.ndarray, valid: np.ndarray, *,
                              axis: Literal["column", "row"]) -> np.ndarray:
    """Subtract the median profile across the road (cross-slope, rutting).

    ``axis="column"`` computes one median per column (over the valid pixels of
    that column) and subtracts it from every row: use it when the driving
    direction runs down the image rows, so the transverse profile varies along
    the columns. ``axis="row"`` is the transposed case.

    Parameters
    ----------
    data : np.ndarray
        (H, W) range values.
    valid : np.ndarray
        bool (H, W).
    axis : {"column", "row"}
        One median per column or per row.

    Returns
    -------
    np.ndarray
        float32 (H, W) residual; invalid pixels are 0. Columns (rows) without a
        valid pixel use the median of the whole profile. Images longer than 2048
        lines estimate the profile from 2048 evenly spaced lines.

    Raises
    ------
    ConfigError
        ``axis`` is not ``"column"`` or ``"row"``.
    """
    if axis not in PROFILE_AXES:
        raise ConfigError(f"profile axis must be one of {', '.join(PROFILE_AXES)}; got {axis!r}")
    data = np.asarray(data)
    valid = np.asarray(valid, dtype=bool)
    if data.ndim != 2 or data.shape != valid.shape:
        raise ValueError(f"data and valid must be 2-D of the same shape, got {data.shape} "
                         f"and {valid.shape}")
    masked = np.where(valid, data, np.nan).astype(np.float32)
    # lines along the profile axis, made contiguous; long images use a strided subset
    lines = masked if axis == "row" else masked.T
    step = max(1, int(np.ceil(lines.shape[1] / _MAX_PROFILE_LINES)))
    lines = np.ascontiguousarray(lines[:, ::step])
    profile = _nanmedian_rows(lines)
    missing = ~np.isfinite(profile)
    if missing.all():
        profile = np.zeros_like(profile)
    elif missing.any():
        profile[missing] = np.median(profile[~missing])
    profile = profile[np.newaxis, :] if axis == "column" else profile[:, np.newaxis]
    out = (masked - profile).astype(np.float32)
    out[~valid] = 0.0
    return out


def resolve_profile(profile: str, image: RangeImage) -> str:
    """The profile mode actually applied to ``image``: ``"auto"`` becomes ``"column"`` for a
    one-channel range image and ``"none"`` for a colour photograph.

    Raises
    ------
    ConfigError
        ``profile`` is not one of :data:`PROFILE_MODES`.
    """
    if profile not in PROFILE_MODES:
        raise ConfigError(f"profile must be one of {', '.join(PROFILE_MODES)}; got {profile!r}")
    if profile == "auto":
        return "column" if getattr(image, "channels", 1) == 1 else "none"
    return profile


def normalize_for_model(image: RangeImage, *,
                        profile: Literal["auto", "none", "column", "row"] = "none") -> np.ndarray:
    """Robust zero-centre, unit-scale normalisation for the model (and the display).

    Parameters
    ----------
    image : RangeImage
        The range image.
    profile : {"auto", "none", "column", "row"}
        Remove a transverse profile first (see :func:`remove_transverse_profile`;
        ``"auto"``: see :func:`resolve_profile`).

    Returns
    -------
    np.ndarray
        float32 (H, W): ``(data - median) / scale`` over valid pixels, clipped to
        ``[-MODEL_CLIP, MODEL_CLIP]``; invalid pixels are 0; never NaN.

    Raises
    ------
    ConfigError
        ``profile`` is not one of the valid options.
    """
    profile = resolve_profile(profile, image)
    valid = np.asarray(image.valid, dtype=bool)
    if profile == "none":
        values = np.asarray(image.data, dtype=np.float32)
    else:
        values = remove_transverse_profile(image.data, valid, axis=profile)
    center, scale = robust_stats(values, valid)
    out = (values.astype(np.float32) - np.float32(center)) / np.float32(scale)
    np.clip(out, -MODEL_CLIP, MODEL_CLIP, out=out)
    out[~valid | ~np.isfinite(out)] = 0.0
    return out.astype(np.float32, copy=False)


def display_contrast_limits(image: RangeImage, *, low: float = 1.0,
                            high: float = 99.0) -> tuple[float, float]:
    """Contrast limits for napari: percentiles of the valid pixels.

    Parameters
    ----------
    image : RangeImage
        The range image.
    low, high : float
        Percentiles, ``0 <= low < high <= 100``.

    Returns
    -------
    (float, float)
        ``(lo, hi)`` with ``lo < hi`` (a flat image gets ``(v - 0.5, v + 0.5)``).

    Raises
    ------
    ConfigError
        The percentiles are out of range or not increasing.
    """
    if not (0.0 <= low < high <= 100.0):
        raise ConfigError(f"percentiles must satisfy 0 <= low < high <= 100; got {low}, {high}")
    values = _valid_values(image.data, image.valid)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, [low, high]))
    if not hi > lo:
        lo, hi = lo - 0.5, lo + 0.5
    return lo, hi


def display_data(image: RangeImage,
                 profile: str = "auto") -> tuple[np.ndarray, tuple[float, float]]:
    """The pixels to show for a range image — the model's input — and their contrast limits.

    Costs time in proportion to the image (a few seconds for 8192 x 4096 pixels): the
    napari session calls it in a worker thread for large images.

    Parameters
    ----------
    image : RangeImage
        The image.
    profile : {"auto", "none", "column", "row"}
        The normalisation's profile setting (the model's; see :func:`normalize_for_model`).
        With ``"auto"`` the transverse road profile (cross-slope, ruts) is removed from
        one-channel range images, so cracks stand out instead of the road's shape.

    Returns
    -------
    (ndarray of float32, (float, float))
        Display data (robust unit scale, invalid pixels 0) and contrast limits
        (1st and 99th percentiles of the valid pixels).

    Raises
    ------
    ConfigError
        ``profile`` is not a valid setting.
    """
    data = normalize_for_model(image, profile=profile)  # type: ignore[arg-type]
    shown = RangeImage(data=data, valid=image.valid, path=image.path,
                       source_dtype=image.source_dtype)
    return data, display_contrast_limits(shown)
