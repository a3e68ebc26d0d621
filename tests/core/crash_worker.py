"""Subprocess for tests/core/test_crash_safety.py: hammer a project until SIGKILLed.

Usage: ``python tests/core/crash_worker.py PROJECT SEED``

Imports what it needs, then waits for a ``GO`` line on stdin (so the parent can
start the next worker while it still checks the last kill), opens the project,
prints ``READY`` and loops forever over random operations. Around every operation it prints (flushed)::

    BEGIN <op> <name> <checksum>    before the call
    ACK <op> <name> <checksum>      after the call returned

``checksum`` identifies the content the operation writes (mask checksum, scores
checksum, or queue-order checksum), so the parent can tell after a kill whether
the one operation in flight took effect. Only numpy and the store are imported
(no torch), so a restart is fast.
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np

SHAPE = (64, 64)
SECONDS_PER_ACCEPT = 0.5  # exact in binary, so the accumulated time counts accepts exactly
OPS = ("accept", "save_draft", "set_suggestion", "set_scores", "set_queue_order")
OP_WEIGHTS = (0.35, 0.25, 0.2, 0.1, 0.1)


def mask_checksum(mask: np.ndarray | None) -> str | None:
    """Short checksum of a bool mask's shape and pixels (None for no mask)."""
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    h = hashlib.sha1(repr(mask.shape).encode())
    h.update(np.packbits(mask).tobytes())
    return h.hexdigest()[:16]


def scores_checksum(scores: dict[str, float]) -> str | None:
    """Checksum of a ``{name: value}`` mapping (None when empty)."""
    if not scores:
        return None
    text = json.dumps(sorted((k, float(v)) for k, v in scores.items()))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def order_checksum(names: list[str]) -> str:
    """Checksum of a queue order."""
    return hashlib.sha1(",".join(names).encode()).hexdigest()[:16]


def random_mask(rng: np.random.Generator) -> np.ndarray:
    """A random crack-like mask: a few thick random lines plus speckle."""
    mask = rng.random(SHAPE) < 0.01
    for _ in range(int(rng.integers(1, 4))):
        r0, c0 = rng.integers(0, SHAPE[0]), rng.integers(0, SHAPE[1])
        r1, c1 = rng.integers(0, SHAPE[0]), rng.integers(0, SHAPE[1])
        n = max(abs(r1 - r0), abs(c1 - c0)) + 1
        rows = np.linspace(r0, r1, n).round().astype(int)
        cols = np.linspace(c0, c1, n).round().astype(int)
        mask[rows, cols] = True
        mask[np.clip(rows + 1, 0, SHAPE[0] - 1), cols] = True
    return mask


def _say(*words: object) -> None:
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def main(root: str, seed: int) -> None:
    from PIL import Image  # noqa: F401  (imported before READY so kills land in real work)

    import napari_crack_al.core.metrics  # noqa: F401  (accept measures crack length: same reason)

    from napari_crack_al.core.project.store import Project

    if sys.stdin.readline().strip() != "GO":
        return  # the parent did not need this worker
    project = Project.open(root)
    names = project.names()
    rng = np.random.default_rng(seed)
    _say("READY", len(names))
    version = f"v{seed}"
    while True:
        op = OPS[int(rng.choice(len(OPS), p=OP_WEIGHTS))]
        name = names[int(rng.integers(len(names)))]
        if op in ("accept", "save_draft", "set_suggestion"):
            mask = random_mask(rng)
            cs = mask_checksum(mask)
            _say("BEGIN", op, name, cs)
            if op == "accept":
                project.accept(name, mask, seconds=SECONDS_PER_ACCEPT)
            elif op == "save_draft":
                project.save_draft(name, mask)
            else:
                project.set_suggestion(name, mask, version)
        elif op == "set_scores":
            chosen = rng.choice(names, size=int(rng.integers(1, len(names) + 1)), replace=False)
            scores = {str(n): float(rng.random()) for n in chosen}
            previous = {n: d["score"] for n, d in project.get_scores("score").items()}
            cs = scores_checksum({**previous, **scores})
            name = "-"
            _say("BEGIN", op, name, cs)
            project.set_scores(scores, version)
        else:
            current = project.names()
            head = [str(n) for n in rng.permutation(current)[: int(rng.integers(1, len(current) + 1))]]
            expected = head + [n for n in current if n not in set(head)]
            cs = order_checksum(expected)
            name = "-"
            _say("BEGIN", op, name, cs)
            project.set_queue_order(head)
        _say("ACK", op, name, cs)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
