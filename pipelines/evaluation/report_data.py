"""What `singsong eval report` runs on: held-out songs from a stem corpus, a pairs manifest, or plain vocals.

* **Stem corpus** (`singsong corpus synth` output, `--data DIR --split valid,test`): songs are read from the
  split folders (`DIR/<split>/<song>/meta.json`), not from `manifest.jsonl`, which a corpus still being
  rendered writes last. The instrumental is drums + bass + other; the mixture is the rendered `mixture`.
* **Pairs manifest** (`--data pairs.jsonl`): `vocals` and `instrumental` windows; the mixture is their sum.
* **Plain vocals** (`--vocals DIR`): every audio file, no ground truth: only the reference-free metrics and
  only the engines' rows can be computed.

Every clip is cropped to its first `seconds`. Audio stays at the files' sample rate (`Audio`, `[C, T]`);
ground truth is kept as mono `[T]` at the same rate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.audio import Audio, load_audio, resample
from core.errors import SingsongError

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm")


@dataclass
class ReportSong:
    id: str
    vocal: Audio  # the isolated vocal `[C, T]`
    mixture: Audio | None = None  # for the separated-vocal section
    truth: np.ndarray | None = None  # the true instrumental, mono `[T]` at `vocal.sample_rate`
    meta: dict = field(default_factory=dict)  # seed, style, key, tempo when known
    cache: dict = field(default_factory=dict, repr=False)  # derived features, computed once per song

    @property
    def rate(self) -> int:
        return self.vocal.sample_rate


def _crop(audio: Audio, seconds: float) -> Audio:
    return Audio(audio.samples[:, : round(seconds * audio.sample_rate)], audio.sample_rate)


def _mono_at(audio: Audio, rate: int, frames: int) -> np.ndarray:
    mono = resample(audio.samples.mean(axis=0), audio.sample_rate, rate)[:frames]
    return np.pad(mono, (0, frames - len(mono))).astype(np.float32)


def corpus_songs(data: Path, splits: list[str], seconds: float) -> list[ReportSong]:
    """Songs of a stem corpus's `splits`, in seed order."""
    metas = sorted(m for split in splits for m in (data / split).glob("*/meta.json"))
    songs = []
    for meta_path in metas:
        meta = json.loads(meta_path.read_text())
        files = meta.get("files", {})
        folder = meta_path.parent
        if "vocals" not in files:
            raise SingsongError(f"{folder}: the song has no vocals stem")
        vocal = _crop(load_audio(folder / files["vocals"]), seconds)
        parts = [_crop(load_audio(folder / files[n]), seconds) for n in ("drums", "bass", "other") if n in files]
        mixture = _crop(load_audio(folder / files["mixture"]), seconds) if "mixture" in files else None
        if parts:
            truth = sum(_mono_at(p, vocal.sample_rate, vocal.num_frames) for p in parts)
        elif mixture is not None:  # a two-stem corpus: mixture minus vocals
            truth = _mono_at(mixture, vocal.sample_rate, vocal.num_frames) - vocal.samples.mean(axis=0)
        else:
            truth = None
        keep = {k: meta[k] for k in ("seed", "style", "key", "tempo", "split") if k in meta}
        songs.append(ReportSong(meta.get("id", folder.name), vocal, mixture, truth, keep))
    return songs


def pairs_songs(manifest: Path, splits: list[str], seconds: float) -> list[ReportSong]:
    """Windows of a pairs manifest (`singsong pipeline pairs` output) whose split is in `splits`."""
    from core.datasets import read_manifest

    songs = []
    for entry in read_manifest(manifest):
        if "all" not in splits and entry.get("split") not in splits:
            continue
        vocal = _crop(load_audio(manifest.parent / entry["vocals"]), seconds)
        instrumental = _crop(load_audio(manifest.parent / entry["instrumental"]), seconds)
        frames = min(vocal.num_frames, instrumental.num_frames)
        vocal = Audio(vocal.samples[:, :frames], vocal.sample_rate)
        truth = _mono_at(instrumental, vocal.sample_rate, frames)
        mixture = Audio(vocal.samples + truth[None, :], vocal.sample_rate)
        songs.append(ReportSong(entry["id"], vocal, mixture, truth, {"split": entry.get("split")}))
    return songs


def vocal_folder_songs(folder: Path, seconds: float) -> list[ReportSong]:
    """Every audio file under `folder` (sorted), as vocals without ground truth."""
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    return [ReportSong(str(p.relative_to(folder)), _crop(load_audio(p), seconds)) for p in paths]


def load_songs(
    data: Path | None, vocals: Path | None, splits: list[str], seconds: float, max_songs: int | None
) -> list[ReportSong]:
    """The report's songs from exactly one of `data` (corpus folder or pairs manifest) and `vocals`."""
    if (data is None) == (vocals is None):
        raise SingsongError("give exactly one of --data (corpus or pairs manifest) and --vocals (a folder)")
    if vocals is not None:
        if not vocals.is_dir():
            raise SingsongError(f"{vocals}: not a folder of vocals")
        songs = vocal_folder_songs(vocals, seconds)
    elif data.is_file() and data.suffix == ".jsonl":
        songs = pairs_songs(data, splits, seconds)
    elif data.is_dir():
        songs = corpus_songs(data, splits, seconds)
    else:
        raise SingsongError(f"{data}: neither a stem corpus folder nor a pairs manifest (.jsonl)")
    songs = songs[:max_songs] if max_songs else songs
    if len(songs) < 2:
        raise SingsongError(f"found {len(songs)} songs; the report needs 2 or more (the other-song control)")
    short = [s.id for s in songs if s.vocal.duration < 2.0]
    if short:
        raise SingsongError(f"{len(short)} clips are shorter than 2 s (first: {short[0]})")
    return songs
