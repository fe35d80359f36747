"""Reading a token cache written by `pipelines.tokens.cache` (memory-mapped, random access by item)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.tokens.cache import DTYPE, INDEX_NAME, INFO_NAME, TokenCacheError


@dataclass(frozen=True)
class CachedItem:
    id: str
    split: str
    frames: dict[str, tuple[int, int]]  # stream -> (offset, length) in frames


class TokenCache:
    """Random access to cached token streams: `cache.tokens(i, "instrumental.coarse") -> [K, F]` uint16 view."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        info_path = self.directory / INFO_NAME
        if not info_path.is_file():
            raise TokenCacheError(f"{self.directory}: not a token cache ({INFO_NAME} is missing)")
        self.info: dict[str, Any] = json.loads(info_path.read_text())
        self.streams: dict[str, dict[str, Any]] = self.info["streams"]
        index = self.directory / INDEX_NAME
        self.items: list[CachedItem] = []
        if index.is_file():
            for line in index.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    break  # torn last line of an interrupted build: that item does not exist yet
                frames = {name: (int(o), int(n)) for name, (o, n) in entry["frames"].items()}
                self.items.append(CachedItem(entry["id"], entry["split"], frames))
        self._arrays: dict[str, np.memmap] = {}

    def __len__(self) -> int:
        return len(self.items)

    def _array(self, stream: str) -> np.ndarray:
        if stream not in self.streams:
            raise TokenCacheError(f"{self.directory}: no stream {stream!r}; streams are {sorted(self.streams)}")
        if stream not in self._arrays:
            codebooks = self.streams[stream]["codebooks"]
            path = self.directory / f"{stream}.bin"
            rows = path.stat().st_size // (codebooks * np.dtype(DTYPE).itemsize)
            self._arrays[stream] = np.memmap(path, dtype=DTYPE, mode="r", shape=(rows, codebooks))
        return self._arrays[stream]

    def frame_rate(self, stream: str) -> float:
        return float(self.streams[stream]["frame_rate"])

    def cardinality(self, stream: str) -> int:
        return int(self.streams[stream]["cardinality"])

    def tokens(self, item: int, stream: str, start: int = 0, end: int | None = None) -> np.ndarray:
        """Frames [start, end) of one item's stream as a `[K, frames]` array (a view: no copy)."""
        offset, length = self.items[item].frames[stream]
        end = length if end is None else min(end, length)
        return self._array(stream)[offset + start : offset + end].T

    def indices(self, split: str | None = None) -> list[int]:
        return [i for i, item in enumerate(self.items) if split is None or item.split == split]
