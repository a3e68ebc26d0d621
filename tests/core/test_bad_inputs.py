"""The bad-input corpus: every broken file gives a specific error naming the file and the problem.

Each case builds a broken input in ``tmp_path`` and asserts the exception type, that
the message names the file (or folder) and that it contains the problem phrase
documented in docs/bad-inputs.md.
"""

from __future__ import annotations

import builtins
import errno
import os
import stat
import struct
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_crack_al.core.errors import ImageReadError, InputError, MaskError
from napari_crack_al.core.io.mask_io import read_mask, write_mask
from napari_crack_al.core.io.range_io import list_images, read_image_array, read_range_image

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
Build = Callable[[Path, pytest.MonkeyPatch], tuple[Callable[[], object], str]]


@dataclass(frozen=True)
class Case:
    id: str
    exc: type[InputError]
    phrase: str
    build: Build


def _png(path: Path, arr: np.ndarray | None = None) -> Path:
    Image.fromarray(np.full((16, 16), 7, np.uint8) if arr is None else arr).save(path)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _deny_reading(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """chmod 000, and (root ignores permissions) make open() refuse this one path."""
    path.chmod(0)
    if IS_ROOT:
        real_open = builtins.open

        def fake_open(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and Path(file) == path:
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", fake_open)


def _deny_listing(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    folder.chmod(0)
    if IS_ROOT:
        real_scandir = os.scandir

        def fake_scandir(p="."):
            if Path(p) == folder:
                raise PermissionError(13, "Permission denied", str(p))
            return real_scandir(p)

        monkeypatch.setattr(os, "scandir", fake_scandir)


def _deny_writing(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    if IS_ROOT:
        real_mkstemp = tempfile.mkstemp

        def fake_mkstemp(*args, dir=None, **kwargs):
            if dir is not None and Path(dir) == folder:
                raise PermissionError(13, "Permission denied", str(dir))
            return real_mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", fake_mkstemp)


# ----------------------------------------------------------------------------- builders
def b_missing(tmp, mp):
    return lambda: read_range_image(tmp / "nothing_here.png"), "nothing_here.png"


def b_folder(tmp, mp):
    (tmp / "scan_001.tif").mkdir()
    return lambda: read_range_image(tmp / "scan_001.tif"), "scan_001.tif"


def b_empty_png(tmp, mp):
    (tmp / "empty.png").write_bytes(b"")
    return lambda: read_range_image(tmp / "empty.png"), "empty.png"


def b_empty_npy(tmp, mp):
    (tmp / "empty.npy").write_bytes(b"")
    return lambda: read_image_array(tmp / "empty.npy"), "empty.npy"


def b_suffix(tmp, mp):
    _png(tmp / "photo.jpg")
    return lambda: read_range_image(tmp / "photo.jpg"), "photo.jpg"


def b_garbage_png(tmp, mp):
    (tmp / "garbage.png").write_bytes(b"this is not an image at all" * 10)
    return lambda: read_range_image(tmp / "garbage.png"), "garbage.png"


def b_bad_png_header(tmp, mp):
    (tmp / "header.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    return lambda: read_range_image(tmp / "header.png"), "header.png"


def b_truncated_png(tmp, mp):
    rng = np.random.default_rng(1)
    data = _png(tmp / "full.png", rng.integers(0, 255, (64, 64), dtype=np.uint8)).read_bytes()
    (tmp / "cut.png").write_bytes(data[: len(data) // 2])
    return lambda: read_range_image(tmp / "cut.png"), "cut.png"


def b_animated_png(tmp, mp):
    frames = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (10, 20)]
    frames[0].save(tmp / "anim.png", save_all=True, append_images=frames[1:])
    return lambda: read_range_image(tmp / "anim.png"), "anim.png"


def b_garbage_tif(tmp, mp):
    (tmp / "garbage.tif").write_bytes(b"\x00\x01" * 100)
    return lambda: read_range_image(tmp / "garbage.tif"), "garbage.tif"


def b_bad_tif_ifd(tmp, mp):
    data = (tmp / "ok.tif")
    tifffile.imwrite(data, np.ones((32, 32), np.uint16))
    (tmp / "ifd.tif").write_bytes(data.read_bytes()[:20])
    return lambda: read_range_image(tmp / "ifd.tif"), "ifd.tif"


def b_truncated_tif(tmp, mp):
    tifffile.imwrite(tmp / "ok.tif", np.ones((64, 64), np.uint16))
    data = (tmp / "ok.tif").read_bytes()
    (tmp / "cut.tif").write_bytes(data[: len(data) // 2])
    return lambda: read_range_image(tmp / "cut.tif"), "cut.tif"


def b_multipage_tif(tmp, mp):
    with tifffile.TiffWriter(tmp / "stack.tif") as tif:
        for value in range(4):
            tif.write(np.full((8, 8), value + 1, np.uint16), photometric="minisblack")
    return lambda: read_range_image(tmp / "stack.tif"), "stack.tif"


def b_complex_tif(tmp, mp):
    tifffile.imwrite(tmp / "complex.tif", np.ones((8, 8), np.complex64))
    return lambda: read_range_image(tmp / "complex.tif"), "complex.tif"


def b_npy_stack(tmp, mp):
    np.save(tmp / "stack.npy", np.ones((5, 8, 8), np.float32))
    return lambda: read_range_image(tmp / "stack.npy"), "stack.npy"


def b_npy_4d(tmp, mp):
    np.save(tmp / "cube.npy", np.ones((2, 3, 8, 8), np.float32))
    return lambda: read_range_image(tmp / "cube.npy"), "cube.npy"


def b_npy_1d(tmp, mp):
    np.save(tmp / "line.npy", np.ones(10, np.float32))
    return lambda: read_range_image(tmp / "line.npy"), "line.npy"


def b_npy_zero_size(tmp, mp):
    np.save(tmp / "zero.npy", np.ones((0, 16), np.float32))
    return lambda: read_range_image(tmp / "zero.npy"), "zero.npy"


def b_npy_pickle(tmp, mp):
    np.save(tmp / "pickle.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return lambda: read_range_image(tmp / "pickle.npy"), "pickle.npy"


def b_npy_complex(tmp, mp):
    np.save(tmp / "complex.npy", np.ones((4, 4), np.complex128))
    return lambda: read_range_image(tmp / "complex.npy"), "complex.npy"


def b_npy_bool(tmp, mp):
    np.save(tmp / "bool.npy", np.ones((4, 4), bool))
    return lambda: read_range_image(tmp / "bool.npy"), "bool.npy"


def b_npy_truncated(tmp, mp):
    np.save(tmp / "ok.npy", np.ones((64, 64), np.float32))
    data = (tmp / "ok.npy").read_bytes()
    (tmp / "cut.npy").write_bytes(data[: len(data) // 2])
    return lambda: read_range_image(tmp / "cut.npy"), "cut.npy"


def b_npy_garbage(tmp, mp):
    (tmp / "garbage.npy").write_bytes(b"PK\x03\x04 this is a zip, not an npy")
    return lambda: read_range_image(tmp / "garbage.npy"), "garbage.npy"


def b_npy_bad_header(tmp, mp):
    (tmp / "header.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': oops}  \n")
    return lambda: read_range_image(tmp / "header.npy"), "header.npy"


def b_npy_unknown_version(tmp, mp):
    np.save(tmp / "v9.npy", np.ones((4, 4), np.float32))
    data = bytearray((tmp / "v9.npy").read_bytes())
    data[6] = 9  # major version byte after the magic
    (tmp / "v9.npy").write_bytes(bytes(data))
    return lambda: read_range_image(tmp / "v9.npy"), "v9.npy"


def b_too_large_png(tmp, mp):
    _png(tmp / "big.png", np.ones((100, 100), np.uint8))
    return lambda: read_range_image(tmp / "big.png", max_pixels=5_000), "big.png"


def b_too_large_tif(tmp, mp):
    tifffile.imwrite(tmp / "big.tif", np.ones((100, 100), np.float32))
    return lambda: read_range_image(tmp / "big.tif", max_pixels=5_000), "big.tif"


def b_huge_npy_header(tmp, mp):
    # Header claims 100 000 x 100 000 but there is no data: if the size were not checked
    # from the header first, this would report a truncated file instead.
    with open(tmp / "huge.npy", "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<u2", "fortran_order": False, "shape": (100_000, 100_000)})
    return lambda: read_range_image(tmp / "huge.npy"), "huge.npy"


def b_huge_npy_bytes(tmp, mp):
    # 20 000 x 20 000 pixels is within the pixel limit, but x 4 float64 is 12.8 GB decoded:
    # counting pixels only, this reached np.load and was reported as a truncated file.
    with open(tmp / "wide.npy", "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f8", "fortran_order": False, "shape": (20_000, 20_000, 4)})
    return lambda: read_range_image(tmp / "wide.npy"), "wide.npy"


def b_npy_out_of_memory(tmp, mp):
    np.save(tmp / "oom.npy", np.ones((8, 8), np.float32))

    def no_memory(*args, **kwargs):
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    mp.setattr(np, "load", no_memory)  # mmap of a file larger than free memory
    return lambda: read_range_image(tmp / "oom.npy"), "oom.npy"


def b_huge_png_header(tmp, mp):
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 16, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")
    (tmp / "huge.png").write_bytes(data)
    return lambda: read_range_image(tmp / "huge.png"), "huge.png"


def b_decompression_bomb(tmp, mp):
    _png(tmp / "bomb.png", np.ones((64, 64), np.uint8))
    mp.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)  # PIL refuses > 2x this
    return lambda: read_range_image(tmp / "bomb.png"), "bomb.png"


def b_unreadable(tmp, mp):
    path = _png(tmp / "secret.png")
    _deny_reading(mp, path)
    return lambda: read_range_image(path), "secret.png"


def b_all_zero(tmp, mp):
    _png(tmp / "blank.png", np.zeros((16, 16), np.uint16))
    return lambda: read_range_image(tmp / "blank.png"), "blank.png"


def b_all_nan(tmp, mp):
    tifffile.imwrite(tmp / "nan.tif", np.full((8, 8), np.nan, np.float32))
    return lambda: read_range_image(tmp / "nan.tif"), "nan.tif"


def b_mask_size(tmp, mp):
    write_mask(tmp / "scan_7.png", np.ones((10, 12), bool))
    return lambda: read_mask(tmp / "scan_7.png", expected_shape=(10, 13)), "scan_7.png"


def b_mask_garbage(tmp, mp):
    (tmp / "mask.png").write_bytes(b"not a png")
    return lambda: read_mask(tmp / "mask.png"), "mask.png"


def b_mask_missing(tmp, mp):
    return lambda: read_mask(tmp / "gone.png"), "gone.png"


def b_mask_readonly_folder(tmp, mp):
    folder = tmp / "locked"
    folder.mkdir()
    _deny_writing(mp, folder)
    return lambda: write_mask(folder / "out.png", np.ones((4, 4), bool)), "out.png"


def b_mask_missing_folder(tmp, mp):
    return lambda: write_mask(tmp / "no_such_dir" / "out.png", np.ones((4, 4), bool)), "no_such_dir"


def b_mask_target_is_folder(tmp, mp):
    (tmp / "target.png").mkdir()
    return lambda: write_mask(tmp / "target.png", np.ones((4, 4), bool)), "target.png"


def b_mask_bad_suffix(tmp, mp):
    return lambda: write_mask(tmp / "out.jpg", np.ones((4, 4), bool)), "out.jpg"


def b_mask_3d(tmp, mp):
    return lambda: write_mask(tmp / "vol.png", np.ones((2, 4, 4), bool)), "vol.png"


def b_list_missing(tmp, mp):
    return lambda: list_images(tmp / "no_images"), "no_images"


def b_list_file(tmp, mp):
    _png(tmp / "single.png")
    return lambda: list_images(tmp / "single.png"), "single.png"


def b_list_unreadable(tmp, mp):
    folder = tmp / "closed"
    folder.mkdir()
    _deny_listing(mp, folder)
    return lambda: list_images(folder), "closed"


def b_list_ambiguous(tmp, mp):
    folder = tmp / "imgs"
    folder.mkdir()
    _png(folder / "road_12.png")
    np.save(folder / "road_12.npy", np.ones((4, 4), np.float32))
    return lambda: list_images(folder), "road_12"


CASES = [
    Case("missing-file", ImageReadError, "file does not exist", b_missing),
    Case("folder-as-file", ImageReadError, "is a folder, not a file", b_folder),
    Case("empty-png", ImageReadError, "file is empty (0 bytes)", b_empty_png),
    Case("empty-npy", ImageReadError, "file is empty (0 bytes)", b_empty_npy),
    Case("unsupported-suffix", ImageReadError, "unsupported file type '.jpg'", b_suffix),
    Case("garbage-png", ImageReadError, "not a valid PNG file", b_garbage_png),
    Case("bad-png-header", ImageReadError, "not a valid PNG file", b_bad_png_header),
    Case("truncated-png", ImageReadError, "PNG file is truncated or corrupt", b_truncated_png),
    Case("animated-png", ImageReadError, "animated PNG with 2 frames", b_animated_png),
    Case("garbage-tif", ImageReadError, "not a valid TIFF file", b_garbage_tif),
    Case("cut-tif-header", ImageReadError, "not a valid TIFF file", b_bad_tif_ifd),
    Case("truncated-tif", ImageReadError, "TIFF file is truncated or corrupt", b_truncated_tif),
    Case("multipage-tif", ImageReadError, "multi-page TIFF (4 pages)", b_multipage_tif),
    Case("complex-tif", ImageReadError, "unsupported data type complex64", b_complex_tif),
    Case("npy-3d-stack", ImageReadError, "3-D stack of shape (5, 8, 8)", b_npy_stack),
    Case("npy-4d", ImageReadError, "4-D stack", b_npy_4d),
    Case("npy-1d", ImageReadError, "expected a 2-D image", b_npy_1d),
    Case("npy-zero-size", ImageReadError, "zero-size array", b_npy_zero_size),
    Case("npy-pickle", ImageReadError, "pickled Python objects", b_npy_pickle),
    Case("npy-complex", ImageReadError, "unsupported data type complex128", b_npy_complex),
    Case("npy-bool", ImageReadError, "unsupported data type bool", b_npy_bool),
    Case("npy-truncated", ImageReadError, "NPY file is truncated", b_npy_truncated),
    Case("npy-garbage", ImageReadError, "not a valid NPY file", b_npy_garbage),
    Case("npy-bad-header", ImageReadError, "not a valid NPY file", b_npy_bad_header),
    Case("npy-unknown-version", ImageReadError, "unsupported format version 9.0",
         b_npy_unknown_version),
    Case("too-large-png", ImageReadError, "image is too large", b_too_large_png),
    Case("too-large-tif", ImageReadError, "image is too large", b_too_large_tif),
    Case("huge-npy-header", ImageReadError, "image is too large", b_huge_npy_header),
    Case("huge-npy-bytes", ImageReadError, "image is too large: 20000 x 20000 x 4 values of 8 "
         "bytes = 12,800,000,000 bytes", b_huge_npy_bytes),
    Case("npy-out-of-memory", ImageReadError, "not enough memory to read the image",
         b_npy_out_of_memory),
    Case("huge-png-header", ImageReadError, "image is too large", b_huge_png_header),
    Case("decompression-bomb", ImageReadError, "too large to decode safely", b_decompression_bomb),
    Case("unreadable-file", ImageReadError, "not readable (permission denied)", b_unreadable),
    Case("all-zero", ImageReadError, "no valid pixels", b_all_zero),
    Case("all-nan", ImageReadError, "no valid pixels", b_all_nan),
    Case("mask-size-differs", MaskError, "mask size differs from its image", b_mask_size),
    Case("mask-garbage", MaskError, "not a valid PNG file", b_mask_garbage),
    Case("mask-missing", MaskError, "file does not exist", b_mask_missing),
    Case("mask-readonly-folder", MaskError, "folder is not writable", b_mask_readonly_folder),
    Case("mask-missing-folder", MaskError, "folder does not exist", b_mask_missing_folder),
    Case("mask-target-is-folder", MaskError, "is a folder, not a file", b_mask_target_is_folder),
    Case("mask-bad-suffix", MaskError, "unsupported mask file type '.jpg'", b_mask_bad_suffix),
    Case("mask-3d", MaskError, "expected a non-empty 2-D array", b_mask_3d),
    Case("list-missing-folder", ImageReadError, "folder does not exist", b_list_missing),
    Case("list-file-not-folder", ImageReadError, "is a file, not a folder", b_list_file),
    Case("list-unreadable-folder", ImageReadError, "folder is not readable", b_list_unreadable),
    Case("list-ambiguous-name", ImageReadError, "ambiguous image name", b_list_ambiguous),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_specific_error(tmp_path, monkeypatch, case):
    action, name = case.build(tmp_path, monkeypatch)
    with pytest.raises(case.exc) as info:
        action()
    err = info.value
    message = str(err)
    assert type(err) is case.exc, f"{type(err).__name__}: {message}"
    assert name in message, message
    assert case.phrase in message, message
    assert message == f"{err.path}: {err.problem}"
    assert "Traceback" not in message and "\n" not in message


def test_corpus_is_large_enough():
    assert len(CASES) >= 15
    assert len({c.id for c in CASES}) == len(CASES)


def test_tiff_codec_needing_imagecodecs(tmp_path):
    path = tmp_path / "packed.tif"
    tifffile.imwrite(path, np.ones((8, 8), np.uint16))
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags["Compression"].overwrite(34933)  # PNG-in-TIFF: needs imagecodecs
    try:
        import imagecodecs  # noqa: F401
        phrase = "TIFF file is truncated or corrupt"  # decodes, and finds garbage
    except ImportError:
        phrase = "TIFF compression PNG cannot be decoded here"
    with pytest.raises(ImageReadError) as info:
        read_range_image(path)
    assert "packed.tif" in str(info.value) and phrase in str(info.value)


def test_partial_mask_write_leaves_folder_clean(tmp_path, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    _deny_writing(monkeypatch, folder)
    with pytest.raises(MaskError):
        write_mask(folder / "out.png", np.ones((4, 4), bool))
    folder.chmod(0o755)
    assert list(folder.iterdir()) == []


NAMES = [
    "route 66 – Ölspur.png",
    "straße ñ 路面 01.tif",
    "scan (2) copy.npy",
    "ünïcödé.tiff",
]


@pytest.mark.parametrize("name", NAMES)
def test_unicode_and_spaces_in_paths_work(tmp_path, name):
    folder = tmp_path / "Straßen Daten — 2024"
    folder.mkdir()
    arr = np.arange(1, 13, dtype=np.uint16).reshape(3, 4)
    path = folder / name
    if path.suffix == ".png":
        Image.fromarray(arr).save(path)
    elif path.suffix in (".tif", ".tiff"):
        tifffile.imwrite(path, arr)
    else:
        np.save(path, arr)
    image = read_range_image(path)
    np.testing.assert_array_equal(image.data, arr.astype(np.float32))
    assert image.name == path.stem
    assert list_images(folder) == [path]
    mask_path = write_mask(folder / f"{path.stem} mask.png", arr > 6)
    np.testing.assert_array_equal(read_mask(mask_path, expected_shape=(3, 4)), arr > 6)
