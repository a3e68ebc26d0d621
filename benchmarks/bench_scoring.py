"""Scoring throughput: plain tiled inference vs ``score_images`` on the same images, one run.

``score_images`` must cost at most 1.2x plain inference (it reuses the single forward
pass for the probability, the entropy, every score and the pooled embedding). The
MC-dropout BALD costs its T extra passes; it is timed separately with ``--mc-passes``.

Usage::

    python benchmarks/bench_scoring.py [--n 8] [--size 512] [--device auto] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from napari_crack_al.core.active.scoring import score_images
from napari_crack_al.core.device import configure_threads, describe_device, select_device
from napari_crack_al.core.inference import predict_image
from napari_crack_al.core.model import build_model, preset_config
from napari_crack_al.core.normalize import normalize_for_model
from napari_crack_al.core.io.range_io import RangeImage
from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image


def _images(n: int, size: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    cfg = SyntheticConfig(size=size)
    out = []
    for i in range(n):
        s = generate_range_image((7, i), cfg)
        valid = s.range_image > 0
        ri = RangeImage(s.range_image.astype(np.float32), valid, None, "uint16")
        out.append((f"img{i:03d}", normalize_for_model(ri), valid))
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="images (default 8)")
    parser.add_argument("--size", type=int, default=512, help="image side (default 512)")
    parser.add_argument("--preset", default="fast", help="model preset (fast, accurate)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mc-passes", type=int, default=0, help="also time BALD with T passes")
    args = parser.parse_args()

    device = select_device(args.device)
    if device.type == "cpu":
        configure_threads(0)
    torch.manual_seed(0)
    model = build_model(preset_config(args.preset)).to(device).eval()
    images = _images(args.n, args.size)
    kw = dict(tile=args.tile, overlap=min(64, args.tile // 4), batch_size=args.batch_size,
              device=device)
    print(f"{args.n} images {args.size}x{args.size}, preset {args.preset}, tile {args.tile}, "
          f"{describe_device(device)}")

    def plain() -> None:
        for _, img, _ in images:
            predict_image(model, img, **kw)

    def scored() -> None:
        score_images(model, images, **kw)

    plain()
    scored()  # warm-up (allocator, cudnn autotune, caches)
    t_plain, t_score = [], []
    for _ in range(args.repeats):  # interleaved, so drifts hit both alike
        _sync(device)
        t = time.perf_counter()
        plain()
        _sync(device)
        t_plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        scored()
        _sync(device)
        t_score.append(time.perf_counter() - t)
    p, s = statistics.median(t_plain), statistics.median(t_score)
    print(f"plain inference : {p:8.3f} s  ({p / args.n * 1e3:7.1f} ms/image)")
    print(f"score_images    : {s:8.3f} s  ({s / args.n * 1e3:7.1f} ms/image)  "
          f"[scores + embedding from the same pass]")
    print(f"ratio score/plain = {s / p:.3f}  (target <= 1.2)")
    if args.mc_passes:
        t = time.perf_counter()
        score_images(model, images, mc_passes=args.mc_passes, **kw)
        _sync(device)
        m = time.perf_counter() - t
        print(f"with BALD T={args.mc_passes}: {m:8.3f} s  ratio {m / p:.2f} "
              f"(expected about {1 + args.mc_passes})")


if __name__ == "__main__":
    main()
