"""Training examples for a separator: random crops of a stem corpus, remixed and augmented as in Demucs.

Songs come from a stem corpus (our synthetic corpus, or any manifest whose entries carry `stems` with
`vocals` and the accompaniment stems; MUSDB-style folders work through `pairs.sources`). Every stem is decoded
once, resampled to the model's rate and kept in memory as int16 [C, T].

An example (Défossez, 2021, §4.2 "data augmentation") is built per source:

* with probability `1 - remix`, all sources come from the same song and offset (a real mixture);
* otherwise every source picks its own song and offset ("remixing": new combinations of sources that the
  network cannot solve by memorising songs - essential with a few dozen songs);
* each source gets a random gain in [0.25, 1.25], a random sign, and a random left/right swap;
* the mixture is the sum of the sources, so the targets add up to the input exactly.

`sources="two"` trains vocals / instrumental (drums + bass + other summed at load time); `"four"` keeps
drums / bass / other / vocals, the layout of the published demucs models.
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

ACCOMPANIMENT_STEMS = ("drums", "bass", "other")


class StemCropDataset:
    """Random `(mixture [B, C, L], sources [B, S, C, L])` batches from in-memory stems."""

    def __init__(
        self,
        songs: Sequence[dict[str, Path]],
        *,
        sources: Sequence[str],
        sample_rate: int,
        channels: int = 2,
        segment_samples: int,
        remix: float = 0.5,
        progress: bool = True,
    ) -> None:
        from core.audio import AudioError, load_audio

        self.sources = tuple(sources)
        self.segment_samples = segment_samples
        self.remix = remix
        self.songs: list[np.ndarray] = []  # int16 [S, C, T]
        for stems in tqdm(list(songs), desc="loading stems", unit="song", disable=not progress):
            try:
                loaded = {
                    name: load_audio(path, sample_rate=sample_rate, channels=channels).samples
                    for name, path in stems.items()
                }
            except AudioError as error:
                logger.warning("skipping a song: %s", error)
                continue
            length = min(x.shape[-1] for x in loaded.values())
            if length < segment_samples:
                logger.warning("skipping a song shorter than one training crop (%d samples)", length)
                continue
            stacked = np.stack([self._source(name, loaded)[:, :length] for name in self.sources])
            self.songs.append(np.round(np.clip(stacked, -1.0, 1.0) * 32767).astype(np.int16))
        if not self.songs:
            raise DatasetError("no usable training songs (every song failed to load or was too short)")
        lengths = np.array([song.shape[-1] - segment_samples + 1 for song in self.songs], dtype=np.float64)
        self.weights = lengths / lengths.sum()

    @staticmethod
    def _source(name: str, loaded: dict[str, np.ndarray]) -> np.ndarray:
        if name in loaded:
            return loaded[name]
        if name == "instrumental":
            parts = [loaded[s] for s in ACCOMPANIMENT_STEMS if s in loaded]
            if parts:
                length = min(p.shape[-1] for p in parts)
                return np.sum([p[:, :length] for p in parts], axis=0)
            if "mixture" in loaded:
                length = min(loaded["mixture"].shape[-1], loaded["vocals"].shape[-1])
                return loaded["mixture"][:, :length] - loaded["vocals"][:, :length]
        raise DatasetError(f"a song has no '{name}' stem (has {', '.join(loaded)})")

    def _crop(self, rng: np.random.Generator, song: int | None = None) -> tuple[int, int]:
        index = int(rng.choice(len(self.songs), p=self.weights)) if song is None else song
        offset = int(rng.integers(0, self.songs[index].shape[-1] - self.segment_samples + 1))
        return index, offset

    def batch(self, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        num_sources, length = len(self.sources), self.segment_samples
        channels = self.songs[0].shape[1]
        out = np.empty((batch_size, num_sources, channels, length), dtype=np.float32)
        for b in range(batch_size):
            index, offset = self._crop(rng)
            remix = rng.random() < self.remix
            for s in range(num_sources):
                if remix:
                    index, offset = self._crop(rng)
                crop = self.songs[index][s, :, offset : offset + length].astype(np.float32) / 32767
                gain = rng.uniform(0.25, 1.25) * (-1.0 if rng.random() < 0.5 else 1.0)
                if channels == 2 and rng.random() < 0.5:
                    crop = crop[::-1]
                out[b, s] = crop * gain
        sources = torch.from_numpy(out)
        return sources.sum(dim=1), sources


def corpus_songs(source: str | Path, *, split: str | None, stems: Sequence[str]) -> list[dict[str, Path]]:
    """Stem paths per song of a stem corpus (manifest or folder), restricted to `split` (None or 'all': all)."""
    from pipelines.pairs.sources import stem_tracks

    tracks = stem_tracks(source, split=None if split in (None, "all") else split)
    songs = []
    for track in tracks:
        wanted = {name: path for name, path in track.stems.items() if name in (*stems, "mixture")}
        if "vocals" in wanted:
            songs.append(wanted)
    if not songs:
        raise DatasetError(f"{source}: no songs with a vocals stem{f' in split {split!r}' if split else ''}")
    return songs


__all__ = ["ACCOMPANIMENT_STEMS", "StemCropDataset", "corpus_songs"]
