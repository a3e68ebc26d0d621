"""EMA teacher arithmetic: decay ramp, parameter and BN-buffer averaging."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from napari_crack_al.core.training.ema import EMATeacher, ema_decay, ema_update

torch.set_num_threads(1)


class OneParam(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([value]))


def test_decay_ramp():
    assert ema_decay(0) == 0.0
    assert ema_decay(1) == pytest.approx(0.5)
    assert ema_decay(3) == pytest.approx(0.75)
    assert ema_decay(99) == pytest.approx(0.99)
    assert ema_decay(10_000) == pytest.approx(0.99)  # capped at max_decay
    assert ema_decay(10_000, max_decay=0.9) == pytest.approx(0.9)
    assert ema_decay(-5) == 0.0  # during warm-up the teacher copies the student
    with pytest.raises(ValueError):
        ema_decay(1, max_decay=1.0)


def test_ema_arithmetic_one_parameter():
    student = OneParam(2.0)
    ema = EMATeacher(student, max_decay=0.99, warmup=2)
    assert ema.module.w.item() == 2.0
    assert not ema.module.w.requires_grad
    assert not ema.module.training
    # warm-up steps 0, 1: decay 0 -> exact copy of the student
    with torch.no_grad():
        student.w.fill_(4.0)
    assert ema.update(student, step=0) == 0.0
    assert ema.module.w.item() == pytest.approx(4.0)
    # step 2 = t 0: still a copy; step 3 = t 1: d = 0.5
    with torch.no_grad():
        student.w.fill_(6.0)
    assert ema.update(student, step=2) == 0.0
    assert ema.module.w.item() == pytest.approx(6.0)
    with torch.no_grad():
        student.w.fill_(10.0)
    assert ema.update(student, step=3) == pytest.approx(0.5)
    assert ema.module.w.item() == pytest.approx(0.5 * 6.0 + 0.5 * 10.0)
    # step 5 = t 3: d = 0.75
    with torch.no_grad():
        student.w.fill_(0.0)
    assert ema.update(student, step=5) == pytest.approx(0.75)
    assert ema.module.w.item() == pytest.approx(0.75 * 8.0)
    # the student is untouched by the teacher update
    assert student.w.item() == 0.0


def test_bn_buffers_are_averaged_and_counter_copied():
    torch.manual_seed(0)
    student = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    teacher = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    teacher.load_state_dict(student.state_dict())
    student.train()
    student(torch.randn(4, 1, 5, 5) * 3 + 1)  # moves the student's running stats
    t_mean = teacher[1].running_mean.clone()
    t_var = teacher[1].running_var.clone()
    s_mean = student[1].running_mean.clone()
    s_var = student[1].running_var.clone()
    assert not torch.allclose(t_mean, s_mean)
    ema_update(teacher, student, 0.9)
    torch.testing.assert_close(teacher[1].running_mean, 0.9 * t_mean + 0.1 * s_mean)
    torch.testing.assert_close(teacher[1].running_var, 0.9 * t_var + 0.1 * s_var)
    assert int(teacher[1].num_batches_tracked) == int(student[1].num_batches_tracked) == 1


def test_mismatched_models_raise():
    with pytest.raises(ValueError):
        ema_update(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)), 0.5)
