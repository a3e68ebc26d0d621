"""Export a trained model to TorchScript or ONNX, with its configuration, to run anywhere.

The exported network is an *inference wrapper* around the segmenter: it takes a
float32 ``(B, in_channels, H, W)`` image normalised as the model was trained
(see ``normalization`` in the metadata) and returns only the class **logits**
``(B, num_classes, H, W)`` at input resolution as a plain tensor (no
NamedTuple); ``softmax(dim=1)[:, 1]`` is the crack probability. Height, width
and batch are dynamic.

Everything needed to use the file travels with it as JSON (:func:`export_metadata`):
the model configuration, the normalisation settings (transverse-profile mode),
input channels, class names, package version and the source checkpoint's
metadata. It is embedded in the file (TorchScript: an extra file
``crack_al.json`` inside the archive; ONNX: the ``metadata_props`` entry
``crack_al.json``) **and** written as a sidecar ``PATH.json``. Both files are
written atomically; nothing is overwritten unless ``force=True``.

Every export is verified: the exported model is run on two inputs of different
sizes and its logits compared with the original model's (ONNX: only when
``onnxruntime`` is installed).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io.atomic import atomic_path, atomic_write_bytes
from ..calibration import model_threshold
from ..errors import ExportError

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_SCHEMA",
    "METADATA_NAME",
    "CLASS_NAMES",
    "ONNX_INPUT_NAME",
    "ONNX_OUTPUT_NAME",
    "ONNX_OPSET",
    "InferenceWrapper",
    "ModelExportResult",
    "export_format_for",
    "sidecar_path",
    "export_metadata",
    "export_model",
    "export_loaded_model",
]

log = logging.getLogger(__name__)

#: Formats :func:`export_model` writes.
EXPORT_FORMATS = ("torchscript", "onnx")
#: Marker stored in the metadata (``format`` key).
EXPORT_SCHEMA = "napari-crack-al-export/1"
#: Name of the embedded JSON (TorchScript extra file / ONNX metadata_props key).
METADATA_NAME = "crack_al.json"
#: Names of the output classes, by index.
CLASS_NAMES = ("background", "crack")
ONNX_INPUT_NAME = "image"
ONNX_OUTPUT_NAME = "logits"
ONNX_OPSET = 17
_VERIFY_SIZES = ((64, 64), (96, 128))  # trace size, then a different one to prove dynamic shapes
_VERIFY_ATOL = 1e-4


class InferenceWrapper(nn.Module):
    """``forward(x) -> logits``: the segmenter without training outputs, for export.

    Parameters
    ----------
    model : nn.Module
        A segmenter whose forward returns a tensor or an object with ``.logits``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) float32 -> (B, num_classes, H, W) logits."""
        out = self.model(x)
        return out if isinstance(out, torch.Tensor) else out.logits


@dataclass(frozen=True)
class ModelExportResult:
    """What :func:`export_model` wrote.

    Attributes
    ----------
    path : Path
        The exported model.
    sidecar : Path
        ``PATH.json`` with the same metadata as embedded in the model.
    fmt : str
        ``"torchscript"`` or ``"onnx"``.
    metadata : dict
        The embedded metadata.
    max_abs_diff : float or None
        Largest logit difference between the export and the original on the
        verification inputs (None when the export could not be run here).
    overwritten : tuple of Path
        Files that existed and were replaced (``force=True``).
    """

    path: Path
    sidecar: Path
    fmt: str
    metadata: dict[str, Any] = field(repr=False)
    max_abs_diff: float | None = None
    overwritten: tuple[Path, ...] = ()


def export_format_for(path: str | Path, fmt: str | None = None) -> str:
    """The export format: ``fmt`` if given, else ``"onnx"`` for ``*.onnx``, else TorchScript.

    Raises
    ------
    ConfigError
        ``fmt`` is not one of :data:`EXPORT_FORMATS`.
    """
    from ..errors import ConfigError

    if fmt is None:
        return "onnx" if Path(path).suffix.lower() == ".onnx" else "torchscript"
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; valid formats: "
                          f"{', '.join(EXPORT_FORMATS)}")
    return fmt


def sidecar_path(path: str | Path) -> Path:
    """The sidecar metadata file of an export: ``PATH.json`` (``model.pt`` -> ``model.pt.json``)."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def _package_version() -> str:
    from ... import __version__

    return __version__


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_metadata(model_config: Mapping[str, Any], *,
                    train_config: Mapping[str, Any] | None = None,
                    checkpoint_metadata: Mapping[str, Any] | None = None,
                    source: str | Path | None = None, fmt: str = "torchscript") -> dict[str, Any]:
    """The JSON metadata stored with an exported model.

    Parameters
    ----------
    model_config : mapping
        ``ModelConfig.to_dict()`` of the model.
    train_config : mapping or None
        The checkpoint's training settings (``profile`` is the normalisation setting).
    checkpoint_metadata : mapping or None
        The source checkpoint's metadata (round, data, metrics, ...).
    source : str, Path or None
        The source checkpoint file (its name and SHA-256 are recorded).
    fmt : str
        ``"torchscript"`` or ``"onnx"``.

    Returns
    -------
    dict
        JSON-able; keys ``format``, ``export_format``, ``package_version``,
        ``torch_version``, ``exported_at``, ``model_config``, ``in_channels``,
        ``num_classes``, ``class_names``, ``crack_class``, ``threshold``, ``input``,
        ``output``, ``normalization``, ``train_config``, ``source_checkpoint``.
    """
    mc = dict(model_config)
    tc = dict(train_config or {})
    profile = str(tc.get("profile", "none"))
    in_ch = int(mc.get("in_channels", 1))
    n_cls = int(mc.get("num_classes", 2))
    names = list(CLASS_NAMES) + [f"class_{i}" for i in range(len(CLASS_NAMES), n_cls)]
    src: dict[str, Any] = {"metadata": dict(checkpoint_metadata or {})}
    if source is not None:
        source = Path(source)
        src["file"] = source.name
        with contextlib.suppress(OSError):
            src["sha256"] = _sha256(source)
    meta = {
        "format": EXPORT_SCHEMA,
        "export_format": fmt,
        "package_version": _package_version(),
        "torch_version": torch.__version__,
        "exported_at": time.time(),
        "model_config": mc,
        "in_channels": in_ch,
        "num_classes": n_cls,
        "class_names": names[:n_cls],
        "crack_class": 1,
        "threshold": model_threshold(dict(checkpoint_metadata or {})),
        "input": {
            "name": ONNX_INPUT_NAME,
            "dtype": "float32",
            "layout": f"(B, {in_ch}, H, W); H and W any size (multiples of 32 recommended)",
        },
        "output": {
            "name": ONNX_OUTPUT_NAME,
            "kind": "logits",
            "layout": f"(B, {n_cls}, H, W) at input resolution; softmax over dim 1, "
                      "index crack_class is the crack probability",
        },
        "normalization": {
            "method": "robust",
            "profile": profile,
            "description": (
                "valid pixels = finite (and != 0 for single-channel integer images); "
                "profile 'auto' means 'column' for single-channel images and 'none' for colour "
                "photographs (converted to grey by luminance); "
                "if profile is 'column' ('row'), subtract the per-column (per-row) median of the "
                "valid pixels first; then x = (value - median) / scale over the valid pixels, "
                "scale = 1.4826 * MAD (fall-backs: IQR / 1.349, std, 1), clipped to [-10, 10]; "
                "invalid pixels = 0"
            ),
            "clip": 10.0,
        },
        "train_config": tc,
        "source_checkpoint": src,
    }
    return json.loads(json.dumps(meta, default=str))


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the tracer's and exporters' warnings (deprecations, shape-check constants)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _example(size: tuple[int, int], in_channels: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, in_channels, *size, generator=g)


