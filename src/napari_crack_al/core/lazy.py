"""Lazy re-exports for a package ``__init__`` (PEP 562), so that importing it imports no torch.

Usage in a package's ``__init__.py``::

    from ..lazy import lazy_exports

    __getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), {"Name": "submodule"})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, namespace: dict[str, Any], exports: Mapping[str, str],
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """The ``__getattr__``, ``__dir__`` and ``__all__`` of a package whose names load on use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    namespace : dict
        Its ``globals()`` (a loaded name is cached there).
    exports : mapping
        Public name -> submodule (relative to ``package``) that defines it.
    """
    table = dict(exports)

    def __getattr__(name: str) -> Any:
        try:
            module = table[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__, sorted(table)
