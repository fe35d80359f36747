"""Finding training audio: a folder of files, a corpus folder with a manifest, or a manifest file.

The synthetic corpus (and the pairs pipeline) write `manifest.jsonl`, one JSON object per song or window::

    {"id": "song_000123", "split": "train", "stems": {"vocals": "train/song_000123/vocals.flac", ...}, ...}

Paths inside a manifest are relative to the manifest's directory. Entries may instead carry a single
`"path"`. Plain folders are searched recursively for audio files; `stem="vocals"` then keeps files whose
name (without extension) is `vocals`, which also fits MUSDB-style folders.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import SingsongError

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus", ".webm", ".aiff", ".aif"})
MANIFEST_NAME = "manifest.jsonl"


class DatasetError(SingsongError):
    """A data source does not exist, is not readable, or holds no matching audio."""


def read_manifest(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the entries of a JSONL manifest; names the line of any malformed entry."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: manifest does not exist")
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"{path}:{number}: malformed manifest line ({error.msg})") from error
            if not isinstance(entry, dict):
                raise DatasetError(f"{path}:{number}: manifest entries must be JSON objects")
            yield entry


def _files_from_manifest(path: Path, stem: str | None, split: str | None) -> list[Path]:
    files = []
    for entry in read_manifest(path):
        if split is not None and entry.get("split") != split:
            continue
        if stem is not None:
            relative = entry.get("stems", {}).get(stem)
        else:
            relative = entry.get("path") or entry.get("stems", {}).get("mixture")
        if relative:
            files.append((path.parent / relative).resolve())
    return files


def list_audio_files(source: str | Path, *, stem: str | None = None, split: str | None = None) -> list[Path]:
    """Audio files of `source` (folder, folder with `manifest.jsonl`, or a `.jsonl` manifest), sorted.

    `stem` selects one stem per song ("vocals", "mixture", ...); `split` ("train", "valid", "test") filters
    manifest entries, or for plain folders keeps files below a directory of that name.
    """
    source = Path(source)
    if source.is_file() and source.suffix == ".jsonl":
        files = _files_from_manifest(source, stem, split)
    elif source.is_dir() and (source / MANIFEST_NAME).is_file():
        files = _files_from_manifest(source / MANIFEST_NAME, stem, split)
    elif source.is_dir():
        files = [
            p
            for p in source.rglob("*")
            if p.is_file()
            and p.suffix.lower() in AUDIO_EXTENSIONS
            and (stem is None or p.stem == stem)
            and (split is None or split in p.relative_to(source).parts[:-1])
        ]
    else:
        raise DatasetError(f"{source}: no such folder or manifest (.jsonl)")
    if not files:
        what = " ".join(x for x in (f"stem={stem!r}" if stem else "", f"split={split!r}" if split else "") if x)
        raise DatasetError(f"{source}: no audio files found{(' for ' + what) if what else ''}")
    return sorted(files)
