"""U2PL contrastive loss and its per-class memory bank."""

from __future__ import annotations

import math

import pytest
import torch

from napari_crack_al.core.errors import ConfigError
from napari_crack_al.core.training.contrastive import (
    contrastive_sets,
    ContrastiveConfig,
    ContrastiveMemory,
    contrastive_loss,
    downsample_targets,
)
from napari_crack_al.core.training.losses import IGNORE_INDEX

torch.set_num_threads(1)


def _batch(seed: int = 0, b: int = 2, d: int = 8, h: int = 8, w: int = 8):
    """First half labelled (a crack stripe), second half unlabelled (pseudo labels)."""
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(b, d, h, w, generator=g)
    teacher = student + 0.1 * torch.randn(b, d, h, w, generator=g)
    logits = torch.randn(b, 2, h, w, generator=g)
    logits[:, 1, :, 3:5] += 3.0
    prob = torch.softmax(logits, dim=1)
    labels = prob.argmax(1)
    n_lab = b // 2
    labels[:n_lab] = 0
    labels[:n_lab, :, 3:5] = 1
    labels[:n_lab, 0, :] = IGNORE_INDEX
    is_labelled = torch.arange(b) < n_lab
    return student, teacher, labels, prob, is_labelled


def _loss(batch, progress=0.0, memory=None, config=None, generator=None):
    student, teacher, labels, prob, is_labelled = batch
    memory = memory if memory is not None else ContrastiveMemory(2, 1000)
    return contrastive_loss(
        student, teacher, labels, prob, None, is_labelled, progress, memory, config, generator
    )


# --------------------------------------------------------------------------- config
def test_config_validation_and_roundtrip():
    cfg = ContrastiveConfig()
    assert (cfg.low_rank, cfg.high_rank, cfg.temperature, cfg.memory_size) == (1, 2, 0.5, 30000)
    assert ContrastiveConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.labelled_rank == 1 and cfg.alpha(0.25) == pytest.approx(15.0)  # hard negatives
    assert ContrastiveConfig(labelled_negative_rank=None).labelled_rank == 2
    for bad in (
        {"low_rank": 0},
        {"low_rank": 2, "high_rank": 2},
        {"temperature": 0.0},
        {"alpha_start": 60.0},
        {"num_anchors": 0},
        {"anchor_threshold": 1.0},
        {"labelled_negative_rank": 0},
    ):
        with pytest.raises(ConfigError):
            ContrastiveConfig(**bad)
    with pytest.raises(ConfigError, match="valid keys"):
        ContrastiveConfig.from_dict({"tau": 0.1})


def test_rank_window_empty_for_two_classes_raises():
    # upstream defect (c): [3, 20) is empty with 2 classes -> refuse instead of silently returning 0
    with pytest.raises(ConfigError):
        _loss(_batch(), config=ContrastiveConfig(low_rank=3, high_rank=20))


# --------------------------------------------------------------------------- memory
def test_memory_fifo_capacity_and_classes():
    mem = ContrastiveMemory(num_classes=2, capacity=5)

    def rows(a, b):
        return torch.arange(a, b, dtype=torch.float32).unsqueeze(1).repeat(1, 3)

    mem.push(0, rows(0, 3))
    assert mem.size(0) == 3 and mem.size(1) == 0 and mem.features(1) is None
    mem.push(0, rows(3, 7))
    assert mem.size(0) == 5
    assert mem.features(0)[:, 0].tolist() == [2, 3, 4, 5, 6]  # oldest two evicted, order kept
    mem.push(0, rows(7, 9))
    assert mem.features(0)[:, 0].tolist() == [4, 5, 6, 7, 8]
    mem.push(0, rows(10, 22))  # more than the capacity at once: the newest 5 stay
    assert mem.features(0)[:, 0].tolist() == [17, 18, 19, 20, 21]
    mem.push(1, rows(100, 102))
    assert mem.features(1)[:, 0].tolist() == [100, 101]
    assert mem.features(0)[:, 0].tolist() == [17, 18, 19, 20, 21]
    s = mem.sample(1, 20, torch.Generator().manual_seed(0))
    assert s.shape == (20, 3) and set(s[:, 0].tolist()) <= {100.0, 101.0}
    f = torch.ones(2, 3, requires_grad=True)
    mem.push(1, f * 2)
    assert not mem.features(1).requires_grad
    with pytest.raises(ValueError):
        mem.push(2, rows(0, 1))
    with pytest.raises(ValueError):
        mem.push(1, torch.zeros(1, 4))
    mem.clear()
    assert mem.size(0) == 0
    with pytest.raises(ValueError):
        mem.sample(0, 1)


