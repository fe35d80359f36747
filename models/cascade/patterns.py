"""Token layouts: how `[B, K, F]` code frames become one autoregressive sequence, and time alignment.

Two layouts turn K parallel codebooks into a sequence a decoder can predict one step at a time:

* **Flattening** (AudioLM, Borsos et al. 2022): frame by frame, level by level,
  `c[0,0] c[0,1] .. c[0,K-1] c[1,0] ..` — exact (every code sees all earlier codes) but K steps per frame.
* **The delay pattern** (MusicGen, Copet et al. 2023): codebook k is shifted right by k steps, so step s
  carries `c[s, 0], c[s-1, 1], .., c[s-K+1, K-1]` and all K codebooks are predicted in parallel. Level k of
  frame t is still generated after levels < k of that frame (one step later), which keeps most of the
  benefit of flattening at the cost of one step per frame (+ K - 1 steps to drain the pattern). Slots
  before the start and after the end hold a special "empty" id.

Streams run at different frame rates (25 Hz semantic tokens, 50 Hz codec frames). Windows are cut on a
common *grid* whose step is a whole number of frames of every stream (`grid_rate` is the greatest common
divisor of the rates: 25 Hz for 25 + 50 Hz), so every stream's slice of a window starts and ends on a frame
boundary and the slices describe exactly the same span of audio.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

import torch
from torch import Tensor


def flatten_frames(codes: Tensor) -> Tensor:
    """`[B, K, F]` -> `[B, F * K]`, frame-major (all levels of frame 0, then frame 1, ...)."""
    return codes.transpose(1, 2).reshape(codes.shape[0], -1)


def unflatten_frames(flat: Tensor, num_levels: int) -> Tensor:
    """Inverse of `flatten_frames`: `[B, F * K]` -> `[B, K, F]`."""
    return flat.view(flat.shape[0], -1, num_levels).transpose(1, 2)


def build_delay_pattern(codes: Tensor, empty: int) -> Tensor:
    """`[B, K, F]` -> `[B, K, F + K - 1]` with `out[:, k, s] = codes[:, k, s - k]`, `empty` outside."""
    batch, levels, frames = codes.shape
    out = codes.new_full((batch, levels, frames + levels - 1), empty)
    for level in range(levels):
        out[:, level, level : level + frames] = codes[:, level]
    return out


def undo_delay_pattern(delayed: Tensor) -> Tensor:
    """Inverse of `build_delay_pattern`: `[B, K, S]` -> `[B, K, S - K + 1]`."""
    levels = delayed.shape[1]
    frames = delayed.shape[2] - levels + 1
    return torch.stack([delayed[:, level, level : level + frames] for level in range(levels)], dim=1)


def delay_valid_mask(levels: int, frames: int, device: torch.device | str = "cpu") -> Tensor:
    """`[K, F + K - 1]` bool: which slots of the delayed layout hold a real code (not `empty`)."""
    steps = torch.arange(frames + levels - 1, device=device)[None, :] - torch.arange(levels, device=device)[:, None]
    return (steps >= 0) & (steps < frames)


def _as_fraction(rate: float) -> Fraction:
    return Fraction(rate).limit_denominator(1000)


def grid_rate(rates: Iterable[float]) -> float:
    """The largest rate (Hz) of which every rate is a whole multiple: the step of aligned window starts."""
    fractions = [_as_fraction(rate) for rate in rates]
    if not fractions or any(f <= 0 for f in fractions):
        raise ValueError("need positive frame rates")
    denominator = math.lcm(*(f.denominator for f in fractions))
    numerator = math.gcd(*(int(f * denominator) for f in fractions))
    return float(Fraction(numerator, denominator))


def frames_per_step(rate: float, step_rate: float) -> int:
    """Frames of a `rate` stream in one grid step of `step_rate` (exact by construction of the grid)."""
    return round(_as_fraction(rate) / _as_fraction(step_rate))


def fit_length(tokens: Tensor, length: int) -> Tensor:
    """`[B, K, F]` cut or extended to `length` frames; extension repeats the last frame.

    Used to reconcile a condition's own frame count (e.g. `ceil(T * 25 / sr)`) with the span a window covers.
    """
    frames = tokens.shape[-1]
    if frames == length:
        return tokens
    if frames > length:
        return tokens[..., :length]
    if frames == 0:
        raise ValueError("cannot extend an empty token stream")
    return torch.cat([tokens, tokens[..., -1:].expand(*tokens.shape[:-1], length - frames)], dim=-1)
