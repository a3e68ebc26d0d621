"""`make demo`: the demo script renders the plugin's window to a PNG and exits."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from napari_crack_al.core.project import Project


@pytest.mark.slow
def test_demo_screenshot(tmp_path):
    project = tmp_path / "demo"
    shot = tmp_path / "shot.png"
    env = dict(os.environ)
    assert env.get("DISPLAY"), "the demo needs an X server (pytest-xvfb or xvfb-run)"
    res = subprocess.run(
        [sys.executable, "-m", "napari_crack_al.demo", "--project", str(project), "--n", "3", "--size", "128",
         "--screenshot", str(shot)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert Project.is_project(project)
    assert len(Project.open(project).names()) == 3
    assert not (project / "annotations" / "sample_0000.png").exists()  # never pre-filled from ground truth

    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB")).astype(float)
    h, w, _ = img.shape
    assert h >= 400 and w >= 600  # the whole window, not only the canvas
    assert img.std() > 10  # not blank
    # the image canvas holds a gray range image: many distinct gray levels in the middle of the window
    middle = img[h // 4: 3 * h // 4, w // 3: 2 * w // 3]
    gray = middle[(np.abs(middle[..., 0] - middle[..., 1]) < 3) & (np.abs(middle[..., 1] - middle[..., 2]) < 3)]
    assert len(np.unique(gray[:, 0])) > 20  # (Xvfb may run at 16-bit colour depth)

    # second run: the project exists and is reopened, not regenerated
    res = subprocess.run(
        [sys.executable, "-m", "napari_crack_al.demo", "--project", str(project), "--screenshot", str(shot)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Generating" not in res.stdout
