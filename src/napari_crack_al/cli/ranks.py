"""The commands that ``torchrun`` can start several times: joining the ranks."""

from __future__ import annotations

import logging
from typing import Any


def join_ranks(device: str | None) -> Any:
    """The process group when torchrun started several copies of this command, else SINGLE.

    Parameters
    ----------
    device : str or None
        The command's ``--device`` (``None`` = auto): CUDA ranks use NCCL, others gloo.

    Returns
    -------
    Distributed
        Only rank 0 logs warnings (one copy of each message).
    """
    from ..core.device import select_device
    from ..core.distributed import SINGLE, from_environment, launched_by_torchrun

    if not launched_by_torchrun():
        return SINGLE
    dist = from_environment(select_device(device or "auto").type)
    if not dist.is_main:
        logging.getLogger("napari_crack_al").setLevel(logging.ERROR)
    return dist
