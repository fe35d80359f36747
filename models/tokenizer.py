"""The interface every audio tokenizer implements (neural codecs and semantic tokenizers alike).

As in AudioLM, audio is modelled as parallel streams of discrete codes: a tokenizer maps a waveform
`[B, C, T]` at `sample_rate` to integer codes `[B, K, F]`, F frames at `frame_rate`, K codebooks each with
`cardinality` entries. Acoustic tokenizers (codecs) can also decode codes back to audio; semantic ones
cannot (their tokens are k-means cluster ids of features).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch


class AudioTokenizer(ABC):
    """Audio -> discrete codes `[B, K, F]` (and back, for codecs)."""

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """Sample rate (Hz) `encode` expects and `decode` returns."""

    @property
    @abstractmethod
    def channels(self) -> int:
        """Number of audio channels `encode` expects and `decode` returns."""

    @property
    @abstractmethod
    def frame_rate(self) -> float:
        """Code frames per second."""

    @property
    @abstractmethod
    def num_codebooks(self) -> int:
        """K, the number of parallel code streams."""

    @property
    @abstractmethod
    def cardinality(self) -> int:
        """Number of distinct values each code can take (codebook size)."""

    @abstractmethod
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """`[B, C, T]` float waveform -> `[B, K, F]` int64 codes with `F = num_frames(T)`."""

    @property
    def can_decode(self) -> bool:
        return False

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """`[B, K', F]` codes -> `[B, C, T]` waveform. Codecs accept K' <= K (coarse levels only)."""
        raise NotImplementedError(f"{type(self).__name__} tokens cannot be decoded to audio")

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for `num_samples` input samples (a partial last frame counts)."""
        return math.ceil(num_samples * self.frame_rate / self.sample_rate)
