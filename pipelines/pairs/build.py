"""`singsong pipeline pairs`: (vocals, instrumental) tracks -> normalised training windows + a pair manifest.

Input is either the output of `singsong pipeline separate` (separated pairs) or a corpus that already has
stems - our synthetic corpus or a MUSDB-style folder - whose "oracle" pairs need no separation
(`sources.py`). Both produce the same manifest (`manifest.py`), so one training pipeline reads both.

Per track: load both stems (stereo, optionally resampled), analyse vocal activity once (`activity.py`), cut
whole windows (`windows.py`), drop those with too little singing, loudness-normalise the rest
(`loudness.py`) and write them as FLAC files. Output::

    OUT/manifest.jsonl                      every kept window of every finished track, sorted by id
    OUT/<track key>/wNNNN_vocals.flac       window NNNN (starting at NNNN * hop seconds)
    OUT/<track key>/wNNNN_instrumental.flac
    OUT/<track key>/pairs.json              written last: settings, source files' size/mtime, the entries

Like separation, the stage is resumable and idempotent (a track whose `pairs.json` matches the settings and
sources is skipped), shardable (`--shard i/N`, the same partition by track key), and skips unreadable tracks
with a log line. `--jobs` processes tracks in parallel worker processes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from core.datasets import MANIFEST_NAME
from core.errors import SingsongError
from pipelines.pairs.activity import ActivitySettings, analyse
from pipelines.pairs.loudness import LoudnessSettings, normalise_pair
from pipelines.pairs.manifest import PairEntry
from pipelines.pairs.sources import StemTrack, load_pair, stem_tracks
from pipelines.pairs.windows import window_starts

logger = logging.getLogger(__name__)

MARKER = "pairs.json"
STAGE_VERSION = 1


@dataclass
class PairsOptions:
    input: Path
    out: Path
    window: float = 10.0
    hop: float | None = None  # None: = window (no overlap)
    sample_rate: int | None = None  # None: keep the tracks' rate
    activity: ActivitySettings = field(default_factory=ActivitySettings)
    loudness: LoudnessSettings = field(default_factory=LoudnessSettings)
    format: str = "flac"
    split: str | None = None
    shard: str | None = None
    jobs: int = 1
    progress: bool = True

    def fingerprint(self) -> dict[str, Any]:
        return {
            "stage_version": STAGE_VERSION,
            "window": self.window,
            "hop": self.hop or self.window,
            "sample_rate": self.sample_rate,
            "activity": asdict(self.activity),
            "loudness": asdict(self.loudness),
            "format": self.format,
        }


@dataclass
class TrackPairs:
    key: str
    entries: list[dict[str, Any]]
    windows: int  # whole windows in the track
    dropped: int  # of those, without enough singing
    duration: float


@dataclass
class PairsSummary:
    tracks: int = 0
    processed: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    windows: int = 0
    kept: int = 0
    dropped: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    manifest_entries: int = 0

    def format(self) -> str:
        text = (
            f"{self.tracks} tracks: {self.processed} processed, {self.skipped} already done, "
            f"{len(self.failed)} failed; windows: {self.kept} kept, {self.dropped} dropped without singing "
            f"(this run); manifest: {self.manifest_entries} windows; {self.wall_seconds:.1f} s wall"
        )
        for key, reason in self.failed:
            text += f"\n  failed {key}: {reason}"
        return text


def _sources_stat(track: StemTrack) -> dict[str, list[int]]:
    stat = {}
    for name, path in sorted(track.stems.items()):
        try:
            st = path.stat()
            stat[name] = [st.st_size, st.st_mtime_ns]
        except OSError:
            stat[name] = []
    return stat


def is_finished(out: Path, track: StemTrack, fingerprint: dict[str, Any]) -> bool:
    try:
        document = json.loads((out / track.key / MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if document.get("settings") != fingerprint or document.get("sources_stat") != _sources_stat(track):
        return False
    return all((out / e["vocals"]).is_file() and (out / e["instrumental"]).is_file() for e in document["entries"])


def window_pairs(
    track: StemTrack,
    vocals: np.ndarray,
    instrumental: np.ndarray,
    sample_rate: int,
    out: Path,
    options: PairsOptions,
) -> TrackPairs:
    """Cut, filter, normalise and write the windows of one loaded track; returns its manifest entries."""
    from core.audio import save_audio

    folder = out / track.key
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"w*_*.{options.format}"):  # from a run with other settings
        stale.unlink()
    frames = analyse(vocals, sample_rate, options.activity)
    hop = options.hop or options.window
    length = round(options.window * sample_rate)
    starts = window_starts(vocals.shape[-1], sample_rate, window=options.window, hop=hop)
    entries, dropped = [], 0
    for start in starts:
        index = round(start / (hop * sample_rate))
        seconds = start / sample_rate
        activity, f0 = frames.window(seconds, options.window)
        if activity < options.activity.min_activity:
            dropped += 1
            continue
        v, i, stats = normalise_pair(
            vocals[:, start : start + length], instrumental[:, start : start + length], sample_rate, options.loudness
        )
        names = {stem: f"{track.key}/w{index:04d}_{stem}.{options.format}" for stem in ("vocals", "instrumental")}
        save_audio(out / names["vocals"], v, sample_rate, subtype="PCM_16")
        save_audio(out / names["instrumental"], i, sample_rate, subtype="PCM_16")
        stats = {
            "vocal_activity": round(activity, 4),
            "median_f0_hz": None if f0 is None else round(f0, 1),
            **{k: (round(x, 3) if isinstance(x, float) else x) for k, x in stats.items()},
            "vocals_peak": round(float(np.abs(v).max()), 4),
            "instrumental_peak": round(float(np.abs(i).max()), 4),
        }
        entry = PairEntry(
            id=f"{track.key}/w{index:04d}",
            source=track.source,
            split=track.split,
            start=round(seconds, 6),
            duration=options.window,
            sample_rate=sample_rate,
            vocals=names["vocals"],
            instrumental=names["instrumental"],
            stats=stats,
            track=track.key,
            window=index,
        )
        entries.append(asdict(entry))
    return TrackPairs(
        key=track.key, entries=entries, windows=len(starts), dropped=dropped, duration=vocals.shape[-1] / sample_rate
    )


def _write_marker(out: Path, track: StemTrack, pairs: TrackPairs, fingerprint: dict[str, Any]) -> None:
    path = out / track.key / MARKER
    tmp = path.with_name(f".{MARKER}.{os.getpid()}.tmp")
    tmp.write_text(
        json.dumps(
            {
                "key": track.key,
                "source": track.source,
                "settings": fingerprint,
                "sources_stat": _sources_stat(track),
                "windows": pairs.windows,
                "dropped": pairs.dropped,
                "duration": pairs.duration,
                "entries": pairs.entries,
            },
            indent=1,
        )
    )
    os.replace(tmp, path)


def process_track(track: StemTrack, out: Path, options: PairsOptions) -> TrackPairs | str:
    """Load, window and mark one track; an error message (str) when its audio cannot be used."""
    from core.audio import AudioError
    from core.datasets import DatasetError

    try:
        vocals, instrumental, rate = load_pair(track, sample_rate=options.sample_rate)
        pairs = window_pairs(track, vocals, instrumental, rate, out, options)
    except (AudioError, DatasetError) as error:
        return f"{type(error).__name__}: {error}"
    _write_marker(out, track, pairs, options.fingerprint())
    return pairs


def write_manifest(out: Path) -> int:
    """Rebuild OUT/manifest.jsonl from every track's marker; returns the number of windows."""
    entries = []
    for marker in sorted(out.rglob(MARKER)):
        try:
            entries.extend(json.loads(marker.read_text())["entries"])
        except (OSError, json.JSONDecodeError, KeyError):
            logger.warning("ignoring unreadable %s", marker)
    entries.sort(key=lambda e: e["id"])
    tmp = out / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
    tmp.write_text("".join(json.dumps(e) + "\n" for e in entries))
    os.replace(tmp, out / MANIFEST_NAME)
    return len(entries)


