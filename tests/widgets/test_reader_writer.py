"""npe2 reader, writer and sample data, directly and through napari."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_crack_al._reader import _project_layers, get_reader, read_image, read_project
from napari_crack_al._sample_data import make_sample_data
from napari_crack_al._writer import write_labels
from napari_crack_al.core.errors import ImageReadError, MaskError
from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.project import Project
from napari_crack_al.core.sample_project import write_png16

PLUGIN = "napari-crack-al"


@pytest.fixture
def range_png(tmp_path: Path) -> Path:
    """A 16-bit range image with a sloped surface, a dark crack and a few 0 (no return) pixels."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:80]
    data = 30000 + 10 * xx + rng.integers(0, 50, size=(64, 80))
    data[30:33, :] -= 800  # a crack
    data[5, 5:10] = 0  # dropouts
    path = tmp_path / "road.png"
    write_png16(path, data.astype(np.uint16))
    return path


def test_get_reader_accepts_what_it_can_read(tmp_path, range_png, sample_root):
    assert get_reader(str(range_png)) is read_image
    assert get_reader([str(range_png)]) is read_image
    assert get_reader(str(sample_root)) is read_project
    assert get_reader(str(tmp_path / "notes.txt")) is None
    assert get_reader(str(tmp_path)) is None  # a folder that is no project
    assert get_reader([str(range_png), str(range_png)]) is None


def test_read_range_image_layer_data(range_png):
    [(data, meta, kind)] = read_image(str(range_png))
    assert kind == "image" and data.shape == (64, 80) and data.dtype == np.uint16
    from PIL import Image

    np.testing.assert_array_equal(data, np.asarray(Image.open(range_png)))  # unaltered: 0s stay 0
    assert meta["name"] == "road" and meta["colormap"] == "gray"
    valid = meta["metadata"]["valid"]
    assert valid.dtype == bool and not valid[5, 5:10].any() and valid.sum() == 64 * 80 - 5
    lo, hi = meta["contrast_limits"]
    # limits come from valid pixels: the 0 dropouts do not stretch them
    assert 29000 < lo < hi < 31500


def test_read_colour_photo_stays_rgb(tmp_path):
    from PIL import Image

    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0], rgb[5:8, :, 1] = 200, 90
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    [(data, meta, kind)] = read_image(str(tmp_path / "photo.png"))
    assert kind == "image" and meta["rgb"] is True
    np.testing.assert_array_equal(data, rgb)


def test_read_corrupt_image_raises_input_error(tmp_path):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageReadError, match="broken.tif"):
        read_image(str(bad))


def test_project_layers_without_viewer(sample_root):
    (img, img_meta, kind1), (mask, mask_meta, kind2) = _project_layers(sample_root)
    assert (kind1, kind2) == ("image", "labels")
    assert img_meta["name"] == "sample_0000" and img.shape == mask.shape == (128, 128)
    assert mask_meta["name"] == "crack mask (new)" and mask.dtype == np.uint8 and not mask.any()
    # an accepted annotation is what the reader shows next time
    project = Project.open(sample_root)
    truth = np.zeros((128, 128), bool)
    truth[3:9, 10:60] = True
    project.accept("sample_0000", truth)
    project.set_queue_order(["sample_0000"])
    project.close()
    # sample_0000 is annotated now, so the first queued image is sample_0001
    (_, meta, _), (mask, mask_meta, _) = _project_layers(sample_root)
    assert meta["name"] == "sample_0001" and mask_meta["name"] == "crack mask (new)"


def test_write_labels_png_tiff_values_and_errors(tmp_path):
    labels = np.zeros((1, 20, 30), np.uint8)
    labels[0, 2:5, 3:9] = 1
    [out] = write_labels(str(tmp_path / "mask"), labels, {})
    assert out.endswith("mask.png")
    from PIL import Image

    stored = np.asarray(Image.open(out))
    assert stored.dtype == np.uint8 and set(np.unique(stored)) == {0, 255}
    np.testing.assert_array_equal(stored > 0, labels[0] > 0)

    [out_tif] = write_labels(str(tmp_path / "mask.tif"), labels[0], {"metadata": {"values": 1}})
    import tifffile

    stored = tifffile.imread(out_tif)
    assert set(np.unique(stored)) == {0, 1}
    with pytest.raises(MaskError, match="2-D"):
        write_labels(str(tmp_path / "cube.png"), np.zeros((2, 5, 5), np.uint8), {})
    with pytest.raises(MaskError, match="unsupported"):
        write_labels(str(tmp_path / "mask.jpg"), labels[0], {})


