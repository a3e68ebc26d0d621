"""``napari-crack-al export`` end to end on a tiny project."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_crack_al.cli.main import main
from napari_crack_al.core.export.csv_util import read_csv
from napari_crack_al.core.io.mask_io import read_mask, write_mask
from napari_crack_al.core.project import Project

H, W = 32, 48


@pytest.fixture
def project_dir(tmp_path):
    """Three images: one annotated, one annotated from a suggestion, one only suggested."""
    root = tmp_path / "proj"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("img1", "img2"):
        image = rng.integers(1, 60000, (H, W), dtype=np.uint16)
        Image.fromarray(image).save(root / "images" / f"{name}.png")
    # a float range image stored as .npy, and a mask passed through a file written by core.io.mask_io
    np.save(root / "images" / "img3.npy", rng.random((H, W)).astype(np.float32))
    masks = {}
    m1 = np.zeros((H, W), bool)
    m1[5:8, 4:44] = True
    m2 = np.zeros((H, W), bool)
    m2[2:30, 20:23] = True
    m3 = np.zeros((H, W), bool)
    m3[20:22, 0:30] = True
    write_mask(tmp_path / "m2.png", m2)
    with Project.create(root, pixel_size_mm=1.5) as p:
        p.accept("img1", m1, seconds=4.0)
        p.set_suggestion("img2", m2, "r1")
        p.accept("img2", read_mask(tmp_path / "m2.png"), seconds=1.0)
        p.set_suggestion("img3", m3, "r1")
    masks.update(img1=m1, img2=m2, img3=m3)
    return root, masks


def test_export_end_to_end(project_dir, tmp_path, capsys):
    root, masks = project_dir
    out = tmp_path / "export"
    assert main(["export", str(root), "--out", str(out)]) == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1
    assert summary[0].startswith("exported 2 masks (2 annotated, 0 drafts, 0 suggested)")
    assert "2 cracks measured (1.5 mm/px)" in summary[0]
    assert sorted(f.name for f in out.iterdir()) == [
        "img1.png", "img2.png", "manifest.csv", "measurements.csv", "measurements_summary.csv"]
    for name in ("img1", "img2"):
        assert np.array_equal(read_mask(out / f"{name}.png"), masks[name])
    manifest = read_csv(out / "manifest.csv")
    assert [(r["image"], r["mask"], r["status"], r["source"]) for r in manifest] == [
        ("img1.png", "img1.png", "annotated", "annotation"),
        ("img2.png", "img2.png", "annotated", "annotation")]
    assert manifest[1]["suggestion_model_version"] == "r1"
    assert float(manifest[1]["edit_fraction"]) == 0.0       # suggestion accepted unchanged
    assert float(manifest[0]["edit_fraction"]) == 1.0       # drawn from scratch
    assert float(manifest[0]["annotation_seconds"]) == 4.0
    cracks = read_csv(out / "measurements.csv")
    assert [(r["image"], r["orientation"]) for r in cracks] == [("img1.png", "transverse"),
                                                              ("img2.png", "longitudinal")]
    assert float(cracks[0]["length_px"]) == pytest.approx(40, abs=3)
    length_px = float(cracks[0]["length_px"])
    assert float(cracks[0]["length_mm"]) == pytest.approx(length_px * 1.5, rel=1e-6)
    per_image = read_csv(out / "measurements_summary.csv")
    assert [r["n_cracks"] for r in per_image] == ["1", "1"]


def test_existing_files_refused_then_forced(project_dir, tmp_path, capsys):
    root, masks = project_dir
    out = tmp_path / "export"
    assert main(["export", str(root), "--out", str(out)]) == 0
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    capsys.readouterr()
    tif_args = ["export", str(root), "--out", str(out), "--format", "tif", "--values", "1",
                "--include", "annotated+suggested", "--pixel-size-mm", "0.25"]
    # the tables of the png export are in the way: nothing is written, not even the tif masks
    assert main(tif_args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and len(captured.err.strip().splitlines()) == 1
    assert "manifest.csv" in captured.err and "img1.tif" not in captured.err and captured.out == ""
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before
    # --force replaces the three tables and adds the tif masks
    assert main([*tif_args, "--force"]) == 0
    line = capsys.readouterr().out
    assert "(2 annotated, 0 drafts, 1 suggested)" in line and "3 files overwritten" in line
    raw = tifffile.imread(out / "img3.tif")
    assert set(np.unique(raw).tolist()) == {0, 1}
    assert np.array_equal(raw > 0, masks["img3"])
    assert (out / "img1.png").read_bytes() == before["img1.png"]   # the png masks are untouched
    rows = read_csv(out / "measurements.csv")
    assert {r["image"] for r in rows} == {"img1.png", "img2.png", "img3.npy"}
    length_px = float(rows[0]["length_px"])
    assert float(rows[0]["length_mm"]) == pytest.approx(length_px * 0.25, rel=1e-6)
    # and now the tif masks themselves collide
    assert main(tif_args) == 2
    assert "img3.tif" in capsys.readouterr().err


def test_errors_exit_2(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "error:" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["export", str(tmp_path), "--out", str(tmp_path / "o"), "--format", "jpg"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["export", str(tmp_path), "--out", str(tmp_path / "o"), "--pixel-size-mm", "-1"])
