"""Fixtures of the widget tests: a tiny sample project and the dock widget added through the manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from napari_crack_al.core.project import Project
from napari_crack_al.core.sample_project import write_sample_images

PLUGIN = "napari-crack-al"
WIDGET = "Crack project"


@pytest.fixture(autouse=True)
def _no_first_suggestions(monkeypatch):
    """The detector's first suggestions change the mask on screen when they arrive, from a
    worker thread; tests of other behaviour open projects without them (test_first_suggestions
    tests them on the real threaded path)."""
    from napari_crack_al.widgets.session import AnnotationSession

    monkeypatch.setattr(AnnotationSession, "auto_first_suggestions", False)


@pytest.fixture
def sample_root(tmp_path: Path) -> Path:
    """A project folder with 4 synthetic 128 x 128 range images (seed 0)."""
    root = tmp_path / "project"
    write_sample_images(root, n=4, size=128, seed=0)
    Project.create(root).close()
    return root


@pytest.fixture
def project_widget(make_napari_viewer):
    """``(viewer, widget)``: a viewer with the "Crack project" widget added via the npe2 manifest."""
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    return viewer, widget


@pytest.fixture
def notifications():
    """The messages of napari notifications dispatched during the test."""
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)

    class _Messages:
        def __call__(self) -> list[str]:
            return [str(n.message) for n in notification_manager.records[start:]]

    return _Messages()
