"""Large images open and save in worker threads: the real threaded path of the session.

``AnnotationSession.background_pixels`` is set to 0 here, so the 128 x 128 sample images
take the path of an 8192 x 4096 survey image: read and normalised in a worker, masks saved
in the session's disk queue, in order. No timing is asserted (speed: benchmarks/).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.io.range_io import read_range_image
from napari_crack_al.core.normalize import display_data
from napari_crack_al.core.project import ImageStatus, Project
from napari_crack_al.widgets import session_loading
from napari_crack_al.widgets.session import AnnotationSession

PLUGIN = "napari-crack-al"
WAIT_MS = 20000


@pytest.fixture(autouse=True)
def _every_image_is_large(monkeypatch):
    monkeypatch.setattr(AnnotationSession, "background_pixels", 0)


@pytest.fixture
def prepared_in(monkeypatch):
    """``{image name: thread}`` of every call of the core's read-and-normalise function."""
    threads: dict[str, threading.Thread] = {}
    real = session_loading.prepare_image

    def recording(project, name, *args, **kwargs):
        threads[name] = threading.current_thread()
        return real(project, name, *args, **kwargs)

    monkeypatch.setattr(session_loading, "prepare_image", recording)
    return threads


@pytest.fixture
def panels(make_napari_viewer):
    viewer = make_napari_viewer()
    _, project_w = viewer.window.add_plugin_dock_widget(PLUGIN, "Crack project")
    _, annotate = viewer.window.add_plugin_dock_widget(PLUGIN, "Annotate")
    return viewer, project_w, annotate


def _settled(qtbot, session) -> None:
    qtbot.waitUntil(lambda: session.loading_name is None and not session.io.busy, timeout=WAIT_MS)


def _paint(session, rows: slice, cols: slice) -> np.ndarray:
    layer = session.labels_layer
    layer.data[rows, cols] = 1
    layer.refresh()
    session.mark_edited()
    return np.asarray(layer.data) > 0


def test_open_reads_and_normalises_in_a_worker(panels, sample_root, prepared_in, qtbot):
    viewer, project_w, annotate = panels
    project_w.open_project(sample_root)
    session = project_w.session
    names = session.project.names()
    # open_project returned before the image was read: the Annotate panel says it is opening
    assert session.loading_name == names[0] and session.current_name is None
    assert "Opening" in annotate.image_label.text() and names[0] in annotate.image_label.text()

    _settled(qtbot, session)
    assert prepared_in[names[0]] is not threading.main_thread()
    assert session.current_name == names[0] and "Opening" not in annotate.image_label.text()
    assert [layer.name for layer in viewer.layers] == [names[0], "crack probability (none yet)",
                                                       "crack mask (new)"]
    expected, limits = display_data(read_range_image(session.project.image_path(names[0])),
                                    session.display_profile)
    np.testing.assert_array_equal(session.image_layer.data, expected)
    assert tuple(session.image_layer.contrast_limits) == pytest.approx(limits)
    assert session.labels_layer.data.dtype == np.uint8 and not session.labels_layer.data.any()
    assert viewer.layers.selection.active is session.labels_layer


def test_a_newer_load_wins_over_a_slower_older_one(panels, sample_root, monkeypatch, qtbot):
    viewer, project_w, _annotate = panels
    project_w.open_project(sample_root)
    session = project_w.session
    _settled(qtbot, session)
    names = session.project.names()
    release = threading.Event()
    real = session_loading.prepare_image

    def slow_for_the_first(project, name, *args, **kwargs):
        if name == names[1]:
            assert release.wait(WAIT_MS / 1000)
        return real(project, name, *args, **kwargs)

    monkeypatch.setattr(session_loading, "prepare_image", slow_for_the_first)
    shown: list[str] = []
    session.image_loaded.connect(shown.append)
    session.load(names[1])
    session.load(names[2])  # while names[1] is still being read
    assert session.loading_name == names[2] and session.current_name == names[0]
    release.set()
    _settled(qtbot, session)
    assert shown == [names[2]]  # names[1]'s result came first and was dropped
    assert session.current_name == names[2] and viewer.layers[0].name == names[2]
    assert session.image_layer.metadata["crack_al_name"] == names[2]


def test_paint_is_saved_before_the_switch_even_while_loading(panels, sample_root, monkeypatch,
                                                             qtbot):
    _viewer, project_w, _annotate = panels
    project_w.open_project(sample_root)
    session = project_w.session
    _settled(qtbot, session)
    project = session.project
    names = project.names()
    saved_in: list[threading.Thread] = []
    real_save = Project.save_draft

    def recording_save(self, *args, **kwargs):
        saved_in.append(threading.current_thread())
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(Project, "save_draft", recording_save)
    release = threading.Event()
    real = session_loading.prepare_image

    def held(project_, name, *args, **kwargs):
        assert release.wait(WAIT_MS / 1000)
        return real(project_, name, *args, **kwargs)

    monkeypatch.setattr(session_loading, "prepare_image", held)
    _paint(session, slice(10, 20), slice(10, 20))
    session.load(names[1])
    expected = _paint(session, slice(50, 60), slice(50, 60))  # still on names[0] while it loads
    release.set()
    _settled(qtbot, session)
    assert session.current_name == names[1]
    assert saved_in and saved_in[0] is not threading.main_thread()
    np.testing.assert_array_equal(read_mask(project.draft_path(names[0])), expected)

    monkeypatch.setattr(session_loading, "prepare_image", real)
    session.load(names[0])
    _settled(qtbot, session)
    assert session.mask_source == "draft"
    np.testing.assert_array_equal(np.asarray(session.labels_layer.data) > 0, expected)


