"""A control character in a file name never forges a line of command-line output."""

from __future__ import annotations

import argparse
import logging

import numpy as np
import pytest

from napari_crack_al.cli.argtypes import existing_file
from napari_crack_al.cli.main import main
from napari_crack_al.cli.printable import OneLineFormatter, printable
from napari_crack_al.core.io.mask_io import write_mask

FORGED = "x\nerror: forged"


def test_printable_escapes_controls_and_keeps_letters():
    assert printable("a\nb\r\tc\x1b[31m") == "a\\nb\\r\\tc\\x1b[31m"
    assert printable("left\u202eright\u2028") == "left\\u202eright\\u2028"
    assert printable("bad\udcffbyte") == "bad\\udcffbyte"  # undecodable byte of a name
    assert printable("straße ñ 路面 01.tif") == "straße ñ 路面 01.tif"
    assert printable(r"C:\data\a.png") == r"C:\data\a.png"


def test_a_newline_in_a_file_name_cannot_forge_an_error_line(tmp_path, capsys):
    preds, gts = tmp_path / "preds", tmp_path / "gts"
    preds.mkdir()
    gts.mkdir()
    for folder in (preds, gts):
        write_mask(folder / "t1.png", np.zeros((8, 8), bool))
    write_mask(preds / f"{FORGED}.png", np.zeros((8, 8), bool))
    assert main(["evaluate", str(preds), str(gts)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "x\\nerror: forged" in err


def test_a_missing_folder_with_a_newline_is_one_line(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / FORGED), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "x\\nerror: forged" in err


def test_argument_error_escapes_the_name(tmp_path):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        existing_file(str(tmp_path / FORGED))
    assert "\n" not in str(info.value) and "x\\nerror: forged does not exist" in str(info.value)


def test_log_lines_escape_the_name():
    record = logging.LogRecord("napari_crack_al.core.io.range_io", logging.WARNING, __file__, 1,
                               "skipping %s", (FORGED + "\x1b[2J",), None)
    line = OneLineFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert "\n" not in line and "\x1b" not in line and "forged" in line
