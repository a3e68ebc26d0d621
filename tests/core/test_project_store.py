"""The project store: every method of the core.project contract, bad input, persistence, schema."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_crack_al.core.errors import ConfigError, InputError, MaskError, ProjectError
from napari_crack_al.core.io.mask_io import read_mask, write_mask
from napari_crack_al.core.project import SCHEMA_VERSION, ImageRecord, ImageStatus, Project, UnknownImageError
from napari_crack_al.core.project import schema as schema_mod
from napari_crack_al.core.project import store as store_mod
from napari_crack_al.core.project.records import as_bool_mask, edit_fraction

H, W = 16, 24  # not square, so a transposed shape is caught


def _write_images(folder: Path, rng: np.random.Generator) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(1, 255, (H, W), dtype=np.uint8)).save(folder / "a.png")
    tifffile.imwrite(folder / "b.tif", rng.integers(1, 60000, (H, W), dtype=np.uint16))
    np.save(folder / "c.npy", rng.random((H, W)).astype(np.float32))
    np.save(folder / "d.npy", rng.random((H, W)).astype(np.float32))


@pytest.fixture
def project(tmp_path, rng) -> Project:
    _write_images(tmp_path / "images", rng)
    proj = Project.create(tmp_path, pixel_size_mm=1.0)
    yield proj
    proj.close()


def _mask(rows=slice(2, 6), cols=slice(3, 20)) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[rows, cols] = True
    return m


# ---------------------------------------------------------------- creation and opening
def test_create_layout_records_and_wal(project, tmp_path):
    assert Project.is_project(tmp_path)
    assert project.root == tmp_path
    for folder in (project.images_dir, project.annotations_dir, project.state_dir, project.models_dir,
                   project.suggestions_dir, project.drafts_dir):
        assert folder.is_dir(), folder
    assert project.state_dir == tmp_path / ".crack-al"
    assert project.suggestions_dir == tmp_path / ".crack-al" / "suggestions"
    assert project.names() == ["a", "b", "c", "d"]
    recs = project.records()
    assert [r.queue_position for r in recs] == [0, 1, 2, 3]
    assert [r.filename for r in recs] == ["a.png", "b.tif", "c.npy", "d.npy"]
    r = recs[0]
    assert isinstance(r, ImageRecord)
    assert (r.status, r.score, r.score_model_version, r.suggestion_model_version, r.annotation_seconds,
            r.edit_fraction) == (ImageStatus.NEW, None, None, None, 0.0, None)
    assert project.pixel_size_mm == 1.0
    assert project.counts() == {"new": 4, "suggested": 0, "annotated": 0, "skipped": 0}
    with sqlite3.connect(project.db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with project._connect() as conn:  # per-connection setting
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert project.integrity_check() == []
    assert not list(project.state_dir.glob(".*tmp*"))


def test_create_registers_existing_annotations_but_not_ground_truth(tmp_path, rng):
    _write_images(tmp_path / "images", rng)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "ground_truth").mkdir()
    write_mask(tmp_path / "annotations" / "b.png", _mask())
    write_mask(tmp_path / "ground_truth" / "c.png", _mask())
    proj = Project.create(tmp_path)
    assert [r.status for r in proj.records()] == [ImageStatus.NEW, ImageStatus.ANNOTATED, ImageStatus.NEW,
                                                   ImageStatus.NEW]
    assert proj.record("b").edit_fraction is None
    assert proj.read_annotation("c") is None
    assert proj.pixel_size_mm is None
    proj.close()


def test_create_missing_images_folder(tmp_path):
    with pytest.raises(ProjectError) as info:
        Project.create(tmp_path)
    assert info.value.path == tmp_path / "images"
    assert "does not exist" in str(info.value)
    assert not Project.is_project(tmp_path)


def test_create_empty_images_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "notes.txt").write_text("no images here")
    with pytest.raises(ProjectError, match="holds no supported images") as info:
        Project.create(tmp_path)
    assert str(tmp_path / "images") in str(info.value)


def test_create_read_only_folder(tmp_path, rng, monkeypatch):
    _write_images(tmp_path / "images", rng)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k:
                        False if Path(p) == tmp_path and mode & os.W_OK else real_access(p, mode, *a, **k))
    with pytest.raises(ProjectError, match="not writable") as info:
        Project.create(tmp_path)
    assert info.value.path == tmp_path
    assert not (tmp_path / ".crack-al").exists()


def test_create_folder_creation_fails(tmp_path, rng, monkeypatch):
    _write_images(tmp_path / "images", rng)
    real_mkdir = Path.mkdir

    def failing_mkdir(self, *args, **kwargs):
        if self.name == "annotations":
            raise PermissionError(13, "Permission denied")
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", failing_mkdir)
    with pytest.raises(ProjectError, match="cannot create the folder") as info:
        Project.create(tmp_path)
    assert info.value.path == tmp_path / "annotations"


def test_create_twice_and_bad_pixel_size(project, tmp_path):
    with pytest.raises(ProjectError, match="already a napari-crack-al project"):
        Project.create(tmp_path)
    other = tmp_path / "other"
    _write_images(other / "images", np.random.default_rng(1))
    for bad in (0, -1.0, float("nan"), "big"):
        with pytest.raises(ConfigError, match="pixel_size_mm"):
            Project.create(other, pixel_size_mm=bad)
    assert not Project.is_project(other)
    assert Project.open_or_create(other, pixel_size_mm=0.5).pixel_size_mm == 0.5
    assert Project.open_or_create(other).pixel_size_mm == 0.5


def test_create_ambiguous_image_names(tmp_path, rng):
    _write_images(tmp_path / "images", rng)
    np.save(tmp_path / "images" / "a.npy", np.ones((H, W), np.float32))  # a.png and a.npy
    with pytest.raises(ProjectError, match="ambiguous image name"):
        Project.create(tmp_path)


def test_open_not_a_project(tmp_path):
    assert not Project.is_project(tmp_path)
    with pytest.raises(ProjectError, match="not a napari-crack-al project") as info:
        Project.open(tmp_path)
    assert info.value.path == tmp_path
    with pytest.raises(ProjectError, match="does not exist"):
        Project.open(tmp_path / "missing")


def test_open_corrupt_database(project):
    db = project.db_path
    project.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(ProjectError, match="not a valid project database") as info:
        Project.open(project.root)
    assert info.value.path == db
    assert str(db) in str(info.value)


def test_open_empty_database(project):
    db = project.db_path
    project.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"")
    with pytest.raises(ProjectError, match="empty") as info:
        Project.open(project.root)
    assert info.value.path == db


def test_open_newer_schema_is_refused(project):
    with sqlite3.connect(project.db_path) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(ProjectError, match="newer than this napari-crack-al supports") as info:
        Project.open(project.root)
    assert info.value.path == project.db_path
    assert str(project.db_path) in str(info.value)


def test_migrate_from_scratch_and_idempotent():
    conn = sqlite3.connect(":memory:", isolation_level=None)
    assert schema_mod.migrate(conn) == 0
    assert schema_mod.schema_version(conn) == SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"images", "scores", "meta", "models"} <= tables
    assert schema_mod.migrate(conn) == SCHEMA_VERSION  # nothing to do
    assert len(schema_mod.MIGRATIONS) == SCHEMA_VERSION
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 3}")
    with pytest.raises(schema_mod.UnsupportedSchemaError, match=str(SCHEMA_VERSION + 3)):
        schema_mod.migrate(conn)
    assert not conn.in_transaction
    conn.close()


def test_open_runs_pending_migrations(project, monkeypatch):
    """A database at an older version is migrated on open, step by step."""
    calls = []

    def to_v2(conn):
        calls.append("v2")
        conn.execute("ALTER TABLE images ADD COLUMN note TEXT")

    monkeypatch.setattr(schema_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(schema_mod, "MIGRATIONS", [*schema_mod.MIGRATIONS, to_v2])
    reopened = Project.open(project.root)
    assert calls == ["v2"]
    with sqlite3.connect(project.db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        cols = [r[1] for r in conn.execute("PRAGMA table_info(images)")]
    assert "note" in cols
    assert reopened.names() == ["a", "b", "c", "d"]
    Project.open(project.root)
    assert calls == ["v2"]  # not migrated twice


def test_reopen_persists_everything(project):
    project.accept("a", _mask(), seconds=3.0)
    project.skip("b")
    project.set_suggestion("c", _mask(), "m1")
    project.save_draft("d", _mask(rows=slice(0, 1)))
    project.set_scores({"c": 0.7, "d": 0.2}, "m1")
    project.set_scores({"c": 1.5}, "m1", kind="entropy")
    project.set_queue_order(["d", "c"])
    project.set_meta("held_out", ["b"])
    project.add_model("m1", project.models_dir / "m1.pt", round=1, metrics={"iou": 0.5})
    before = project.records()
    project.close()

    again = Project.open(project.root)
    assert again.records() == before
    assert again.names() == ["d", "c", "a", "b"]
    assert again.get_scores() == {"c": {"entropy": 1.5, "score": 0.7}, "d": {"score": 0.2}}
    assert again.get_meta("held_out") == ["b"]
    assert again.pixel_size_mm == 1.0
    assert again.current_model()["version"] == "m1"
    np.testing.assert_array_equal(again.read_annotation("a"), _mask())
    assert again.mask_for_editing("d")[1] == "draft"
    again.close()


# ---------------------------------------------------------------- names, paths, refresh
def test_unknown_name_is_clear(project):
    for call in (lambda: project.record("zz"), lambda: project.image_path("zz"),
                 lambda: project.annotation_path("zz"), lambda: project.accept("zz", _mask()),
                 lambda: project.skip("zz"), lambda: project.set_suggestion("zz", _mask(), "m"),
                 lambda: project.mask_for_editing("zz"), lambda: project.next_name("zz"),
                 lambda: project.set_scores({"zz": 1.0}, "m"), lambda: project.set_queue_order(["zz"]),
                 lambda: project.save_draft("zz", _mask()), lambda: project.read_annotation("zz")):
        with pytest.raises(UnknownImageError) as info:
            call()
        assert isinstance(info.value, ProjectError) and isinstance(info.value, KeyError)
        assert "'zz'" in str(info.value) and str(project.images_dir) in str(info.value)
    assert project.get_scores() == {}


def test_paths(project, tmp_path):
    assert project.image_path("b") == tmp_path / "images" / "b.tif"
    assert project.annotation_path("b") == tmp_path / "annotations" / "b.png"
    assert project.suggestion_path("b") == tmp_path / ".crack-al" / "suggestions" / "b.png"
    assert project.draft_path("b") == tmp_path / ".crack-al" / "drafts" / "b.png"
    for name in "abcd":  # header shape of PNG, TIFF and NPY
        assert project.image_shape(name) == (H, W)


def test_refresh_picks_up_new_images(project, rng):
    assert project.refresh() == []
    np.save(project.images_dir / "e.npy", rng.random((H, W)).astype(np.float32))
    Image.fromarray(np.full((H, W), 9, np.uint8)).save(project.images_dir / "0first.png")
    write_mask(project.annotation_path("a", check=False).with_name("e.png"), _mask())
    project.set_queue_order(["d"])
    assert project.refresh() == ["0first", "e"]
    assert project.names() == ["d", "a", "b", "c", "0first", "e"]  # new images go to the end
    assert project.record("e").status is ImageStatus.ANNOTATED
    assert project.record("0first").status is ImageStatus.NEW
    assert project.refresh() == []
    # an image replaced by a file of another format keeps its record
    (project.images_dir / "c.npy").unlink()
    tifffile.imwrite(project.images_dir / "c.tif", np.ones((H, W), np.uint16))
    assert project.refresh() == []
    assert project.image_path("c") == project.images_dir / "c.tif"


# ---------------------------------------------------------------- masks
def test_mask_for_editing_priority(project):
    assert project.mask_for_editing("a") == (None, "empty")
    sug, ann, draft = _mask(rows=slice(0, 2)), _mask(rows=slice(4, 8)), _mask(rows=slice(10, 12))
    project.set_suggestion("a", sug, "m1")
    mask, source = project.mask_for_editing("a")
    assert source == "suggestion"
    np.testing.assert_array_equal(mask, sug)
    project.accept("a", ann)
    mask, source = project.mask_for_editing("a")
    assert source == "annotation"
    np.testing.assert_array_equal(mask, ann)
    project.save_draft("a", draft)
    assert project.has_draft("a")
    mask, source = project.mask_for_editing("a")
    assert source == "draft" and mask.dtype == bool
    np.testing.assert_array_equal(mask, draft)
    np.testing.assert_array_equal(project.read_draft("a"), draft)
    project.discard_draft("a")
    project.discard_draft("a")  # no draft: nothing to do
    assert not project.has_draft("a")
    assert project.mask_for_editing("a")[1] == "annotation"
    np.testing.assert_array_equal(project.read_suggestion("a"), sug)


def test_accept_writes_file_record_and_removes_draft(project):
    project.save_draft("b", _mask(rows=slice(0, 1)))
    labels = _mask().astype(np.uint8)  # a napari Labels layer: 1 = crack
    rec = project.accept("b", labels, seconds=2.5)
    assert rec == project.record("b")
    assert rec.status is ImageStatus.ANNOTATED and rec.annotation_seconds == 2.5
    assert rec.edit_fraction == 1.0 and rec.suggestion_model_version is None
    assert not project.has_draft("b")
    on_disk = np.array(Image.open(project.annotation_path("b")))
    assert on_disk.dtype == np.uint8 and set(np.unique(on_disk)) == {0, 255}
    np.testing.assert_array_equal(read_mask(project.annotation_path("b")), _mask())
    rec2 = project.accept("b", _mask(), seconds=1.5)
    assert rec2.annotation_seconds == 4.0  # accumulated
    assert rec2.updated_at >= rec.updated_at
    assert project.counts()["annotated"] == 1


def test_draft_keeps_the_suggestion_it_was_edited_from(project):
    """A retrain writes a newer suggestion while a draft is open: accepting the draft records
    the version the annotator started from and measures the edits against that suggestion."""
    old = _mask(rows=slice(2, 6), cols=slice(0, 10))  # 40 px
    project.set_suggestion("a", old, "round-001")
    edited = old.copy()
    edited[2:6, 10:12] = True  # 8 px added
    project.save_draft("a", edited)
    assert project.draft_base("a").version == "round-001"
    newer = _mask(rows=slice(8, 12), cols=slice(0, 24))
    project.set_suggestion("a", newer, "round-002")  # the retrain
    project.save_draft("a", edited)  # later autosaves keep the base
    np.testing.assert_array_equal(project.draft_base("a").mask, old)
    assert project.mask_for_editing("a")[1] == "draft"
    rec = project.accept("a", edited)
    assert rec.suggestion_model_version == "round-001"
    assert rec.edit_fraction == pytest.approx(8 / 48)  # against round-001, not round-002
    assert project.draft_base("a") is None and not project.draft_base_path("a").exists()

    # a draft started from no suggestion is measured as drawn from scratch, even if a
    # suggestion arrives before it is accepted
    project.save_draft("b", _mask())
    project.set_suggestion("b", _mask(), "round-002")
    rec = project.accept("b", _mask())
    assert rec.edit_fraction == 1.0 and rec.suggestion_model_version is None

    # discarding a draft (reset to the suggestion) forgets its base: the next draft starts
    # from the newest suggestion
    project.set_suggestion("c", old, "round-001")
    project.save_draft("c", edited)
    project.discard_draft("c")
    assert project.draft_base("c") is None
    project.set_suggestion("c", newer, "round-002")
    project.save_draft("c", newer)
    assert project.draft_base("c").version == "round-002"
    assert project.accept("c", newer).edit_fraction == 0.0


def test_edit_fraction_cases(project):
    sug = _mask(rows=slice(2, 6), cols=slice(0, 10))  # 40 px
    project.set_suggestion("a", sug, "m1")
    assert project.accept("a", sug).edit_fraction == 0.0  # accepted as suggested
    assert project.record("a").suggestion_model_version == "m1"
    assert project.accept("b", sug).edit_fraction == 1.0  # no suggestion: drawn from scratch
    project.set_suggestion("c", sug, "m2")
    partial = sug.copy()
    partial[2, 0:10] = False  # removes 10 px -> 30 crack px
    partial[10, 0:5] = True  # adds 5 px -> 35 crack px, 15 px differ
    rec = project.accept("c", partial)
    assert rec.edit_fraction == pytest.approx(15 / 35)
    assert rec.suggestion_model_version == "m2"
    project.set_suggestion("d", _mask(rows=slice(0, 4), cols=slice(0, 4)), "m2")
    disjoint = _mask(rows=slice(10, 12), cols=slice(10, 14))  # 8 new px, 16 suggested px deleted
    assert project.accept("d", disjoint).edit_fraction == pytest.approx((8 + 16) / 8)


def test_edit_fraction_helper():
    a = np.zeros((4, 4), bool)
    assert edit_fraction(a, None) == 0.0 and edit_fraction(a, a) == 0.0
    b = a.copy()
    b[0, :] = True
    assert edit_fraction(b, None) == 1.0
    assert edit_fraction(a, b) == 4.0  # everything deleted: changed / max(1, 0)
    with pytest.raises(MaskError, match="shape"):
        edit_fraction(b, np.zeros((3, 4), bool))


def test_accept_bad_masks(project):
    with pytest.raises(MaskError, match="mask is 24 x 16 pixels, image is 16 x 24") as info:
        project.accept("a", np.zeros((W, H), bool))
    assert info.value.path == project.annotation_path("a")
    assert "a.png" in str(info.value)
    with pytest.raises(MaskError, match="2-D"):
        project.accept("a", np.zeros((H, W, 3), bool))
    with pytest.raises(MaskError, match="dtype float"):
        project.accept("a", np.zeros((H, W), np.float32))
    with pytest.raises(MaskError, match="size differs"):
        project.save_draft("b", np.zeros((H + 1, W), bool))
    with pytest.raises(MaskError, match="size differs"):
        project.set_suggestion("c", np.zeros((H, W + 1), bool), "m")
    with pytest.raises(ValueError, match="seconds"):
        project.accept("a", _mask(), seconds=-1)
    assert project.counts()["new"] == 4
    assert list(project.annotations_dir.iterdir()) == []
    assert list(project.drafts_dir.iterdir()) == []


def test_accept_mask_file_comes_before_the_record(project, monkeypatch):
    project.save_draft("a", _mask(rows=slice(0, 1)))

    def broken_write(path, mask, **kw):
        raise MaskError(path, "disk full")

    monkeypatch.setattr(store_mod, "write_mask", broken_write)
    with pytest.raises(MaskError, match="disk full"):
        project.accept("a", _mask())
    assert project.record("a").status is ImageStatus.NEW  # no record without its file
    assert project.has_draft("a")
    monkeypatch.undo()

    def broken_transaction():
        raise ProjectError(project.db_path, "database is locked")

    monkeypatch.setattr(project, "_transaction", broken_transaction)
    with pytest.raises(ProjectError, match="locked"):
        project.accept("a", _mask())
    monkeypatch.undo()
    # the file was written first; the record and the draft are untouched
    np.testing.assert_array_equal(project.read_annotation("a"), _mask())
    assert project.record("a").status is ImageStatus.NEW
    assert project.has_draft("a")


def test_accept_with_unreadable_image_still_saves(project):
    project.image_path("c").write_bytes(b"garbage")
    rec = project.accept("c", _mask())
    assert rec.status is ImageStatus.ANNOTATED
    np.testing.assert_array_equal(project.read_annotation("c"), _mask())


def test_as_bool_mask():
    np.testing.assert_array_equal(as_bool_mask(np.array([[0, 1], [255, 0]], np.uint8)),
                                  [[False, True], [True, False]])
    with pytest.raises(MaskError, match="object"):
        as_bool_mask(np.array([[None]]))


# ---------------------------------------------------------------- status, suggestions, queue
def test_set_suggestion_status_and_versions(project):
    project.set_suggestion("a", _mask(), "m1")
    rec = project.record("a")
    assert rec.status is ImageStatus.SUGGESTED
    assert rec.suggestion_model_version == rec.suggestion_file_version == "m1"
    project.set_suggestion("a", _mask(rows=slice(8, 9)), "m2")
    assert project.record("a").suggestion_model_version == "m2"
    project.accept("a", _mask(rows=slice(8, 9)))
    project.set_suggestion("a", _mask(), "m3")  # re-predicting an annotated image
    rec = project.record("a")
    assert rec.status is ImageStatus.ANNOTATED
    assert rec.suggestion_model_version == "m2" and rec.suggestion_file_version == "m3"
    project.skip("b")
    project.set_suggestion("b", _mask(), "m3")
    assert project.record("b").status is ImageStatus.SKIPPED
    with pytest.raises(ValueError, match="model version"):
        project.set_suggestion("c", _mask(), "")


def test_skip_and_unskip(project):
    rec = project.skip("a", seconds=4.0)
    assert rec.status is ImageStatus.SKIPPED and rec.annotation_seconds == 4.0
    assert project.unskip("a").status is ImageStatus.NEW
    project.set_suggestion("b", _mask(), "m1")
    project.skip("b")
    assert project.unskip("b").status is ImageStatus.SUGGESTED
    project.accept("c", _mask())
    assert project.unskip("c").status is ImageStatus.ANNOTATED  # only skipped images change


def test_next_name_skips_annotated_and_skipped(project):
    assert project.next_name() == "a"
    project.accept("a", _mask())
    project.skip("b")
    project.set_suggestion("d", _mask(), "m1")
    assert project.next_name() == "c"
    assert project.next_name("c") == "d"  # suggested counts as pending
    assert project.next_name("d") == "c"  # wraps around
    assert project.next_name("a") == "c"
    project.accept("c", _mask())
    assert project.next_name("d") is None  # never returns `after` itself
    assert project.next_name() == "d"
    project.accept("d", _mask())
    assert project.next_name() is None


def test_set_queue_order(project):
    project.set_queue_order(["c", "a"])
    assert project.names() == ["c", "a", "b", "d"]
    assert [r.queue_position for r in project.records()] == [0, 1, 2, 3]
    assert project.record("b").queue_position == 2
    assert project.next_name() == "c"
    project.set_queue_order(["d", "d", "b"])  # repeats count once
    assert project.names() == ["d", "b", "c", "a"]
    with pytest.raises(UnknownImageError):
        project.set_queue_order(["a", "nope"])
    assert project.names() == ["d", "b", "c", "a"]  # unchanged
    project.set_queue_order([])
    assert project.names() == ["d", "b", "c", "a"]


def test_scores(project):
    project.set_scores({"a": 0.5, "b": 0.25}, "m1")
    project.set_scores({"a": 2.0, "c": 1.0}, "m1", kind="entropy")
    assert project.get_scores() == {"a": {"score": 0.5, "entropy": 2.0}, "b": {"score": 0.25},
                                    "c": {"entropy": 1.0}}
    assert project.get_scores("entropy") == {"a": {"entropy": 2.0}, "c": {"entropy": 1.0}}
    assert project.get_scores("missing") == {}
    rec = project.record("a")
    assert (rec.score, rec.score_model_version) == (0.5, "m1")
    assert project.record("c").score is None  # only kind "score" goes to the record
    project.set_scores({"a": np.float32(0.75)}, "m2")
    assert project.record("a").score == 0.75 and project.record("a").score_model_version == "m2"
    assert project.score_versions() == {"a": "m2", "b": "m1"}
    with pytest.raises(UnknownImageError):
        project.set_scores({"b": 9.0, "zz": 1.0}, "m3")
    assert project.get_scores("score")["b"] == {"score": 0.25}  # nothing written
    with pytest.raises(ValueError, match="not finite"):
        project.set_scores({"a": float("nan")}, "m3")
    with pytest.raises(ValueError, match="kind"):
        project.set_scores({"a": 1.0}, "m3", kind="")


# ---------------------------------------------------------------- meta and models
def test_meta_and_pixel_size(project):
    assert project.get_meta("nothing") is None
    assert project.get_meta("nothing", default=3) == 3
    project.set_meta("held_out", {"names": ["a", "b"], "seed": 0})
    assert project.get_meta("held_out") == {"names": ["a", "b"], "seed": 0}
    project.set_meta("held_out", [1.5])
    assert project.get_meta("held_out") == [1.5]
    with pytest.raises(ValueError, match="JSON"):
        project.set_meta("bad", object())
    with pytest.raises(ValueError, match="JSON"):
        project.set_meta("bad", float("inf"))
    project.pixel_size_mm = 0.25
    assert project.pixel_size_mm == 0.25 and project.get_meta("pixel_size_mm") == 0.25
    project.pixel_size_mm = None
    assert project.pixel_size_mm is None
    with pytest.raises(ConfigError, match="pixel_size_mm"):
        project.pixel_size_mm = -2


def test_models(project, tmp_path):
    assert project.models() == [] and project.current_model() is None
    project.add_model("r1", project.models_dir / "r1.pt", round=1, metrics={"iou": 0.4, "f1": np.float64(0.6)})
    outside = tmp_path.parent / "elsewhere" / "r2.pt"
    project.add_model("r2", outside, round=2, metrics={})
    models = project.models()
    assert [m["version"] for m in models] == ["r1", "r2"]
    assert models[0]["path"] == project.models_dir / "r1.pt"
    assert models[0]["round"] == 1 and models[0]["metrics"] == {"iou": 0.4, "f1": 0.6}
    assert models[0]["created_at"] <= models[1]["created_at"]
    assert models[1]["path"] == outside.resolve()
    assert project.current_model()["version"] == "r2"
    with sqlite3.connect(project.db_path) as conn:  # portable: stored relative to the root
        assert conn.execute("SELECT path FROM models WHERE version = 'r1'").fetchone()[0] == ".crack-al/models/r1.pt"
    with pytest.raises(ProjectError, match="already registered"):
        project.add_model("r1", "x.pt", round=3, metrics={})
    with pytest.raises(ValueError, match="metrics"):
        project.add_model("r3", "x.pt", round=3, metrics={"iou": "high"})
    assert len(project.models()) == 2


# ---------------------------------------------------------------- robustness
def test_temp_files_of_a_crash_are_removed_on_open(project):
    stale = [project.annotations_dir / ".a.png.k3j2.tmp.png", project.drafts_dir / ".b.png.x.tmp.png",
             project.suggestions_dir / ".c.png.q.tmp.png"]
    for p in stale:
        p.write_bytes(b"half a png")
    keep = project.annotations_dir / "a.png"
    write_mask(keep, _mask())
    second = Project.open(project.root)  # `project` is still open: a write may be in progress
    assert all(p.exists() for p in stale)
    second.close()
    project.close()
    third = Project.open(project.root)  # nobody else has it open: clean up
    assert not any(p.exists() for p in stale)
    assert keep.exists()
    third.close()


def test_threads_share_one_project(project):
    errors = []

    def work(i):
        try:
            for k in range(5):
                name = "abcd"[(i + k) % 4]
                project.save_draft(name, _mask(rows=slice(i, i + 2)))
                project.set_scores({name: float(i * 10 + k)}, f"m{i}", kind=f"k{i}")
                project.accept(name, _mask(rows=slice(i, i + 1)), seconds=1.0)
                project.records()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.annotation_seconds for r in project.records()) == 20.0
    assert all(r.status is ImageStatus.ANNOTATED for r in project.records())
    assert {k for d in project.get_scores().values() for k in d} == {"k0", "k1", "k2", "k3"}
    assert project.integrity_check() == []


def test_errors_are_input_errors(project):
    with pytest.raises(InputError):
        project.record("missing")


def test_names_from_a_crafted_database_never_become_paths_outside(tmp_path):
    """A row renamed to ``../../x`` by hand: accept and suggestions refuse it, nothing is written."""
    import sqlite3

    from napari_crack_al.core.errors import ProjectError

    root = tmp_path / "p"
    from napari_crack_al.core.sample_project import write_sample_images

    write_sample_images(root, n=2, size=32, seed=0)
    Project.create(root).close()
    conn = sqlite3.connect(root / ".crack-al" / "project.sqlite")
    with conn:
        first = conn.execute("SELECT name FROM images ORDER BY name").fetchone()[0]
        conn.execute("UPDATE images SET name = ? WHERE name = ?", ("../../escaped", first))
        second = conn.execute("SELECT name FROM images WHERE name != ?",
                              ("../../escaped",)).fetchone()[0]
        conn.execute("UPDATE images SET filename = ? WHERE name = ?", ("../../etc.png", second))
    conn.close()
    mask = np.zeros((32, 32), bool)
    with Project.open(root) as project:
        with pytest.raises(ProjectError, match="unsafe image name"):
            project.accept("../../escaped", mask)
        with pytest.raises(ProjectError, match="unsafe"):
            project.set_suggestion("../../escaped", mask, "round-001")
        with pytest.raises(ProjectError, match="unsafe file name"):
            project.image_path(second)
    assert not (tmp_path / "escaped.png").exists() and not (root.parent / "escaped.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_opening_removes_temporary_files_of_killed_writes_in_every_state_folder(tmp_path):
    from napari_crack_al.core.sample_project import write_sample_images

    root = tmp_path / "p"
    write_sample_images(root, n=1, size=32, seed=0)
    with Project.create(root) as project:
        project.models_dir.mkdir(parents=True, exist_ok=True)
        leftovers = [project.models_dir / ".round_002.pt.tmp-training",
                     project.models_dir / ".round_001.pt.abcd1234.tmp.pt",
                     project.state_dir / "probabilities" / ".x.png.abcd1234.tmp.png"]
    for p in leftovers:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"0" * 1000)
    with Project.open(root):
        pass
    assert not any(p.exists() for p in leftovers)


def test_unreadable_marks_hold_while_the_file_is_unchanged(project):
    project.mark_unreadable("a", "not a PNG file")
    assert project.unreadable() == {"a": "not a PNG file"}
    path = project.image_path("a")
    path.write_bytes(path.read_bytes() + b"\0")  # the file changes (repaired, replaced)
    assert project.unreadable() == {}
    project.mark_unreadable("b", "truncated")
    project.clear_unreadable("b")
    assert project.unreadable() == {}
