"""Training on several processes (GPUs or machines) launched by ``torchrun``.

``torchrun --nproc_per_node N -m napari_crack_al train ...`` starts ``N`` copies of the
command line with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in
their environment. :func:`from_environment` joins them into one process group (NCCL on
CUDA, gloo on the CPU) and returns a :class:`Distributed` that the trainer uses to:

* wrap the student in :class:`~torch.nn.parallel.DistributedDataParallel`, so that the
  gradients of every step are averaged over the ranks while each rank draws its own
  crops (its own seed for the samplers);
* keep the EMA teacher identical on every rank (the student's weights are identical
  after every averaged step; the teacher's batch-norm statistics are taken from rank 0);
* keep the contrastive memory identical on every rank (every rank pushes the negatives
  of all ranks, in rank order);
* take every decision on rank 0 and share it (the semi-supervised gate, the step plan of
  a budget in seconds, the final held-out judgement), so the ranks never disagree on
  what the next step does;
* write checkpoints on rank 0 only (same file format as one process).

One process (no ``torchrun``) uses :data:`SINGLE`, which does nothing. This module never
imports anything beyond torch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from .errors import ConfigError

__all__ = ["Distributed", "SINGLE", "from_environment", "shard", "launched_by_torchrun"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Distributed:
    """This process's place among the ranks of a run.

    Attributes
    ----------
    rank : int
        Global rank, 0 to ``world_size - 1``.
    world_size : int
        Number of processes.
    local_rank : int
        Rank on this machine (the GPU it uses).
    backend : str
        ``"gloo"`` or ``"nccl"``; ``""`` for one process.
    local_world_size : int
        Processes on this machine (they share its CPU cores).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    local_world_size: int = 1

    @property
    def active(self) -> bool:
        """Whether there is more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that writes files and talks)."""
        return self.rank == 0

    def cpu_threads(self, cores: int) -> int:
        """This rank's share of ``cores`` CPU threads (the ranks of a machine split them)."""
        return max(1, int(cores) // max(1, self.local_world_size))

    def device(self, device: torch.device) -> torch.device:
        """The device of this rank: ``cuda:LOCAL_RANK`` for CUDA, else ``device``."""
        if self.active and device.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` in DistributedDataParallel (gradients averaged); ``model`` alone for one process."""
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        # the representation head is unused in supervised steps: find_unused_parameters
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    def share(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if not self.active:
            return value
        box = [value if self.is_main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def total(self, count: int) -> int:
        """The sum of ``count`` over the ranks (e.g. images written by each)."""
        if not self.active:
            return int(count)
        t = torch.tensor([int(count)], dtype=torch.int64)
        if self.backend == "nccl":
            t = t.cuda()
        torch.distributed.all_reduce(t)
        return int(t.item())

    def gather(self, value: T) -> list[T]:
        """Every rank's ``value`` (any picklable object), in rank order, on every rank."""
        if not self.active:
            return [value]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, value)
        return out

    def gather_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """The ``(N_r, D)`` rows of every rank, concatenated in rank order (N_r may differ)."""
        if not self.active:
            return rows
        counts = [torch.zeros(1, dtype=torch.int64, device=rows.device)
                  for _ in range(self.world_size)]
        torch.distributed.all_gather(counts, torch.tensor([rows.shape[0]], device=rows.device))
        sizes = [int(c) for c in counts]
        widest = max(sizes)
        padded = torch.zeros((widest, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
        padded[: rows.shape[0]] = rows
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        torch.distributed.all_gather(parts, padded.contiguous())
        return torch.cat([p[:n] for p, n in zip(parts, sizes)])

    def same_buffers(self, module: torch.nn.Module) -> None:
        """Give ``module`` rank 0's buffers (batch-norm statistics) on every rank."""
        if not self.active:
            return
        for buf in module.buffers():
            torch.distributed.broadcast(buf, src=0)

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.active:
            torch.distributed.barrier()

    def close(self) -> None:
        """Leave the process group (nothing for one process)."""
        if self.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    def seed_offset(self) -> int:
        """Added to the samplers' seed so that each rank draws its own crops."""
        return 1000 * self.rank


SINGLE = Distributed()


def launched_by_torchrun(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment says this process is one of several (``WORLD_SIZE`` > 1)."""
    env = os.environ if environ is None else environ
    try:
        return int(env.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def _env_int(env: Mapping[str, str], name: str) -> int:
    try:
        return int(env[name])
    except KeyError:
        raise ConfigError(f"{name} is not set: start several processes with torchrun") from None
    except ValueError:
        raise ConfigError(f"{name}={env[name]!r} is not an integer") from None


def from_environment(device_type: str = "cpu", *, environ: Mapping[str, str] | None = None,
                     init: Callable[..., Any] | None = None) -> Distributed:
    """Join the process group that ``torchrun`` set up, or :data:`SINGLE` without one.

    Parameters
    ----------
    device_type : str
        ``"cuda"`` selects the NCCL backend, anything else gloo.
    environ : mapping, optional
        The environment (default ``os.environ``).
    init : callable, optional
        Replaces :func:`torch.distributed.init_process_group` (tests).

    Returns
    -------
    Distributed
    """
    env = os.environ if environ is None else environ
    if not launched_by_torchrun(env):
        return SINGLE
    rank, world = _env_int(env, "RANK"), _env_int(env, "WORLD_SIZE")
    local = int(env.get("LOCAL_RANK", rank))
    local_world = int(env.get("LOCAL_WORLD_SIZE", world))
    if not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} outside 0..{world - 1}")
    backend = "nccl" if device_type == "cuda" and torch.cuda.is_available() else "gloo"
    if not torch.distributed.is_available():
        raise ConfigError("this torch build has no torch.distributed")
    if not torch.distributed.is_initialized():
        (init or torch.distributed.init_process_group)(backend=backend)
    logger.info("rank %d of %d (local %d), backend %s", rank, world, local, backend)
    return Distributed(rank=rank, world_size=world, local_rank=local, backend=backend,
                       local_world_size=local_world)


def shard(items: list[T], dist: Distributed) -> list[T]:
    """This rank's share of ``items`` (every ``world_size``-th, from ``rank``)."""
    return list(items[dist.rank::dist.world_size]) if dist.active else list(items)