# --------------------------------------------------------------------------- loss
def test_nonzero_for_two_classes_and_grad_to_student_only():
    student, teacher, labels, prob, is_labelled = _batch()
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    mem = ContrastiveMemory(2, 1000)
    loss = contrastive_loss(student, teacher, labels, prob, None, is_labelled, 0.0, mem)
    assert loss.ndim == 0 and math.isfinite(loss.item()) and loss.item() > 0.1
    assert mem.size(0) > 0 and mem.size(1) > 0
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_deterministic_for_a_seed():
    a = _loss(_batch(), generator=torch.Generator().manual_seed(3))
    b = _loss(_batch(), generator=torch.Generator().manual_seed(3))
    c = _loss(_batch(), generator=torch.Generator().manual_seed(4))
    assert a.item() == b.item()
    assert a.item() != c.item()


def test_unreliable_unlabelled_pixels_become_negatives_of_their_second_class():
    student, teacher, labels, prob, _ = _batch(seed=1, b=1)
    mem = ContrastiveMemory(2, 1000)
    unl = torch.tensor([False])
    contrastive_loss(student, teacher, labels, prob, None, unl, 0.0, mem)
    # alpha = 20 % of 64 pixels -> 13 unreliable pixels, each a negative of the class it is not
    assert mem.size(0) + mem.size(1) == 13
    ent = -(prob * prob.log()).sum(1).flatten()
    top13 = ent.argsort(descending=True)[:13]
    n_crack_pred = int((prob.argmax(1).flatten()[top13] == 1).sum())
    assert mem.size(0) == n_crack_pred


def test_missing_class_uses_the_right_memory_bank():
    """Background-only then crack-only batches: banks stay keyed by class id."""
    d = 4
    e_bg = torch.tensor([1.0, 0, 0, 0])
    e_crack = torch.tensor([0, 1.0, 0, 0])

    def batch(cls):
        feats = (e_crack if cls == 1 else e_bg).view(1, d, 1, 1).expand(1, d, 4, 4).clone()
        labels = torch.full((1, 4, 4), cls, dtype=torch.long)
        prob = torch.zeros(1, 2, 4, 4)
        prob[:, cls] = 0.9
        prob[:, 1 - cls] = 0.1
        return feats, labels, prob

    mem = ContrastiveMemory(2, 100)
    lab = torch.tensor([True])
    every = ContrastiveConfig(labelled_negative_rank=None)  # every labelled pixel of the other class
    f, y, p = batch(0)
    student = f.clone().requires_grad_(True)
    loss0 = contrastive_loss(student, f, y, p, None, lab, 0.0, mem, every)
    # background anchors exist but no crack was ever seen: no negatives for class 0 yet
    assert loss0.item() == 0.0 and loss0.requires_grad
    loss0.backward()
    assert mem.size(0) == 0 and mem.size(1) == 16  # background pixels are negatives of "crack"
    f, y, p = batch(1)
    loss1 = contrastive_loss(f.clone(), f, y, p, None, lab, 0.0, mem, every)
    # crack anchors == prototype (cos 1); negatives from bank 1 are background (cos 0)
    expected = math.log(1 + 50 * math.exp(-1 / 0.5))
    assert loss1.item() == pytest.approx(expected, rel=1e-5)
    assert mem.size(0) == 16  # and crack pixels went into the background bank


def test_lower_when_anchors_align_with_positive():
    _, teacher, labels, prob, is_labelled = _batch(seed=2)
    bg = teacher[0, :, 2, 0]  # a labelled background teacher feature (negative of crack)

    def loss_with(student):
        torch.manual_seed(0)
        return _loss((student, teacher, labels, prob, is_labelled),
                     generator=torch.Generator().manual_seed(0)).item()

    aligned = teacher.clone()  # student == teacher: anchors near their prototypes
    crack = (labels == 1).unsqueeze(1).expand_as(teacher)
    misaligned = teacher.clone()
    misaligned[crack] = bg.view(1, -1, 1, 1).expand_as(teacher)[crack]
    assert loss_with(aligned) < loss_with(misaligned)


