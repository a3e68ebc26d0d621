"""Unlabelled images read when a batch draws them: bounded memory, bad files passed by."""

from __future__ import annotations

import numpy as np
import pytest

from napari_crack_al.core.errors import ImageReadError
from napari_crack_al.core.training.config import TrainConfig
from napari_crack_al.core.training.data import BatchSampler, TrainingImage, make_batch
from napari_crack_al.core.training.lazy_images import LazyImages, NoReadableImage, image_names

SIDE = 64
IMAGE_BYTES = SIDE * SIDE * (4 + 1)  # float32 image + bool valid


def _image(name: str) -> TrainingImage:
    rng = np.random.default_rng(int(name[1:]))
    return TrainingImage(name=name, image=rng.standard_normal((SIDE, SIDE)).astype(np.float32),
                         valid=np.ones((SIDE, SIDE), dtype=bool))


class _Disk:
    """Counts reads; the names in ``bad`` cannot be read."""

    def __init__(self, bad: tuple[str, ...] = ()) -> None:
        self.reads: list[str] = []
        self.bad = bad

    def __call__(self, name: str) -> TrainingImage:
        self.reads.append(name)
        if name in self.bad:
            raise ImageReadError(f"/pool/{name}.png", "truncated or corrupt")
        return _image(name)


def test_a_pool_of_any_size_holds_at_most_its_budget():
    disk = _Disk()
    names = [f"i{k}" for k in range(200)]
    pool = LazyImages(names, disk, cache_bytes=3 * IMAGE_BYTES)
    rng = np.random.default_rng(0)
    sampler = BatchSampler(len(pool), 4, rng)
    for _ in range(60):  # 240 crops drawn from 200 images
        make_batch(pool, sampler.next(), rng, crop_size=32)
    assert pool.peak_bytes <= 4 * IMAGE_BYTES  # the budget plus the image being returned
    assert pool.cached_bytes <= 3 * IMAGE_BYTES
    assert len(disk.reads) == pool.loads > 200  # images are read again, not kept
    np.testing.assert_array_equal(pool[7].image, _image("i7").image)


def test_recently_used_images_are_not_read_again():
    disk = _Disk()
    pool = LazyImages(["i0", "i1", "i2"], disk, cache_bytes=2 * IMAGE_BYTES)
    for index in (0, 1, 0, 1, 0):
        pool[index]
    assert disk.reads == ["i0", "i1"]
    pool[2]  # evicts i1, the least recently used
    pool[0]
    pool[1]
    assert disk.reads == ["i0", "i1", "i2", "i1"]


def test_names_are_known_without_reading():
    disk = _Disk()
    pool = LazyImages(["a1", "b2"], disk)
    assert len(pool) == 2 and image_names(pool) == ["a1", "b2"] and disk.reads == []
    assert image_names([_image("i3")]) == ["i3"]


def test_an_unreadable_image_is_reported_once_and_the_next_one_used():
    disk = _Disk(bad=("i1",))
    pool = LazyImages(["i0", "i1", "i2"], disk)
    assert pool[1].name == "i2"
    assert pool[1].name == "i2"
    assert disk.reads.count("i1") == 1
    assert pool.failed == {"i1": "truncated or corrupt"}
    with pytest.raises(NoReadableImage, match="none of the 1 images can be read"):
        LazyImages(["i9"], _Disk(bad=("i9",)))[0]
    with pytest.raises(IndexError):
        pool[3]


def _synthetic(k: int, labeled: bool) -> TrainingImage:
    from napari_crack_al.core.io.range_io import RangeImage
    from napari_crack_al.core.synthetic import SyntheticConfig, generate_range_image
    from napari_crack_al.core.training.data import from_range_image

    s = generate_range_image((0, k), SyntheticConfig(size=80, distractors=False))
    ri = RangeImage(s.range_image.astype(np.float32), s.range_image > 0, None, "uint16")
    return from_range_image(ri, s.mask if labeled else None, name=f"u{k}")


def test_the_trainer_reads_a_lazy_pool_batch_by_batch(tmp_path):
    import torch

    from napari_crack_al.core.events import Outcome
    from napari_crack_al.core.training.trainer import train

    labeled = [_synthetic(k, True) for k in range(2)]
    reads: list[str] = []

    def load(name: str) -> TrainingImage:
        reads.append(name)
        return _synthetic(int(name[1:]), False)

    names = [f"u{k}" for k in range(2, 8)]
    pool = LazyImages(names, load, cache_bytes=0)  # keeps only the image being returned
    config = TrainConfig(mode="semi", iterations=4, crop_size=64, batch_size=2,
                         unlabeled_batch_size=2, warmup_iterations=1, semi_entry_f1=0.0,
                         threads=1, seed=0, device="cpu")
    run = Outcome(train(labeled, pool, config, checkpoint_path=tmp_path / "m.pt"))
    for _ in run:
        pass
    assert run.value is not None and run.value.checkpoint is not None
    assert len(reads) >= 2 * 3  # two crops in each of the three semi steps, one image cached
    assert pool.peak_bytes <= 80 * 80 * 5
    meta = torch.load(run.value.checkpoint, weights_only=True)["metadata"]
    assert meta["unlabeled_images"] == names


def test_a_pool_of_unreadable_files_leaves_training_supervised(tmp_path):
    from napari_crack_al.core.events import Outcome
    from napari_crack_al.core.training.trainer import train

    labeled = [_synthetic(k, True) for k in range(2)]
    pool = LazyImages(["u8", "u9"], _Disk(bad=("u8", "u9")))
    config = TrainConfig(mode="semi", iterations=3, crop_size=64, batch_size=2,
                         unlabeled_batch_size=2, warmup_iterations=1, semi_entry_f1=0.0,
                         threads=1, seed=0, device="cpu")
    run = Outcome(train(labeled, pool, config, checkpoint_path=tmp_path / "m.pt"))
    events = list(run)
    assert run.value is not None and run.value.checkpoint is not None
    assert sorted(pool.failed) == ["u8", "u9"]
    steps = [e for e in events if hasattr(e, "losses")]
    assert len(steps) == 3
    assert all(e.losses["unsup"] == 0.0 and e.losses["contrastive"] == 0.0 for e in steps)
