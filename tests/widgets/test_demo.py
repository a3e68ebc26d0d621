"""`make demo`: the demo script renders the plugin's window to a PNG and exits."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from napari_crack_al.core.project import Project


@pytest.mark.slow
def _run_demo(args, env):
    """Run the demo; on a hang, fail with what it printed (the demo dumps its threads at 180 s)."""
    cmd = [sys.executable, "-m", "napari_crack_al.demo", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    except subprocess.TimeoutExpired as exc:  # pragma: no cover - diagnostic path
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        err = (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(f"the demo hung: {out}\n{err}")


def test_demo_screenshot(tmp_path):
    project = tmp_path / "demo"
    shot = tmp_path / "shot.png"
    env = dict(os.environ)
    assert env.get("DISPLAY"), "the demo needs an X server (pytest-xvfb or xvfb-run)"
    res = _run_demo(["--project", str(project), "--n", "3", "--size", "128", "--screenshot", str(shot)], env)
    assert res.returncode == 0, res.stdout + res.stderr
    import qtpy

    if qtpy.API_NAME != "PyQt5":  # `make test` runs on PyQt6: napari has nothing to deprecate at start
        assert "deprecated" not in (res.stdout + res.stderr).lower(), res.stdout + res.stderr
    assert Project.is_project(project)
    assert len(Project.open(project).names()) == 3
    assert not (project / "annotations" / "sample_0000.png").exists()  # never pre-filled from ground truth

    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB")).astype(float)
    h, w, _ = img.shape
    assert h >= 400 and w >= 600  # the whole window, not only the canvas
    assert img.std() > 10  # not blank
    # the canvas holds the range image under the detector's suggestion: many distinct colours in
    # the middle of the window (a blank or flat canvas has a handful)
    middle = img[h // 4: 3 * h // 4, w // 3: 2 * w // 3].reshape(-1, 3)
    assert len(np.unique(middle, axis=0)) > 20  # (Xvfb may run at 16-bit colour depth)
    # the first image opened with the detector's suggestion (no model yet), waited for before the shot
    assert Project.open(project).suggestion_path("sample_0000").is_file()

    # second run: the project exists and is reopened, not regenerated
    res = _run_demo(["--project", str(project), "--screenshot", str(shot)], env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Generating" not in res.stdout
