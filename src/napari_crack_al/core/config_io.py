"""Serialisation shared by every frozen configuration dataclass.

A configuration is saved as JSON-able primitives (beside every checkpoint, in
the project, in export metadata) and rebuilt from them. Tuples become lists on
the way out and lists become tuples on the way back, so a rebuilt configuration
compares equal to the original and stays hashable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any, TypeVar

from .errors import ConfigError

C = TypeVar("C", bound="ConfigIO")


def _to_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_from_json(v) for v in value)
    return value


class ConfigIO:
    """Mixin for frozen dataclasses: ``to_dict()`` and ``from_dict()``.

    Missing keys take their defaults; unknown keys raise
    :class:`~napari_crack_al.core.errors.ConfigError` listing the valid keys.
    """

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as JSON-able primitives (tuples become lists)."""
        return {k: _to_json(v) for k, v in asdict(self).items()}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        """Rebuild a configuration from :meth:`to_dict` output (validated as on creation)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a {cls.__name__} must be a mapping, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} keys {unknown}; valid keys: {', '.join(names)}")
        return cls(**{k: _from_json(v) for k, v in data.items()})
