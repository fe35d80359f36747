"""Learning-rate schedule shared by all trainers: linear warmup, then cosine decay to a floor.

The learning rate at optimizer step `s` (0-based) is `base_lr * lr_factor(s)` with

* `(s + 1) / warmup_steps` during the first `warmup_steps` steps (Goyal et al., 2017), so the very first
  update is already non-zero;
* then a half cosine from 1 down to `min_ratio` reached at `total_steps` (Loshchilov & Hutter, 2017,
  SGDR without restarts, as in nanoGPT and most transformer recipes);
* `min_ratio` for any step past `total_steps` (a resumed run that was given more steps keeps going).
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def lr_factor(step: int, *, warmup_steps: int, total_steps: int, min_ratio: float = 0.1) -> float:
    """Multiplier of the base learning rate at optimizer step `step` (0-based)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = total_steps - warmup_steps
    if decay_steps <= 0 or step >= total_steps:
        return min_ratio
    progress = (step - warmup_steps) / decay_steps
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosine:
    """`lr_factor` with fixed settings, as a callable `LambdaLR` can save (its state is plain numbers)."""

    def __init__(self, *, warmup_steps: int, total_steps: int, min_ratio: float = 0.1) -> None:
        if warmup_steps < 0 or total_steps < 1 or not 0.0 <= min_ratio <= 1.0:
            raise ValueError("need warmup_steps >= 0, total_steps >= 1 and 0 <= min_ratio <= 1")
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_ratio = min_ratio

    def __call__(self, step: int) -> float:
        return lr_factor(step, warmup_steps=self.warmup_steps, total_steps=self.total_steps, min_ratio=self.min_ratio)


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int, min_ratio: float = 0.1
) -> LambdaLR:
    """A `LambdaLR` following `lr_factor`; call `scheduler.step()` after every `optimizer.step()`."""
    return LambdaLR(optimizer, WarmupCosine(warmup_steps=warmup_steps, total_steps=total_steps, min_ratio=min_ratio))