def test_zero_with_graph_when_no_anchors():
    student, teacher, labels, prob, _ = _batch()
    student.requires_grad_(True)
    unl = torch.tensor([False, False])
    # progress 1: the reliable window is empty and no image is labelled
    loss = contrastive_loss(student, teacher, labels, prob, None, unl, 1.0,
                            ContrastiveMemory(2, 100))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.all(student.grad == 0)


def test_downsample_targets_and_full_resolution_inputs():
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, 5, :] = 1  # a thin horizontal crack
    labels[0, :4, :4] = IGNORE_INDEX
    prob = torch.zeros(1, 2, 8, 8)
    prob[:, 1] = (labels == 1).float()
    prob[:, 0] = 1 - prob[:, 1]
    near = downsample_targets(labels, prob, (2, 2))
    mx = downsample_targets(labels, prob, (2, 2), label_mode="max")
    assert near.labels.dtype == torch.int64 and near.labels.shape == (1, 2, 2)
    assert mx.labels[0].tolist() == [[IGNORE_INDEX, 0], [1, 1]]
    assert int((near.labels == 1).sum()) == 0  # nearest loses the thin crack ...
    assert near.prob[0, 1, 1, 1].item() == pytest.approx(4 / 16)  # ... the area mean keeps it
    assert near.entropy.shape == (1, 2, 2)
    with pytest.raises(ConfigError):
        downsample_targets(labels, prob, (2, 2), label_mode="bilinear")

    # contrastive_loss reduces full-resolution targets itself, as the helper does (max labels,
    # anchors by the cell's largest probability)
    g = torch.Generator().manual_seed(9)
    full_prob = torch.softmax(torch.randn(2, 2, 16, 16, generator=g), 1)
    full_labels = full_prob.argmax(1)
    ds = downsample_targets(full_labels, full_prob, (4, 4), label_mode="max")
    sets = contrastive_sets(full_labels, full_prob, None, torch.tensor([True, False]), 0.0, (4, 4))
    assert torch.equal(sets.labels, ds.labels)
    for c in (0, 1):
        expected = sets.reliable & (ds.labels == c) & (ds.prob_max[:, c] > 0.3)
        assert torch.equal(sets.anchors[c], expected)


@pytest.mark.parametrize("width", [1, 2])
@pytest.mark.parametrize("offset", [0, 1, 2, 3])
def test_anchors_for_a_confident_thin_crack_at_every_alignment(width, offset):
    """A confident 1-px or 2-px crack gives crack anchors wherever it falls in the 4x4 cells."""
    labels = torch.zeros(1, 32, 32, dtype=torch.long)
    labels[0, :, 8 + offset:8 + offset + width] = 1
    prob = torch.zeros(1, 2, 32, 32)
    prob[:, 1] = torch.where(labels == 1, 0.95, 0.02)
    prob[:, 0] = 1 - prob[:, 1]
    sets = contrastive_sets(labels, prob, None, torch.tensor([True]), 0.0, (8, 8))
    cells = (offset + width - 1) // 4 - offset // 4 + 1  # cell columns the crack touches
    assert int(sets.anchors[1].sum()) == 8 * cells  # every cell along the crack is an anchor
    assert bool(sets.anchors[0].any())
    # the top-left sample of each cell (the old reduction) finds it only at offset 0
    old = contrastive_sets(labels, prob, None, torch.tensor([True]), 0.0, (8, 8),
                           ContrastiveConfig(label_mode="nearest"))
    assert bool(old.anchors[1].any()) == (offset == 0 or (width == 2 and offset == 3))


def test_labelled_negatives_are_the_hard_ones():
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, 2] = 1  # a crack row
    prob = torch.zeros(1, 2, 8, 8)
    prob[:, 1] = 0.05
    prob[0, 1, 2] = 0.9
    prob[0, 1, 6, :3] = 0.8  # the teacher calls three background pixels crack
    prob[:, 0] = 1 - prob[:, 1]
    sets = contrastive_sets(labels, prob, None, torch.tensor([True]), 0.0, (8, 8))
    hard = torch.zeros(1, 8, 8, dtype=torch.bool)
    hard[0, 6, :3] = True
    assert torch.equal(sets.negatives[1], hard)  # not the 53 easy background pixels
    assert not sets.negatives[0].any()  # every crack pixel is called crack: none is hard
