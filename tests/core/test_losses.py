"""Supervised / unsupervised losses on tiny hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from napari_crack_al.core.training.losses import (
    IGNORE_INDEX,
    aux_loss,
    cross_entropy_loss,
    dice_loss,
    drop_percent_schedule,
    entropy_map,
    inverse_frequency_weights,
    pseudo_label_mask,
    select_by_rank,
    supervised_loss,
)
from napari_crack_al.core.training.unsupervised import unsupervised_loss

torch.set_num_threads(1)


def _two_pixel_case():
    # pixel 0: logits (0, 0) -> p_crack 0.5 ; pixel 1: (0, ln 3) -> p_crack 0.75 ; both crack
    logits = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]]).T.reshape(1, 2, 1, 2)
    target = torch.tensor([[[1, 1]]])
    return logits, target


def test_ce_dice_by_hand():
    logits, target = _two_pixel_case()
    ce = (-math.log(0.5) - math.log(0.75)) / 2
    dice = 1 - (2 * 1.25 + 1) / (1.25 + 2 + 1)
    assert cross_entropy_loss(logits, target).item() == pytest.approx(ce, abs=1e-6)
    assert dice_loss(logits, target).item() == pytest.approx(dice, abs=1e-6)
    assert supervised_loss(logits, target).item() == pytest.approx(0.5 * ce + 0.5 * dice, abs=1e-6)
    w = supervised_loss(logits, target, ce_weight=1.0, dice_weight=0.0).item()
    assert w == pytest.approx(ce, abs=1e-6)


def test_dice_on_empty_target_is_sane():
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    no_crack = torch.zeros(2, 2, 4, 4)
    no_crack[:, 0] = 20.0
    assert dice_loss(no_crack, target).item() < 1e-3
    crack = torch.zeros(2, 2, 4, 4)
    crack[:, 1] = 10.0
    assert dice_loss(crack, target).item() > 0.95
    # the supervised loss of a confident correct "no crack" prediction is ~0
    assert supervised_loss(no_crack, target).item() < 1e-3


def test_dice_is_crack_only_not_dominated_by_background():
    target = torch.zeros(1, 10, 10, dtype=torch.long)
    target[0, 5, :] = 1  # a thin crack: 10 % of the pixels
    logits = torch.zeros(1, 2, 10, 10)
    logits[:, 0] = 10.0  # predicts all background: 90 % pixel accuracy
    assert dice_loss(logits, target).item() > 0.9


def test_ignore_index_is_respected():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 2, 6, 6, generator=g)
    target = torch.randint(0, 2, (2, 6, 6), generator=g)
    target[0, :2] = IGNORE_INDEX
    target[1, :, 4:] = IGNORE_INDEX
    other = logits.clone()
    ignored = (target == IGNORE_INDEX).unsqueeze(1).expand_as(logits)
    other[ignored] = torch.randn(int(ignored.sum()), generator=g) * 50
    w = [0.3, 3.0]
    for fn in (supervised_loss, cross_entropy_loss, dice_loss):
        assert fn(logits, target).item() == pytest.approx(fn(other, target).item(), abs=1e-6)
    a = supervised_loss(logits, target, class_weights=w).item()
    assert a == pytest.approx(supervised_loss(other, target, class_weights=w).item(), abs=1e-6)
    # gradients at ignored pixels are exactly zero, elsewhere not
    x = logits.clone().requires_grad_(True)
    supervised_loss(x, target).backward()
    assert torch.all(x.grad[ignored] == 0)
    assert x.grad[~ignored].abs().sum() > 0


def test_weighted_ce_matches_torch():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 2, 5, 5, generator=g)
    target = torch.randint(0, 2, (2, 5, 5), generator=g)
    target[0, 0] = IGNORE_INDEX
    w = torch.tensor([0.5, 4.0])
    ref = F.cross_entropy(logits, target, weight=w, ignore_index=IGNORE_INDEX)
    assert cross_entropy_loss(logits, target, class_weights=w).item() == pytest.approx(
        ref.item(), abs=1e-6
    )


def test_all_ignored_gives_zero_with_graph():
    logits = torch.randn(1, 2, 3, 3, requires_grad=True)
    target = torch.full((1, 3, 3), IGNORE_INDEX, dtype=torch.long)
    loss = supervised_loss(logits, target)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    assert torch.all(logits.grad == 0)


def test_bad_labels_and_shapes_raise():
    with pytest.raises(ValueError):
        supervised_loss(torch.zeros(1, 2, 3, 3), torch.full((1, 3, 3), 7, dtype=torch.long))
    with pytest.raises(ValueError):
        supervised_loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 4, 4, dtype=torch.long))


def test_aux_loss_upsamples_and_weights():
    g = torch.Generator().manual_seed(2)
    target = torch.randint(0, 2, (1, 8, 8), generator=g)
    small = torch.randn(1, 2, 4, 4, generator=g)
    up = F.interpolate(small, size=(8, 8), mode="bilinear", align_corners=False)
    assert aux_loss(small, target).item() == pytest.approx(
        0.4 * supervised_loss(up, target).item(), abs=1e-6
    )
    assert aux_loss(None, target) is None


def test_inverse_frequency_weights():
    target = torch.zeros(1, 10, 10, dtype=torch.long)
    target[0, 0, :] = 1
    target[0, 9, :] = IGNORE_INDEX  # 80 background, 10 crack counted
    w = inverse_frequency_weights(target)
    assert w.tolist() == pytest.approx([90 / (2 * 80), 90 / (2 * 10)])
    assert inverse_frequency_weights(target, max_weight=2.0)[1].item() == pytest.approx(2.0)


def test_gradient_flows_to_logits():
    logits, target = _two_pixel_case()
    x = logits.clone().requires_grad_(True)
    supervised_loss(x, target).backward()
    # raising the crack logit lowers the loss
    assert torch.all(x.grad[:, 1] < 0)


# --------------------------------------------------------------------------- unsupervised
def test_drop_schedule():
    assert drop_percent_schedule(0.0) == pytest.approx(20.0)
    assert drop_percent_schedule(0.5) == pytest.approx(10.0)
    assert drop_percent_schedule(1.0) == 0.0
    with pytest.raises(ValueError):
        drop_percent_schedule(1.5)
    with pytest.raises(ValueError):
        drop_percent_schedule(float("nan"))


def _random_prob(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(*shape, generator=g) * 2, dim=1)


def test_pseudo_label_mask_keeps_exact_fraction_of_most_certain():
    prob = _random_prob((2, 2, 10, 10), 0)
    keep = pseudo_label_mask(prob, 20.0)
    assert int(keep.sum()) == 160
    ent = entropy_map(prob)
    assert ent[~keep].min() >= ent[keep].max()
    # ignored pixels never kept and not counted
    ignore = torch.zeros(2, 10, 10, dtype=torch.bool)
    ignore[0, :5] = True  # 50 ignored -> 150 valid -> drop 30
    keep = pseudo_label_mask(prob, 20.0, ignore)
    assert int(keep.sum()) == 120
    assert not bool((keep & ignore).any())
    assert int(pseudo_label_mask(prob, 0.0, ignore).sum()) == 150


def test_select_by_rank_exact_with_ties():
    values = torch.ones(8)
    assert int(select_by_rank(values, 25.0).sum()) == 2
    assert int(select_by_rank(values, 25.0, largest=False).sum()) == 2
    assert int(select_by_rank(values, 0.0).sum()) == 0


def test_unsupervised_progress_one_drops_nothing():
    prob = _random_prob((2, 2, 6, 6), 3)
    logits = torch.randn(2, 2, 6, 6, generator=torch.Generator().manual_seed(4))
    ref = supervised_loss(logits, prob.argmax(1))
    assert unsupervised_loss(logits, prob, 1.0).item() == pytest.approx(ref.item(), abs=1e-6)


def test_unsupervised_by_hand_at_start():
    prob = _random_prob((2, 2, 6, 6), 5)
    logits = torch.randn(2, 2, 6, 6, generator=torch.Generator().manual_seed(6))
    ignore = torch.zeros(2, 6, 6, dtype=torch.bool)
    ignore[1, :, :2] = True  # 12 ignored -> 60 valid, 12 dropped, 48 kept
    keep = pseudo_label_mask(prob, 20.0, ignore)
    assert int(keep.sum()) == 48
    ignored = torch.full_like(keep, IGNORE_INDEX, dtype=torch.long)
    target = torch.where(keep, prob.argmax(1), ignored)
    ce = cross_entropy_loss(logits, target).item() * 60 / 48
    dice = dice_loss(logits, target).item()
    got = unsupervised_loss(logits, prob, 0.0, ignore_mask=ignore).item()
    assert got == pytest.approx(0.5 * ce + 0.5 * dice, abs=1e-6)
    plain = unsupervised_loss(logits, prob, 0.0, ignore_mask=ignore, rescale=False).item()
    assert plain == pytest.approx(0.5 * ce * 48 / 60 + 0.5 * dice, abs=1e-6)
    # changing the student at ignored or dropped pixels does not change the loss
    other = logits.clone()
    out = (~keep).unsqueeze(1).expand_as(logits)
    other[out] = 100.0
    assert unsupervised_loss(other, prob, 0.0, ignore_mask=ignore).item() == pytest.approx(got)


def test_unsupervised_gradient_to_student_only():
    prob = _random_prob((1, 2, 4, 4), 7).requires_grad_(True)
    logits = torch.randn(1, 2, 4, 4, requires_grad=True)
    unsupervised_loss(logits, prob, 0.3).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert prob.grad is None
    # crack-probability (B, H, W) input is read as a 2-class problem
    p1 = prob.detach()[:, 1]
    a = unsupervised_loss(logits.detach(), p1, 0.3).item()
    b = unsupervised_loss(logits.detach(), prob.detach(), 0.3).item()
    assert a == pytest.approx(b, abs=1e-5)


def _thin_crack_teacher():
    """A teacher that is confident on background and unsure on a thin crack (2 % of pixels)."""
    prob = torch.zeros(1, 2, 20, 20)
    prob[:, 1] = 0.02  # background, confident
    prob[0, 1, 10, :8] = 0.6  # 8 crack pseudo labels, uncertain (entropy near the maximum)
    prob[:, 0] = 1.0 - prob[:, 1]
    return prob


def test_global_drop_removes_every_crack_pseudo_label_per_class_keeps_them():
    prob = _thin_crack_teacher()
    crack = prob.argmax(1) == 1
    assert int(crack.sum()) == 8
    glob = pseudo_label_mask(prob, 20.0)
    assert int(glob.sum()) == 320 and not bool((glob & crack).any())
    per = pseudo_label_mask(prob, 20.0, per_class=True)
    # 20 % of each pseudo class dropped: round(0.2 * 392) = 78 background, round(0.2 * 8) = 2 crack
    assert int((per & ~crack).sum()) == 392 - 78
    assert int((per & crack).sum()) == 6
    # within a class the most uncertain go first
    ent = entropy_map(prob)
    bg = ~crack
    assert ent[bg & ~per].min() >= ent[bg & per].max()
    # ignored pixels are never kept, class-wise too
    ignore = torch.zeros(1, 20, 20, dtype=torch.bool)
    ignore[0, 10, :4] = True
    per_ign = pseudo_label_mask(prob, 0.0, ignore, per_class=True)
    assert not bool((per_ign & ignore).any()) and int(per_ign.sum()) == 396


def test_unsupervised_dice_left_out_when_no_crack_pseudo_label_is_kept():
    prob = _thin_crack_teacher()
    logits = torch.zeros(1, 2, 20, 20)
    logits[:, 1] = 0.5  # the student predicts crack mass everywhere
    # global drop at the start: no crack pseudo label kept -> CE only (rescaled), no Dice
    keep = pseudo_label_mask(prob, 20.0)
    target = torch.where(keep, prob.argmax(1), torch.full_like(keep, IGNORE_INDEX, dtype=torch.long))
    ce_only = 0.5 * cross_entropy_loss(logits, target).item() * 400 / 320
    got = unsupervised_loss(logits, prob, 0.0)
    assert got.item() == pytest.approx(ce_only, abs=1e-6)
    assert dice_loss(logits, target).item() > 0.9  # what the Dice term would have added
    # class-wise drop keeps crack pseudo labels, so the Dice term is there
    keep = pseudo_label_mask(prob, 20.0, per_class=True)
    target = torch.where(keep, prob.argmax(1), torch.full_like(keep, IGNORE_INDEX, dtype=torch.long))
    ref = 0.5 * cross_entropy_loss(logits, target).item() * 400 / 320 + 0.5 * dice_loss(
        logits, target).item()
    got = unsupervised_loss(logits, prob, 0.0, drop_per_class=True)
    assert got.item() == pytest.approx(ref, abs=1e-6)
