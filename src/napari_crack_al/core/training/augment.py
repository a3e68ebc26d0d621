"""Augmentations for training on range images.

*Weak* augmentation (:func:`weak_augment`, numpy, per image): a random square
crop (centred near a crack pixel with some probability, to balance the rare
crack class), padding of images smaller than the crop, random flips, random
multiples of 90° rotations and a gain / offset jitter of the normalised values.
Padding is always marked *ignore* (255) in the target, never turned into a
class, and no interpolation ever blurs a mask.

*Strong* augmentation of unlabelled batches is CutMix (:func:`cutmix_masks`,
:func:`apply_cutmix`): with probability 0.5 per batch, image ``i`` receives a box
of area ``H·W/2`` (width uniform in ``(W/2, W]``, height = area / width, random
position) from image ``(i + 1) mod B``; pseudo labels, confidences, entropy,
ignore masks and teacher features are mixed with the same boxes.

Randomness comes only from the ``numpy.random.Generator`` passed in, so the
whole pipeline is reproducible for a seed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "IGNORE_INDEX",
    "make_target",
    "random_crop",
    "weak_augment",
    "cutmix_box",
    "cutmix_masks",
    "apply_cutmix",
    "strong_photometric",
]

logger = logging.getLogger(__name__)

IGNORE_INDEX = 255


def make_target(mask: np.ndarray | None, valid: np.ndarray) -> np.ndarray:
    """Training target ``uint8 (H, W)``: 0 background, 1 crack, 255 ignore (invalid pixels).

    Parameters
    ----------
    mask : np.ndarray or None
        bool (H, W), True = crack; ``None`` for an unlabelled image (all valid pixels 0).
    valid : np.ndarray
        bool (H, W), False where the sensor gave no measurement.
    """
    valid = np.asarray(valid, dtype=bool)
    target = np.zeros(valid.shape, dtype=np.uint8)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != valid.shape:
            raise ValueError(f"mask {mask.shape} and valid {valid.shape} differ in shape")
        target[mask] = 1
    target[~valid] = IGNORE_INDEX
    return target


def _pad_to(image: np.ndarray, target: np.ndarray, size: int,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Pad to at least ``size`` in both dimensions at a random placement (ignore in the target)."""
    h, w = image.shape
    ph, pw = max(0, size - h), max(0, size - w)
    if ph == 0 and pw == 0:
        return image, target
    top = int(rng.integers(0, ph + 1)) if ph else 0
    left = int(rng.integers(0, pw + 1)) if pw else 0
    img = np.zeros((h + ph, w + pw), dtype=image.dtype)
    tgt = np.full((h + ph, w + pw), IGNORE_INDEX, dtype=target.dtype)
    img[top:top + h, left:left + w] = image
    tgt[top:top + h, left:left + w] = target
    return img, tgt


