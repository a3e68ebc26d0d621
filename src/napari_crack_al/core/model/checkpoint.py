"""Model checkpoints: atomic save, safe load (``weights_only=True``), clear errors.

A checkpoint is a ``torch.save`` file holding only tensors and JSON-able
primitives::

    {"format": "napari-crack-al/1",
     "state_dict": {name: tensor},
     "model_config": ModelConfig.to_dict(),
     "train_config": dict,
     "metadata": {"package_version", "created_at", "round", "data", "metrics", ...}}

so it is loaded with ``torch.load(weights_only=True)``: a file that carries any
other Python object (a malicious pickle included) is refused, never executed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io.atomic import atomic_path
from ..errors import CheckpointError, ConfigError
from .config import LEGACY_DECODER, ModelConfig
from .segmenter import CrackSegmenter, build_model
from .torch_load import safe_torch_load

__all__ = [
    "CHECKPOINT_FORMAT",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "safe_torch_load",
]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "napari-crack-al/1"


@dataclass(frozen=True)
class Checkpoint:
    """The content of a checkpoint file.

    Attributes
    ----------
    model_config : ModelConfig
    train_config : dict
        Training settings (JSON-able), empty when none were saved.
    metadata : dict
        Package version, creation time, round, data used, metrics... (JSON-able).
    state_dict : dict of str to Tensor
    path : Path or None
        The file it was read from.
    """

    model_config: ModelConfig
    train_config: dict[str, Any]
    metadata: dict[str, Any]
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    path: Path | None = None


def _package_version() -> str:
    from ... import __version__

    return __version__


def _jsonable(obj: Any, what: str) -> Any:
    """Return ``obj`` as plain JSON types (numpy scalars, Paths converted), or raise TypeError."""

    def default(o: Any) -> Any:
        if hasattr(o, "item") and getattr(o, "ndim", None) == 0:  # numpy / torch scalars
            return o.item()
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, (set, frozenset)):
            return sorted(o)
        raise TypeError(f"{what} holds a value of type {type(o).__name__}, which is not JSON-able")

    return json.loads(json.dumps(obj, default=default, allow_nan=True))


def save_checkpoint(path: str | Path, model: nn.Module, *, model_config: ModelConfig,
                    train_config: Mapping[str, Any] | None = None,
                    metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` and its configuration atomically to ``path``.

    Parameters
    ----------
    path : str or Path
        Destination file (its folder must exist).
    model : nn.Module
        The model whose ``state_dict`` is saved (moved to CPU in the file).
    model_config : ModelConfig
        The architecture needed to rebuild the model.
    train_config : mapping or None
        JSON-able training settings.
    metadata : mapping or None
        JSON-able metadata (round, data used, metrics...). ``package_version`` and
        ``created_at`` (Unix time) are added when absent.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    TypeError
        If the configuration or metadata hold values that are not JSON-able.
    ValueError
        If ``model`` is a CrackSegmenter built from a different configuration.
    CheckpointError
        If the folder is missing or not writable.
    """
    if not isinstance(model_config, ModelConfig):
        raise TypeError(f"model_config must be a ModelConfig, got {type(model_config).__name__}")
    if isinstance(model, CrackSegmenter) and model.config != model_config:
        raise ValueError("model_config does not match the configuration the model was built with")
    meta = dict(_jsonable(dict(metadata or {}), "metadata"))
    meta.setdefault("package_version", _package_version())
    meta.setdefault("created_at", time.time())
    payload = {
        "format": CHECKPOINT_FORMAT,
        "state_dict": {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()},
        "model_config": model_config.to_dict(),
        "train_config": _jsonable(dict(train_config or {}), "train_config"),
        "metadata": meta,
    }
    path = Path(path)
    with atomic_path(path, error=CheckpointError) as tmp:
        torch.save(payload, tmp)
    log.info("saved checkpoint %s", path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (safely, ``weights_only=True``).

    Raises
    ------
    CheckpointError
        Missing, truncated, unsafe or foreign file, or an incompatible configuration.
    """
    path = Path(path)
    obj = safe_torch_load(path, map_location)
    if not isinstance(obj, Mapping) or "format" not in obj:
        raise CheckpointError(path, "not a napari-crack-al checkpoint (no format marker)")
    if obj["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(
            path, f"unsupported checkpoint format {obj['format']!r}; this version reads "
            f"{CHECKPOINT_FORMAT!r}"
        )
    missing = [k for k in ("state_dict", "model_config") if k not in obj]
    if missing:
        raise CheckpointError(path, f"checkpoint lacks {', '.join(missing)}")
    sd = obj["state_dict"]
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(path, "checkpoint state_dict is not a mapping of tensors")
    stored = obj["model_config"]
    if isinstance(stored, Mapping) and "decoder" not in stored:  # written before decoders
        stored = {**stored, "decoder": LEGACY_DECODER}
    try:
        config = ModelConfig.from_dict(stored)
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(path, f"incompatible model configuration: {exc}") from None
    train_config = obj.get("train_config") or {}
    metadata = obj.get("metadata") or {}
    if not isinstance(train_config, Mapping) or not isinstance(metadata, Mapping):
        raise CheckpointError(path, "checkpoint train_config/metadata are not mappings")
    return Checkpoint(model_config=config, train_config=dict(train_config),
                      metadata=dict(metadata), state_dict=dict(sd), path=path)


def _refuse_non_finite(path: Path, state_dict: Mapping[str, torch.Tensor]) -> None:
    """A checkpoint with NaN or infinite weights would predict empty masks without a word."""
    bad = [k for k, v in state_dict.items()
           if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise CheckpointError(path, f"holds NaN or infinite weights ({', '.join(bad[:3])}{more}); "
                                    "the file is damaged or its training diverged")


def load_model(path: str | Path, device: str | torch.device | None = None,
               ) -> tuple[CrackSegmenter, Checkpoint]:
    """Rebuild the model stored in a checkpoint, on ``device`` (default CPU), in eval mode.

    Returns
    -------
    (CrackSegmenter, Checkpoint)

    Raises
    ------
    CheckpointError
        As :func:`load_checkpoint`, or when the weights do not fit the configuration.
    """
    ckpt = load_checkpoint(path)
    model = build_model(ckpt.model_config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(ckpt.state_dict))
    unexpected = sorted(set(ckpt.state_dict) - set(expected))
    bad = [k for k, v in expected.items()
           if k in ckpt.state_dict and ckpt.state_dict[k].shape != v.shape]
    if missing or unexpected or bad:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", bad)):
            if keys:
                more = f" (+{len(keys) - 8} more)" if len(keys) > 8 else ""
                parts.append(f"{label}: {', '.join(keys[:8])}{more}")
        raise CheckpointError(
            Path(path), "weights do not match the stored model configuration; " + "; ".join(parts)
        )
    _refuse_non_finite(Path(path), ckpt.state_dict)
    model.load_state_dict(ckpt.state_dict, strict=True)
    model.checkpoint_path = Path(path)  # named by errors of inference
    model.to(torch.device(device) if device is not None else torch.device("cpu"))
    model.eval()
    return model, ckpt