def test_accept_in_the_queue_then_close_waits_for_the_writes(panels, sample_root, qtbot):
    _viewer, project_w, _annotate = panels
    project_w.open_project(sample_root)
    session = project_w.session
    _settled(qtbot, session)
    names = session.project.names()
    expected = _paint(session, slice(0, 5), slice(0, 128))
    assert session.accept_and_next() == names[1]
    _settled(qtbot, session)
    project = Project.open(sample_root)
    np.testing.assert_array_equal(read_mask(project.annotation_path(names[0])), expected)
    assert project.record(names[0]).status == ImageStatus.ANNOTATED
    assert session.current_name == names[1]

    # accept and close at once: close waits for the queued write, the accepted mask is kept
    expected = _paint(session, slice(30, 40), slice(0, 128))
    session.accept_and_next()
    session.close()
    np.testing.assert_array_equal(read_mask(project.annotation_path(names[1])), expected)
    assert project.record(names[1]).status == ImageStatus.ANNOTATED
    _settled(qtbot, session)
    assert session.project is None


def test_a_corrupt_large_image_is_a_notification_and_next_passes_it(panels, sample_root,
                                                                     notifications, qtbot):
    viewer, project_w, _annotate = panels
    names = Project.open(sample_root).names()
    bad = sample_root / "images" / f"{names[1]}.png"
    bad.write_bytes(bad.read_bytes()[:200])  # a valid header (a large image), truncated pixels
    project_w.open_project(sample_root)
    session = project_w.session
    _settled(qtbot, session)

    session.load(names[1])
    _settled(qtbot, session)
    assert session.current_name == names[0] and len(viewer.layers) == 3  # napari stays up
    assert any(bad.name in m for m in notifications())
    assert names[1] in session.project.unreadable()

    # a move that reaches it in the background passes it by
    session.project.clear_unreadable(names[1])
    n_before = len(notifications())
    session.accept_and_next()
    _settled(qtbot, session)
    assert session.current_name == names[2]
    assert any(bad.name in m for m in notifications()[n_before:])
    assert names[1] in session.project.unreadable()


def test_refresh_overlay_reads_the_probability_in_the_queue(panels, sample_root, qtbot):
    from napari_crack_al.core.active.probability import write_probability

    _viewer, project_w, _annotate = panels
    project_w.open_project(sample_root)
    session = project_w.session
    _settled(qtbot, session)
    name = session.current_name
    prob = np.zeros((128, 128), np.float32)
    prob[10:20] = 1.0
    write_probability(session.project, name, prob)
    session.refresh_overlay()
    assert not session.has_probability()  # read in the queue, shown when read
    _settled(qtbot, session)
    assert session.has_probability()
    assert session.overlay_layer.data[15, 0] == pytest.approx(1.0)


def test_an_edit_wins_over_a_reload_of_the_same_image(panels, sample_root, monkeypatch, qtbot):
    _viewer, project_w, _annotate = panels
    project_w.open_project(sample_root)
    session = project_w.session
    _settled(qtbot, session)
    name = session.current_name
    session.project.set_suggestion(name, np.ones((128, 128), bool), "round-009")
    release = threading.Event()
    real = session_loading.prepare_image

    def held(project, name_, *args, **kwargs):
        assert release.wait(WAIT_MS / 1000)
        return real(project, name_, *args, **kwargs)

    monkeypatch.setattr(session_loading, "prepare_image", held)
    session.load(name, force=True)  # a new suggestion arrived: shown unless painting starts
    expected = _paint(session, slice(0, 3), slice(0, 3))
    release.set()
    _settled(qtbot, session)
    np.testing.assert_array_equal(np.asarray(session.labels_layer.data) > 0, expected)
    assert session.is_dirty()


def test_a_failed_save_keeps_the_image_and_its_paint(panels, sample_root, monkeypatch,
                                                     notifications, qtbot):
    from napari_crack_al.core.errors import ProjectError

    _viewer, project_w, _annotate = panels
    project_w.open_project(sample_root)
    session = project_w.session
    _settled(qtbot, session)
    names = session.project.names()
    saved_in: list[threading.Thread] = []

    def failing(self, name, *args, **kwargs):
        saved_in.append(threading.current_thread())
        raise ProjectError(self.root, "disk full")

    monkeypatch.setattr(Project, "save_draft", failing)
    expected = _paint(session, slice(10, 20), slice(10, 20))
    session.load(names[1])
    _settled(qtbot, session)
    assert saved_in and saved_in[0] is not threading.main_thread()
    assert session.current_name == names[0]  # not switched: the edits are still on screen
    np.testing.assert_array_equal(np.asarray(session.labels_layer.data) > 0, expected)
    assert session.is_dirty() and session.labels_layer.name == "crack mask (edited)"
    assert any("disk full" in m for m in notifications())
