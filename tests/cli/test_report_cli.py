"""``napari-crack-al report`` end to end."""

from __future__ import annotations

import re

from napari_crack_al.cli.main import main
from tests.core.test_report import make_project


def test_report_cli_html_and_md(tmp_path, capsys):
    root = tmp_path / "proj"
    make_project(root)
    out = tmp_path / "r.html"
    assert main(["report", str(root), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert re.fullmatch(rf"wrote html report {re.escape(str(out))} \(3 images, 2 annotated, "
                        r"1 models, \d+ plots\) in [\d.]+ s", line), line
    text = out.read_text(encoding="utf-8")
    assert "<td>round-001</td>" in text and 'src="data:image/png;base64,' in text
    # refuses to overwrite without --force, then replaces with it
    assert main(["report", str(root), "--out", str(out)]) == 2
    assert "would overwrite r.html" in capsys.readouterr().err
    assert main(["report", str(root), "--out", str(out), "--force"]) == 0
    capsys.readouterr()
    md = tmp_path / "r.md"
    assert main(["report", str(root), "--out", str(md)]) == 0
    assert (tmp_path / "r_files" / "status.png").is_file()
    assert "![Images per status](r_files/status.png)" in md.read_text(encoding="utf-8")


def test_report_cli_errors(tmp_path, capsys):
    root = tmp_path / "proj"
    make_project(root, annotate=False, model=False)
    assert main(["report", str(root), "--out", str(tmp_path / "r.pdf")]) == 2
    assert ".html or .md" in capsys.readouterr().err
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "r.html").exists()
    assert main(["report", str(root), "--out", str(tmp_path / "e.html")]) == 0
    assert "No model has been trained yet" in (tmp_path / "e.html").read_text(encoding="utf-8")
