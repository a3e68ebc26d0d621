"""The Export panel writes masks, the manifest and measurements in a worker; refuses to overwrite."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.project import Project
from napari_crack_al.core.io.range_io import read_image_array
from napari_crack_al.core.sample_project import write_sample_images
from napari_crack_al.widgets.export_widget import ExportWidget

PLUGIN = "napari-crack-al"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    write_sample_images(root, n=4, size=64, seed=1)
    with Project.create(root, pixel_size_mm=1.5) as project:
        names = project.names()
        for name in names[:2]:
            project.accept(name, read_mask(root / "ground_truth" / f"{name}.png"))
        suggestion = np.zeros((64, 64), dtype=bool)
        suggestion[20:23, 5:60] = True
        project.set_suggestion(names[2], suggestion, "round-001")
    return root


@pytest.fixture
def panel(make_napari_viewer, root):
    viewer = make_napari_viewer()
    _, project_w = viewer.window.add_plugin_dock_widget(PLUGIN, "Crack project")
    _, export = viewer.window.add_plugin_dock_widget(PLUGIN, "Export")
    assert isinstance(export, ExportWidget)
    assert not export.export_button.isEnabled()  # no project yet
    project_w.open_project(root)
    return viewer, export


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _export(qtbot, export) -> None:
    qtbot.mouseClick(export.export_button, Qt.MouseButton.LeftButton)
    assert export.job is not None
    qtbot.waitUntil(lambda: export.job.done, timeout=20_000)
    assert export.export_button.isEnabled()


def test_export_writes_masks_and_tables(panel, root, qtbot, notifications):
    viewer, export = panel
    project = export.session.project
    names = project.names()
    assert export.output_folder() == root / "export"
    _export(qtbot, export)
    out = root / "export"
    assert sorted(p.name for p in out.glob("*.png")) == [f"{n}.png" for n in names[:2]]
    for name in names[:2]:
        raw = read_image_array(out / f"{name}.png")
        assert set(np.unique(raw)) <= {0, 255}
        np.testing.assert_array_equal(raw > 0, project.read_annotation(name))
    manifest = _rows(out / "manifest.csv")
    assert [r["mask"] for r in manifest] == [f"{n}.png" for n in names[:2]]
    summary = _rows(out / "measurements_summary.csv")
    assert len(summary) == 2 and all(float(r["pixel_size_mm"]) == 1.5 for r in summary)
    assert export.last_result.n_annotated == 2 and export.last_result.n_suggested == 0
    assert any("Exported 2 mask(s)" in m for m in notifications())

    # a second export would overwrite: refused, nothing changed, the panel stays usable
    before = (out / "manifest.csv").stat().st_mtime_ns
    n = len(notifications())
    _export(qtbot, export)
    assert any("would overwrite" in m for m in notifications()[n:])
    assert (out / "manifest.csv").stat().st_mtime_ns == before
    assert "would overwrite" in export.status_label.text()


def test_export_tif_values_1_with_suggestions(panel, root, qtbot, tmp_path):
    viewer, export = panel
    names = export.session.project.names()
    out = tmp_path / "elsewhere"
    export.folder_edit.setText(str(out))
    export.format_combo.setCurrentText("tif")
    export.values_combo.setCurrentText("1")
    export.include_combo.setCurrentIndex(export.include_combo.findData("annotated+suggested"))
    _export(qtbot, export)
    assert sorted(p.name for p in out.glob("*.tif")) == [f"{n}.tif" for n in names[:3]]
    raw = read_image_array(out / f"{names[2]}.tif")
    assert set(np.unique(raw)) == {0, 1} and raw[20:23, 5:60].all()
    sources = {r["image"].split(".")[0]: r["source"] for r in _rows(out / "manifest.csv")}
    assert sources == {names[0]: "annotation", names[1]: "annotation", names[2]: "suggestion"}
    # with "Overwrite" ticked the same export runs again
    export.force_check.setChecked(True)
    _export(qtbot, export)
    assert export.last_result.n_masks == 3 and len(export.last_result.overwritten) >= 3


def test_export_saves_the_mask_on_screen_first(panel, root, qtbot):
    viewer, export = panel
    session = export.session
    name = session.project.names()[0]
    session.load(name)  # an annotated image, edited and not yet saved
    layer = session.labels_layer
    layer.data[60:62, :] = 1
    layer.refresh()
    assert session.is_dirty()
    _export(qtbot, export)
    written = read_image_array(root / "export" / f"{name}.png") > 0
    assert written[60:62].all()
    np.testing.assert_array_equal(written, np.asarray(layer.data) > 0)


def test_export_section_writes_the_model_and_the_report(make_napari_viewer, root, qtbot, notifications):
    """The model (TorchScript, ONNX) and the report, as on the command line, from the panel."""
    import torch

    from napari_crack_al.core.model import ModelConfig, build_model, save_checkpoint

    config = ModelConfig(encoder="resnet18", decoder_channels=8, low_level_channels=4, rep_dim=8,
                         dropout=0.0)
    torch.manual_seed(0)
    with Project.open(root) as project:
        project.models_dir.mkdir(parents=True, exist_ok=True)
        ckpt = save_checkpoint(project.models_dir / "round_001.pt", build_model(config).eval(),
                               model_config=config, train_config={"profile": "none"},
                               metadata={"round": 1})
        project.add_model("round-001", ckpt, round=1, metrics={"f1": 0.5})
    viewer = make_napari_viewer()
    _, project_w = viewer.window.add_plugin_dock_widget(PLUGIN, "Crack project")
    _, export = viewer.window.add_plugin_dock_widget(PLUGIN, "Export")
    box = export.model_report
    assert not box.torchscript_button.isEnabled() and not box.report_button.isEnabled()
    project_w.open_project(root)
    assert box.torchscript_button.isEnabled() and box.report_button.isEnabled()
    out = root / "export"
    for start, name in ((lambda: box.export_model("torchscript"), "model.pt"),
                        (lambda: box.export_model("onnx"), "model.onnx"),
                        (box.write_report, "report.html")):
        job = start()
        assert job is not None
        qtbot.waitUntil(lambda: job.done, timeout=120_000)
        assert (out / name).is_file(), box.status_label.text()
        assert box.status_label.text() == f"Wrote {out / name}"
    # never replaced without "Overwrite"
    job = box.write_report()
    qtbot.waitUntil(lambda: job.done, timeout=60_000)
    assert "overwrite" in box.status_label.text()