def test_write_multi_class_labels_keeps_their_values(tmp_path):
    from PIL import Image

    labels = np.zeros((10, 12), np.int32)
    labels[1:3, 1:5], labels[5:7, 2:9] = 1, 3  # two classes
    [out] = write_labels(str(tmp_path / "classes.png"), labels, {})
    stored = np.asarray(Image.open(out))
    assert stored.dtype == np.uint8
    np.testing.assert_array_equal(stored, labels)
    labels[8, 8] = 300  # beyond 8 bits: a 16-bit file
    [out_tif] = write_labels(str(tmp_path / "classes.tif"), labels, {})
    import tifffile

    stored = tifffile.imread(out_tif)
    assert stored.dtype == np.uint16
    np.testing.assert_array_equal(stored, labels)
    labels[0, 0] = -1
    with pytest.raises(MaskError, match="16-bit"):
        write_labels(str(tmp_path / "bad.png"), labels, {})


def test_sample_data_has_image_and_ground_truth():
    (image, image_meta, kind1), (mask, mask_meta, kind2) = make_sample_data(size=128)
    assert (kind1, kind2) == ("image", "labels")
    assert image.dtype == np.uint16 and image.shape == (128, 128)
    assert mask.dtype == np.uint8 and mask.shape == (128, 128) and mask.any()
    assert mask_meta["name"] == "crack ground truth"
    lo, hi = image_meta["contrast_limits"]
    assert lo < hi
    again = make_sample_data(size=128)
    np.testing.assert_array_equal(again[0][0], image)  # deterministic


def test_round_trip_through_napari(make_napari_viewer, range_png, tmp_path):
    viewer = make_napari_viewer()
    [image_layer] = viewer.open(str(range_png), plugin=PLUGIN)
    assert image_layer._type_string == "image" and image_layer.name == "road"
    assert image_layer.colormap.name == "gray"
    lo, hi = image_layer.contrast_limits
    assert 29000 < lo < hi < 31500

    labels = viewer.add_labels(np.zeros((64, 80), np.uint8), name="cracks")
    labels.data[30:33, 10:70] = 1
    for name in ("cracks.png", "cracks.tiff"):
        target = tmp_path / name
        written = labels.save(str(target), plugin=PLUGIN)
        assert written == [str(target)]
        np.testing.assert_array_equal(read_mask(target), labels.data > 0)
        # a binary mask file opens again as labels
        [back] = viewer.open(str(target), plugin=PLUGIN)
        assert back._type_string == "labels"
        np.testing.assert_array_equal(back.data, labels.data)


def test_sample_data_through_napari(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "synthetic_crack")
    assert [layer.name for layer in viewer.layers] == ["synthetic range image", "crack ground truth"]
    image, truth = viewer.layers
    assert image.data.shape == truth.data.shape == (512, 512)
    assert truth._type_string == "labels" and truth.data.any()


def test_reader_error_in_napari_names_the_file(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    # napari passes the reader's error on (wrapped in a ReaderPluginError when it chose the reader)
    with pytest.raises(Exception) as info:
        viewer.open(str(bad), plugin=PLUGIN)
    chain = [info.value, info.value.__cause__, getattr(info.value, "original_error", None)]
    assert any(isinstance(e, ImageReadError) and "broken.png" in str(e) for e in chain), chain
    assert len(viewer.layers) == 0


def test_reader_returns_layer_data_only(make_napari_viewer, sample_root):
    """Opening a project folder without the panel: two plain layers, no widget, no session."""
    from napari_crack_al.widgets.session_registry import registered

    viewer = make_napari_viewer()
    layers = read_project(str(sample_root))
    assert [kind for _d, _m, kind in layers] == ["image", "labels"]
    assert all(meta["metadata"]["crack_al_reader_project"] == str(sample_root) for _d, meta, _k in layers)
    assert registered(viewer) is None and not viewer.window.dock_widgets
    viewer.open(str(sample_root), plugin=PLUGIN)
    assert [layer.name for layer in viewer.layers] == ["sample_0000", "crack mask (new)"]
    assert registered(viewer) is None and not viewer.window.dock_widgets


def test_panel_takes_over_a_project_the_reader_opened(make_napari_viewer, sample_root, qtbot):
    from napari_crack_al.widgets.session import get_session

    # the panel opened after the reader: it adopts the project
    viewer = make_napari_viewer()
    viewer.open(str(sample_root), plugin=PLUGIN)
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Crack project")
    session = get_session(viewer)
    qtbot.waitUntil(lambda: session.project is not None, timeout=10_000)
    assert session.project.root == sample_root
    assert [layer.name for layer in viewer.layers] == ["sample_0000", "crack probability (none yet)",
                                                       "crack mask (new)"]
    qtbot.waitUntil(lambda: widget.table.rowCount() == 4, timeout=10_000)
    assert widget.path_edit.text() == str(sample_root)

    # the panel already open: a project folder dropped on the viewer opens through it
    viewer2 = make_napari_viewer()
    viewer2.window.add_plugin_dock_widget(PLUGIN, "Crack project")
    session2 = get_session(viewer2)
    viewer2.open(str(sample_root), plugin=PLUGIN)
    qtbot.waitUntil(lambda: session2.project is not None, timeout=10_000)
    assert [layer.name for layer in viewer2.layers] == ["sample_0000", "crack probability (none yet)",
                                                        "crack mask (new)"]
