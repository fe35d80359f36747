"""The one featurisation of audio into a token stream, shared by training (the token cache) and inference.

SingSong (Donahue et al., 2023) trains on vocals separated from mixtures, whose artefacts leak the
accompaniment, and is used on clean vocals; it closes that gap by adding white noise to the vocal before
tokenizing it, in training and at inference alike. The two sides must featurise *identically*, or the model
meets at inference an input it was never trained on, so both go through this module:

* `cache.TokenCacheWriter.add` (training): every stream of an item, key = the item id;
* `inference.accompanist.Accompanist.featurize` (inference): every condition stream of a take, key = its seed.

For one piece of audio and one stream, in this order:

1. **channels** - to the tokenizer's channel count (`core.audio.to_channels`: the mean of the channels for a
   mono tokenizer);
2. **rate** - resampled to the tokenizer's sample rate (`core.audio.resample`, soxr HQ);
3. **noise** (noisy streams only) - white Gaussian noise `snr_db` below the RMS of the whole clip, drawn from
   a generator seeded by `crc32("KEY/NOISY_STREAM")`: the same audio with the same key and stream gets the same
   noise, whichever side asks;
4. **tokens** - `encode`: the tokenizer on a batch `[B, C, T]` (clips of different lengths zero-padded to the
   longest; silence is in-distribution: rests).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch

from core.audio import resample, to_channels
from models.tokenizer import AudioTokenizer
from pipelines.tokens.streams import StreamName


def noise_seed(key: str | int, stream: StreamName) -> int:
    """Seed of the noise added to `stream` (clean or noisy name: the same seed) of the audio known as `key`."""
    return zlib.crc32(f"{key}/{stream.noisy_twin}".encode())


def add_white_noise(audio: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """`audio` `[C, T]` plus white noise `snr_db` below the audio's RMS (deterministic per seed)."""
    rms = float(np.sqrt(np.mean(audio**2))) + 1e-8
    noise = np.random.default_rng(seed).standard_normal(audio.shape).astype(np.float32)
    return audio + noise * np.float32(rms * 10 ** (-snr_db / 20))


class Featurizer:
    """One clip (an item's vocal, a take's vocal) as the tokenizer of each stream sees it (module docstring).

    `samples` `[C, T]` or `[T]` at `sample_rate`; `key` seeds the noise (the item id, or the take's seed).
    The channel/rate conversion is done once per tokenizer and shared by its clean and noisy streams.
    """

    def __init__(self, samples: np.ndarray, sample_rate: int, *, key: str | int) -> None:
        self.samples, self.sample_rate, self.key = samples, sample_rate, key
        self._converted: dict[tuple[int, int], np.ndarray] = {}

    def audio(self, tokenizer: AudioTokenizer, stream: StreamName, noise_snr_db: float | None) -> np.ndarray:
        """The float32 audio `[C_tokenizer, T_tokenizer]` that `tokenizer` encodes into `stream`."""
        shape = (tokenizer.channels, tokenizer.sample_rate)
        if shape not in self._converted:
            converted = to_channels(self.samples, tokenizer.channels)
            self._converted[shape] = resample(converted, self.sample_rate, tokenizer.sample_rate).astype(np.float32)
        audio = self._converted[shape]
        if noise_snr_db is None:
            return audio
        return add_white_noise(audio, noise_snr_db, noise_seed(self.key, stream))


def encode(tokenizer: AudioTokenizer, clips: Sequence[np.ndarray], device: str | torch.device = "cpu") -> torch.Tensor:
    """Tokens `[B, K, F]` of clips `[C, T_i]` (zero-padded to the longest) on `device`."""
    length = max(clip.shape[-1] for clip in clips)
    batch = np.zeros((len(clips), clips[0].shape[0], length), np.float32)
    for row, clip in enumerate(clips):
        batch[row, :, : clip.shape[-1]] = clip
    with torch.inference_mode():
        return tokenizer.encode(torch.from_numpy(batch).to(device))


__all__ = ["Featurizer", "add_white_noise", "encode", "noise_seed"]
