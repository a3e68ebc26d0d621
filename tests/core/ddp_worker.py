"""One rank of tests/core/test_distributed.py, started by ``torch.distributed.run``.

Usage: ``python -m torch.distributed.run --nproc_per_node 2 --standalone
tests/core/ddp_worker.py OUT MODE``

Every rank builds the same tiny synthetic data, trains with ``distributed`` joined from
the environment (gloo), and writes ``OUT/rank<R>.json``: fingerprints of its student,
teacher (weights and batch-norm buffers) and contrastive memory, its run's plan and the
result it returned. The parent compares the ranks.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

from napari_crack_al.core.distributed import from_environment
from napari_crack_al.core.io.range_io import RangeImage
from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image
from napari_crack_al.core.training import trainer as trainer_module
from napari_crack_al.core.training.config import TrainConfig
from napari_crack_al.core.training.data import from_range_image

torch.set_num_threads(1)

DATA = SyntheticConfig(size=80, width_px=(2, 6), depth_mm=(2, 5), texture_mm=0.3,
                       distractors=False, no_crack_fraction=0.0)


def _item(i: int, labeled: bool):  # noqa: ANN202
    s = generate_range_image((0, i), DATA)
    ri = RangeImage(s.range_image.astype(np.float32), s.range_image > 0, None, "uint16")
    return from_range_image(ri, s.mask if labeled else None, name=f"img{i:03d}")


def _fingerprint(tensors) -> str:  # noqa: ANN001
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def _memory(run) -> dict:  # noqa: ANN001
    if run.memory is None:
        return {}
    out = {}
    for c in range(run.memory.num_classes):
        feats = run.memory.features(c)
        out[str(c)] = {"size": run.memory.size(c),
                       "fingerprint": None if feats is None else _fingerprint([feats])}
    return out


def main(out_dir: str, mode: str) -> None:
    """Train a few steps on this rank and write its fingerprints."""
    dist = from_environment("cpu")
    runs = []
    original = trainer_module.prepare_run

    def capture(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        runs.append(original(*args, **kwargs))
        return runs[-1]

    trainer_module.prepare_run = capture
    labeled = [_item(i, True) for i in range(3)]
    unlabeled = [_item(i, False) for i in range(3, 7)]
    validation = [_item(50, True)]
    config = TrainConfig(mode=mode, iterations=40, crop_size=64, batch_size=2,
                         unlabeled_batch_size=2, warmup_iterations=6, semi_entry_f1=0.0,
                         threads=1, seed=0, device="cpu")
    gen = trainer_module.train(labeled, unlabeled, config, checkpoint_path=Path(out_dir) / "model.pt",
                               validation=validation, distributed=dist)
    losses = []
    try:
        while True:
            event = next(gen)
            if hasattr(event, "losses") and hasattr(event, "total_steps"):
                losses.append(event.losses["sup"])
    except StopIteration as stop:
        result = stop.value
    run = runs[0]
    record = {
        "rank": dist.rank, "world_size": dist.world_size, "mode": run.mode,
        "student": _fingerprint(run.student.parameters()),
        "teacher": _fingerprint(run.teacher.module.parameters()),
        "teacher_buffers": _fingerprint(run.teacher.module.buffers()),
        "memory": _memory(run), "semi_start": run.semi_start, "total": run.schedule.total,
        "sup_losses": losses,
        "checkpoint": None if result.checkpoint is None else str(result.checkpoint),
        "steps": result.steps, "metrics": result.metrics, "threshold": result.threshold,
    }
    Path(out_dir, f"rank{dist.rank}.json").write_text(json.dumps(record))
    dist.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
