"""Time the synthetic range-image generator (``make benchmarks``)."""

from __future__ import annotations

import time

import numpy as np

from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image


def main() -> None:
    for size in (256, 512, 1024):
        cfg = SyntheticConfig(size=size)
        generate_range_image(0, cfg)  # warm-up
        times, cover = [], []
        for i in range(10):
            t = time.perf_counter()
            sample = generate_range_image((1, i), cfg)
            times.append(time.perf_counter() - t)
            cover.append(sample.mask.mean())
        print(f"{size:5d} x {size:<5d} median {np.median(times) * 1e3:7.1f} ms  "
              f"best {min(times) * 1e3:7.1f} ms  mean crack cover {np.mean(cover):.2%}")


if __name__ == "__main__":
    main()
