"""Cross-track batched demucs inference: fixed-length segments of many tracks share one model forward.

`demucs.apply.apply_model` (and so `python -m demucs`) separates one track at a time: it cuts the track into
overlapping segments and runs them one by one (or in a CPU thread pool), then overlap-adds the outputs with a
triangular window (Défossez, 2021, §4; Rouard et al., 2023). For a corpus that leaves a GPU mostly idle:
a 10 s segment of a small model is far from filling it, and the tail of every track is a partial batch.

`BatchedSeparator` keeps a FIFO of segments from several tracks. Tracks are decoded ahead in a background
thread (soundfile/soxr release the GIL) and cut into segments; whenever `batch_size` segments are waiting,
they are stacked into one `[B, C, segment]` tensor for a single forward, and every output segment is
weighted and added into the accumulator of the track (and shift) it came from. A track is finished, and
yielded, as soon as its last segment is back, so memory stays bounded by the tracks in flight.

The result is the same computation as `apply_model(split=True)`:

* each track is normalised by the mean/std of its mono mixture, as `demucs.api.Separator` does;
* segments start every `stride = (1 - overlap) * segment` samples; each is a window of the zero-padded
  track (demucs pads the last, shorter chunk of a track around its centre instead: only the final
  `segment` of a track can differ, by the context the model sees);
* `shifts` > 0 repeats the whole pass with the track delayed by a random 0..0.5 s (the "shift trick",
  Défossez et al., 2019) and averages; the shifts are drawn from a seeded RNG per track, so reruns and
  different batch sizes give the same output;
* a bag of models is the per-source weighted average of its members, as in `BagOfModels`.

Only two outputs are kept per track: vocals and the instrumental (the sum of every other source for a
four-stem model, "add", or the mixture minus the vocals, "minus"), reduced right after each forward, so
the accumulators of a 4-stem model take half the memory of demucs' `[S, C, T]` output.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pipelines.separation.repo import ModelInfo
from pipelines.separation.tracks import TrackJob

logger = logging.getLogger(__name__)

#: Longest track accepted by default (seconds): the accumulators of a track live in memory.
MAX_TRACK_SECONDS = 30 * 60.0
MAX_SHIFT_SECONDS = 0.5  # as demucs: shifts of up to half a second


@dataclass(eq=False)
class SeparatedTrack:
    """A finished track. `vocals`/`instrumental`: float32 [C, T] at `sample_rate` (None when `error`)."""

    job: TrackJob
    sample_rate: int
    vocals: np.ndarray | None = None
    instrumental: np.ndarray | None = None
    error: str | None = None
    load_seconds: float = 0.0

    @property
    def duration(self) -> float:
        return 0.0 if self.vocals is None else self.vocals.shape[-1] / self.sample_rate


@dataclass(eq=False)
class _Track:
    job: TrackJob
    mix: torch.Tensor  # [C, T] normalised
    mean: float
    std: float
    num_shifts: int
    remaining: list[int]  # segments still out, per shift
    numer: dict[int, torch.Tensor]  # shift -> [2, C, T] weighted sum (vocals, rest)
    weight: dict[int, torch.Tensor]  # shift -> [T]
    total: torch.Tensor  # [2, C, T] sum over finished shifts of numer / weight
    load_seconds: float

    @property
    def length(self) -> int:
        return int(self.mix.shape[-1])


@dataclass(frozen=True)
class _Segment:
    track: _Track
    shift: int
    start: int  # in samples of the track, may be negative (shifted passes start before 0)


@dataclass
class EngineStats:
    batches: int = 0
    segments: int = 0
    model_seconds: float = 0.0
    load_seconds: float = 0.0


class BatchedSeparator:
    """Separate a stream of tracks into (vocals, instrumental), batching segments across tracks.

    `model`: a demucs model or `BagOfModels` (from `repo.load_separator`); `segment` (seconds) defaults to
    the model's own; `instrumental`: "add" (sum of the non-vocal sources) or "minus" (mixture - vocals).
    """

    def __init__(
        self,
        model: Any,
        info: ModelInfo,
        *,
        segment: float | None = None,
        overlap: float = 0.25,
        shifts: int = 1,
        batch_size: int = 8,
        device: str | torch.device = "cpu",
        instrumental: str = "add",
        prefetch: int = 2,
        seed: int = 0,
        max_seconds: float = MAX_TRACK_SECONDS,
        transition_power: float = 1.0,
    ) -> None:
        from demucs.apply import BagOfModels

        segment = float(segment if segment is not None else info.segment)
        if info.max_segment is not None and segment > info.max_segment + 1e-6:
            raise ValueError(
                f"segment {segment:g} s is longer than the transformer was trained on ({info.max_segment:g} s)"
            )
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        if shifts < 0 or batch_size < 1 or prefetch < 1:
            raise ValueError("need shifts >= 0, batch_size >= 1 and prefetch >= 1")
        if instrumental not in ("add", "minus"):
            raise ValueError(f"instrumental must be 'add' or 'minus', got {instrumental!r}")
        self.info = info
        self.device = torch.device(device)
        self.members = list(model.models) if isinstance(model, BagOfModels) else [model]
        weights = model.weights if isinstance(model, BagOfModels) else [[1.0] * len(info.sources)]
        weights = torch.tensor(weights, dtype=torch.float32)  # [M, S]
        self.member_weights = weights / weights.sum(0, keepdim=True)  # per source, the members' shares
        for member in self.members:
            member.to(self.device).eval()
        self.segment_length = int(info.sample_rate * segment)
        self.stride = max(1, int((1 - overlap) * self.segment_length))
        self.shifts = shifts
        self.batch_size = batch_size
        self.instrumental = instrumental
        self.prefetch = prefetch
        self.seed = seed
        self.max_seconds = max_seconds
        ramp = torch.arange(1, self.segment_length // 2 + 1, dtype=torch.float32)
        down = torch.arange(self.segment_length - self.segment_length // 2, 0, -1, dtype=torch.float32)
        triangle = torch.cat([ramp, down])
        self.window = (triangle / triangle.max()) ** transition_power  # [segment], demucs' transition window
        vocals = info.sources.index("vocals")
        # [2, S] matrix folding the model's sources into (vocals, everything else).
        self.fold = torch.zeros(2, len(info.sources))
        self.fold[0, vocals] = 1.0
        self.fold[1] = 1.0
        self.fold[1, vocals] = 0.0
        self.on_batch: Callable[[], None] | None = None  # e.g. a queue heartbeat
        self.stats = EngineStats()

    # ----------------------------------------------------------------------------------------- loading
    def _load(self, job: TrackJob) -> _Track | SeparatedTrack:
        from core.audio import AudioError, load_audio

        started = time.perf_counter()
        try:
            audio = load_audio(
                job.path, sample_rate=self.info.sample_rate, channels=self.info.channels, max_seconds=self.max_seconds
            )
        except AudioError as error:
            return SeparatedTrack(job, self.info.sample_rate, error=f"{type(error).__name__}: {error.problem}")
        except OSError as error:  # permission denied, I/O error on a network filesystem
            return SeparatedTrack(job, self.info.sample_rate, error=f"{type(error).__name__}: {error}")
        mix = torch.from_numpy(audio.samples)
        ref = mix.mean(0)
        mean, std = float(ref.mean()), float(ref.std()) + 1e-8
        if not np.isfinite(std) or mix.shape[-1] < 2:
            return SeparatedTrack(job, self.info.sample_rate, error="track too short to separate")
        num_shifts = max(1, self.shifts)
        track = _Track(
            job=job,
            mix=(mix - mean) / std,
            mean=mean,
            std=std,
            num_shifts=num_shifts,
            remaining=[0] * num_shifts,
            numer={},
            weight={},
            total=torch.zeros(2, *mix.shape),
            load_seconds=time.perf_counter() - started,
        )
        return track

    def _segments(self, track: _Track) -> list[_Segment]:
        rng = random.Random(f"{self.seed}:{track.job.key}")
        max_shift = int(MAX_SHIFT_SECONDS * self.info.sample_rate)
        segments = []
        for shift in range(track.num_shifts):
            delay = max_shift - rng.randint(0, max_shift) if self.shifts else 0
            starts = range(-delay, track.length, self.stride)
            track.remaining[shift] = len(starts)
            segments.extend(_Segment(track, shift, start) for start in starts)
        return segments

    # ----------------------------------------------------------------------------------------- running
    def separate(self, jobs: Iterable[TrackJob | None]) -> Iterator[SeparatedTrack]:
        """Yield every job's result (failures included, with `error` set), roughly in input order.

        A `None` in `jobs` means "nothing more available right now" (a queue that is momentarily empty):
        the segments already waiting are run as a partial batch instead of waiting for more tracks.
        """
        source = iter(jobs)
        exhausted = False
        loading: deque[Future] = deque()
        pending: deque[_Segment] = deque()
        idle = False  # the source said "nothing now": finish what is in flight before asking again
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demucs-load") as pool:
            while True:
                while not exhausted and not idle and len(loading) < self.prefetch:
                    job = next(source, _END)
                    if job is _END:
                        exhausted = True
                    elif job is None:
                        idle = True
                    else:
                        loading.append(pool.submit(self._load, job))
                if len(pending) < self.batch_size and loading:
                    loaded = loading.popleft().result()
                    if isinstance(loaded, SeparatedTrack):
                        yield loaded
                    else:
                        self.stats.load_seconds += loaded.load_seconds
                        pending.extend(self._segments(loaded))
                    continue
                if pending and (len(pending) >= self.batch_size or exhausted or idle or not loading):
                    batch = [pending.popleft() for _ in range(min(self.batch_size, len(pending)))]
                    yield from self._run(batch)
                    continue
                if exhausted and not loading and not pending:
                    return
                idle = False  # nothing in flight: ask the source again (a queue blocks while it is empty)

    def _run(self, batch: list[_Segment]) -> Iterator[SeparatedTrack]:
        channels, length = self.info.channels, self.segment_length
        x = torch.zeros(len(batch), channels, length)
        for i, seg in enumerate(batch):
            lo, hi = max(seg.start, 0), min(seg.start + length, seg.track.length)
            x[i, :, lo - seg.start : hi - seg.start] = seg.track.mix[:, lo:hi]
        started = time.perf_counter()
        y = self._forward(x)  # [B, 2, C, L]
        self.stats.model_seconds += time.perf_counter() - started
        self.stats.batches += 1
        self.stats.segments += len(batch)
        if self.on_batch is not None:
            self.on_batch()
        for i, seg in enumerate(batch):
            track = seg.track
            lo, hi = max(seg.start, 0), min(seg.start + length, track.length)
            w = self.window[lo - seg.start : hi - seg.start]
            if seg.shift not in track.numer:
                track.numer[seg.shift] = torch.zeros(2, channels, track.length)
                track.weight[seg.shift] = torch.zeros(track.length)
            track.numer[seg.shift][..., lo:hi] += y[i, ..., lo - seg.start : hi - seg.start] * w
            track.weight[seg.shift][lo:hi] += w
            track.remaining[seg.shift] -= 1
            if track.remaining[seg.shift] == 0:
                track.total += track.numer.pop(seg.shift) / track.weight.pop(seg.shift)
                if not any(track.remaining):
                    yield self._finish(track)

    @torch.inference_mode()
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, L] normalised mixture segments -> [B, 2, C, L] (vocals, rest), on the CPU."""
        x = x.to(self.device)
        total = None
        for member, weights in zip(self.members, self.member_weights, strict=True):
            out = member(x)  # [B, S, C, L]
            folded = torch.einsum("ks,bscl->bkcl", self.fold.to(out) * weights.to(out)[None], out)
            total = folded if total is None else total + folded
        assert total is not None
        return total.float().cpu()

    def _finish(self, track: _Track) -> SeparatedTrack:
        est = track.total / track.num_shifts
        vocals = est[0] * track.std + track.mean
        if self.instrumental == "minus":
            instrumental = track.mix * track.std + track.mean - vocals
        else:  # demucs un-normalises every source, so the sum of n sources carries n means
            instrumental = est[1] * track.std + track.mean * (len(self.info.sources) - 1)
        return SeparatedTrack(
            job=track.job,
            sample_rate=self.info.sample_rate,
            vocals=vocals.numpy(),
            instrumental=instrumental.numpy(),
            load_seconds=track.load_seconds,
        )


_END = object()

__all__ = ["MAX_TRACK_SECONDS", "BatchedSeparator", "EngineStats", "SeparatedTrack", "TrackJob"]