def _check_target(out: Path, force: bool) -> tuple[Path, ...]:
    if out.exists() and out.is_dir():
        raise ExportError(out, "is a folder; give the file name of the exported model")
    if not out.parent.is_dir():
        raise ExportError(out.parent, "folder does not exist")
    existing = tuple(p for p in (out, sidecar_path(out)) if p.exists())
    if existing and not force:
        names = ", ".join(p.name for p in existing)
        raise ExportError(out, f"would overwrite {names}; use --force (force=True) to replace")
    return existing


def _reference_logits(model: nn.Module, inputs: list[torch.Tensor]) -> list[np.ndarray]:
    with torch.inference_mode():
        return [InferenceWrapper(model)(x).float().numpy() for x in inputs]


def _export_torchscript(wrapper: InferenceWrapper, out: Path, meta_json: str,
                        refs: list[np.ndarray], inputs: list[torch.Tensor]) -> float:
    with _quiet_export(), torch.no_grad():
        try:
            traced = torch.jit.trace(wrapper, (inputs[0],), check_trace=False)
        except Exception as exc:  # noqa: BLE001 - any tracer failure is an export failure
            raise ExportError(out, f"the model cannot be traced to TorchScript ({exc})") from exc
    with atomic_path(out, error=ExportError) as tmp:
        with _quiet_export():  # torch 2.13 marks torch.jit.save / load deprecated
            torch.jit.save(traced, str(tmp), _extra_files={METADATA_NAME: meta_json})
            extra = {METADATA_NAME: ""}
            loaded = torch.jit.load(str(tmp), map_location="cpu", _extra_files=extra)
        embedded = extra[METADATA_NAME]
        if isinstance(embedded, bytes):  # torch.jit.load gives bytes back
            embedded = embedded.decode("utf-8")
        if embedded != meta_json:
            raise ExportError(out, "the embedded metadata did not survive saving")
        with torch.inference_mode():
            diff = max(float(np.abs(loaded(x).numpy() - r).max()) for x, r in zip(inputs, refs))
        if not diff <= _VERIFY_ATOL:
            raise ExportError(out, f"the TorchScript export differs from the model "
                                   f"(max logit difference {diff:.3g})")
    return diff


def _export_onnx(wrapper: InferenceWrapper, out: Path, meta_json: str, refs: list[np.ndarray],
                 inputs: list[torch.Tensor]) -> float | None:
    try:
        import onnx
    except ImportError:
        raise ExportError(out, "ONNX export needs the 'onnx' package: install "
                               "napari-crack-al[onnx] (pip install onnx onnxruntime)") from None
    buf = io.BytesIO()
    axes = {0: "batch", 2: "height", 3: "width"}
    with _quiet_export(), torch.no_grad():
        try:
            torch.onnx.export(wrapper, (inputs[0],), buf, dynamo=False,
                              input_names=[ONNX_INPUT_NAME], output_names=[ONNX_OUTPUT_NAME],
                              dynamic_axes={ONNX_INPUT_NAME: axes, ONNX_OUTPUT_NAME: axes},
                              opset_version=ONNX_OPSET)
        except Exception as exc:  # noqa: BLE001 - any exporter failure is an export failure
            raise ExportError(out, f"the model cannot be exported to ONNX with torch "
                                   f"{torch.__version__} ({type(exc).__name__}: {exc})") from exc
    proto = onnx.load_from_string(buf.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_NAME, meta_json
    proto.producer_name = "napari-crack-al"
    proto.doc_string = "crack segmentation logits; see metadata_props['crack_al.json']"
    data = proto.SerializeToString()
    diff: float | None = None
    try:
        import onnxruntime as ort
    except ImportError:
        log.warning("onnxruntime is not installed: the ONNX export of %s was not verified", out)
    else:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, torch.get_num_threads())
        session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        diff = max(float(np.abs(session.run(None, {ONNX_INPUT_NAME: x.numpy()})[0] - r).max())
                   for x, r in zip(inputs, refs))
        if not diff <= _VERIFY_ATOL:
            raise ExportError(out, f"the ONNX export differs from the model "
                                   f"(max logit difference {diff:.3g})")
    atomic_write_bytes(out, data, error=ExportError)
    return diff


def export_loaded_model(model: nn.Module, out: str | Path, *, model_config: Mapping[str, Any],
                        train_config: Mapping[str, Any] | None = None,
                        checkpoint_metadata: Mapping[str, Any] | None = None,
                        source: str | Path | None = None, fmt: str | None = None,
                        force: bool = False) -> ModelExportResult:
    """Export an in-memory segmenter (see :func:`export_model` for the file layout).

    Parameters
    ----------
    model : nn.Module
        The segmenter (CPU); it is put in eval mode.
    out : str or Path
        Destination file.
    model_config, train_config, checkpoint_metadata, source
        As :func:`export_metadata`.
    fmt : str or None
        ``"torchscript"``, ``"onnx"``, or None to choose by the suffix of ``out``.
    force : bool
        Replace ``out`` and its sidecar when they exist.

    Returns
    -------
    ModelExportResult

    Raises
    ------
    ExportError
        Files in the way, missing folder, ``onnx`` not installed, the model cannot
        be exported, or the export does not reproduce the model.
    """
    out = Path(out)
    fmt = export_format_for(out, fmt)
    existing = _check_target(out, force)
    meta = export_metadata(model_config, train_config=train_config,
                           checkpoint_metadata=checkpoint_metadata, source=source, fmt=fmt)
    meta_json = json.dumps(meta, indent=1, sort_keys=True)
    model = model.to("cpu").eval()
    wrapper = InferenceWrapper(model).eval()
    in_ch = int(meta["in_channels"])
    inputs = [_example(size, in_ch, seed=i) for i, size in enumerate(_VERIFY_SIZES)]
    refs = _reference_logits(model, inputs)
    if fmt == "torchscript":
        diff: float | None = _export_torchscript(wrapper, out, meta_json, refs, inputs)
    else:
        diff = _export_onnx(wrapper, out, meta_json, refs, inputs)
    side = atomic_write_bytes(sidecar_path(out), (meta_json + "\n").encode("utf-8"),
                              error=ExportError)
    log.info("exported %s model to %s (max logit difference %s)", fmt, out, diff)
    return ModelExportResult(path=out, sidecar=side, fmt=fmt, metadata=meta, max_abs_diff=diff,
                             overwritten=existing)


def export_model(checkpoint: str | Path, out: str | Path, *, fmt: str | None = None,
                 force: bool = False) -> ModelExportResult:
    """Export the model of a checkpoint (from ``save_checkpoint``) to TorchScript or ONNX.

    Parameters
    ----------
    checkpoint : str or Path
        A checkpoint written by ``core.model.save_checkpoint`` (loaded safely,
        ``weights_only=True``).
    out : str or Path
        Destination file, e.g. ``model.pt`` (TorchScript) or ``model.onnx``.
    fmt : str or None
        ``"torchscript"`` or ``"onnx"``; None chooses by the suffix of ``out``.
    force : bool
        Replace ``out`` and ``out.json`` when they exist.

    Returns
    -------
    ModelExportResult

    Raises
    ------
    CheckpointError
        The checkpoint is missing, truncated, unsafe or incompatible.
    ExportError
        As :func:`export_loaded_model`.
    """
    from ..model import load_model

    out = Path(out)
    fmt = export_format_for(out, fmt)
    _check_target(out, force)  # fail before the (possibly slow) load
    model, ckpt = load_model(checkpoint, device="cpu")  # CheckpointError for bad files
    return export_loaded_model(model, out, model_config=ckpt.model_config.to_dict(),
                               train_config=ckpt.train_config, checkpoint_metadata=ckpt.metadata,
                               source=checkpoint, fmt=fmt, force=force)
