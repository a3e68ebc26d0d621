"""Project report: content, self-contained HTML, Markdown with plot files, empty project."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

from napari_crack_al.core.errors import ExportError
from napari_crack_al.core.export import plots
from napari_crack_al.core.export.measurements import measure_cracks
from napari_crack_al.core.export.report import (
    Block,
    Report,
    build_report,
    render_html,
    render_markdown,
    write_report,
)
from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.model import ModelConfig, build_model, save_checkpoint
from napari_crack_al.core.project import Project
from napari_crack_al.core.sample_project import write_sample_images

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ModelConfig(encoder="resnet18", decoder_channels=8, low_level_channels=4, rep_dim=8)


def make_project(root, *, annotate: bool = True, model: bool = True) -> dict:
    """Three 64x64 synthetic images; two accepted masks (one from a suggestion); one model."""
    write_sample_images(root, n=3, size=64, seed=0)
    gt = {p.stem: read_mask(p) for p in sorted((root / "ground_truth").glob("*.png"))}
    with Project.create(root, pixel_size_mm=2.0) as project:
        if annotate:
            project.set_suggestion("sample_0001", gt["sample_0001"][:, ::-1].copy(), "round-001")
            project.accept("sample_0000", gt["sample_0000"], seconds=30.0)
            project.accept("sample_0001", gt["sample_0001"], seconds=12.0)
        if model:
            torch.manual_seed(0)
            project.models_dir.mkdir(parents=True, exist_ok=True)
            path = save_checkpoint(project.models_dir / "round_001.pt", build_model(TINY),
                                   model_config=TINY,
                                   metadata={"labeled_images": ["sample_0000", "sample_0001"]})
            project.add_model("round-001", path, round=1,
                              metrics={"f1": 0.625, "crack_iou": 0.45, "f1_tol2": 0.75,
                                       "precision": 0.5, "recall": 0.8, "n_images": 1})
    return gt


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.imgs: list[dict] = []
        self.ok = True

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.imgs.append(dict(attrs))
        elif tag not in ("meta",):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.ok = False


def _parse(text: str) -> _Tags:
    parser = _Tags()
    parser.feed(text)
    assert parser.ok and not parser.stack, "unbalanced HTML"
    return parser


def test_html_report_of_a_tiny_project(tmp_path):
    root = tmp_path / "proj"
    gt = make_project(root)
    out = tmp_path / "report.html"
    with Project.open(root) as project:
        result = write_report(project, out)
    assert result.files == (out,)
    text = out.read_text(encoding="utf-8")
    tags = _parse(text)
    # counts per status
    assert "<tr><td>annotated</td><td>2</td></tr>" in text
    assert "<tr><td>new</td><td>1</td></tr>" in text and "<tr><td>total</td><td>3</td></tr>" in text
    # annotation effort: 42 s in total, median 21 s
    assert "<td>total annotation time</td><td>42.0 s</td>" in text
    assert "<td>median time per image</td><td>21.0 s</td>" in text
    # the table of rounds, with labelled images read from the checkpoint metadata
    rounds = re.search(r"<th>round</th>.*?</table>", text, re.S).group(0)
    assert "<td>round-001</td>" in rounds and "<td>0.625</td>" in rounds
    assert re.search(r"<tr><td>1</td><td>round-001</td><td>[^<]+</td><td>2</td><td>1</td>", rounds)
    # plots embedded as PNG data URIs, and nothing external
    srcs = [img["src"] for img in tags.imgs]
    assert len(srcs) == result.report.n_plots >= 5
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert '<img alt="Held-out metrics per round" src="data:image/png;base64,' in text
    assert "http://" not in text and "https://" not in text and "<link" not in text
    # crack statistics equal the measurements of the accepted masks, in mm (pixel size 2)
    expected = [m for name in ("sample_0000", "sample_0001")
                for m in measure_cracks(gt[name], pixel_size_mm=2.0)]
    numbers = result.report.numbers
    assert numbers["n_cracks"] == len(expected) > 0 and numbers["length_unit"] == "mm"
    assert numbers["total_length"] == pytest.approx(sum(m.length_mm for m in expected))
    assert sum(numbers["orientation_counts"].values()) == len(expected)
    assert numbers["latest_metrics"]["f1"] == 0.625
    assert numbers["edit_fraction_median"] == pytest.approx(
        np.median([1.0, np.count_nonzero(gt["sample_0001"] != gt["sample_0001"][:, ::-1])
                   / gt["sample_0001"].sum()]))


def test_markdown_report_writes_plots_beside_it(tmp_path):
    root = tmp_path / "proj"
    make_project(root)
    out = tmp_path / "report.md"
    with Project.open(root) as project:
        result = write_report(project, out)
        text = out.read_text(encoding="utf-8")
        links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
        assert len(links) == result.report.n_plots == len(result.files) - 1
        for link in links:
            assert link.startswith("report_files/")
            assert (tmp_path / link).read_bytes().startswith(PNG_MAGIC)
        assert "| annotated | 2 |" in text and "| 1 | round-001 |" in text
        with pytest.raises(ExportError, match="would overwrite report.md"):
            write_report(project, out)
        assert write_report(project, out, force=True).path == out
        with pytest.raises(ExportError, match=".html or .md"):
            write_report(project, tmp_path / "report.pdf")


HOSTILE = "<img src=x onerror=alert(1)>*v2*_[x](javascript:alert(1))|\n# forged"


def test_markdown_escapes_user_strings():
    report = Report(title=f"Crack annotation report: {HOSTILE}", blocks=(
        Block("h2", f"Held-out metrics of the latest model ({HOSTILE})"),
        Block("p", "1. not a list & <b>not bold</b>"),
        Block("table", header=("version", "images"), rows=((HOSTILE, "2"), ("-", "1"))),
        Block("img", "Plot [1]", name="p"),
    ))
    text = render_markdown(report, {"p": "my report_files/p (1).png"})
    lines = text.splitlines()
    assert not any(line.startswith("# forged") for line in lines)
    assert not re.search(r"(?<!\\)([<>]|\]\(javascript)", text)  # no raw tag, no link
    escaped = "\\<img src=x onerror=alert(1)\\>\\*v2\\*\\_\\[x\\](javascript:alert(1))\\| \\# forged"
    assert escaped in text
    assert "1\\. not a list \\& \\<b\\>not bold\\</b\\>" in lines
    assert "| - | 1 |" in lines  # a dash in a table cell is left alone
    assert "![Plot \\[1\\]](my%20report_files/p%20%281%29.png)" in lines
    assert len([line for line in lines if line.startswith("| ")]) == 3  # header and two rows


def test_model_version_is_escaped_in_both_formats(tmp_path):
    root = tmp_path / "proj"
    make_project(root, annotate=True, model=False)
    with Project.open(root) as project:
        project.add_model("<script>alert(1)</script>", project.models_dir / "gone.pt", round=1,
                          metrics={"f1": 0.5})
        md = write_report(project, tmp_path / "r.md").path.read_text(encoding="utf-8")
        page = write_report(project, tmp_path / "r.html").path.read_text(encoding="utf-8")
    assert not re.search(r"(?<!\\)<script", md) and "\\<script\\>alert(1)\\</script\\>" in md
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_empty_project_gives_a_valid_report(tmp_path):
    root = tmp_path / "empty"
    make_project(root, annotate=False, model=False)
    with Project.open(root) as project:
        report = build_report(project)
        result = write_report(project, tmp_path / "empty.html")
    text = result.path.read_text(encoding="utf-8")
    tags = _parse(text)
    assert "No image has been annotated yet" in text
    assert "No model has been trained yet" in text
    assert "No accepted mask yet" in text
    assert "<tr><td>new</td><td>3</td></tr>" in text
    assert [b.name for b in report.blocks if b.kind == "img"] == ["status"]
    assert len(tags.imgs) == 1
    assert report.numbers["n_models"] == 0 and report.numbers["annotation_seconds_total"] == 0


def test_model_without_metrics_and_missing_file(tmp_path):
    root = tmp_path / "proj"
    make_project(root, annotate=True, model=False)
    with Project.open(root) as project:
        project.add_model("round-001", project.models_dir / "gone.pt", round=1, metrics={})
        text = render_html(build_report(project))
    assert "carry no held-out metrics" in text
    assert "The latest model has no held-out metrics." in text


def test_plots_are_png_and_reproducible():
    a = plots.line_plot_png([1, 2, 3], {"F1": [0.1, None, 0.3], "IoU": [0.05, 0.1, 0.2]},
                            xlabel="round", ylim=(0, 1))
    assert a.startswith(PNG_MAGIC)
    assert a == plots.line_plot_png([1, 2, 3], {"F1": [0.1, None, 0.3], "IoU": [0.05, 0.1, 0.2]},
                                    xlabel="round", ylim=(0, 1))
    assert plots.histogram_png([1.0, 1.0, 1.0], xlabel="w").startswith(PNG_MAGIC)
    assert plots.histogram_png([], xlabel="w").startswith(PNG_MAGIC)
    assert plots.bar_png({"a": 1, "b": 0}) != plots.bar_png({"a": 2, "b": 0})
