"""Which tracks a separation run covers: listing an input folder or manifest, track keys, and sharding.

Every track gets a *key*, a relative POSIX path that names its output folder and decides its shard:

* manifest entries (our synthetic corpus, any `manifest.jsonl` with `stems.mixture` or `path`):
  `<split>/<id>` when the entry has both, else `<id>`, else the file's path without extension;
* MUSDB-style folders (a folder per song holding `mixture.wav` next to its stems): the song folder;
* any other folder: every audio file, keyed by its path relative to the folder, without the extension.

`--shard i/N` keeps the tracks whose key hashes to `i` modulo `N` (SHA-256 of the key, i in 0..N-1, as
SLURM/Kubernetes array indices are). Every copy computes the same partition from the same listing without
talking to the others, the shards are disjoint and cover every track, and a track's shard depends on its
key only: growing the corpus never moves a finished track to another shard.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from core.datasets import AUDIO_EXTENSIONS, MANIFEST_NAME, DatasetError, read_manifest
from core.errors import SingsongError

_UNSAFE = re.compile(r"[^A-Za-z0-9._\-/]+")


@dataclass
class TrackJob:
    """One track to separate. `key` names its output folder and decides its shard."""

    key: str
    path: Path
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        """'i/N' (0 <= i < N) -> Shard; None or '' -> the whole input (0/1)."""
        if not text:
            return cls(0, 1)
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match or not 0 <= int(match[1]) < int(match[2]):
            raise SingsongError(f"--shard must be i/N with 0 <= i < N (got {text!r})")
        return cls(int(match[1]), int(match[2]))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and shard_of(key, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(key: str, count: int) -> int:
    """The shard (0..count-1) a track key belongs to; stable across machines and Python versions."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def safe_key(text: str) -> str:
    """A track key usable as a relative output path: no absolute paths, `..`, or odd characters."""
    cleaned = _UNSAFE.sub("_", text.replace("\\", "/")).strip("/")
    parts = [part for part in PurePosixPath(cleaned).parts if part not in ("", ".")]
    if not parts or any(part == ".." or part.startswith(".") for part in parts):
        raise SingsongError(f"cannot make a safe output name from track key {text!r}")
    return "/".join(parts)


def _manifest_jobs(manifest: Path) -> list[TrackJob]:
    jobs = []
    for entry in read_manifest(manifest):
        relative = entry.get("path") or (entry.get("stems") or {}).get("mixture")
        if not relative:
            continue
        path = (manifest.parent / relative).resolve()
        split, ident = entry.get("split"), entry.get("id")
        key = f"{split}/{ident}" if split and ident else str(ident or PurePosixPath(relative).with_suffix(""))
        jobs.append(TrackJob(key=safe_key(key), path=path, split=split, meta={"manifest_id": ident}))
    return jobs


def _folder_jobs(folder: Path) -> list[TrackJob]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    musdb_dirs = {p.parent for p in files if p.stem == "mixture"}
    jobs = []
    for path in files:
        if path.parent in musdb_dirs:
            if path.stem != "mixture":
                continue  # a stem next to its mixture: not a track of its own
            key = path.parent.relative_to(folder).as_posix() if path.parent != folder else "mixture"
        else:
            key = path.relative_to(folder).with_suffix("").as_posix()
        parts = path.relative_to(folder).parts[:-1]
        split = next((p for p in parts if p in ("train", "valid", "test")), None)
        jobs.append(TrackJob(key=safe_key(key), path=path.resolve(), split=split))
    return jobs


def list_tracks(source: str | Path, *, shard: Shard | None = None, split: str | None = None) -> list[TrackJob]:
    """The tracks of a folder or manifest (see the module docstring), optionally one shard/split, sorted by key.

    Raises DatasetError when the source does not exist or holds no audio, or when two tracks get one key.
    """
    source = Path(source)
    if source.is_file() and source.suffix == ".jsonl":
        jobs = _manifest_jobs(source)
    elif source.is_dir() and (source / MANIFEST_NAME).is_file():
        jobs = _manifest_jobs(source / MANIFEST_NAME)
    elif source.is_dir():
        jobs = _folder_jobs(source)
    else:
        raise DatasetError(f"{source}: no such folder or manifest (.jsonl)")
    if not jobs:
        raise DatasetError(f"{source}: no audio tracks found")
    seen: dict[str, Path] = {}
    for job in jobs:
        if job.key in seen:
            raise DatasetError(f"{source}: {seen[job.key]} and {job.path} both map to track key {job.key!r}")
        seen[job.key] = job.path
    if split is not None:
        jobs = [job for job in jobs if job.split == split]
    if shard is not None and shard.count > 1:
        jobs = [job for job in jobs if job.key in shard]
    return sorted(jobs, key=lambda job: job.key)


def partition(keys: Iterable[str], count: int) -> list[list[str]]:
    """Keys grouped by shard (for reports and tests)."""
    groups: list[list[str]] = [[] for _ in range(count)]
    for key in keys:
        groups[shard_of(key, count)].append(key)
    return groups


__all__ = ["Shard", "TrackJob", "list_tracks", "partition", "safe_key", "shard_of"]
