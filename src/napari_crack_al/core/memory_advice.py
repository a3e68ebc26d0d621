"""What to tell the user when training or prediction runs out of memory (GPU or host).

A CUDA (or MPS) out-of-memory error is a plain :class:`RuntimeError` subclass whose
message is a page of allocator statistics; neither the command line nor the napari
panels show it. Both detect it with :func:`is_out_of_memory` and print the advice
instead: :data:`OUT_OF_MEMORY_ADVICE` names the panel's settings,
:data:`CLI_OUT_OF_MEMORY_ADVICE` the command-line options.

This module imports nothing heavy (no torch): the command line imports it at start-up.
"""

from __future__ import annotations

__all__ = ["OUT_OF_MEMORY_ADVICE", "CLI_OUT_OF_MEMORY_ADVICE", "is_out_of_memory"]

#: Shown by the napari panels instead of a traceback when the GPU (or the computer) runs
#: out of memory (after the name of the action, e.g. "Retrain ran out of memory. ...").
OUT_OF_MEMORY_ADVICE = ("ran out of memory. Choose the 'fast' preset, a smaller batch or crop size "
                        "(Train panel > Advanced), or run on the CPU; "
                        "close other programs that use the GPU.")

#: Printed by the command line (``error: ...``, exit status 2) for the same errors.
CLI_OUT_OF_MEMORY_ADVICE = ("ran out of memory. Train with --preset fast or a smaller --batch-size "
                            "or --crop-size, predict with a smaller --tile, or use --device cpu; "
                            "close other programs that use the GPU.")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory error (CUDA, MPS or host memory).

    Parameters
    ----------
    exc : BaseException
        The error a job or command ended with.

    Returns
    -------
    bool
        True for a :class:`MemoryError`, for ``torch.OutOfMemoryError`` (the same class
        as ``torch.cuda.OutOfMemoryError``) and its subclasses, and for a
        :class:`RuntimeError` whose message says "out of memory" (MPS, and CUDA errors of
        older torch versions).

    Examples
    --------
    >>> is_out_of_memory(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    True
    >>> is_out_of_memory(RuntimeError("boom"))
    False
    """
    if isinstance(exc, MemoryError):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "OutOfMemoryError" in names:  # torch.OutOfMemoryError / torch.cuda.OutOfMemoryError
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
