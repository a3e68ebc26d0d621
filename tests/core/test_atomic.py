"""Atomic writes: all or nothing, sane permissions, clear folder errors."""

from __future__ import annotations

import os

import pytest

from napari_crack_al.core.io.atomic import atomic_write, atomic_write_bytes
from napari_crack_al.core.errors import InputError


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_failed_write_keeps_old_file(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"old")

    def boom(fh):
        fh.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_new_file_gets_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        target = atomic_write_bytes(tmp_path / "m.png", b"x")
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o644


def test_replacing_keeps_permissions(tmp_path):
    target = tmp_path / "m.png"
    target.write_bytes(b"x")
    target.chmod(0o640)
    atomic_write_bytes(target, b"y")
    assert target.stat().st_mode & 0o777 == 0o640


def test_missing_folder_names_it(tmp_path):
    with pytest.raises(InputError, match="folder does not exist"):
        atomic_write_bytes(tmp_path / "nope" / "a.bin", b"x")


def test_a_name_near_the_file_system_limit_can_be_written(tmp_path):
    """A 250-character file name: the temporary name must not push it past 255 bytes."""
    from napari_crack_al.core.io.atomic import atomic_write_bytes

    target = tmp_path / ("r" * 246 + ".png")
    assert len(target.name) == 250
    atomic_write_bytes(target, b"data")
    assert target.read_bytes() == b"data"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left


def test_temporary_files_of_killed_writes_are_removed(tmp_path):
    import os
    import time

    from napari_crack_al.core.io.atomic import atomic_write_bytes

    target = tmp_path / "model.pt"
    stale = tmp_path / ".model.pt.abcd1234.tmp.pt"  # what a killed write leaves
    fresh = tmp_path / ".model.pt.efgh5678.tmp.pt"  # a write that may still be running
    other = tmp_path / ".other.pt.abcd1234.tmp.pt"
    for p in (stale, fresh, other):
        p.write_bytes(b"x" * 10)
    old = time.time() - 7200
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    atomic_write_bytes(target, b"model")
    assert not stale.exists() and fresh.exists() and other.exists()
