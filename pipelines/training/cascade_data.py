"""Training windows for the cascade stages, cut from a token cache (`pipelines.tokens.reader.TokenCache`).

A batch is a dict `stream -> LongTensor [B, K_s, F_s]` holding the same span of audio in every stream the
stage reads (its condition streams and its targets). Windows start and end on the alignment grid of
`models.cascade.patterns` (25 Hz for 25 Hz semantic + 50 Hz acoustic streams), so the slices of different
frame rates line up exactly; a window's start is uniform over all the positions the corpus allows (items
are drawn in proportion to how many windows they hold).

**Noise augmentation** (SingSong, Donahue et al. 2023): separated vocals carry artefacts of the instrumental
that the model could learn to read the accompaniment from; SingSong conditions on vocals with white noise
added instead. The cache holds noisy twins of vocal streams (`vocals.semantic_noisy`, `vocals.melody_noisy`:
noise added before tokenizing); with probability `noise_prob` per example, every vocal condition stream that
has a twin is read from it (the same example's streams are all noisy or all clean).

**Shorter windows**: with probability `short_window_prob` a batch uses a random shorter window (down to a
quarter), so the model also sees the short inputs it will be asked to accompany (a 4 s vocal for a 10 s
window). All rows of one batch share a length, so no padding is ever needed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import torch

from core.errors import SingsongError
from models.cascade.config import StageConfig, StreamInfo
from models.cascade.patterns import frames_per_step, grid_rate
from pipelines.tokens.reader import TokenCache
from pipelines.tokens.streams import StreamName

log = logging.getLogger(__name__)


def cache_streams(cache: TokenCache) -> dict[str, StreamInfo]:
    """The cache's streams as the model describes them."""
    return {
        name: StreamInfo(name, int(spec["codebooks"]), int(spec["cardinality"]), float(spec["frame_rate"]))
        for name, spec in cache.streams.items()
    }


class WindowSampler:
    """Random aligned windows of one split of a cache for one stage (see the module docstring)."""

    def __init__(
        self,
        cache: TokenCache,
        config: StageConfig,
        split: str | None,
        *,
        noise_prob: float = 0.0,
        short_window_prob: float = 0.0,
    ) -> None:
        self.cache, self.config = cache, config
        self.names = [info.name for info in config.streams]
        missing = [name for name in self.names if name not in cache.streams]
        if missing:
            raise SingsongError(f"{cache.directory}: stage {config.stage} needs streams {missing}")
        for info in config.streams:
            if cache_streams(cache)[info.name] != info:
                raise SingsongError(f"{cache.directory}: stream {info.name} differs from the model's ({info})")
        # The vocal (guided) condition streams with a noisy twin in the cache; the others stay clean.
        twins = {name: str(StreamName.parse(name).noisy_twin) for name in config.guided}
        self.noisy = {name: twin for name, twin in twins.items() if twin in cache.streams}
        if noise_prob > 0 and not self.noisy and config.guided:
            log.warning("%s has no noisy twin of %s: training on clean vocals", cache.directory, list(config.guided))
        self.noise_prob = noise_prob if self.noisy else 0.0
        self.short_window_prob = short_window_prob
        step_rate = grid_rate(info.frame_rate for info in config.streams)
        self.per_step = {info.name: frames_per_step(info.frame_rate, step_rate) for info in config.streams}
        self.window_steps = config.window_frames() // frames_per_step(config.target_rate, step_rate)
        self.items, self.lengths = self._usable_items(split)

    def _usable_items(self, split: str | None) -> tuple[list[int], np.ndarray]:
        indices = self.cache.indices(split)
        if not indices:
            raise SingsongError(f"{self.cache.directory}: no items in split {split!r}")
        lengths = np.array(
            [min(self.cache.items[i].frames[n][1] // self.per_step[n] for n in self.names) for i in indices]
        )
        if lengths.max() < self.window_steps:
            longest = int(lengths.max())
            if longest < 1:
                raise SingsongError(f"{self.cache.directory}: items of split {split!r} are empty")
            log.warning(
                "split %r: no item is as long as the %.1f s window; training on %d-step windows",
                split,
                self.config.window_seconds,
                longest,
            )
            self.window_steps = longest
        keep = lengths >= self.window_steps
        if not keep.all():
            log.info(
                "split %r: %d of %d items are shorter than the window and skipped", split, (~keep).sum(), len(keep)
            )
        return [i for i, k in zip(indices, keep, strict=True) if k], lengths[keep]

    @property
    def window_seconds(self) -> float:
        return self.window_steps * self.per_step[self.config.targets[0].name] / self.config.target_rate

    def _read(self, item: int, start_step: int, steps: int, noisy: bool) -> dict[str, np.ndarray]:
        window = {}
        for name in self.names:
            source = self.noisy.get(name, name) if noisy else name
            per = self.per_step[name]
            window[name] = self.cache.tokens(item, source, start_step * per, (start_step + steps) * per)
        return window

    def batch(self, batch_size: int, rng: np.random.Generator, *, full: bool = False) -> dict[str, torch.Tensor]:
        """`batch_size` random windows -> `stream -> LongTensor [B, K, F]` (`full`: never a shorter window)."""
        steps = self.window_steps
        if not full and self.short_window_prob > 0 and rng.random() < self.short_window_prob:
            steps = int(rng.integers(max(1, steps // 4), steps + 1))
        weights = (self.lengths - steps + 1).astype(np.float64)
        chosen = rng.choice(len(self.items), size=batch_size, p=weights / weights.sum())
        windows = []
        for index in chosen:
            start = int(rng.integers(0, self.lengths[index] - steps + 1))
            noisy = bool(self.noisy) and rng.random() < self.noise_prob  # drawn at any probability: same windows
            windows.append(self._read(self.items[index], start, steps, noisy))
        return stack_windows(windows)

    def fixed_batches(self, count: int, batch_size: int, seed: int = 1234) -> list[dict[str, torch.Tensor]]:
        """The same `count` full-length batches on every call (validation)."""
        rng = np.random.default_rng(seed)
        return [self.batch(batch_size, rng, full=True) for _ in range(count)]


def stack_windows(windows: list[Mapping[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.stack([w[name] for w in windows]).astype(np.int64)) for name in windows[0]}
