"""Cost of a training step and of inference for each decoder (and output stride), as ratios.

Builds the fast preset's ResNet-18 with every decoder variant and times, alternately in
one process (so that load from other processes hits them alike), a supervised training
step (forward with the aux head, CE, backward, SGD) on a batch of 256² crops and one
512² inference. Prints the median times and the ratios to plain DeepLabV3+ (U2PL's own
decoder, output stride 16). docs/model.md uses these ratios to compare decoders at the
same CPU seconds.

    python benchmarks/bench_decoders.py [--threads 2] [--batch 4] [--crop 256] [--repeats 6]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

VARIANTS = (
    ("deeplabv3plus", 16),
    ("deeplabv3plus_unet", 16),
    ("unet", 16),
    ("unet", 32),
)


def _models(torch):  # noqa: ANN001, ANN202
    from napari_crack_al.core.model import build_model, preset_config

    base = preset_config("fast")
    out = {}
    for decoder, stride in VARIANTS:
        torch.manual_seed(0)
        out[(decoder, stride)] = build_model(replace(base, decoder=decoder, output_stride=stride))
    return out


def main() -> None:
    """Time every variant and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=6)
    args = ap.parse_args()
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    models = _models(torch)
    opts = {k: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9) for k, m in models.items()}
    x = torch.randn(args.batch, 1, args.crop, args.crop)
    y = torch.randint(0, 2, (args.batch, args.crop, args.crop))
    image = torch.randn(1, 1, 512, 512)
    step = {k: [] for k in models}
    infer = {k: [] for k in models}
    for r in range(args.repeats + 1):
        for k, m in models.items():
            m.train()
            t0 = time.perf_counter()
            out = m(x)
            loss = F.cross_entropy(out.logits, y) + 0.4 * F.cross_entropy(out.aux_logits, y)
            opts[k].zero_grad()
            loss.backward()
            opts[k].step()
            t1 = time.perf_counter()
            m.eval()
            with torch.inference_mode():
                m(image)
            t2 = time.perf_counter()
            if r:  # the first round pays for allocations
                step[k].append(t1 - t0)
                infer[k].append(t2 - t1)
    ref = ("deeplabv3plus", 16)
    s0, i0 = statistics.median(step[ref]), statistics.median(infer[ref])
    print(f"{args.threads} threads, batch {args.batch} x {args.crop}², {args.repeats} repeats")
    print(f"{'decoder':22s} {'OS':>3s} {'params':>8s} {'step s':>7s} {'ratio':>6s} "
          f"{'512² s':>7s} {'ratio':>6s}")
    for k, m in models.items():
        n = sum(p.numel() for p in m.parameters()) / 1e6
        s, i = statistics.median(step[k]), statistics.median(infer[k])
        print(f"{k[0]:22s} {k[1]:3d} {n:7.2f}M {s:7.3f} {s / s0:6.2f} {i:7.3f} {i / i0:6.2f}")


if __name__ == "__main__":
    main()
