"""Refuse an option that another option (or the situation) would silently override.

Options whose default is None (or a flag whose default is False) count as given when
they hold anything else; the subcommands fill in the real defaults after these checks.
Both functions raise :class:`~napari_crack_al.core.errors.ConfigError`, which the command
line prints as one ``error:`` line (exit status 2).
"""

from __future__ import annotations

from ..core.errors import ConfigError

__all__ = ["given", "refuse_together", "refuse_unused"]


def given(value: object) -> bool:
    """Whether an option was given: neither None nor an unset flag (False)."""
    return value is not None and value is not False


def refuse_together(a: str, value_a: object, b: str, value_b: object,
                    why: str | None = None) -> None:
    """Refuse two options of which one decides what the other would.

    Parameters
    ----------
    a, b : str
        The options as typed (``"--arms"``).
    value_a, value_b : object
        Their parsed values (None or False: not given).
    why : str, optional
        Why they clash (default: "A decides what B would").

    Raises
    ------
    ConfigError
        ``give A or B, not both (WHY)`` when both were given.
    """
    if given(value_a) and given(value_b):
        raise ConfigError(f"give {a} or {b}, not both ({why or f'{a} decides what {b} would'})")


def refuse_unused(option: str, value: object, why: str) -> None:
    """Refuse an option that has nothing to apply to.

    Parameters
    ----------
    option : str
        The option as typed (``"--tile"``).
    value : object
        Its parsed value (None or False: not given).
    why : str
        The rest of the sentence, e.g. ``"applies to a model, not to builtin"``.

    Raises
    ------
    ConfigError
        ``OPTION WHY`` when the option was given.
    """
    if given(value):
        raise ConfigError(f"{option} {why}")
