"""Speed of crack measurements (``measure_cracks``) and of the effort lengths, as ratios.

Times, alternately in one process, on 2048² masks with five 5-px-wide cracks: a plain
``skimage.morphology.skeletonize`` of the mask (the unavoidable part), ``measure_cracks``
(skeleton graph, lengths, widths, orientations) and ``effort_lengths`` against a shifted
copy (what every accept computes). Prints the medians and the ratios to the skeleton.

    python benchmarks/bench_measurements.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    """Time the three operations and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    import numpy as np
    from scipy import ndimage as ndi
    from skimage.morphology import skeletonize

    from napari_crack_al.core.export.measurements import measure_cracks
    from napari_crack_al.core.metrics import effort_lengths

    m = np.zeros((2048, 2048), bool)
    rows = np.arange(2048)
    for k in range(5):
        m[rows, np.clip((rows * 0.3 + k * 300).astype(int), 0, 2047)] = True
    m = ndi.binary_dilation(m, iterations=2)
    shifted = np.roll(m, 1, axis=1)
    jobs = {"skeletonize": lambda: skeletonize(m),
            "measure_cracks": lambda: measure_cracks(m, pixel_size_mm=1.0),
            "effort_lengths": lambda: effort_lengths(shifted, m)}
    times: dict[str, list[float]] = {k: [] for k in jobs}
    for _ in range(args.repeats):
        for name, job in jobs.items():
            t0 = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - t0)
    ref = statistics.median(times["skeletonize"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:15s} {med:7.3f} s  {med / ref:5.2f} x skeletonize")


if __name__ == "__main__":
    main()
