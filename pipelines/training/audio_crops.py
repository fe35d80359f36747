"""Random fixed-length crops of a set of audio files, for training waveform models such as the codec.

Every file is decoded once, resampled/downmixed to the model's rate and channel count (soxr, via
`core.audio.load_audio`) and kept in memory as int16 (half the size of float32; the corpus is 16-bit
anyway): at 24 kHz mono that is 2.9 MB per minute, so an hour of training audio needs ~170 MB. Decoding
and resampling per item instead would cost more CPU than a small codec's training step.

Crops are drawn by picking a file with probability proportional to its length, then a uniform offset.
Crops whose RMS is below `silence_db` dBFS are redrawn (up to `max_tries` times): the synthetic corpus has
silent intros and stems that rest for bars, and a batch of silence teaches the codec nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from core.datasets import DatasetError

logger = logging.getLogger(__name__)


class RandomCropDataset:
    """Random `[C, segment_samples]` crops of `files` at `sample_rate` with `channels` channels."""

    def __init__(
        self,
        files: Sequence[Path],
        *,
        sample_rate: int,
        channels: int,
        segment_samples: int,
        silence_db: float = -45.0,
        max_tries: int = 10,
        progress: bool = True,
    ) -> None:
        from core.audio import load_audio
        from core.audio_errors import AudioError

        self.sample_rate = sample_rate
        self.channels = channels
        self.segment_samples = segment_samples
        self.silence_rms = 10 ** (silence_db / 20)
        self.max_tries = max_tries
        self.clips: list[np.ndarray] = []  # int16 [C, T]
        self.paths: list[Path] = []
        for path in tqdm(list(files), desc="loading audio", unit="file", disable=not progress):
            try:
                audio = load_audio(path, sample_rate=sample_rate, channels=channels)
            except AudioError as error:
                logger.warning("skipping %s", error)
                continue
            samples = np.clip(audio.samples, -1.0, 1.0)
            self.clips.append(np.round(samples * 32767).astype(np.int16))
            self.paths.append(Path(path))
        if not self.clips:
            raise DatasetError("none of the training audio files could be loaded")
        lengths = np.array([clip.shape[1] for clip in self.clips], dtype=np.float64)
        self.weights = lengths / lengths.sum()
        self.total_seconds = float(lengths.sum()) / sample_rate

    def __len__(self) -> int:
        return len(self.clips)

    def crop(self, rng: np.random.Generator) -> np.ndarray:
        """One float32 crop `[C, segment_samples]` (zero-padded when the file is shorter)."""
        crop = None
        for _ in range(self.max_tries):
            clip = self.clips[rng.choice(len(self.clips), p=self.weights)]
            start = int(rng.integers(0, max(clip.shape[1] - self.segment_samples, 0) + 1))
            crop = clip[:, start : start + self.segment_samples].astype(np.float32) / 32767
            if np.sqrt(np.mean(crop**2)) >= self.silence_rms:
                break
        assert crop is not None
        if crop.shape[1] < self.segment_samples:
            crop = np.pad(crop, ((0, 0), (0, self.segment_samples - crop.shape[1])))
        return crop

    def batch(self, batch_size: int, rng: np.random.Generator) -> torch.Tensor:
        """`[B, C, segment_samples]` float32 tensor of independent crops."""
        return torch.from_numpy(np.stack([self.crop(rng) for _ in range(batch_size)]))
