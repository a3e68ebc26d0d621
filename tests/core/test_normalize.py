"""Robust normalisation, transverse-profile removal and display contrast (core.normalize)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from napari_crack_al.core.errors import ConfigError
from napari_crack_al.core.normalize import (
    MODEL_CLIP,
    display_contrast_limits,
    normalize_for_model,
    remove_transverse_profile,
    robust_stats,
)
from napari_crack_al.core.io.range_io import RangeImage

H, W = 96, 160
NOISE = 0.05


def _road(rng, *, invalid_fraction=0.1):
    """Cross-slope (2 %) + two wheel-path ruts + texture noise, with dropouts and a crack."""
    x = np.arange(W, dtype=np.float64)
    rut = -3.0 * (np.exp(-((x - 40) / 8.0) ** 2) + np.exp(-((x - 120) / 8.0) ** 2))
    profile = 1500.0 + 0.02 * x * 10 + rut  # height in mm along the transverse axis
    data = profile[None, :] + rng.normal(0.0, NOISE, size=(H, W))
    valid = rng.random((H, W)) > invalid_fraction
    data[~valid] = 0.0  # LCMS "no return"
    return data.astype(np.float32), valid


def test_profile_removal_removes_cross_slope_and_ruts(rng):
    data, valid = _road(rng)
    before = float(np.std(data[valid]))
    residual = remove_transverse_profile(data, valid, axis="column")
    assert residual.dtype == np.float32 and residual.shape == (H, W)
    after = float(np.std(residual[valid]))
    assert before > 1.0
    assert after < 1.2 * NOISE, (before, after)
    assert np.all(residual[~valid] == 0.0)


def test_profile_removal_row_axis_is_the_transpose(rng):
    data, valid = _road(rng)
    by_row = remove_transverse_profile(data.T, valid.T, axis="row")
    by_column = remove_transverse_profile(data, valid, axis="column")
    np.testing.assert_allclose(by_row, by_column.T, atol=1e-4)
    assert float(np.std(by_row[valid.T])) < 1.2 * NOISE


def test_profile_removal_handles_fully_invalid_columns(rng):
    data, valid = _road(rng)
    valid[:, 10:13] = False
    residual = remove_transverse_profile(data, valid, axis="column")
    assert np.isfinite(residual).all()
    assert np.all(residual[:, 10:13] == 0.0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reference = np.nanmedian(np.where(valid, data, np.nan), axis=0)
    ok = np.isfinite(reference)
    expected = (data - reference[None, :])[:, ok]
    np.testing.assert_allclose(residual[:, ok][valid[:, ok]], expected[valid[:, ok]], atol=1e-3)
    none_valid = remove_transverse_profile(data, np.zeros_like(valid), axis="row")
    assert np.all(none_valid == 0.0)


def test_profile_axis_is_validated(rng):
    data, valid = _road(rng)
    with pytest.raises(ConfigError, match="column, row"):
        remove_transverse_profile(data, valid, axis="diagonal")
    with pytest.raises(ConfigError, match="none, column, row"):
        normalize_for_model(RangeImage(data, valid, None, "float32"), profile="both")


def test_robust_stats_ignore_invalid_and_outliers(rng):
    data = rng.normal(1000.0, 5.0, size=(200, 200)).astype(np.float32)
    valid = np.ones_like(data, dtype=bool)
    data[:5] = 1e6  # spikes, still "valid"
    data[-20:] = -7.0
    valid[-20:] = False
    center, scale = robust_stats(data, valid)
    assert center == pytest.approx(1000.0, abs=0.2)
    assert scale == pytest.approx(5.0, rel=0.05)


def test_normalize_for_model_zero_centre_unit_scale(rng):
    data = rng.normal(1000.0, 5.0, size=(128, 128)).astype(np.float32)
    valid = rng.random(data.shape) > 0.2
    data[~valid] = 1000.0  # as read_range_image fills them
    data[0, 0] = 1e5  # a spike gets clipped
    valid[0, 0] = True
    out = normalize_for_model(RangeImage(data, valid, None, "float32"))
    assert out.dtype == np.float32 and out.shape == data.shape
    assert np.isfinite(out).all()
    assert np.all(out[~valid] == 0.0)
    v = out[valid]
    assert abs(float(np.median(v))) < 0.05
    assert 1.4826 * float(np.median(np.abs(v - np.median(v)))) == pytest.approx(1.0, rel=0.05)
    assert out[0, 0] == MODEL_CLIP and float(out.min()) >= -MODEL_CLIP


def test_normalize_with_profile_flattens_columns(rng):
    data, valid = _road(rng)
    plain = normalize_for_model(RangeImage(data, valid, None, "float32"))
    flat = normalize_for_model(RangeImage(data, valid, None, "float32"), profile="column")
    col_median = np.array([np.median(flat[valid[:, j], j]) for j in range(W)])
    assert np.abs(col_median).max() < 0.3
    plain_median = np.array([np.median(plain[valid[:, j], j]) for j in range(W)])
    assert np.abs(plain_median).max() > 1.0  # without removal the ruts dominate


def test_normalize_constant_image_gives_zeros():
    data = np.full((8, 8), 42.0, np.float32)
    out = normalize_for_model(RangeImage(data, np.ones((8, 8), bool), None, "uint16"))
    np.testing.assert_array_equal(out, np.zeros((8, 8), np.float32))


def test_display_limits_ignore_invalid_pixels(rng):
    data = rng.uniform(10.0, 20.0, size=(64, 64)).astype(np.float32)
    valid = np.ones_like(data, dtype=bool)
    data[:8] = -1e6
    valid[:8] = False
    image = RangeImage(data, valid, None, "float32")
    lo, hi = display_contrast_limits(image)
    expected = np.percentile(data[valid], [1.0, 99.0])
    assert (lo, hi) == pytest.approx(tuple(expected))
    assert 10.0 <= lo < hi <= 20.0
    lo0, hi0 = display_contrast_limits(image, low=0.0, high=100.0)
    assert lo0 == pytest.approx(float(data[valid].min()))
    assert hi0 == pytest.approx(float(data[valid].max()))


def test_display_limits_flat_image_and_bad_percentiles():
    image = RangeImage(np.full((4, 4), 3.0, np.float32), np.ones((4, 4), bool), None, "uint8")
    assert display_contrast_limits(image) == (2.5, 3.5)
    with pytest.raises(ConfigError):
        display_contrast_limits(image, low=50.0, high=10.0)
    with pytest.raises(ConfigError):
        display_contrast_limits(image, low=-1.0)
