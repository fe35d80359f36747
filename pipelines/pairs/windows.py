"""Fixed-length windows over a track: where they start, and which fit.

SingSong trains on 10 s excerpts (Donahue et al., 2023, §4: "10-second chunks"). Window `i` starts at
`i * hop` seconds; only whole windows are kept (a partial tail would need padding that the model would then
learn to generate). `hop < window` gives overlapping windows (more, correlated examples), `hop > window` skips.
"""

from __future__ import annotations


def window_starts(num_samples: int, sample_rate: int, *, window: float, hop: float) -> list[int]:
    """Start samples of every whole window of `window` seconds every `hop` seconds in a track."""
    if window <= 0 or hop <= 0:
        raise ValueError(f"window and hop must be positive (got {window}, {hop})")
    length = round(window * sample_rate)
    step = hop * sample_rate
    starts = []
    index = 0
    while round(index * step) + length <= num_samples:
        starts.append(round(index * step))
        index += 1
    return starts


__all__ = ["window_starts"]
