"""Learning-rate schedules of rounds from scratch and warm starts; the round budget in seconds."""

from __future__ import annotations

import pytest

from napari_crack_al.core.training.schedule import SEMI_STEP_COST, LRSchedule, StepBudget, poly_lr


def test_a_round_from_scratch_is_poly_at_full_rate():
    s = LRSchedule.for_round(0.01, 100, warm=False, warm_lr_scale=0.3, warm_ramp=0.05)
    assert s.ramp == 0 and s.peak == 0.01
    assert [s.lr_at(i) for i in (0, 50, 99)] == pytest.approx([poly_lr(0.01, i, 100)
                                                               for i in (0, 50, 99)])


def test_a_warm_round_ramps_up_to_a_lower_peak_then_decays():
    s = LRSchedule.for_round(0.01, 200, warm=True, warm_lr_scale=0.3, warm_ramp=0.05)
    assert s.ramp == 10 and s.peak == pytest.approx(0.003)
    lrs = [s.lr_at(i) for i in range(200)]
    assert lrs[0] < 0.1 * 0.01  # the first step of a warm round is its smallest
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))  # rising during the ramp
    assert max(lrs) == pytest.approx(0.003)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # then decaying
    assert lrs[-1] < 0.05 * 0.003
    assert max(lrs) < 0.01  # never the full rate of a round from scratch


def test_changing_the_length_keeps_the_ramp():
    s = LRSchedule.for_round(0.01, 1000, warm=True, warm_lr_scale=0.3, warm_ramp=0.05)
    t = s.with_total(120)
    assert (t.total, t.ramp, t.peak) == (120, 50, s.peak)
    assert LRSchedule(0.01, 1, 5).with_total(1).ramp == 0


def test_step_budget_plans_from_measured_times():
    b = StepBudget(60.0, warmup_share=1.0)
    assert b.planned_steps() is None
    assert b.observe(5.0, semi=False) is False  # the first step (allocation) is not counted
    assert b.planned_steps() is None
    for _ in range(3):
        assert b.observe(0.5, semi=False) is True
    assert b.planned_steps() == 120
    # a semi round: semi steps are estimated from supervised ones until they are timed
    semi = StepBudget(60.0, warmup_share=0.1)
    semi.observe(1.0, semi=False)
    semi.observe(0.4, semi=False)
    per_step = 0.1 * 0.4 + 0.9 * 0.4 * SEMI_STEP_COST
    assert semi.planned_steps() == int(60.0 / per_step)
    semi.observe(2.0, semi=True)
    assert semi.planned_steps() == int(60.0 / (0.1 * 0.4 + 0.9 * 2.0))
    assert StepBudget(1.0, warmup_share=1.0, min_steps=5).planned_steps() is None
    tiny = StepBudget(1.0, warmup_share=1.0, min_steps=5)
    tiny.observe(1.0, semi=False)
    tiny.observe(10.0, semi=False)
    assert tiny.planned_steps() == 5
    assert tiny.exhausted(1.6) and not tiny.exhausted(1.4)
