"""A tiny, randomly initialised accompaniment engine for tests, benchmarks and local smoke runs.

It is a real network run the way the real one will be, not canned audio: a strided conv encoder turns the
vocal into 50 frames per second, and a stack of GRU cells then generates the accompaniment **one frame
at a time** (autoregressively: each step sees the previous output frame and sampling noise scaled by the
temperature), with a linear head synthesising each frame's samples. Like the token cascade it stands in
for, its cost is dominated by the per-step loop, so batching many vocals into one call is much cheaper
than calling it once per vocal - which is what the worker's batching exists for.

Properties the service relies on (and tests check): outputs are exactly as long as the vocal, at its
sample rate and channel count; a given (vocal, seed) gives the same take whatever else is in the batch
(noise is drawn per item from its own generator; padding only ever follows an item's end and every layer is
causal); weights are seeded, so every worker has the same model.

`slow_down_s` (config) sleeps per generation step to imitate a slow accelerator; tests use it to kill a
worker in the middle of a job. Config comes from `model_dir/tiny_engine.json` when present.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.audio import Audio, resample, to_channels
from pipelines.inference.engine import (
    AccompanimentEngine,
    GenerationOptions,
    ProgressCallback,
    Take,
    take_rows,
    with_melody_checks,
)

MODEL_RATE = 16_000
PEAK = 0.98


@dataclass
class TinyConfig:
    hop: int = 320  # 20 ms frames at 16 kHz
    dim: int = 128
    layers: int = 2
    weights_seed: int = 0
    slow_down_s: float = 0.0
    max_batch_size: int = 8


class TinyAccompanist(nn.Module):
    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        self.config = config
        hop, dim = config.hop, config.dim
        self.encoder = nn.Sequential(
            nn.Conv1d(1, dim, kernel_size=hop, stride=hop),
            nn.GELU(),
            nn.ConstantPad1d((2, 0), 0.0),  # causal: padding after an item's end never reaches back into it
            nn.Conv1d(dim, dim, kernel_size=3),
        )
        self.feedback = nn.Linear(hop, dim)
        self.cells = nn.ModuleList(nn.GRUCell(dim, dim) for _ in range(config.layers))
        self.head = nn.Linear(dim, hop)

    @torch.inference_mode()
    def generate(
        self,
        vocals: torch.Tensor,
        noise: torch.Tensor,
        temperature: torch.Tensor,
        progress: ProgressCallback | None = None,
        slow_down_s: float = 0.0,
    ) -> torch.Tensor:
        """vocals [B, T] (T a multiple of hop), noise [B, F, dim], temperature [B] -> accompaniment [B, T]."""
        batch, frames = vocals.shape[0], vocals.shape[1] // self.config.hop
        context = self.encoder(vocals[:, None, :]).transpose(1, 2)  # [B, F, dim]
        hidden = [vocals.new_zeros(batch, self.config.dim) for _ in self.cells]
        previous = vocals.new_zeros(batch, self.config.hop)
        out = []
        report_every = max(1, frames // 10)
        for t in range(frames):
            x = context[:, t] + self.feedback(previous) + temperature[:, None] * noise[:, t]
            for i, cell in enumerate(self.cells):
                hidden[i] = cell(x, hidden[i])
                x = hidden[i]
            previous = torch.tanh(self.head(x)) * 0.5
            out.append(previous)
            if slow_down_s:
                time.sleep(slow_down_s)
            if progress is not None and (t + 1) % report_every == 0:
                progress((t + 1) / frames)
        return torch.cat(out, dim=1)


@dataclass
class CallRecord:
    batch_size: int  # vocals in the call
    rows: int  # vocals x takes: the batch the network actually ran
    durations: list[float] = field(default_factory=list)


class TinyEngine(AccompanimentEngine):
    def __init__(self, config: TinyConfig | None = None, device: str = "cpu") -> None:
        self.config = config or TinyConfig()
        self.max_batch_size = self.config.max_batch_size
        self.device = torch.device(device)
        torch_state = torch.random.get_rng_state()
        try:  # seeded weights without disturbing anyone else's global RNG
            torch.manual_seed(self.config.weights_seed)
            self.model = TinyAccompanist(self.config).to(self.device).eval()
        finally:
            torch.random.set_rng_state(torch_state)
        self.calls: list[CallRecord] = []  # what the tests assert batching on
        self._lock = threading.Lock()

    def accompany_batch(
        self,
        vocals: Sequence[Audio],
        options: Sequence[GenerationOptions],
        progress: ProgressCallback | None = None,
    ) -> list[list[Take]]:
        # (vocal index, take, seed, temperature); unset sampling resolves as a model without recommendations
        options = [o.with_defaults() for o in options]
        rows = [(i, take, seed, options[i].temperature) for i, take, seed in take_rows(vocals, options)]
        if not vocals:
            return []
        hop = self.config.hop
        mono16 = [resample(to_channels(v.samples, 1)[0], v.sample_rate, MODEL_RATE) for v in vocals]
        frames = [-(-len(x) // hop) for x in mono16]
        longest = max(frames)
        batch = torch.zeros(len(rows), longest * hop)
        noise = torch.zeros(len(rows), longest, self.config.dim)
        for r, (i, _take, seed, _temp) in enumerate(rows):
            batch[r, : len(mono16[i])] = torch.from_numpy(mono16[i])
            generator = torch.Generator().manual_seed(seed)
            noise[r, : frames[i]] = torch.randn(frames[i], self.config.dim, generator=generator)
        temperature = torch.tensor([row[3] for row in rows])
        with self._lock:
            self.calls.append(CallRecord(len(vocals), len(rows), [v.duration for v in vocals]))
        generated = (
            self.model.generate(
                batch.to(self.device),
                noise.to(self.device),
                temperature.to(self.device),
                progress,
                self.config.slow_down_s,
            )
            .cpu()
            .numpy()
        )

        results: list[list[Take]] = [[] for _ in vocals]
        for r, (i, take, seed, _temp) in enumerate(rows):
            vocal = vocals[i]
            accompaniment = resample(generated[r, : len(mono16[i])], MODEL_RATE, vocal.sample_rate)
            accompaniment = _fit_length(accompaniment, vocal.num_frames)
            accompaniment = to_channels(accompaniment, vocal.channels).astype(np.float32)
            mix = _limit(vocal.samples + accompaniment)
            results[i].append(Take(_limit(accompaniment), mix, vocal.sample_rate, seed, take))
        return with_melody_checks(vocals, results)


def _fit_length(x: np.ndarray, length: int) -> np.ndarray:
    """Resampling rounds; the interface promises exactly the vocal's length."""
    return x[:length] if len(x) >= length else np.pad(x, (0, length - len(x)))


def _limit(x: np.ndarray) -> np.ndarray:
    """Peak-limit by scaling (not clipping, which would distort): loudest sample at most PEAK."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return (x * (PEAK / peak)).astype(np.float32) if peak > PEAK else x.astype(np.float32)


def build_tiny_engine(*, model_dir: Path | None = None, device: str = "cpu") -> TinyEngine:
    """Engine factory for `SINGSONG_ENGINE=service.testing:build_tiny_engine`."""
    config = TinyConfig()
    if model_dir is not None and (model_dir / "tiny_engine.json").is_file():
        overrides = json.loads((model_dir / "tiny_engine.json").read_text())
        unknown = set(overrides) - set(TinyConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown tiny engine settings: {sorted(unknown)}")
        config = TinyConfig(**overrides)
    return TinyEngine(config, device=device)