def random_crop(image: np.ndarray, target: np.ndarray, size: int, rng: np.random.Generator, *,
                crack_prob: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Random ``size × size`` crop of an image and its target (padded with ignore when smaller).

    Parameters
    ----------
    image : np.ndarray
        float32 (H, W).
    target : np.ndarray
        uint8 (H, W), 0/1/255.
    size : int
        Crop side in pixels.
    rng : numpy.random.Generator
        Source of randomness.
    crack_prob : float
        Probability of centring the crop (± size / 4) on a random crack pixel when
        the target has one.

    Returns
    -------
    (np.ndarray, np.ndarray)
        Copies of shape (size, size).
    """
    if image.shape != target.shape or image.ndim != 2:
        raise ValueError(f"image {image.shape} and target {target.shape} must be equal 2-D shapes")
    image, target = _pad_to(image, target, size, rng)
    h, w = image.shape
    y0 = x0 = None
    if crack_prob > 0 and rng.random() < crack_prob:
        ys, xs = np.nonzero(target == 1)
        if ys.size:
            k = int(rng.integers(0, ys.size))
            jitter = max(1, size // 4)
            cy = int(ys[k]) + int(rng.integers(-jitter, jitter + 1))
            cx = int(xs[k]) + int(rng.integers(-jitter, jitter + 1))
            y0 = int(np.clip(cy - size // 2, 0, h - size))
            x0 = int(np.clip(cx - size // 2, 0, w - size))
    if y0 is None or x0 is None:
        y0 = int(rng.integers(0, h - size + 1))
        x0 = int(rng.integers(0, w - size + 1))
    return (image[y0:y0 + size, x0:x0 + size].copy(),
            target[y0:y0 + size, x0:x0 + size].copy())


def weak_augment(image: np.ndarray, target: np.ndarray, rng: np.random.Generator, *,
                 crop_size: int, flip: bool = True, rotate90: bool = True,
                 gain_jitter: float = 0.0, offset_jitter: float = 0.0,
                 crack_prob: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Crop, flip, rotate by k·90° and jitter gain/offset (image and target stay aligned).

    Parameters
    ----------
    image : np.ndarray
        Normalised float32 (H, W) (invalid pixels are 0).
    target : np.ndarray
        uint8 (H, W): 0/1/255 (unlabelled images: 0 or 255).
    rng : numpy.random.Generator
        Source of randomness.
    crop_size : int
        Side of the square crop.
    flip, rotate90 : bool
        Enable random flips (each axis with probability 0.5) / random k·90° rotation.
    gain_jitter, offset_jitter : float
        ``image * U(1 - g, 1 + g) + U(-o, o)`` on the non-ignored pixels.
    crack_prob : float
        See :func:`random_crop`.

    Returns
    -------
    (np.ndarray, np.ndarray)
        float32 and uint8 arrays of shape (crop_size, crop_size), contiguous.
    """
    img, tgt = random_crop(np.asarray(image, dtype=np.float32), np.asarray(target, dtype=np.uint8),
                           crop_size, rng, crack_prob=crack_prob)
    if flip:
        if rng.random() < 0.5:
            img, tgt = img[:, ::-1], tgt[:, ::-1]
        if rng.random() < 0.5:
            img, tgt = img[::-1, :], tgt[::-1, :]
    if rotate90:
        k = int(rng.integers(0, 4))
        if k:
            img, tgt = np.rot90(img, k), np.rot90(tgt, k)
    img = np.ascontiguousarray(img, dtype=np.float32)
    tgt = np.ascontiguousarray(tgt, dtype=np.uint8)
    if gain_jitter > 0 or offset_jitter > 0:
        gain = 1.0 + (rng.uniform(-gain_jitter, gain_jitter) if gain_jitter > 0 else 0.0)
        offset = rng.uniform(-offset_jitter, offset_jitter) if offset_jitter > 0 else 0.0
        keep = tgt != IGNORE_INDEX
        img[keep] = img[keep] * np.float32(gain) + np.float32(offset)
    return img, tgt


# --------------------------------------------------------------------------- CutMix
def cutmix_box(height: int, width: int, rng: np.random.Generator, *,
               align: int = 1) -> tuple[int, int, int, int]:
    """One CutMix box ``(y0, x0, box_h, box_w)`` of area ≈ ``H·W/2``.

    The width is uniform in ``(W/2, W]``, the height is ``area / width`` (rounded,
    at most ``H``), the position uniform. With ``align > 1`` (the feature stride)
    the box edges are multiples of ``align`` so that it maps exactly onto a
    feature map ``align`` times smaller.
    """
    if height < 2 or width < 2 or align < 1:
        raise ValueError(f"need height, width >= 2 and align >= 1, got {height}, {width}, {align}")
    area = height * width / 2.0
    bw = float(rng.uniform(width / 2.0, width))
    if align > 1 and width >= 2 * align and height >= 2 * align:
        bw_i = int(np.clip(round(bw / align) * align, align * (width // (2 * align)) + align,
                           (width // align) * align))
        bh_i = int(np.clip(round(area / bw_i / align) * align, align, (height // align) * align))
        y0 = align * int(rng.integers(0, (height - bh_i) // align + 1))
        x0 = align * int(rng.integers(0, (width - bw_i) // align + 1))
        return y0, x0, bh_i, bw_i
    bw_i = int(np.clip(int(np.ceil(bw)), width // 2 + 1, width))
    bh_i = int(np.clip(round(area / bw_i), 1, height))
    y0 = int(rng.integers(0, height - bh_i + 1))
    x0 = int(rng.integers(0, width - bw_i + 1))
    return y0, x0, bh_i, bw_i


def cutmix_masks(batch: int, height: int, width: int, rng: np.random.Generator, *,
                 prob: float = 0.5, align: int = 1) -> np.ndarray | None:
    """Per-image CutMix boxes as a bool ``(B, H, W)`` mask, or ``None`` (probability ``1 − prob``).

    ``mask[i]`` is True where image ``i`` takes its pixels from image ``(i + 1) mod B``.
    One draw decides for the whole batch, then one box is drawn per image.
    """
    if rng.random() >= prob:
        return None
    masks = np.zeros((batch, height, width), dtype=bool)
    for i in range(batch):
        y0, x0, bh, bw = cutmix_box(height, width, rng, align=align)
        masks[i, y0:y0 + bh, x0:x0 + bw] = True
    return masks


def apply_cutmix(tensor: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mix a batch with its CutMix boxes: ``out[i] = where(mask[i], t[(i+1) % B], t[i])``.

    Parameters
    ----------
    tensor : Tensor
        ``(B, H, W)`` or ``(B, C, H, W)`` (images, labels, probabilities, entropy,
        ignore masks, features at a lower resolution...).
    mask : Tensor or None
        bool ``(B, H0, W0)`` from :func:`cutmix_masks`; resized (nearest) when the
        tensor's spatial size differs. ``None`` returns ``tensor`` unchanged.

    Returns
    -------
    Tensor
        Same shape and dtype as ``tensor``.
    """
    if mask is None:
        return tensor
    import torch
    import torch.nn.functional as F

    if tensor.ndim not in (3, 4) or tensor.shape[0] != mask.shape[0]:
        raise ValueError(f"cannot mix {tuple(tensor.shape)} with mask {tuple(mask.shape)}")
    m = mask.to(tensor.device)
    size = tuple(tensor.shape[-2:])
    if tuple(m.shape[-2:]) != size:
        m = F.interpolate(m[:, None].float(), size=size, mode="nearest")[:, 0] > 0.5
    partner = torch.roll(tensor, shifts=-1, dims=0)  # partner[i] = tensor[(i + 1) % B]
    if tensor.ndim == 4:
        m = m[:, None]
    return torch.where(m.bool(), partner, tensor)


def strong_photometric(images: torch.Tensor, rng: np.random.Generator, *,
                       strength: float = 0.5, ignore: torch.Tensor | None = None) -> torch.Tensor:
    """A strong photometric view of normalised images (the "strong" view of weak-to-strong training).

    Per image: gain ``U(1 - s, 1 + s)``, offset ``U(-s, s)``, Gaussian noise of standard
    deviation ``U(0, s / 2)``, and with probability 0.5 a 3x3 box blur. Geometry is not
    changed, so pseudo labels stay aligned. Ignored pixels keep their value (0).

    Parameters
    ----------
    images : Tensor
        ``(B, C, H, W)`` normalised images.
    rng : numpy.random.Generator
        Source of the per-image parameters and of the noise seed.
    strength : float
        ``s`` above, in [0, 1].
    ignore : Tensor, optional
        ``(B, H, W)`` bool, pixels to leave untouched.
    """
    import torch
    import torch.nn.functional as F

    b = images.shape[0]
    s = float(strength)
    gain = torch.from_numpy(rng.uniform(1 - s, 1 + s, b)).to(images).view(b, 1, 1, 1)
    offset = torch.from_numpy(rng.uniform(-s, s, b)).to(images).view(b, 1, 1, 1)
    sigma = torch.from_numpy(rng.uniform(0, s / 2, b)).to(images).view(b, 1, 1, 1)
    gen = torch.Generator(device="cpu").manual_seed(int(rng.integers(2**31)))
    noise = torch.randn(images.shape, generator=gen).to(images)
    out = images * gain + offset + sigma * noise
    blur = torch.from_numpy(rng.random(b) < 0.5).to(images.device)
    if bool(blur.any()):
        blurred = F.avg_pool2d(F.pad(out, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        out = torch.where(blur.view(b, 1, 1, 1), blurred, out)
    if ignore is not None:
        out = torch.where(ignore[:, None].to(out.device), images, out)
    return out
