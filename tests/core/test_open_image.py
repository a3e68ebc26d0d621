"""Preparing an image for the viewer (plain core calls) and its pixel count from the header."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_crack_al.core.errors import ImageReadError, ProjectError
from napari_crack_al.core.io.image_header import image_pixels
from napari_crack_al.core.io.range_io import read_range_image
from napari_crack_al.core.normalize import display_data, normalize_for_model
from napari_crack_al.core.open_image import UnreadableImageError, is_large, prepare_image
from napari_crack_al.core.project import Project
from napari_crack_al.core.sample_project import write_png16, write_sample_images


@pytest.fixture
def project(tmp_path: Path):
    root = tmp_path / "project"
    write_sample_images(root, n=2, size=64, seed=0)
    with Project.create(root) as project:
        yield project


def test_image_pixels_from_the_header_of_each_format(tmp_path):
    import tifffile

    write_png16(tmp_path / "a.png", np.ones((30, 50), np.uint16))
    np.save(tmp_path / "b.npy", np.ones((3, 20, 40), np.float32))  # channels first
    tifffile.imwrite(tmp_path / "c.tif", np.ones((7, 9), np.uint16))
    assert image_pixels(tmp_path / "a.png") == 1500
    assert image_pixels(tmp_path / "b.npy") == 800
    assert image_pixels(tmp_path / "c.tif") == 63
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    assert image_pixels(tmp_path / "bad.png") is None
    assert image_pixels(tmp_path / "missing.png") is None
    assert is_large(tmp_path / "a.png", 1499) and not is_large(tmp_path / "a.png", 1500)
    assert not is_large(tmp_path / "bad.png", 0)


def test_prepare_image_gives_what_the_layers_need(project):
    name = project.names()[0]
    suggestion = np.zeros((64, 64), bool)
    suggestion[5:8] = True
    project.set_suggestion(name, suggestion, "round-001")
    prepared = prepare_image(project, name, "auto")
    image = read_range_image(project.image_path(name))
    display, limits = display_data(image, "auto")
    np.testing.assert_array_equal(prepared.display, display)
    np.testing.assert_array_equal(prepared.display, normalize_for_model(image, profile="auto"))
    assert prepared.limits == pytest.approx(limits) and prepared.profile == "column"
    assert prepared.source == "suggestion" and prepared.shape == (64, 64)
    np.testing.assert_array_equal(prepared.mask, suggestion)
    assert prepared.labels.dtype == np.uint8 and int(prepared.labels.sum()) == int(suggestion.sum())
    assert prepared.probability is None
    other = prepare_image(project, project.names()[1], "none")
    assert other.source == "empty" and not other.mask.any() and other.profile == "none"


def test_prepare_image_errors_and_cancel(project):
    name, other = project.names()
    assert prepare_image(project, name, cancelled=lambda: True) is None
    project.image_path(name).write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(UnreadableImageError) as info:
        prepare_image(project, name)
    assert isinstance(info.value, ImageReadError)
    assert project.image_path(name).name in str(info.value)
    project.save_draft(other, np.zeros((64, 64), bool))
    project.draft_path(other).unlink()
    from napari_crack_al.core.io.mask_io import write_mask

    write_mask(project.draft_path(other), np.zeros((10, 10), bool))
    with pytest.raises(ProjectError, match="shape"):
        prepare_image(project, other)
