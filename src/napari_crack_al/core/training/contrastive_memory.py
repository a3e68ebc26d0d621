"""The per-class memory of negative features of the U2PL contrastive loss (ring buffers)."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["ContrastiveMemory"]


class ContrastiveMemory:
    """Per-class FIFO banks of detached feature vectors (ring buffers).

    Banks are keyed by class id; each holds at most ``capacity`` vectors, and a
    push beyond that overwrites the oldest. Storage is allocated on the first
    push, on the pushed features' device, and follows them to another device.

    Parameters
    ----------
    num_classes : int
        Number of classes (ids ``0 .. num_classes - 1``).
    capacity : int
        Vectors kept per class.
    gather : callable, optional
        Several ranks (:mod:`~napari_crack_al.core.distributed`): maps this rank's
        pushed rows to the rows of every rank, so that every rank's memory holds the same
        vectors. Every rank must then push at every call, with zero rows if need be.
    """

    def __init__(self, num_classes: int, capacity: int = 30000, *,
                 gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if num_classes < 1 or capacity < 1:
            raise ValueError(
                f"num_classes and capacity must be >= 1, got {num_classes}, {capacity}"
            )
        self.num_classes = int(num_classes)
        self.capacity = int(capacity)
        self._buf: dict[int, torch.Tensor] = {}
        self._ptr: dict[int, int] = {}
        self._count: dict[int, int] = {}
        self.gather = gather

    @property
    def shared(self) -> bool:
        """Whether pushes are gathered from several ranks (every rank must push)."""
        return self.gather is not None

    def _check(self, class_id: int) -> int:
        c = int(class_id)
        if not 0 <= c < self.num_classes:
            raise ValueError(f"class id {class_id} outside [0, {self.num_classes - 1}]")
        return c

    def size(self, class_id: int) -> int:
        """Number of vectors stored for ``class_id``."""
        return self._count.get(self._check(class_id), 0)

    def push(self, class_id: int, features: torch.Tensor) -> None:
        """Enqueue ``(N, D)`` features (detached) for ``class_id``, dropping the oldest."""
        c = self._check(class_id)
        if features.ndim != 2:
            raise ValueError(f"features must be (N, D), got {tuple(features.shape)}")
        feats = features.detach()
        if self.gather is not None:
            feats = self.gather(feats)
        n, dim = feats.shape
        if n == 0:
            return
        buf = self._buf.get(c)
        if buf is None:
            buf = torch.zeros(self.capacity, dim, dtype=feats.dtype, device=feats.device)
            self._ptr[c], self._count[c] = 0, 0
        elif buf.shape[1] != dim:
            raise ValueError(f"class {c} bank holds {buf.shape[1]}-d features, got {dim}-d")
        elif buf.device != feats.device:
            buf = buf.to(feats.device)
        feats = feats.to(buf.dtype)
        cap = self.capacity
        if n >= cap:
            buf.copy_(feats[-cap:])
            self._ptr[c], self._count[c] = 0, cap
        else:
            ptr = self._ptr[c]
            first = min(n, cap - ptr)
            buf[ptr : ptr + first] = feats[:first]
            if n > first:
                buf[: n - first] = feats[first:]
            self._ptr[c] = (ptr + n) % cap
            self._count[c] = min(self._count[c] + n, cap)
        self._buf[c] = buf

    def features(self, class_id: int) -> torch.Tensor | None:
        """Stored vectors of ``class_id``, oldest first (``None`` when empty)."""
        c = self._check(class_id)
        count = self._count.get(c, 0)
        if count == 0:
            return None
        buf = self._buf[c]
        if count < self.capacity:
            return buf[:count]
        ptr = self._ptr[c]
        return torch.cat([buf[ptr:], buf[:ptr]])

    def sample(
        self, class_id: int, n: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` stored vectors of ``class_id`` drawn uniformly with replacement."""
        c = self._check(class_id)
        count = self._count.get(c, 0)
        if count == 0:
            raise ValueError(f"memory bank of class {c} is empty")
        gdev = generator.device if generator is not None else torch.device("cpu")
        idx = torch.randint(count, (int(n),), generator=generator, device=gdev)
        buf = self._buf[c]
        return buf[idx.to(buf.device)]

    def clear(self) -> None:
        """Forget every stored vector."""
        self._buf.clear()
        self._ptr.clear()
        self._count.clear()
