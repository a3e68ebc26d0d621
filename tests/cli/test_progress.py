"""The terminal progress bar draws sane lines on terminals and in logs."""

from __future__ import annotations

import io

from napari_crack_al.cli.progress import ProgressBar


def test_a_log_gets_one_line_per_tenth_without_carriage_returns():
    out = io.StringIO()
    bar = ProgressBar(20, "images", stream=out)
    for i in range(21):
        bar.update(i, "loss 0.5")
    bar.close()
    text = out.getvalue()
    lines = text.splitlines()
    assert len(lines) == 11  # 0 %, 10 %, ..., 100 %
    assert "\r" not in text and "nan" not in text
    assert lines[-1].startswith("images: 100%") and "20/20" in lines[-1]
    assert "loss 0.5" in lines[-1]


def test_a_terminal_redraws_one_line():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    bar = ProgressBar(4, "steps", stream=out)
    bar.update(2, "loss 0.5")
    bar.close()
    text = out.getvalue()
    assert "\r" in text and "2/4" in text and "loss 0.5" in text and text.endswith("\n")
    assert text.count("\n") == 1
