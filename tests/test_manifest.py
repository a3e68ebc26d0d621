"""The npe2 manifest is valid and every contribution imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def test_npe2_validate_with_imports():
    npe2 = Path(sys.executable).with_name("npe2")
    if not npe2.exists():
        pytest.fail("npe2 is a dependency of the package; its command line is missing")
    res = subprocess.run([str(npe2), "validate", "napari-crack-al", "--imports"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "valid" in (res.stdout + res.stderr).lower()


def test_manifest_contributions_resolve():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-crack-al")
    assert manifest.name == "napari-crack-al"
    commands = {c.id: c for c in manifest.contributions.commands}
    expected = {
        "napari-crack-al.get_reader": "napari_crack_al._reader:get_reader",
        "napari-crack-al.write_labels": "napari_crack_al._writer:write_labels",
        "napari-crack-al.make_sample": "napari_crack_al._sample_data:make_sample_data",
        "napari-crack-al.main_widget": "napari_crack_al.widgets.main_widget:CrackALWidget",
        "napari-crack-al.project_widget": "napari_crack_al.widgets.project_widget:ProjectWidget",
        "napari-crack-al.annotate_widget": "napari_crack_al.widgets.annotate_widget:AnnotateWidget",
        "napari-crack-al.train_widget": "napari_crack_al.widgets.train_widget:TrainWidget",
        "napari-crack-al.export_widget": "napari_crack_al.widgets.export_widget:ExportWidget",
    }
    for cid, python_name in expected.items():
        assert commands[cid].python_name == python_name
        assert callable(_resolve(python_name))
    widgets = {w.display_name: w.command for w in manifest.contributions.widgets}
    assert widgets == {
        "Crack AL": "napari-crack-al.main_widget",
        "Crack project": "napari-crack-al.project_widget",
        "Annotate": "napari-crack-al.annotate_widget",
        "Train": "napari-crack-al.train_widget",
        "Export": "napari-crack-al.export_widget",
    }
    [reader] = manifest.contributions.readers
    assert reader.accepts_directories


def _resolve(python_name: str):
    import importlib

    module, attr = python_name.split(":")
    return getattr(importlib.import_module(module), attr)
