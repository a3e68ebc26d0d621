"""``napari-crack-al export-model MODEL --out PATH``: a TorchScript / ONNX model to run anywhere."""

from __future__ import annotations

import argparse
from pathlib import Path

from .printable import printable

HELP = "export a trained model to TorchScript or ONNX, with its configuration"

#: Suffixes that say a file is of one export format, which --format must not contradict.
_SUFFIXES = {"onnx": (".onnx",), "torchscript": (".pt", ".pth", ".ts")}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export-model`` subcommand."""
    p = subparsers.add_parser(
        "export-model", help=HELP,
        description=HELP + ". The exported network takes a float32 (B, 1, H, W) normalised image "
        "and returns class logits (B, 2, H, W). Its configuration (model, normalisation profile, "
        "classes, source checkpoint metadata) is embedded in the file and written beside it as "
        "PATH.json. Nothing is overwritten unless --force is given.")
    p.add_argument("model", metavar="MODEL", type=Path, help="checkpoint written by 'train'")
    p.add_argument("--out", metavar="PATH", type=Path, required=True,
                   help="exported model file, e.g. model.pt (TorchScript) or model.onnx")
    p.add_argument("--format", dest="fmt", choices=("torchscript", "onnx"), default=None,
                   help="export format (default: onnx for a .onnx PATH, else torchscript; "
                        "refused when PATH's suffix names the other format); onnx needs "
                        "napari-crack-al[onnx]")
    p.add_argument("--force", action="store_true", help="replace PATH and PATH.json if they exist")
    p.set_defaults(func=run)


def _check_format(fmt: str | None, out: Path) -> None:
    """Refuse a ``--format`` that the suffix of PATH names the other way."""
    from ..core.errors import ConfigError

    suffix = out.suffix.lower()
    for other, suffixes in _SUFFIXES.items():
        if fmt is not None and fmt != other and suffix in suffixes:
            raise ConfigError(f"--format {fmt} contradicts the suffix of {printable(out.name)} "
                              f"({suffix} is for {other} files); name the file to match, or "
                              "leave --format out")


def run(args: argparse.Namespace) -> int:
    """Export and print one line."""
    import time

    from ..core.device import configure_threads
    from ..core.export.model_export import export_model

    _check_format(args.fmt, args.out)
    configure_threads(0)
    start = time.perf_counter()
    result = export_model(args.model, args.out, fmt=args.fmt, force=args.force)
    check = ("not verified (onnxruntime missing)" if result.max_abs_diff is None
             else f"verified, max logit difference {result.max_abs_diff:.2g}")
    print(f"exported {result.fmt} model to {result.path} with {result.sidecar.name} "
          f"({check}) in {time.perf_counter() - start:.1f} s")
    return 0
