"""The pair manifest: one JSON line per training window, read by the token-cache stage and the trainers.

Each line::

    {"id": "train/song_00000042/w0003", "source": "oracle" | "separated:<model file>", "split": "train",
     "track": "train/song_00000042", "window": 3, "start": 30.0, "duration": 10.0, "sample_rate": 44100,
     "vocals": "train/song_00000042/w0003_vocals.flac",
     "instrumental": "train/song_00000042/w0003_instrumental.flac",
     "stats": {"vocal_activity": 0.82, "median_f0_hz": 262.1, "vocals_lufs": -21.3, "instrumental_lufs": -18.9,
               "vocal_to_instrumental_db": -2.4, "vocals_gain_db": 5.3, "instrumental_gain_db": 2.9,
               "peak_limited": false, "vocals_peak": 0.71, "instrumental_peak": 0.88}}

Paths are relative to the manifest's folder (as in every manifest of the project). Window audio is written as
files (16-bit FLAC, loudness-normalised, stereo) rather than as offsets into the source tracks: the token
cache then reads exactly what the stats describe, needs no knowledge of separation or normalisation, and
can shard the manifest freely. It costs disk (16-bit FLAC, 44.1 kHz stereo: ~0.5 MB for 10 s of vocals,
~1 MB for the instrumental), paid once; the token cache later reads each window exactly once. `start` and
`track` still locate the window in its source track.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.datasets import DatasetError, read_manifest

REQUIRED_FIELDS = ("id", "source", "split", "start", "duration", "sample_rate", "vocals", "instrumental", "stats")


@dataclass
class PairEntry:
    id: str
    source: str
    split: str | None
    start: float
    duration: float
    sample_rate: int
    vocals: str  # relative to the manifest (absolute after `read_pairs(..., resolve=True)`)
    instrumental: str
    stats: dict[str, Any] = field(default_factory=dict)
    track: str = ""  # key of the source track
    window: int = 0  # index of the window in its track: start == window * hop


def read_pairs(manifest: str | Path, *, split: str | None = None, resolve: bool = True) -> Iterator[PairEntry]:
    """Entries of a pair manifest (a file, or a folder holding `manifest.jsonl`); paths made absolute."""
    manifest = Path(manifest)
    if manifest.is_dir():
        manifest = manifest / "manifest.jsonl"
    for number, entry in enumerate(read_manifest(manifest), start=1):
        missing = [name for name in REQUIRED_FIELDS if name not in entry]
        if missing:
            raise DatasetError(f"{manifest}:{number}: not a pair entry (missing {', '.join(missing)})")
        if split is not None and entry["split"] != split:
            continue
        pair = PairEntry(**{k: entry[k] for k in PairEntry.__dataclass_fields__ if k in entry})
        if resolve:
            pair.vocals = str((manifest.parent / pair.vocals).resolve())
            pair.instrumental = str((manifest.parent / pair.instrumental).resolve())
        yield pair


__all__ = ["REQUIRED_FIELDS", "PairEntry", "read_pairs"]
