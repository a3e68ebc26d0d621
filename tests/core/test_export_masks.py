"""Mask export: round trips, manifest and measurement tables, and every refusal case."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_crack_al.core.errors import ConfigError, ExportError
from napari_crack_al.core.export.csv_util import read_csv
from napari_crack_al.core.export.masks import (
    MANIFEST_COLUMNS,
    MEASUREMENT_COLUMNS,
    SUMMARY_COLUMNS,
    MaskExportConfig,
    export_masks,
)
from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.project import Project

H, W = 40, 60


def _masks() -> dict[str, np.ndarray]:
    a = np.zeros((H, W), bool)
    a[10:13, 5:55] = True          # transverse, 50 x 3
    b = np.zeros((H, W), bool)
    b[5:35, 30:32] = True          # longitudinal, 30 x 2
    b[0, 0] = True                 # a speck under min_area: in the mask, not measured
    return {"a": a, "b": b}


@pytest.fixture
def project(tmp_path):
    """a annotated (from a suggestion), b annotated from scratch, c suggested, d new."""
    root = tmp_path / "proj"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in "abcd":
        image = rng.integers(1, 60000, (H, W), dtype=np.uint16)
        Image.fromarray(image).save(root / "images" / f"{name}.png")
    masks = _masks()
    with Project.create(root, pixel_size_mm=0.5) as p:
        suggestion = masks["a"].copy()
        suggestion[10:13, 50:55] = False   # the annotator extended the suggestion by 15 pixels
        p.set_suggestion("a", suggestion, "v1")
        p.accept("a", masks["a"], seconds=12.5)
        p.accept("b", masks["b"], seconds=3.0)
        c = np.zeros((H, W), bool)
        c[20:23, 0:40] = True
        p.set_suggestion("c", c, "v2")
        yield p


def _listing(folder: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir())} if folder.exists() else {}


@pytest.mark.parametrize("fmt", ["png", "tif"])
@pytest.mark.parametrize("values", [255, 1])
def test_round_trip(project, tmp_path, fmt, values):
    out = tmp_path / "out"
    result = export_masks(project, out, fmt=fmt, values=values)
    assert [p.name for p in result.masks] == [f"a.{fmt}", f"b.{fmt}"]
    assert (result.n_annotated, result.n_suggested, result.n_masks) == (2, 0, 2)
    for name, mask in _masks().items():
        path = out / f"{name}.{fmt}"
        assert np.array_equal(read_mask(path), mask)
        raw = np.asarray(Image.open(path)) if fmt == "png" else tifffile.imread(path)
        assert raw.dtype == np.uint8 and raw.shape == (H, W)
        assert set(np.unique(raw).tolist()) == {0, values}
    assert sorted(f.name for f in out.iterdir()) == sorted(
        [f"a.{fmt}", f"b.{fmt}", "manifest.csv", "measurements.csv", "measurements_summary.csv"])
    assert set(result.paths) == set(out.iterdir())


def test_manifest(project, tmp_path):
    result = export_masks(project, tmp_path / "out", include="annotated+suggested")
    rows = read_csv(result.manifest)
    assert list(rows[0]) == list(MANIFEST_COLUMNS)
    by_image = {r["image"]: r for r in rows}
    assert set(by_image) == {"a.png", "b.png", "c.png"}      # d is new, without suggestion
    a, b, c = by_image["a.png"], by_image["b.png"], by_image["c.png"]
    assert (a["mask"], a["source"], a["status"], a["suggestion_model_version"]) == \
        ("a.png", "annotation", "annotated", "v1")
    assert float(a["edit_fraction"]) == pytest.approx(15 / 150)
    assert float(a["annotation_seconds"]) == pytest.approx(12.5)
    assert (b["source"], b["suggestion_model_version"]) == ("annotation", "")
    assert float(b["edit_fraction"]) == 1.0
    assert float(b["annotation_seconds"]) == pytest.approx(3.0)
    assert (c["source"], c["status"], c["suggestion_model_version"], c["edit_fraction"]) == \
        ("suggestion", "suggested", "v2", "")
    assert (int(a["height"]), int(a["width"]), int(a["crack_pixels"])) == (H, W, 150)
    assert np.array_equal(read_mask(tmp_path / "out" / "c.png"), project.read_suggestion("c"))
    assert (result.n_annotated, result.n_suggested) == (2, 1)


def test_skipped_and_new_images_are_not_exported(project, tmp_path):
    project.skip("c")
    result = export_masks(project, tmp_path / "out", include="annotated+suggested")
    assert [p.name for p in result.masks] == ["a.png", "b.png"]


def test_drafts_are_exported_as_the_annotator_sees_them(project, tmp_path):
    """"Accepted masks + suggestions" exports a draft where there is one, else the suggestion;
    the draft's row names the suggestion it was edited from, even after a newer one."""
    corrected = project.read_suggestion("c").copy()
    corrected[20:23, 40:50] = True  # the annotator's unaccepted correction
    project.save_draft("c", corrected)
    project.set_suggestion("c", np.zeros((H, W), bool), "v3")  # a retrain since
    drawn = np.zeros((H, W), bool)
    drawn[1:4, 1:30] = True
    project.save_draft("d", drawn)  # a new image, drawn from scratch, not accepted yet
    result = export_masks(project, tmp_path / "out", include="annotated+suggested")
    assert (result.n_annotated, result.n_drafts, result.n_suggested) == (2, 2, 0)
    np.testing.assert_array_equal(read_mask(tmp_path / "out" / "c.png"), corrected)
    np.testing.assert_array_equal(read_mask(tmp_path / "out" / "d.png"), drawn)
    rows = {r["image"]: r for r in read_csv(result.manifest)}
    assert (rows["c.png"]["source"], rows["c.png"]["suggestion_model_version"]) == ("draft", "v2")
    assert (rows["d.png"]["source"], rows["d.png"]["suggestion_model_version"]) == ("draft", "")
    # accepted masks only: drafts stay out
    only = export_masks(project, tmp_path / "out2")
    assert [p.name for p in only.masks] == ["a.png", "b.png"]


