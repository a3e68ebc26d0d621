"""``napari-crack-al make-sample``: images, ground truth and a project that opens."""

from __future__ import annotations

import numpy as np

from napari_crack_al.cli.main import main
from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.project import ImageStatus, Project
from napari_crack_al.core.io.range_io import read_range_image
from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image

NAMES = ["sample_0000", "sample_0001", "sample_0002"]


def test_make_sample_writes_a_ready_project(tmp_path, capsys):
    root = tmp_path / "demo"
    args = ["make-sample", str(root), "--n", "3", "--size", "128", "--pixel-size-mm", "0.5"]
    assert main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert "wrote 3 synthetic 128x128" in out[0] and "created the project" in out[0]

    assert sorted(p.stem for p in (root / "images").glob("*.png")) == NAMES
    assert sorted(p.stem for p in (root / "ground_truth").glob("*.png")) == NAMES
    cfg = SyntheticConfig(size=128, pixel_size_mm=0.5)
    for i, name in enumerate(NAMES):
        expected = generate_range_image((0, i), cfg)
        image = read_range_image(root / "images" / f"{name}.png")
        assert image.shape == (128, 128) and image.source_dtype == "uint16"
        assert np.array_equal(read_mask(root / "ground_truth" / f"{name}.png"), expected.mask)

    with Project.open(root) as project:
        assert project.names() == NAMES
        assert project.pixel_size_mm == 0.5
        # ground truth is never taken for annotations
        assert all(r.status == ImageStatus.NEW for r in project.records())
        assert project.read_annotation(NAMES[0]) is None


def test_make_sample_refuses_then_extends_with_force(tmp_path, capsys):
    root = tmp_path / "demo"
    assert main(["make-sample", str(root), "--n", "2", "--size", "64", "--seed", "3"]) == 0
    first = (root / "images" / "sample_0000.png").read_bytes()
    capsys.readouterr()

    assert main(["make-sample", str(root), "--n", "3", "--size", "64", "--seed", "3"]) == 2
    err = capsys.readouterr().err
    assert "images" in err and "not empty" in err
    assert not (root / "images" / "sample_0002.png").exists()

    args = ["make-sample", str(root), "--n", "3", "--size", "64", "--seed", "3"]
    assert main(args + ["--force"]) == 0
    assert "refreshed the existing project (1 new images)" in capsys.readouterr().out
    assert (root / "images" / "sample_0000.png").read_bytes() == first
    with Project.open(root) as project:
        assert project.names() == ["sample_0000", "sample_0001", "sample_0002"]


def test_make_sample_rejects_a_too_small_size(tmp_path, capsys):
    assert main(["make-sample", str(tmp_path / "x"), "--n", "1", "--size", "16"]) == 2
    assert "size" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
