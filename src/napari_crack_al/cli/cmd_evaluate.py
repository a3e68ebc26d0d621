"""``napari-crack-al evaluate PRED_DIR MASKS_DIR``: crack metrics of predicted masks, as one JSON object."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

HELP = "compare predicted masks with ground-truth masks; prints one JSON object"


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (0.0 <= value <= 50.0):
        raise argparse.ArgumentTypeError(f"expected a number of pixels in [0, 50], got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    from .cmd_predict import PROBABILITY_DIR

    p = subparsers.add_parser(
        "evaluate", help=HELP,
        description=HELP + ": crack_iou, precision, recall, f1 (pixel-exact, micro-averaged "
        "over the images), f1_tol2 (skeletons matched within the tolerance), and ods/ois when "
        f"PRED_DIR/{PROBABILITY_DIR} holds probability maps (from 'predict --probabilities'). "
        "Masks pair by file name without suffix.")
    p.add_argument("pred_dir", metavar="PRED_DIR", type=Path, help="folder of predicted masks")
    p.add_argument("masks_dir", metavar="MASKS_DIR", type=Path, help="folder of ground-truth masks")
    p.add_argument("--tolerance", type=_tolerance, default=2.0,
                   help="matching distance in pixels of the tolerance metrics (default 2)")
    p.set_defaults(func=run)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(float(value)) else None


def _read_probability(path: Path, shape: tuple[int, int]):  # noqa: ANN202 - numpy array
    import numpy as np

    from ..core.errors import ImageReadError
    from ..core.io.range_io import load_array

    arr = np.asarray(load_array(path), dtype=np.float32)
    if arr.ndim != 2:
        raise ImageReadError(path, f"probability map must be one channel, got shape {arr.shape}")
    if arr.shape != shape:
        raise ImageReadError(path, f"probability map is {arr.shape[0]} x {arr.shape[1]}, its mask "
                                   f"is {shape[0]} x {shape[1]}")
    if not np.isfinite(arr).all() or arr.min() < 0.0 or arr.max() > 1.0:
        raise ImageReadError(path, "probability map values must be finite and within [0, 1]")
    return arr


def run(args: argparse.Namespace) -> int:
    """Pair predictions with ground truth by name, compute the metrics, print JSON."""
    from ..core.errors import MaskError
    from ..core.io.mask_io import read_mask
    from ..core.metrics import evaluate_masks, ods_ois
    from ..core.training.data import list_images_as_masks
    from .cmd_predict import PROBABILITY_DIR

    preds = {p.stem: p for p in list_images_as_masks(args.pred_dir)}
    gts = {p.stem: p for p in list_images_as_masks(args.masks_dir)}
    if not preds:
        raise MaskError(args.pred_dir, "no predicted masks found")
    missing_gt = sorted(set(preds) - set(gts))
    if missing_gt:
        raise MaskError(preds[missing_gt[0]], "no ground-truth mask of the same name in "
                        f"{args.masks_dir} (unpaired: {', '.join(missing_gt[:5])})")
    missing_pred = sorted(set(gts) - set(preds))
    if missing_pred:
        raise MaskError(gts[missing_pred[0]], "no predicted mask of the same name in "
                        f"{args.pred_dir} (unpaired: {', '.join(missing_pred[:5])})")
    names = sorted(preds)
    gt_masks = [read_mask(gts[n]) for n in names]
    pred_masks = [read_mask(preds[n], expected_shape=g.shape) for n, g in zip(names, gt_masks)]
    metrics = evaluate_masks(pred_masks, gt_masks, tolerance=args.tolerance)
    out: dict[str, object] = {k: (_finite(v) if k != "n_images" else int(v))
                              for k, v in metrics.items()}
    prob_dir = args.pred_dir / PROBABILITY_DIR
    if prob_dir.is_dir():
        from ..core.io.range_io import list_images

        probs = {p.stem: p for p in list_images(prob_dir)}
        lacking = [n for n in names if n not in probs]
        if lacking:
            raise MaskError(prob_dir, f"no probability map for {', '.join(lacking[:5])}")
        maps = [_read_probability(probs[n], g.shape) for n, g in zip(names, gt_masks)]
        res = ods_ois(maps, gt_masks, tolerance=args.tolerance)
        out.update({"ods": _finite(res["ods"]), "ois": _finite(res["ois"]),  # type: ignore[arg-type]
                    "ods_threshold": _finite(res["ods_threshold"])})  # type: ignore[arg-type]
    out["tolerance_px"] = args.tolerance
    print(json.dumps(out, sort_keys=True))
    return 0
