"""A project on a read-only medium opens read-only: reads and export work, changes are refused,
nothing is written; SQLite failures are said in a user's words."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from napari_crack_al.core.errors import ProjectError
from napari_crack_al.core.export.masks import export_masks
from napari_crack_al.core.project import Project, _database
from napari_crack_al.core.sample_project import write_sample_images


def _files(root):
    return {p.relative_to(root): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def closed_project(tmp_path):
    root = tmp_path / "p"
    write_sample_images(root, n=3, size=48, seed=0)
    with Project.create(root) as project:
        name = project.names()[0]
        mask = np.zeros((48, 48), bool)
        mask[10:12, 5:40] = True
        project.accept(name, mask)
    return root


def test_a_read_only_medium_opens_read_only_by_itself(closed_project, monkeypatch):
    monkeypatch.setattr(_database, "medium_is_read_only", lambda folder: True)
    with Project.open(closed_project) as project:
        assert project.read_only


def test_read_only_project_reads_and_exports_and_writes_nothing(closed_project, tmp_path):
    before = _files(closed_project)
    with Project.open(closed_project, read_only=True) as project:
        names = project.names()
        assert len(names) == 3
        assert project.record(names[0]).status.value == "annotated"
        result = export_masks(project, tmp_path / "out")
        assert len(result.masks) == 1
        mask = np.zeros((48, 48), bool)
        with pytest.raises(ProjectError, match="read-only"):
            project.accept(names[1], mask)
        with pytest.raises(ProjectError, match="read-only"):
            project.save_draft(names[1], mask)
        with pytest.raises(ProjectError, match="read-only"):
            project.set_queue_order(list(reversed(names)))
    assert _files(closed_project) == before  # no lock, journal, mask or temporary file


@pytest.mark.parametrize("message, words", [
    ("attempt to write a readonly database", "read-only medium"),
    ("database or disk is full", "the disk is full"),
    ("database is locked", "locked by another process"),
    ("disk I/O error", "disk I/O error"),
])
def test_sqlite_failures_are_said_in_a_users_words(closed_project, monkeypatch, message, words):
    def failing(*_a, **_kw):
        raise sqlite3.OperationalError(message)

    monkeypatch.setattr(_database.sqlite3, "connect", failing)
    with pytest.raises(ProjectError, match=words) as info:
        Project.open(closed_project, read_only=False)
    assert "not a valid project database" not in str(info.value)
    assert "project.sqlite" in str(info.value)


@pytest.mark.parametrize("key, text, phrase", [
    ("pixel_size_mm", "not json{", "is not valid JSON"),
    ("pixel_size_mm", '"abc"', "must be a number"),
    ("pixel_size_mm", "-3", "must be a positive number"),
    ("heldout", '"img"', "must be a list"),
])
def test_hand_edited_meta_values_are_one_error(closed_project, key, text, phrase):
    db = closed_project / ".crack-al" / "project.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                 "value = excluded.value", (key, text))
    conn.commit()
    conn.close()
    from napari_crack_al.core.active.heldout import select_heldout
    from napari_crack_al.core.active.round import RoundConfig
    from napari_crack_al.core.training.config import TrainConfig

    with Project.open(closed_project) as project:
        with pytest.raises(ProjectError, match=phrase) as info:
            if key == "pixel_size_mm":
                _ = project.pixel_size_mm
            else:
                select_heldout(project, project.names(), RoundConfig(train=TrainConfig()))
        assert "project.sqlite" in str(info.value) and key in str(info.value)
