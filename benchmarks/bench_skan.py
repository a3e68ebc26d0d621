"""Our skeleton graph against skan's: the same crack lengths and segments? as fast?

The hardening issue asks whether skan (https://skeleton-analysis.org) could replace
``core/skeleton/graph.py``. skan is not a dependency; install it (with numba) to run this:

    pip install skan
    python benchmarks/bench_skan.py [--n 25] [--size 512] [--seed 0]

On the ground truth of synthetic range images, crack by crack (connected components of
5 px or more), skan summarises the same Lee skeleton the measurements use; printed: the
median ratio of skan's total branch length to our crack length, the share of cracks
with the same number of segments, and the time of both on the whole set (skan's first
call, numba's compilation, timed apart), measured in one run.
"""

from __future__ import annotations

import argparse
import statistics
import time


def _ours(masks):  # noqa: ANN001, ANN202
    from napari_crack_al.core.export.measurements import measure_cracks

    return [measure_cracks(m, min_area=5) for m in masks]


def _skan(masks):  # noqa: ANN001, ANN202
    import numpy as np
    import skan
    from skimage.morphology import skeletonize

    from napari_crack_al.core.export.measurements import label_cracks

    out = []
    for mask in masks:
        labels, n = label_cracks(mask, min_area=5)
        per = []
        for lab in range(1, n + 1):
            skel = skeletonize(labels == lab, method="lee").astype(bool)
            if skel.sum() < 2:
                per.append((float(skel.sum()), 1))
                continue
            table = skan.summarize(skan.Skeleton(skel), separator="_")
            per.append((float(np.sum(table["branch_distance"])), int(len(table))))
        out.append(per)
    return out


def main() -> None:
    """Measure both on the same masks and print the comparison."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=25)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    try:
        import skan  # noqa: F401
    except ImportError:
        print("skan is not installed (pip install skan): nothing to compare")
        return
    from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image

    cfg = SyntheticConfig(size=args.size)
    masks = [generate_range_image((args.seed, i), cfg).mask for i in range(args.n)]
    t0 = time.perf_counter()
    _skan(masks[:1])  # numba compiles here
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = _ours(masks)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = _skan(masks)
    t_skan = time.perf_counter() - t0
    ratios, same = [], []
    for ours_m, skan_m in zip(ours, theirs):
        for crack, (length, branches) in zip(ours_m, skan_m):
            if crack.length_px > 0:
                ratios.append(length / crack.length_px)
            same.append(branches == crack.n_segments)
    print(f"{len(ratios)} cracks on {args.n} synthetic {args.size}² masks")
    print(f"skan length / our length: median {statistics.median(ratios):.3f}, "
          f"range {min(ratios):.3f}-{max(ratios):.3f}")
    print(f"same number of segments: {sum(same)}/{len(same)} cracks")
    print(f"time: ours {t_ours:.2f} s, skan {t_skan:.2f} s ({t_skan / t_ours:.2f}x ours; "
          f"numba compilation {t_compile:.1f} s once)")


if __name__ == "__main__":
    main()
