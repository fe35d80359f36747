"""Deterministic test signals for the codec tests."""

from __future__ import annotations

import math

import torch


def tone(seconds: float, sample_rate: int, *, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """`[batch, 1, T]` harmonic tones (a different pitch per row) plus a little noise."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    rows = []
    for i in range(batch):
        f = 220.0 * (1 + 0.25 * i)
        x = 0.3 * torch.sin(2 * math.pi * f * t) + 0.1 * torch.sin(2 * math.pi * 3 * f * t)
        rows.append(x + 0.02 * torch.randn(t.shape, generator=generator))
    return torch.stack(rows)[:, None, :]
