"""Inference latency per model preset at 512² and 2048² (tiled, ``predict_image``).

Prints, for each preset and image size, the median wall time of ``predict_image``
(tile 512, overlap 64, batch 4 tiles) over a few runs on this machine's device.

    python benchmarks/bench_inference.py [--device auto] [--repeats 3] [--sizes 512 2048]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from napari_crack_al.core.device import configure_threads, describe_device, select_device
from napari_crack_al.core.inference import predict_image
from napari_crack_al.core.model import PRESETS, build_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    args = ap.parse_args()
    configure_threads(0)
    device = select_device(args.device)
    print(f"device: {describe_device(device)}; tile 512, overlap 64, 4 tiles per batch")
    rng = np.random.default_rng(0)
    for name in args.presets:
        torch.manual_seed(0)
        model = build_model(PRESETS[name].model).to(device).eval()
        n_params = sum(p.numel() for p in model.parameters()) / 1e6
        for size in args.sizes:
            image = rng.standard_normal((size, size)).astype(np.float32)
            predict_image(model, image[:512, :512], device=device)  # warm-up
            times = []
            repeats = args.repeats if size <= 1024 or device.type != "cpu" else max(1, args.repeats - 2)
            for _ in range(repeats):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
                predict_image(model, image, device=device)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
            med = statistics.median(times)
            print(f"  {name:9s} ({n_params:5.1f} M params) {size:5d}²: {med:8.2f} s "
                  f"({size * size / med / 1e6:6.2f} Mpx/s, {repeats} runs)")


if __name__ == "__main__":
    main()
