"""The shared warmup + cosine learning-rate schedule."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from pipelines.training.schedule import WarmupCosine, lr_factor, warmup_cosine_scheduler


def test_warmup_is_linear_then_cosine_decays_to_the_floor() -> None:
    kwargs = dict(warmup_steps=10, total_steps=110, min_ratio=0.1)
    warm = [lr_factor(s, **kwargs) for s in range(10)]
    assert warm[0] == pytest.approx(0.1) and warm[-1] == pytest.approx(1.0)
    assert all(b - a == pytest.approx(0.1) for a, b in itertools.pairwise(warm))
    assert lr_factor(10, **kwargs) == pytest.approx(1.0)
    assert lr_factor(60, **kwargs) == pytest.approx(0.55)  # halfway: (1 + min) / 2
    assert lr_factor(35, **kwargs) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    decay = [lr_factor(s, **kwargs) for s in range(10, 111)]
    assert all(b < a for a, b in itertools.pairwise(decay))
    assert lr_factor(110, **kwargs) == pytest.approx(0.1)
    assert lr_factor(10_000, **kwargs) == pytest.approx(0.1)


def test_no_warmup_and_degenerate_lengths() -> None:
    assert lr_factor(0, warmup_steps=0, total_steps=100, min_ratio=0.0) == pytest.approx(1.0)
    assert lr_factor(5, warmup_steps=10, total_steps=10, min_ratio=0.2) == pytest.approx(0.6)
    assert lr_factor(10, warmup_steps=10, total_steps=10, min_ratio=0.2) == pytest.approx(0.2)
    with pytest.raises(ValueError):
        WarmupCosine(warmup_steps=-1, total_steps=10)


def test_scheduler_drives_the_optimizer_and_resumes_from_its_state() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=2.0)
    scheduler = warmup_cosine_scheduler(optimizer, warmup_steps=4, total_steps=20, min_ratio=0.1)
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[:4] == pytest.approx([0.5, 1.0, 1.5, 2.0])
    state = scheduler.state_dict()
    other_opt = torch.optim.SGD([param], lr=2.0)
    other = warmup_cosine_scheduler(other_opt, warmup_steps=4, total_steps=20, min_ratio=0.1)
    other.load_state_dict(state)
    assert other.last_epoch == 8
    assert other.get_last_lr() == pytest.approx([2.0 * lr_factor(8, warmup_steps=4, total_steps=20, min_ratio=0.1)])