def build_pairs(options: PairsOptions) -> PairsSummary:
    """Run the pairs stage over every unfinished track of `options.input` (this shard)."""
    from pipelines.separation.tracks import Shard

    options.loudness.validate()
    if options.window <= 0 or (options.hop is not None and options.hop <= 0):
        raise SingsongError("--window and --hop must be positive")
    started = time.perf_counter()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    if out.resolve() == Path(options.input).resolve():
        raise SingsongError("--out must differ from --input (the input's manifest would be overwritten)")
    shard = Shard.parse(options.shard)
    tracks = [t for t in stem_tracks(options.input, split=options.split) if shard.count == 1 or t.key in shard]
    fingerprint = options.fingerprint()
    summary = PairsSummary(tracks=len(tracks))
    todo = [t for t in tracks if not is_finished(out, t, fingerprint)]
    summary.skipped = len(tracks) - len(todo)
    bar = tqdm(total=len(tracks), initial=summary.skipped, desc="pairs", unit="track", disable=not options.progress)

    def account(track: StemTrack, result: TrackPairs | str) -> None:
        if isinstance(result, str):
            logger.error("skipping %s: %s", track.key, result)
            summary.failed.append((track.key, result))
        else:
            summary.processed += 1
            summary.windows += result.windows
            summary.kept += len(result.entries)
            summary.dropped += result.dropped
            summary.audio_seconds += result.duration
        bar.update(1)

    if options.jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=options.jobs) as pool:
            for track, result in zip(
                todo, pool.map(process_track, todo, [out] * len(todo), [options] * len(todo)), strict=True
            ):
                account(track, result)
    else:
        for track in todo:
            account(track, process_track(track, out, options))
    bar.close()
    summary.manifest_entries = write_manifest(out)
    summary.wall_seconds = time.perf_counter() - started
    return summary


__all__ = [
    "PairsOptions",
    "PairsSummary",
    "TrackPairs",
    "build_pairs",
    "process_track",
    "window_pairs",
    "write_manifest",
]
