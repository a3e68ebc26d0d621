"""Reading and (atomically) writing masks with core.io.mask_io."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_crack_al.core.io import atomic, mask_io
from napari_crack_al.core.errors import ConfigError, MaskError
from napari_crack_al.core.io.mask_io import read_mask, write_mask
from napari_crack_al.core.io.range_io import read_image_array


@pytest.fixture
def mask(rng) -> np.ndarray:
    m = rng.random((17, 29)) > 0.8
    m[0, 0] = True
    return m


FORMATS = [("m.png", 255), ("m.png", 1), ("m.tif", 255), ("m.tiff", 1)]


@pytest.mark.parametrize(("name", "values"), FORMATS)
def test_round_trip_and_stored_values(tmp_path, mask, name, values):
    path = write_mask(tmp_path / name, mask, values=values)
    assert path == tmp_path / name
    stored = read_image_array(path)
    assert stored.dtype == np.uint8
    assert set(np.unique(stored)) == {0, values}
    np.testing.assert_array_equal(stored == values, mask)
    back = read_mask(path, expected_shape=mask.shape)
    assert back.dtype == bool
    np.testing.assert_array_equal(back, mask)


def test_default_is_8bit_png_and_fmt_can_be_explicit(tmp_path, mask):
    write_mask(tmp_path / "a.png", mask)
    with Image.open(tmp_path / "a.png") as img:
        assert img.format == "PNG" and img.mode == "L"
    write_mask(tmp_path / "b.tif", mask, fmt="tif")
    assert tifffile.imread(tmp_path / "b.tif").max() == 255


def test_napari_labels_layer_data_writes_255(tmp_path):
    labels = np.zeros((4, 4), np.uint8)
    labels[1, 2] = 1
    write_mask(tmp_path / "l.png", labels)
    assert read_image_array(tmp_path / "l.png")[1, 2] == 255


def test_reads_01_0255_labels_rgb_palette_bool_float(tmp_path):
    expected = np.zeros((6, 8), bool)
    expected[2, 3] = expected[4, 5] = expected[5, 0] = True

    Image.fromarray(expected.astype(np.uint8)).save(tmp_path / "zero_one.png")
    Image.fromarray(expected.astype(np.uint8) * 255).save(tmp_path / "zero_255.png")
    labels = np.zeros((6, 8), np.uint16)
    labels[2, 3], labels[4, 5], labels[5, 0] = 1, 7, 300
    tifffile.imwrite(tmp_path / "labels.tif", labels)
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[2, 3] = (255, 0, 0)
    rgb[4, 5] = (0, 0, 1)
    rgb[5, 0] = (0, 128, 0)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    # opaque alpha everywhere must not make everything crack
    rgba = np.concatenate([rgb, np.full((6, 8, 1), 255, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    pal = Image.fromarray(labels.clip(0, 2).astype(np.uint8)).convert("P")
    pal.putpalette([0, 0, 0] * 256)  # black palette: only the indices carry the labels
    pal.save(tmp_path / "palette.png")
    np.save(tmp_path / "bool.npy", expected)
    np.save(tmp_path / "float.npy", np.where(expected, 0.7, np.nan).astype(np.float32))

    for name in ["zero_one.png", "zero_255.png", "labels.tif", "rgb.png", "rgba.png", "palette.png",
                 "bool.npy", "float.npy"]:
        got = read_mask(tmp_path / name, expected_shape=(6, 8))
        np.testing.assert_array_equal(got, expected, err_msg=name)


def test_expected_shape_mismatch_names_file_and_sizes(tmp_path, mask):
    path = write_mask(tmp_path / "m.png", mask)
    with pytest.raises(MaskError) as info:
        read_mask(path, expected_shape=(17, 30))
    msg = str(info.value)
    assert "m.png" in msg and "differs from its image" in msg
    assert "17 x 29" in msg and "17 x 30" in msg


def test_invalid_options(tmp_path, mask):
    with pytest.raises(ConfigError, match="255, 1"):
        write_mask(tmp_path / "m.png", mask, values=7)
    with pytest.raises(ConfigError, match="png, tiff"):
        write_mask(tmp_path / "m.png", mask, fmt="jpeg")
    with pytest.raises(MaskError, match="does not match"):
        write_mask(tmp_path / "m.png", mask, fmt="tiff")
    assert list(tmp_path.iterdir()) == []


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name != "m.png")


def test_atomic_write_leaves_no_temp_files_and_overwrites(tmp_path, mask):
    write_mask(tmp_path / "m.png", mask)
    write_mask(tmp_path / "m.png", ~mask)
    assert _leftovers(tmp_path) == []
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), ~mask)


def test_failure_mid_write_keeps_old_file(tmp_path, mask, monkeypatch):
    path = write_mask(tmp_path / "m.png", mask)
    before = path.read_bytes()
    real_atomic_write = mask_io.atomic_write

    def half_then_fail(target, write, **kwargs):
        def broken(fh):
            class Half:
                def write(self, data):
                    fh.write(data[: len(data) // 2])
                    fh.flush()
                    raise OSError(errno.ENOSPC, "No space left on device")
            write(Half())
        return real_atomic_write(target, broken, **kwargs)

    monkeypatch.setattr(mask_io, "atomic_write", half_then_fail)
    with pytest.raises(MaskError) as info:
        write_mask(path, ~mask)
    assert "m.png" in str(info.value) and "No space left" in str(info.value)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_failure_at_fsync_or_rename_keeps_old_file(tmp_path, mask, monkeypatch):
    path = write_mask(tmp_path / "m.png", mask)
    before = path.read_bytes()

    def no_replace(src, dst):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(atomic.os, "replace", no_replace)
    with pytest.raises(MaskError, match="Input/output error"):
        write_mask(path, ~mask)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_non_os_error_propagates_and_keeps_old_file(tmp_path, mask, monkeypatch):
    path = write_mask(tmp_path / "m.png", mask)
    before = path.read_bytes()
    real_fsync = os.fsync
    calls = []

    def boom(fd):
        calls.append(fd)
        raise RuntimeError("interrupted")

    monkeypatch.setattr(atomic.os, "fsync", boom)
    with pytest.raises(RuntimeError, match="interrupted"):
        write_mask(path, ~mask)
    monkeypatch.setattr(atomic.os, "fsync", real_fsync)
    assert calls, "the write must have reached fsync"
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []
