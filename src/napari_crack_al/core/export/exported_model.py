"""Run an exported model (TorchScript or ONNX) without this package's model code.

:func:`load_exported_model` returns an :class:`ExportedModel`, an ``nn.Module``
whose ``forward(x)`` returns the class logits ``(B, C, H, W)`` as a tensor: the
call protocol :func:`napari_crack_al.core.inference.predict_image` needs
(``model(x)`` returning a tensor or an object with ``.logits``, plus
``parameters()`` / ``to()`` / ``eval()`` / ``train()``). So ``predict_image``
works the same with a ``CrackSegmenter`` or an exported model.

:func:`load_any_model` accepts any of the three model files this package writes
(a checkpoint from ``save_checkpoint``, a TorchScript export, an ONNX export) and
returns ``(model, info)``, where ``info`` has the checkpoint-like attributes the
CLI uses (``info.train_config["profile"]``, ``info.metadata``).

Nothing here imports ``core.model``, except :func:`load_any_model` for a checkpoint.
Loading a TorchScript file does not unpickle Python objects (TorchScript has its own
restricted format), but it does run the TorchScript code inside: load only models
from sources you trust, as with any model file.
"""

from __future__ import annotations

import json
import logging
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError
from ..io.sniff import describe_content, read_head
from .model_export import (
    EXPORT_SCHEMA,
    METADATA_NAME,
    ONNX_INPUT_NAME,
    sidecar_path,
)

__all__ = [
    "ModelInfo",
    "ExportedModel",
    "model_file_kind",
    "read_export_metadata",
    "load_exported_model",
    "load_any_model",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`load_any_model` knows about a model file (checkpoint-like attributes).

    Attributes
    ----------
    kind : str
        ``"checkpoint"``, ``"torchscript"`` or ``"onnx"``.
    path : Path
        The file.
    model_config : dict
        ``ModelConfig.to_dict()`` of the network.
    train_config : dict
        Training settings; always holds ``"profile"`` (the normalisation setting).
    metadata : dict
        The (source) checkpoint's metadata: round, data, metrics, ...
    export_metadata : dict or None
        The full export metadata (None for a checkpoint).
    """

    kind: str
    path: Path
    model_config: dict[str, Any]
    train_config: dict[str, Any]
    metadata: dict[str, Any]
    export_metadata: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def threshold(self) -> float:
        """The crack-probability threshold calibrated when the model was trained (else 0.5)."""
        from ..calibration import model_threshold

        return model_threshold(self.metadata)

    @property
    def profile(self) -> str:
        """Transverse-profile mode for ``normalize_for_model``."""
        return str(self.train_config.get("profile", "none"))

    @property
    def in_channels(self) -> int:
        """Input channels of the network."""
        return int(self.model_config.get("in_channels", 1))


def model_file_kind(path: str | Path) -> str:
    """Guess what a model file is: ``"torchscript"``, ``"onnx"`` or ``"checkpoint"``.

    TorchScript archives are zip files with ``code/`` and ``constants.pkl``
    entries; checkpoints (``torch.save``) are zip files without them; ONNX files
    are recognised by the ``.onnx`` suffix or a sidecar saying so. Anything else
    is treated as a checkpoint (whose loader reports what is wrong with it).
    """
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError):
            return "checkpoint"
        if any("/code/" in n or n.endswith("constants.pkl") for n in names):
            return "torchscript"
        return "checkpoint"
    if path.suffix.lower() == ".onnx":
        return "onnx"
    side = _read_sidecar(path)
    if side is not None and side.get("export_format") == "onnx":
        return "onnx"
    return "checkpoint"


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("%s: unreadable sidecar metadata (%s)", side, exc)
        return None
    return data if isinstance(data, dict) else None


def _embedded_torchscript(path: Path) -> dict[str, Any] | None:
    try:
        with zipfile.ZipFile(path) as zf:
            name = next((n for n in zf.namelist() if n.endswith("extra/" + METADATA_NAME)), None)
            if name is None:
                return None
            data = json.loads(zf.read(name).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _embedded_onnx(path: Path) -> dict[str, Any] | None:
    try:
        import onnx
    except ImportError:
        return None
    try:
        proto = onnx.load(str(path), load_external_data=False)
        value = next((p.value for p in proto.metadata_props if p.key == METADATA_NAME), None)
        data = json.loads(value) if value is not None else None
    except Exception:  # noqa: BLE001 - protobuf/onnx errors vary; the caller reports the file
        return None
    return data if isinstance(data, dict) else None


def _refuse_foreign_onnx(path: Path) -> None:
    """Raise when the content of a would-be ONNX file shows another kind of file."""
    try:
        what = describe_content(read_head(path))
    except OSError as exc:
        raise CheckpointError(path, f"cannot be read ({exc.strerror or exc})") from None
    if what != "unrecognised content":  # ONNX (protobuf) has no signature of its own
        raise CheckpointError(path, f"not an ONNX model ({what})")


def read_export_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of an exported model: the embedded JSON, else the sidecar ``PATH.json``.

    Raises
    ------
    CheckpointError
        The file is missing or carries no napari-crack-al metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "file does not exist")
    kind = model_file_kind(path)
    meta = _embedded_torchscript(path) if kind == "torchscript" else (
        _embedded_onnx(path) if kind == "onnx" else None)
    if meta is None:
        meta = _read_sidecar(path)
    if meta is None and kind == "onnx":
        _refuse_foreign_onnx(path)
    if meta is None or meta.get("format") != EXPORT_SCHEMA:
        raise CheckpointError(path, f"not a napari-crack-al model export (no {METADATA_NAME} "
                                    f"inside and no sidecar {sidecar_path(path).name})")
    return meta


class _OnnxRunner(nn.Module):
    """An ONNX Runtime session behind the ``nn.Module`` call protocol (no parameters)."""

    def __init__(self, session: Any, input_name: str) -> None:
        super().__init__()
        self.session = session
        self.input_name = input_name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        logits = self.session.run(None, {self.input_name: array})[0]
        return torch.from_numpy(logits).to(x.device)


class ExportedModel(nn.Module):
    """An exported crack segmenter: ``model(x) -> logits (B, C, H, W)``.

    Parameters
    ----------
    net : nn.Module
        The loaded TorchScript module, or an ONNX Runtime runner.
    metadata : dict
        The export metadata.
    kind : str
        ``"torchscript"`` or ``"onnx"``.
    path : Path or None
        The file it was loaded from.
    """

    def __init__(self, net: nn.Module, metadata: Mapping[str, Any], kind: str,
                 path: Path | None = None) -> None:
        super().__init__()
        self.net = net
        self.metadata = dict(metadata)
        self.kind = kind
        self.path = path

    @property
    def in_channels(self) -> int:
        """Input channels the network expects."""
        return int(self.metadata.get("in_channels", 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) float32 normalised images -> class logits."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input of shape (B, {self.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        return self.net(x)


def _onnx_session(path: Path, device: torch.device) -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise CheckpointError(path, "running an ONNX model needs the 'onnxruntime' package: "
                                    "install napari-crack-al[onnx]") from None
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    elif device.type != "cpu":  # MPS, or CUDA without onnxruntime-gpu: said, not hidden
        log.warning(
            "%s: onnxruntime here has no provider for %s; the ONNX model runs on the CPU "
            "(a .pt checkpoint runs on %s)", path, device.type, device.type)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise CheckpointError(path, f"cannot be loaded as an ONNX model "
                                    f"({str(exc).strip().splitlines()[0][:160]})") from None


def load_exported_model(path: str | Path, device: str | torch.device | None = None,
                        ) -> ExportedModel:
    """Load a TorchScript (``torch.jit.load``) or ONNX (``onnxruntime``) export, in eval mode.

    Parameters
    ----------
    path : str or Path
        File written by :func:`~.model_export.export_model`.
    device : str, torch.device or None
        Where to run (default CPU).

    Raises
    ------
    CheckpointError
        Missing, truncated or foreign file; ``onnxruntime`` missing for an ONNX file.
    """
    path = Path(path)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    meta = read_export_metadata(path)
    kind = model_file_kind(path)
    if kind == "torchscript":
        try:
            with warnings.catch_warnings():  # torch 2.13 marks torch.jit.load deprecated
                warnings.simplefilter("ignore", DeprecationWarning)
                net = torch.jit.load(str(path), map_location=dev)
        except (RuntimeError, ValueError, OSError) as exc:
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise CheckpointError(path, f"cannot be loaded as TorchScript ({first})") from None
    elif kind == "onnx":
        net = _OnnxRunner(_onnx_session(path, dev), ONNX_INPUT_NAME)
    else:
        raise CheckpointError(path, "not a TorchScript or ONNX export")
    model = ExportedModel(net, meta, kind, path)
    model.to(dev)
    model.eval()
    return model


def load_any_model(path: str | Path, device: str | torch.device | None = None,
                   ) -> tuple[nn.Module, ModelInfo]:
    """Load a checkpoint, a TorchScript export or an ONNX export, ready for ``predict_image``.

    Parameters
    ----------
    path : str or Path
        A checkpoint (``save_checkpoint``), or a file written by ``export_model``.
    device : str, torch.device or None
        Where to run (default CPU).

    Returns
    -------
    (nn.Module, ModelInfo)
        The model in eval mode and what is known about it. ``info.train_config``
        always holds ``"profile"``, so code written for a ``Checkpoint``
        (``ckpt.train_config.get("profile")``) works unchanged.

    Raises
    ------
    CheckpointError
        Missing, truncated, unsafe, foreign or incompatible file.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(path, "file does not exist")
    if not path.is_file():
        raise CheckpointError(path, "is not a file")
    kind = model_file_kind(path)
    if kind == "checkpoint":
        from ..model import load_model

        model, ckpt = load_model(path, device=device)
        train = dict(ckpt.train_config)
        train.setdefault("profile", "none")
        return model, ModelInfo(kind="checkpoint", path=path,
                                model_config=ckpt.model_config.to_dict(), train_config=train,
                                metadata=dict(ckpt.metadata))
    exported = load_exported_model(path, device)
    meta = exported.metadata
    train = dict(meta.get("train_config") or {})
    train["profile"] = str((meta.get("normalization") or {}).get("profile",
                                                                 train.get("profile", "none")))
    source = (meta.get("source_checkpoint") or {}).get("metadata") or {}
    return exported, ModelInfo(kind=kind, path=path,
                               model_config=dict(meta.get("model_config") or {}),
                               train_config=train, metadata=dict(source), export_metadata=meta)
