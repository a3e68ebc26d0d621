"""Compute device selection (CUDA > MPS > CPU) and CPU thread configuration."""

from __future__ import annotations

import logging
import os

import torch

from .errors import ConfigError

__all__ = ["DEVICE_CHOICES", "select_device", "describe_device", "configure_threads", "cpu_cores"]

log = logging.getLogger(__name__)

#: Names accepted by :func:`select_device` (plus ``"cuda:N"``).
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def select_device(name: str | torch.device = "auto") -> torch.device:
    """Return the device to compute on.

    Parameters
    ----------
    name : str or torch.device
        ``"auto"`` (CUDA if available, else Apple MPS, else CPU), ``"cpu"``,
        ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Raises
    ------
    ConfigError
        For an unknown name (the message lists the valid ones) or a device that is
        not available on this machine.
    """
    if isinstance(name, torch.device):
        name = str(name)
    key = str(name).strip().lower()
    if key == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if key == "cpu":
        return torch.device("cpu")
    if key == "mps":
        if not _mps_available():
            raise ConfigError("device 'mps' is not available on this machine; use 'auto' or 'cpu'")
        return torch.device("mps")
    if key == "cuda" or (key.startswith("cuda:") and key[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name!r} is not available (no CUDA GPU); use 'auto' or 'cpu'"
            )
        dev = torch.device(key)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} does not exist; this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
        return dev
    raise ConfigError(
        f"unknown device {name!r}; valid devices: {', '.join(DEVICE_CHOICES)}, cuda:N"
    )


def describe_device(device: torch.device | str) -> str:
    """Describe a device, e.g. ``"CUDA: NVIDIA H100 (80 GB)"`` or ``"CPU (2 threads)"``."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"CUDA: {props.name} ({props.total_memory / 1e9:.0f} GB)"
    if device.type == "mps":
        return "MPS (Apple GPU)"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"


def cpu_cores() -> int:
    """Number of CPU cores this process may use (affinity-aware where supported)."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:  # pragma: no cover
            pass
    return max(1, os.cpu_count() or 1)


def configure_threads(reserve_for_ui: int = 1) -> int:
    """Set torch's intra-op threads to ``max(1, cores - reserve_for_ui)`` and return that number.

    Keeping a core free keeps napari responsive while a model trains or predicts.
    """
    if reserve_for_ui < 0:
        raise ConfigError(f"reserve_for_ui must be >= 0, got {reserve_for_ui!r}")
    n = max(1, cpu_cores() - reserve_for_ui)
    torch.set_num_threads(n)
    log.debug("torch uses %d CPU threads", n)
    return n
