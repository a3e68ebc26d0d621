"""Saying what a file is from its first bytes, for error messages about the wrong file.

A model loader that is handed a PNG, a NumPy array or random bytes should say so
("not a PyTorch checkpoint (looks like a PNG image)") rather than repeat the
error of the parser it tried. :func:`describe_content` names the common file
types by their signatures; :func:`read_head` reads the bytes it needs.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["HEAD_SIZE", "read_head", "describe_content"]

#: Bytes :func:`describe_content` looks at (a tar header's ``ustar`` is at 257).
HEAD_SIZE = 512

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"II+\x00", "a BigTIFF image"),
    (b"MM\x00+", "a BigTIFF image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"%PDF-", "a PDF document"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "a zip archive"),
)


def read_head(path: str | Path, size: int = HEAD_SIZE) -> bytes:
    """The first ``size`` bytes of a file (fewer for a shorter file).

    Raises
    ------
    OSError
        The file cannot be opened or read.
    """
    with open(path, "rb") as fh:
        return fh.read(size)


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:  # maybe cut inside a character: retry without the last 3 bytes
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return bool(text) and all(c.isprintable() or c in "\t\n\r\f" for c in text)


def describe_content(head: bytes) -> str:
    """Name the kind of file whose first bytes are ``head``.

    Parameters
    ----------
    head : bytes
        The start of the file (:data:`HEAD_SIZE` bytes suffice).

    Returns
    -------
    str
        ``"looks like a PNG image"`` (a TIFF, JPEG, NumPy array, zip archive, tar
        archive, pickle, safetensors file, text file...), ``"the file is empty"``
        or ``"unrecognised content"``.
    """
    if not head:
        return "the file is empty"
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return f"looks like {what}"
    if head[257:262] == b"ustar":
        return "looks like a tar archive"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "looks like a Python pickle"
    if len(head) > 9 and head[8:10] == b'{"':  # 8-byte little-endian length, then JSON
        return "looks like a safetensors file"
    if _is_text(head):
        return "looks like a text file"
    return "unrecognised content"
