"""The trace tool: latency per click, and clicks per image versus the pixels a brush covers.

1. **Latency.** On synthetic range images of 1024² and 4096 x 2048, every crack is traced
   click by click as an annotator would (:func:`~napari_crack_al.core.trace.trace_plan`:
   its ends, branch points and a click every 100 px); each click runs what the Trace mode
   runs (:func:`~napari_crack_al.core.trace.trace_on_image` on the window around the two
   points, then the width and centre line across the path). Prints p50 and max per size
   (the first click, which imports scikit-image's filters, is left out).
2. **Work.** On twelve 512² synthetic images: clicks to trace every crack versus crack
   pixels a brush would have to cover, and the tolerance F1 / width of the traced masks.

    python benchmarks/bench_trace.py [--images 12]
"""

from __future__ import annotations

import argparse
import statistics
import time


def _trace_image(image, valid, mask, latencies):  # noqa: ANN001, ANN202
    import numpy as np

    from napari_crack_al.core.trace import measure_path, path_mask, trace_on_image, trace_plan

    traced = np.zeros(mask.shape, bool)
    clicks = 0
    for line in trace_plan(mask):
        clicks += len(line)
        for a, b in zip(line[:-1], line[1:]):
            t0 = time.perf_counter()
            path = trace_on_image(image, a, b, valid=valid)
            width, path = measure_path(image, path, fallback=3.0, valid=valid)
            latencies.append(time.perf_counter() - t0)
            traced |= path_mask(mask.shape, path, width)
    return traced, clicks


def main() -> None:
    """Run both parts and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=12)
    args = ap.parse_args()
    import numpy as np

    from napari_crack_al.core.metrics import evaluate_masks
    from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image

    for shape in ((1024, 1024), (2048, 4096)):
        s = generate_range_image((5, 0), SyntheticConfig(size=shape, n_cracks=(3, 5)))
        image = s.range_image.astype(np.float32)
        lat: list[float] = []
        _trace_image(image, image != 0, s.mask, lat)
        lat = lat[1:]
        print(f"{shape[0]} x {shape[1]}: {len(lat)} clicks, p50 {1000 * statistics.median(lat):.0f} "
              f"ms, max {1000 * max(lat):.0f} ms per click")
    preds, truths, clicks, pixels = [], [], 0, 0
    for i in range(args.images):
        s = generate_range_image((6, i), SyntheticConfig(size=512))
        image = s.range_image.astype(np.float32)
        traced, n = _trace_image(image, image != 0, s.mask, [])
        preds.append(traced)
        truths.append(s.mask)
        clicks += n
        pixels += int(s.mask.sum())
    m = evaluate_masks(preds, truths)
    print(f"{args.images} images of 512²: {clicks} clicks ({clicks / args.images:.1f} per image) "
          f"instead of {pixels} crack pixels to brush ({pixels / max(1, clicks):.0f} per click); "
          f"traced masks: tolerance F1 {m['f1_tol2']:.3f}, pixel F1 {m['f1']:.3f}, width "
          f"{m['width_pred']:.2f} px for {m['width_true']:.2f} px")


if __name__ == "__main__":
    main()
