"""Where (vocals, instrumental) tracks come from: separation output or corpora that already have stems.

Both kinds are described the same way, a `StemTrack` (key, split, stem name -> file), so one pairs stage
and one training pipeline serve both:

* **separated** - the output of `singsong pipeline separate`: its manifest lists `stems.vocals` and
  `stems.instrumental` and names the `model`; `source` is `"separated:<model file>"`;
* **oracle** - a corpus with true stems: our synthetic corpus (manifest with `stems.vocals/drums/bass/other/
  mixture`), or a MUSDB-style folder (one folder per song holding `vocals.wav` and the other stems and/or
  `mixture.wav`). No separation is run; `source` is `"oracle"`.

`load_pair` builds the instrumental of an oracle track as the sum of its non-vocal stems when there are any,
else as mixture - vocals. Either way vocals + instrumental == mixture (up to file quantisation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.datasets import AUDIO_EXTENSIONS, MANIFEST_NAME, DatasetError, read_manifest
from pipelines.separation.tracks import safe_key

NOT_ACCOMPANIMENT = frozenset({"vocals", "mixture", "instrumental"})


@dataclass(frozen=True)
class StemTrack:
    key: str
    split: str | None
    stems: dict[str, Path]
    source: str  # "oracle" or "separated:<model>"
    meta: dict = field(default_factory=dict, compare=False)

    @property
    def accompaniment_stems(self) -> list[str]:
        return sorted(name for name in self.stems if name not in NOT_ACCOMPANIMENT)


def _manifest_tracks(manifest: Path) -> list[StemTrack]:
    tracks = []
    for entry in read_manifest(manifest):
        stems = entry.get("stems") or {}
        if "vocals" not in stems:
            continue
        split, ident = entry.get("split"), entry.get("id")
        key = (
            str(ident)
            if ident is not None and "/" in str(ident)
            else (f"{split}/{ident}" if split and ident else str(ident or Path(stems["vocals"]).parent.as_posix()))
        )
        source = f"separated:{entry['model']}" if entry.get("model") else "oracle"
        tracks.append(
            StemTrack(
                key=safe_key(key),
                split=split,
                source=source,
                stems={name: (manifest.parent / rel).resolve() for name, rel in stems.items() if rel},
                meta={"duration": entry.get("duration")},
            )
        )
    return tracks


def _folder_tracks(folder: Path) -> list[StemTrack]:
    by_dir: dict[Path, dict[str, Path]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS:
            by_dir.setdefault(path.parent, {})[path.stem] = path
    tracks = []
    for directory, stems in sorted(by_dir.items()):
        if "vocals" not in stems or len(stems) < 2:
            continue
        relative = directory.relative_to(folder)
        split = next((p for p in relative.parts if p in ("train", "valid", "test")), None)
        key = relative.as_posix() if relative.parts else folder.name
        tracks.append(StemTrack(key=safe_key(key), split=split, stems=stems, source="oracle"))
    return tracks


def stem_tracks(source: str | Path, *, split: str | None = None) -> list[StemTrack]:
    """Tracks with a vocals stem in a manifest, a folder with a manifest, or a MUSDB-style folder."""
    source = Path(source)
    if source.is_file() and source.suffix == ".jsonl":
        tracks = _manifest_tracks(source)
    elif source.is_dir() and (source / MANIFEST_NAME).is_file():
        tracks = _manifest_tracks(source / MANIFEST_NAME)
    elif source.is_dir():
        tracks = _folder_tracks(source)
    else:
        raise DatasetError(f"{source}: no such folder or manifest (.jsonl)")
    if split is not None:
        tracks = [t for t in tracks if t.split == split]
    if not tracks:
        raise DatasetError(f"{source}: no tracks with a vocals stem{f' in split {split!r}' if split else ''}")
    return sorted(tracks, key=lambda t: t.key)


def load_pair(track: StemTrack, *, sample_rate: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(vocals [C, T], instrumental [C, T], sample_rate), stereo, trimmed to a common length."""
    from core.audio import load_audio

    def load(name: str) -> tuple[np.ndarray, int]:
        audio = load_audio(track.stems[name], sample_rate=sample_rate, channels=2)
        return audio.samples, audio.sample_rate

    vocals, rate = load("vocals")
    if "instrumental" in track.stems:
        parts = [load("instrumental")]
    elif track.accompaniment_stems:
        parts = [load(name) for name in track.accompaniment_stems]
    elif "mixture" in track.stems:
        mixture, mixture_rate = load("mixture")
        parts = [(mixture, mixture_rate), (-vocals, rate)]
    else:
        raise DatasetError(f"{track.key}: no instrumental, accompaniment stems or mixture next to the vocals")
    if any(part_rate != rate for _, part_rate in parts):
        raise DatasetError(f"{track.key}: stems have different sample rates (pass a target sample rate)")
    length = min(vocals.shape[-1], *(p.shape[-1] for p, _ in parts))
    instrumental = np.sum([p[:, :length] for p, _ in parts], axis=0, dtype=np.float32)
    return np.ascontiguousarray(vocals[:, :length]), instrumental, rate


__all__ = ["StemTrack", "load_pair", "stem_tracks"]
