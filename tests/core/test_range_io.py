"""Round trips and validity masks of core.range_io."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_crack_al.core.errors import ImageReadError, MaskError
from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.io.range_io import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    SUPPORTED_IMAGE_SUFFIXES,
    RangeImage,
    list_images,
    read_image_array,
    read_range_image,
)


def _save(path: Path, arr: np.ndarray) -> Path:
    suffix = path.suffix.lower()
    if suffix == ".png":
        Image.fromarray(arr).save(path)
    elif suffix in (".tif", ".tiff"):
        tifffile.imwrite(path, arr)
    else:
        np.save(path, arr)
    return path


def test_contract_constants():
    assert SUPPORTED_IMAGE_SUFFIXES == (".png", ".tif", ".tiff", ".npy")
    assert DEFAULT_MAX_PIXELS == 20_000 * 20_000
    # bytes: a single-channel float64 image at the pixel limit passes, 4 float64 channels do not
    assert DEFAULT_MAX_PIXELS * 8 <= DEFAULT_MAX_BYTES < DEFAULT_MAX_PIXELS * 4 * 8


ROUND_TRIPS = [
    ("png", np.uint8),
    ("png", np.uint16),
    ("tif", np.uint8),
    ("tif", np.uint16),
    ("tif", np.float32),
    ("tiff", np.uint16),
    ("npy", np.uint8),
    ("npy", np.uint16),
    ("npy", np.int16),
    ("npy", np.float32),
    ("npy", np.float64),
]


IDS = [f"{s}-{np.dtype(d).name}" for s, d in ROUND_TRIPS]


@pytest.mark.parametrize(("suffix", "dtype"), ROUND_TRIPS, ids=IDS)
def test_round_trip_every_format_and_dtype(tmp_path, rng, suffix, dtype):
    hi = 250 if np.dtype(dtype) == np.uint8 else 60_000 if np.dtype(dtype) == np.uint16 else 30_000
    arr = rng.integers(1, hi, size=(23, 31)).astype(dtype)
    if np.dtype(dtype).kind == "f":
        arr = arr + np.float32(0.25)
    path = _save(tmp_path / f"img.{suffix}", arr)

    raw = read_image_array(path)
    assert raw.dtype == np.dtype(dtype)
    assert raw.shape == (23, 31)
    np.testing.assert_array_equal(raw, arr)

    image = read_range_image(path)
    assert isinstance(image, RangeImage)
    assert image.data.dtype == np.float32 and image.valid.dtype == bool
    assert image.shape == (23, 31)
    assert image.valid.all()
    np.testing.assert_allclose(image.data, arr.astype(np.float32))
    assert image.source_dtype == np.dtype(dtype).name
    assert image.path == path and image.name == "img"
    assert image.channels == 1


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)], ids=["v1", "v2", "v3"])
def test_npy_every_header_version_reads(tmp_path, rng, version):
    arr = rng.integers(1, 60_000, size=(5, 7)).astype(np.uint16)
    path = tmp_path / "v.npy"
    with open(path, "wb") as fh:
        np.lib.format.write_array(fh, arr, version=version)
    assert path.read_bytes()[6:8] == bytes(version)
    np.testing.assert_array_equal(read_image_array(path), arr)


def test_sixteen_bit_png_keeps_full_range(tmp_path):
    arr = np.array([[1, 256, 40_000, 65_535]], dtype=np.uint16)
    path = _save(tmp_path / "r.png", arr)
    np.testing.assert_array_equal(read_image_array(path), arr)


def test_upper_case_suffix_and_fortran_order_npy(tmp_path, rng):
    arr = np.asfortranarray(rng.normal(size=(7, 9)).astype(np.float32))
    path = tmp_path / "F.NPY"
    with open(path, "wb") as fh:
        np.save(fh, arr)
    np.testing.assert_array_equal(read_image_array(path), arr)


def test_rgb_png_becomes_luminance_and_zero_stays_valid(tmp_path):
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[0, 2] = (0, 0, 255)
    rgb[0, 3] = (200, 200, 200)
    path = _save(tmp_path / "photo.png", rgb)
    gray = read_image_array(path)
    assert gray.shape == (4, 5) and gray.dtype == np.float32
    expected = [0.299 * 255, 0.587 * 255, 0.114 * 255, 200.0]
    np.testing.assert_allclose(gray[0, :4], expected, rtol=1e-5)
    image = read_range_image(path)
    assert image.channels == 3 and image.source_dtype == "uint8"
    assert image.valid.all(), "black pixels of a photograph are not 'no return'"
    np.testing.assert_allclose(read_image_array(path, color="green")[0, :2], [0, 255])
    np.testing.assert_allclose(read_image_array(path, color="mean")[0, 0], 85.0, rtol=1e-5)


def test_rgba_ignores_alpha_and_channels_first_npy(tmp_path):
    rgba = np.zeros((5, 6, 4), dtype=np.uint8)
    rgba[..., 1] = 100
    rgba[..., 3] = np.arange(6, dtype=np.uint8) * 40
    gray = read_image_array(_save(tmp_path / "a.png", rgba))
    np.testing.assert_allclose(gray, np.full((5, 6), 58.7, np.float32), rtol=1e-5)
    chw = np.moveaxis(rgba[..., :3], -1, 0).copy()  # (3, H, W)
    np.testing.assert_allclose(read_image_array(_save(tmp_path / "b.npy", chw)), gray, rtol=1e-6)


def test_rgb_tiff_and_gray_alpha_png(tmp_path):
    rgb = np.full((5, 6, 3), 10, dtype=np.uint8)
    np.testing.assert_allclose(read_image_array(_save(tmp_path / "c.tif", rgb)), 10.0, rtol=1e-5)
    la = Image.fromarray(np.stack([np.full((3, 3), 77, np.uint8), np.zeros((3, 3), np.uint8)], -1))
    assert la.mode == "LA"
    la.save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image_array(tmp_path / "la.png"), np.full((3, 3), 77))


def test_palette_png_reads_as_colour(tmp_path):
    img = Image.new("P", (4, 2))
    img.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    img.putpixel((1, 0), 1)
    img.save(tmp_path / "p.png")
    gray = read_image_array(tmp_path / "p.png")
    assert gray[0, 1] == pytest.approx(255.0, rel=1e-5) and gray[0, 0] == 0


def test_lcms_zeros_become_invalid_and_are_filled_with_median(tmp_path):
    arr = np.array([[0, 10, 20], [30, 0, 40], [50, 60, 0]], dtype=np.uint16)
    image = read_range_image(_save(tmp_path / "lcms.png", arr))
    np.testing.assert_array_equal(image.valid, arr != 0)
    expected_fill = np.median([10, 20, 30, 40, 50, 60])
    np.testing.assert_allclose(image.data[arr == 0], expected_fill)
    np.testing.assert_allclose(image.data[arr != 0], arr[arr != 0])
    assert image.valid_fraction == pytest.approx(6 / 9)
    # explicit override keeps zeros
    kept = read_range_image(tmp_path / "lcms.png", zero_is_invalid=False)
    assert kept.valid.all() and kept.data[0, 0] == 0


@pytest.mark.parametrize("suffix", ["tif", "npy"])
def test_nan_and_inf_become_invalid_and_never_reach_data(tmp_path, suffix):
    arr = np.arange(1, 21, dtype=np.float32).reshape(4, 5)
    arr[0, 0] = np.nan
    arr[1, 1] = np.inf
    arr[2, 2] = -np.inf
    arr[3, 3] = 0.0  # a real zero height in float data is valid by default
    image = read_range_image(_save(tmp_path / f"f.{suffix}", arr))
    bad = ~np.isfinite(arr)
    np.testing.assert_array_equal(image.valid, ~bad)
    assert np.isfinite(image.data).all()
    np.testing.assert_allclose(image.data[bad], np.median(arr[~bad]))
    assert image.data[3, 3] == 0.0
    strict = read_range_image(tmp_path / f"f.{suffix}", zero_is_invalid=True)
    assert not strict.valid[3, 3] and strict.valid.sum() == 16


def test_float64_overflowing_float32_is_invalid(tmp_path):
    arr = np.array([[1.0, 2.0], [1e300, 4.0]])
    image = read_range_image(_save(tmp_path / "big.npy", arr))
    assert not image.valid[1, 0] and np.isfinite(image.data).all()


def test_max_pixels_limit_is_inclusive(tmp_path):
    path = _save(tmp_path / "m.png", np.ones((10, 10), np.uint8))
    assert read_image_array(path, max_pixels=100).shape == (10, 10)
    with pytest.raises(ImageReadError, match="too large"):
        read_image_array(path, max_pixels=99)


@pytest.mark.parametrize("suffix", ["png", "tif", "npy"])
def test_max_bytes_limit_is_inclusive_and_counts_bytes(tmp_path, suffix):
    path = _save(tmp_path / f"b.{suffix}", np.ones((10, 10), np.uint16))  # 200 bytes decoded
    assert read_image_array(path, max_bytes=200).shape == (10, 10)
    assert read_range_image(path, max_bytes=200).shape == (10, 10)
    with pytest.raises(ImageReadError, match=r"too large: 10 x 10 values of 2 bytes = 200 bytes"):
        read_image_array(path, max_bytes=199)
    with pytest.raises(MaskError, match="too large") as info:
        read_mask(path, max_bytes=199)
    assert f"b.{suffix}" in str(info.value)


def test_range_image_of_4096_squared_16_bit_is_within_the_default_bound():
    assert 2 * 8192 * 8192 <= DEFAULT_MAX_BYTES  # well beyond 16-bit 4096 x 4096 range images


def test_range_image_rejects_mismatched_arrays():
    with pytest.raises(ValueError):
        RangeImage(np.zeros((2, 3), np.float32), np.ones((3, 2), bool), None, "float32")


def test_list_images_sorted_filtered(tmp_path):
    for name in ["b.tif", "a.png", "C.NPY", "d.tiff", "notes.txt", ".a.png.tmp.png", "x.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    names = [p.name for p in list_images(tmp_path)]
    assert names == sorted(["C.NPY", "a.png", "b.tif", "d.tiff"])
    assert all(p.parent == tmp_path for p in list_images(tmp_path))


def test_list_images_skips_a_symlink_loop_with_a_warning(tmp_path, caplog):
    _save(tmp_path / "a.png", np.ones((4, 4), np.uint8))
    (tmp_path / "loop").symlink_to("loop")  # ln -s loop loop
    (tmp_path / "scan.tif").symlink_to("scan.tif")
    with caplog.at_level("WARNING", logger="napari_crack_al.core.io.range_io"):
        assert list_images(tmp_path) == [tmp_path / "a.png"]
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "skipping 'loop', which cannot be read" in warned and str(tmp_path) in warned
    assert "skipping 'scan.tif'" in warned


def test_list_images_empty_folder(tmp_path):
    assert list_images(tmp_path) == []