def test_measurement_tables(project, tmp_path):
    result = export_masks(project, tmp_path / "out")
    cracks = read_csv(result.measurements)
    assert list(cracks[0]) == list(MEASUREMENT_COLUMNS)
    assert [(r["image"], r["crack"], r["orientation"]) for r in cracks] == [
        ("a.png", "1", "transverse"), ("b.png", "1", "longitudinal")]  # b's speck < min_area
    a, b = cracks
    assert float(a["length_px"]) == pytest.approx(50, abs=3)
    assert float(a["mean_width_px"]) == pytest.approx(3, abs=0.5)
    assert float(b["length_px"]) == pytest.approx(30, abs=3)
    assert float(b["mean_width_px"]) == pytest.approx(2, abs=0.5)
    assert int(a["area_px"]) == 150 and float(a["area_mm2"]) == pytest.approx(150 * 0.25)
    assert float(a["length_mm"]) == pytest.approx(float(a["length_px"]) * 0.5, rel=1e-6)
    bbox = (a["bbox_min_row"], a["bbox_min_col"], a["bbox_max_row"], a["bbox_max_col"])
    assert bbox == ("10", "5", "13", "55")
    summary = read_csv(result.summary)
    assert list(summary[0]) == list(SUMMARY_COLUMNS)
    sa = summary[0]
    assert (sa["image"], sa["n_cracks"]) == ("a.png", "1")
    assert (sa["n_transverse"], sa["n_longitudinal"]) == ("1", "0")
    assert float(sa["crack_area_fraction"]) == pytest.approx(150 / (H * W))
    assert float(sa["pixel_size_mm"]) == 0.5
    assert result.n_cracks == 2 and result.pixel_size_mm == 0.5


def test_pixel_size_override_and_unknown(project, tmp_path):
    result = export_masks(project, tmp_path / "o1", pixel_size_mm=2.0)
    a = read_csv(result.measurements)[0]
    assert float(a["length_mm"]) == pytest.approx(float(a["length_px"]) * 2.0, rel=1e-6)
    project.pixel_size_mm = None
    result = export_masks(project, tmp_path / "o2")
    a = read_csv(result.measurements)[0]
    assert a["length_mm"] == "" and a["area_mm2"] == "" and float(a["length_px"]) > 0
    assert result.pixel_size_mm is None


def test_without_measurements(project, tmp_path):
    result = export_masks(project, tmp_path / "out", measure=False)
    assert result.measurements is None and result.summary is None
    names = sorted(f.name for f in (tmp_path / "out").iterdir())
    assert names == ["a.png", "b.png", "manifest.csv"]


def test_progress_callback(project, tmp_path):
    calls = []
    export_masks(project, tmp_path / "out", progress=lambda d, t: calls.append((d, t)))
    assert calls == [(0, 2), (1, 2), (2, 2)]


