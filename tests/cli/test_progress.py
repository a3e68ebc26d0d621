"""The terminal progress bar draws sane lines on terminals and in logs."""

from __future__ import annotations

import io

from napari_crack_al.cli.progress import ProgressBar


def test_non_tty_prints_every_decile_without_nan():
    out = io.StringIO()
    bar = ProgressBar(20, "images", stream=out)
    for i in range(21):
        bar.update(i)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # 0 %, 10 %, ..., 100 %
    assert "nan" not in out.getvalue()
    assert lines[-1].startswith("[" + "#" * 30 + "] 20/20 images")


def test_tty_redraws_one_line():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    bar = ProgressBar(4, stream=out)
    bar.update(2, "loss 0.5")
    bar.close()
    text = out.getvalue()
    assert text.startswith("\r[") and "2/4" in text and "loss 0.5" in text and text.endswith("\n")
