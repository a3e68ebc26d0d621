"""Choose the training-free detector's settings on synthetic range images and uav75's TRAIN split.

Prints pixel F1 and tolerance F1 (2 px) for a small grid of settings, on
  * 24 synthetic range images (seed 1000+, 512 x 512; the test set uses seed 0),
  * the 50 photographs of ../shared/data/uav75 whose split is "train".
The validation and test photographs are never looked at here (docs/model.md reports
them with the chosen settings). Run: .venv/bin/python scripts/tune_detector.py
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

from napari_crack_al.core.detector.ridge import (
    DetectorConfig,
    detection_from_response,
    ridge_response,
)
from napari_crack_al.core.io.mask_io import read_mask
from napari_crack_al.core.metrics import evaluate_masks
from napari_crack_al.core.io.range_io import RangeImage, read_range_image
from napari_crack_al.core.synthetic import generate_range_image

UAV = Path(__file__).resolve().parents[2] / "shared" / "data" / "uav75"


def synthetic_set(n: int = 24, seed: int = 1000) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    for i in range(n):
        s = generate_range_image((seed, i))
        data = s.range_image.astype(np.float32)
        out.append((data, data != 0, s.mask))
    return out


def uav_set(split: str = "train") -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    for line in (UAV / "manifest.csv").read_text().splitlines()[1:]:
        image, mask, sp = line.split(",")[:3]
        if sp != split:
            continue
        img: RangeImage = read_range_image(UAV / image)
        out.append((img.data, img.valid, read_mask(UAV / mask)))
    return out


def responses(dataset, cfg: DetectorConfig) -> list:
    """The ridge responses (the costly filter) of every image, computed once per filter setting."""
    return [(ridge_response(data, valid, cfg), valid, mask) for data, valid, mask in dataset]


def score(cached, cfg: DetectorConfig) -> tuple[float, float]:
    preds, gts, vals = [], [], []
    for (resp, flat), valid, mask in cached:
        preds.append(detection_from_response(resp, flat, valid, cfg).mask)
        gts.append(mask)
        vals.append(valid)
    m = evaluate_masks(preds, gts, valid=vals)
    return m["f1"], m["f1_tol2"]


def main() -> int:
    sets = {"synthetic": synthetic_set(), "uav75-train": uav_set("train")}
    cached = {name: responses(ds, DetectorConfig()) for name, ds in sets.items()}
    grid = {
        "high": (6.0, 8.0, 10.0),
        "low": (3.0, 4.0),
        "darker": (1.0, 1.5, 2.0),
        "min_length": (32, 64),
        "min_elongation": (8.0, 12.0),
    }
    keys = list(grid)
    rows = []
    for values in itertools.product(*(grid[k] for k in keys)):
        if values[1] > values[0]:
            continue
        cfg = DetectorConfig(**dict(zip(keys, values)))
        res = {name: score(c, cfg) for name, c in cached.items()}
        worst = min(r[1] for r in res.values())
        rows.append((worst, values, res))
        print(dict(zip(keys, values)), {k: f"F1 {v[0]:.3f} tolF1 {v[1]:.3f}"
                                        for k, v in res.items()}, flush=True)
    rows.sort(key=lambda r: -r[0])
    print("best (largest worst-case tolerance F1):", dict(zip(keys, rows[0][1])), rows[0][2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