def test_existing_file_refused_without_force_and_nothing_written(project, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.png").write_bytes(b"precious")
    (out / "notes.txt").write_text("unrelated")
    before = _listing(out)
    with pytest.raises(ExportError) as info:
        export_masks(project, out)
    assert "b.png" in str(info.value) and "a.png" not in str(info.value)
    assert str(out) in str(info.value)
    assert _listing(out) == before   # a.png (no conflict) was not written either


def test_previous_export_refused_then_forced(project, tmp_path):
    out = tmp_path / "out"
    export_masks(project, out, values=1)
    before = _listing(out)
    with pytest.raises(ExportError, match="manifest.csv"):
        export_masks(project, out, values=255)
    assert _listing(out) == before
    result = export_masks(project, out, values=255, force=True)
    assert set(result.overwritten) == set(result.paths)
    raw = np.asarray(Image.open(out / "a.png"))
    assert set(np.unique(raw).tolist()) == {0, 255}


def test_folder_in_the_way_refused_even_with_force(project, tmp_path):
    out = tmp_path / "out"
    (out / "a.png").mkdir(parents=True)
    with pytest.raises(ExportError, match="folder"):
        export_masks(project, out, force=True)
    assert [f.name for f in out.iterdir()] == ["a.png"]


@pytest.mark.parametrize("bad_name",
                         ["../escaped", "sub/x", "/tmp/abs-export-test", "../../x", "a\\b"])
def test_names_escaping_the_folder_are_refused(project, tmp_path, monkeypatch, bad_name):
    records = project.records()
    evil = dataclasses.replace(records[0], name=bad_name)
    monkeypatch.setattr(project, "records", lambda: [evil, *records[1:]])
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="inside the output folder"):
        export_masks(project, out, force=True)
    assert _listing(out) == {}
    assert not (tmp_path / "escaped.png").exists()
    assert not Path("/tmp/abs-export-test.png").exists()


def test_symlink_pointing_outside_is_refused(project, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"keep me")
    os.symlink(victim, out / "a.png")
    with pytest.raises(ExportError, match="a.png"):
        export_masks(project, out, force=True)
    assert victim.read_bytes() == b"keep me"
    assert sorted(f.name for f in out.iterdir()) == ["a.png"]


def test_read_only_output_folder(project, tmp_path, monkeypatch):
    # Root ignores permission bits, so simulate what the OS does for a read-only folder:
    # creating any file in it fails with EACCES.
    out = tmp_path / "out"
    out.mkdir()
    real_mkstemp = tempfile.mkstemp

    def denied(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == out.resolve():
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(ExportError) as info:
        export_masks(project, out)
    assert info.value.path == out
    assert "not writable" in str(info.value)
    assert _listing(out) == {}


def test_output_folder_that_cannot_be_created(project, tmp_path, monkeypatch):
    out = tmp_path / "ro" / "out"

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", denied)
    with pytest.raises(ExportError, match="permission denied") as info:
        export_masks(project, out)
    assert info.value.path == out


def test_output_is_a_file(project, tmp_path):
    out = tmp_path / "out"
    out.write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        export_masks(project, out)


def test_missing_annotation_file_refused_before_writing(project, tmp_path):
    project.annotation_path("b").unlink()
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="missing") as info:
        export_masks(project, out)
    assert info.value.path == project.annotation_path("b")
    assert _listing(out) == {}


def test_invalid_options(project, tmp_path):
    for kwargs in ({"fmt": "jpg"}, {"values": 2}, {"values": True}, {"include": "all"},
                   {"min_area": -1}):
        with pytest.raises(ConfigError):
            export_masks(project, tmp_path / "out", **kwargs)
    with pytest.raises(ConfigError):
        export_masks(project, tmp_path / "out", pixel_size_mm=0)
    assert not (tmp_path / "out").exists() or _listing(tmp_path / "out") == {}
    assert MaskExportConfig(fmt="TIFF").fmt == "tif"


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path):
    from napari_crack_al.core.export.csv_util import read_csv, write_csv

    names = ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tx", "\rx", "road-1", "'=kept"]
    path = write_csv(tmp_path / "t.csv", [{"image": n, "value": -1.5} for n in names],
                     ("image", "value"))
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines()[1:5]:
        assert line.startswith("'") or line.startswith("\"'"), line
    assert "\n-1.5" not in text and ",-1.5" in text  # numbers stay numbers
    assert [row["image"] for row in read_csv(path)] == names  # names round-trip


@pytest.mark.parametrize("inside", ["images", "images/sub", "annotations", ".crack-al/exports"])
def test_export_into_the_projects_own_folders_is_refused(project, inside):
    images_before = sorted(p.name for p in project.images_dir.iterdir())
    masks_before = {p.name: p.read_bytes() for p in project.annotations_dir.iterdir()}
    with pytest.raises(ExportError, match="inside the project's"):
        export_masks(project, project.root / inside, force=True)
    assert sorted(p.name for p in project.images_dir.iterdir()) == images_before
    assert {p.name: p.read_bytes() for p in project.annotations_dir.iterdir()} == masks_before
    project.refresh()  # the project still works
