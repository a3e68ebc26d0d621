"""Out-of-memory detection and advice (core.memory_advice), without a GPU."""

from __future__ import annotations

import pytest
import torch

from napari_crack_al.core.memory_advice import (
    CLI_OUT_OF_MEMORY_ADVICE,
    OUT_OF_MEMORY_ADVICE,
    is_out_of_memory,
)

OOM_TYPES = [t for t in (getattr(torch, "OutOfMemoryError", None), torch.cuda.OutOfMemoryError)
             if t is not None]


@pytest.mark.parametrize("oom_type", OOM_TYPES, ids=lambda t: f"{t.__module__}.{t.__name__}")
def test_torch_out_of_memory_errors_are_recognised(oom_type):
    exc = oom_type("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert isinstance(exc, RuntimeError)  # what inference and superqt see
    assert is_out_of_memory(exc)

    class Sub(oom_type):  # a subclass (e.g. a future, more precise error) too
        pass

    assert is_out_of_memory(Sub("x"))


@pytest.mark.parametrize("exc", [
    MemoryError(),
    RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 7.79 GiB total)"),
    RuntimeError("MPS backend out of memory (MPS allocated: 17.00 GB)"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:114] DefaultCPUAllocator: Out Of Memory"),
])
def test_other_out_of_memory_errors_are_recognised(exc):
    assert is_out_of_memory(exc)


@pytest.mark.parametrize("exc", [
    RuntimeError("boom"),
    ValueError("out of memory"),  # only a RuntimeError's message is read
    KeyboardInterrupt(),
    OSError(28, "No space left on device"),
])
def test_other_errors_are_not_out_of_memory(exc):
    assert not is_out_of_memory(exc)


def test_the_advice_names_what_lowers_memory():
    assert OUT_OF_MEMORY_ADVICE.startswith("ran out of memory.")
    assert "'fast' preset" in OUT_OF_MEMORY_ADVICE and "smaller batch" in OUT_OF_MEMORY_ADVICE
    assert CLI_OUT_OF_MEMORY_ADVICE.startswith("ran out of memory.")
    for option in ("--preset fast", "--batch-size", "--crop-size", "--tile", "--device cpu"):
        assert option in CLI_OUT_OF_MEMORY_ADVICE
    assert "\n" not in OUT_OF_MEMORY_ADVICE + CLI_OUT_OF_MEMORY_ADVICE


def test_the_cli_options_the_advice_names_exist():
    """The advice must not send the user to an option that does not exist."""
    from napari_crack_al.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    options = {name: {o for a in p._actions for o in a.option_strings}
               for name, p in sub.choices.items()}
    for option in ("--preset", "--batch-size", "--crop-size", "--device"):
        assert option in options["train"], option
    assert "--tile" in options["predict"] and "--device" in options["predict"]
