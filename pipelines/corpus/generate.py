"""Writing a synthetic multitrack corpus: many songs, each with stems, MIDI and metadata.

Layout (MUSDB-like, so every later stage can treat it like a real stem corpus)::

    OUT/
        manifest.jsonl                      one line per song (id, split, style, key, tempo, stem paths)
        corpus.json                         how the corpus was made (generator version, settings)
        train/song_00000042/
            vocals.flac drums.flac bass.flac other.flac mixture.flac
            song.mid                        every part, the vocal on a voice patch
            meta.json                       style, key, tempo, chords per bar, seed, parts, singer timbre

Song `i` of a run uses seed `seed + i`; its split is a pure function of that seed, so songs keep their
split when a corpus is grown or regenerated elsewhere. `meta.json` is written last and atomically: a song
directory without it is unfinished and gets rendered again, one with it is skipped, which makes a run
resumable after a crash and makes reruns free.

Levels: the accompaniment parts are mixed at their preset gains, the vocal is set relative to the
accompaniment's loudness (pyloudnorm, ITU-R BS.1770) with a per-song random offset, and one common gain
brings the mixture to a target loudness without exceeding a peak ceiling. The same gain applies to every
stem, so `mixture == vocals + drums + bass + other` up to file quantisation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyloudnorm
from tqdm import tqdm

from core.audio import save_audio
from core.datasets import MANIFEST_NAME
from core.errors import SingsongError
from pipelines.corpus.composer import compose
from pipelines.corpus.render import PartRenderer, apply_reverb, room_impulse_response
from pipelines.corpus.song import STEMS, Song
from pipelines.corpus.voice import VoiceTimbre, render_vocal

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
PEAK_CEILING = 0.89  # -1 dBFS: headroom for lossy re-encoding and later resampling overshoot
TARGET_LUFS = -16.0


@dataclass(frozen=True)
class CorpusSettings:
    songs: int
    seconds: float
    seed: int = 0
    sample_rate: int = 44100
    format: str = "flac"  # "flac" (16-bit, about half the size) or "wav"
    styles: tuple[str, ...] | None = None  # None: every preset, chosen per song from its seed
    soundfont: str | None = None
    valid_fraction: float = 0.05
    test_fraction: float = 0.05

    def validate(self) -> None:
        if self.songs < 1:
            raise SingsongError(f"--songs must be at least 1 (got {self.songs})")
        if not 2.0 <= self.seconds <= 600.0:
            raise SingsongError(f"--seconds must be between 2 and 600 (got {self.seconds})")
        if self.format not in ("flac", "wav"):
            raise SingsongError(f"--format must be flac or wav (got {self.format!r})")
        if not 8000 <= self.sample_rate <= 96000:
            raise SingsongError(f"--sample-rate must be between 8000 and 96000 (got {self.sample_rate})")
        if self.valid_fraction + self.test_fraction >= 1.0:
            raise SingsongError("valid and test fractions must leave room for a training split")


@dataclass
class CorpusSummary:
    rendered: int = 0
    skipped: int = 0
    audio_seconds: float = 0.0
    render_seconds: float = 0.0  # summed over workers: CPU-ish time spent composing and rendering
    wall_seconds: float = 0.0
    splits: dict[str, int] = field(default_factory=dict)

    @property
    def realtime_factor(self) -> float:
        """Seconds of song audio rendered per second of render time (per worker)."""
        return self.audio_seconds / self.render_seconds if self.render_seconds else 0.0


def split_for_seed(seed: int, valid_fraction: float = 0.05, test_fraction: float = 0.05) -> str:
    """Deterministic train/valid/test assignment from a song's seed (a hash, so neighbours are mixed)."""
    digest = hashlib.sha256(f"singsong-split-{seed}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + valid_fraction:
        return "valid"
    return "train"


def song_id(seed: int) -> str:
    return f"song_{seed:08d}"


def _loudness(meter: pyloudnorm.Meter, stereo: np.ndarray) -> float:
    value = meter.integrated_loudness(stereo.T.astype(np.float64))
    return value if np.isfinite(value) else -70.0


def render_song(
    song: Song, renderer: PartRenderer, rng: np.random.Generator, timings: dict[str, float] | None = None
) -> tuple[dict[str, np.ndarray], dict]:
    """Render every stem of `song` at the renderer's rate -> ({stem: [2, T] float32}, render info).

    `timings`, if given, accumulates seconds per stage ("parts", "vocal", "reverb", "levels").
    """
    timings = timings if timings is not None else {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - clock
        clock = now

    sr = renderer.sample_rate
    num_samples = round(song.duration * sr)
    stems = {name: np.zeros((2, num_samples), np.float32) for name in STEMS}
    for part in song.parts:
        stems[part.stem] += renderer.render(part, song.duration)
    lap("parts")

    timbre = VoiceTimbre.random(rng)
    vocal = render_vocal(song.vocal, song.duration, sample_rate=sr, seed=song.seed, timbre=timbre)
    stems["vocals"] = np.stack([vocal, vocal]).astype(np.float32)
    lap("vocal")

    # One room for the whole band, different send levels per stem (drums and vocals a bit drier).
    rt60 = float(rng.uniform(0.3, 1.2))
    response = room_impulse_response(sr, rng, rt60=rt60)
    sends = {
        "vocals": rng.uniform(0.08, 0.3),
        "drums": rng.uniform(0.03, 0.15),
        "bass": rng.uniform(0.0, 0.05),
        "other": rng.uniform(0.1, 0.35),
    }
    for name in STEMS:
        stems[name] = apply_reverb(stems[name], response, float(sends[name]))
    lap("reverb")

    meter = pyloudnorm.Meter(sr)
    accompaniment = stems["drums"] + stems["bass"] + stems["other"]
    vocal_offset_db = float(rng.uniform(-1.0, 4.0))  # vocals usually sit on top of the band
    vocal_gain = 10 ** ((_loudness(meter, accompaniment) + vocal_offset_db - _loudness(meter, stems["vocals"])) / 20)
    stems["vocals"] *= np.float32(vocal_gain)

    mixture = accompaniment + stems["vocals"]
    gain = 10 ** ((TARGET_LUFS - _loudness(meter, mixture)) / 20)
    peak = float(np.abs(mixture).max()) * gain
    if peak > PEAK_CEILING:
        gain *= PEAK_CEILING / peak
    for name in STEMS:
        stems[name] *= np.float32(gain)
    stems["mixture"] = sum((stems[name] for name in STEMS), np.zeros_like(mixture))
    lap("levels")
    info = {
        "vocal_timbre": asdict(timbre),
        "reverb": {"rt60": rt60, "sends": {k: float(v) for k, v in sends.items()}},
        "vocal_offset_db": vocal_offset_db,
        "soundfont": renderer.soundfont.name,
    }
    return stems, info


def _write_json_atomic(path: Path, document: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(document, indent=2))
    os.replace(tmp, path)


def _is_complete(song_dir: Path, settings: CorpusSettings) -> bool:
    meta_path = song_dir / "meta.json"
    if not meta_path.is_file():
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError:
        return False
    same = (
        meta.get("generator_version") == GENERATOR_VERSION
        and meta.get("duration") == settings.seconds
        and meta.get("sample_rate") == settings.sample_rate
        and meta.get("format") == settings.format
    )
    return same and all((song_dir / relative).is_file() for relative in meta.get("files", {}).values())


_worker_renderer: PartRenderer | None = None


def _renderer(settings: CorpusSettings) -> PartRenderer:
    # One renderer per process: loading the soundfont is the slowest part of setting up.
    global _worker_renderer
    if _worker_renderer is None or _worker_renderer.sample_rate != settings.sample_rate:
        _worker_renderer = PartRenderer(settings.soundfont, settings.sample_rate)
    return _worker_renderer


def build_song(out: Path, seed: int, settings: CorpusSettings) -> dict[str, Any] | None:
    """Compose, render and write one song; returns its manifest entry (None if it was already complete)."""
    split = split_for_seed(seed, settings.valid_fraction, settings.test_fraction)
    song_dir = out / split / song_id(seed)
    if _is_complete(song_dir, settings):
        return None
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    style = None if settings.styles is None else settings.styles[int(rng.integers(len(settings.styles)))]
    song = compose(seed, settings.seconds, style=style)
    stems, info = render_song(song, _renderer(settings), rng)
    song_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, audio in stems.items():
        files[name] = f"{name}.{settings.format}"
        save_audio(song_dir / files[name], audio, settings.sample_rate, subtype="PCM_16")
    midi_tmp = song_dir / ".song.mid.tmp"
    song.to_midi().write(str(midi_tmp))
    os.replace(midi_tmp, song_dir / "song.mid")
    files["midi"] = "song.mid"
    meta = {
        "id": song_id(seed),
        "split": split,
        "generator_version": GENERATOR_VERSION,
        "sample_rate": settings.sample_rate,
        "format": settings.format,
        **song.metadata(),
        "vocal_range": [min(n.pitch for n in song.vocal), max(n.pitch for n in song.vocal)] if song.vocal else None,
        "render": info,
        "files": files,
        "render_seconds": time.perf_counter() - started,
    }
    _write_json_atomic(song_dir / "meta.json", meta)  # last: marks the song complete
    return meta


def manifest_entry(out: Path, meta: dict[str, Any]) -> dict[str, Any]:
    base = f"{meta['split']}/{meta['id']}"
    return {
        "id": meta["id"],
        "split": meta["split"],
        "seed": meta["seed"],
        "style": meta["style"],
        "key": meta["key"],
        "tempo": meta["tempo"],
        "duration": meta["duration"],
        "sample_rate": meta["sample_rate"],
        "stems": {name: f"{base}/{meta['files'][name]}" for name in (*STEMS, "mixture")},
        "midi": f"{base}/{meta['files']['midi']}",
        "meta": f"{base}/meta.json",
    }


def write_manifest(out: Path) -> int:
    """Rebuild `manifest.jsonl` from every complete song under `out`; returns the number of songs."""
    entries = []
    for meta_path in sorted(out.glob("*/song_*/meta.json")):
        meta = json.loads(meta_path.read_text())
        entries.append(manifest_entry(out, meta))
    tmp = out / f".{MANIFEST_NAME}.tmp"
    tmp.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    os.replace(tmp, out / MANIFEST_NAME)
    return len(entries)


def generate_corpus(
    out: str | Path, settings: CorpusSettings, *, jobs: int = 1, progress: bool = True
) -> CorpusSummary:
    """Render `settings.songs` songs into `out` (skipping complete ones), then rebuild the manifest."""
    settings.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    corpus_info = {"generator_version": GENERATOR_VERSION, **asdict(settings)}
    _write_json_atomic(out / "corpus.json", corpus_info)
    seeds = [settings.seed + i for i in range(settings.songs)]
    summary = CorpusSummary()
    started = time.perf_counter()
    bar = tqdm(total=len(seeds), desc="songs", unit="song", disable=not progress)

    def account(result: dict[str, Any] | None) -> None:
        if result is None:
            summary.skipped += 1
        else:
            summary.rendered += 1
            summary.audio_seconds += result["duration"]
            summary.render_seconds += result["render_seconds"]
        bar.update(1)

    if jobs <= 1:
        for seed in seeds:
            account(build_song(out, seed, settings))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(build_song, out, seed, settings) for seed in seeds]
            for future in as_completed(futures):
                account(future.result())
    bar.close()
    write_manifest(out)
    summary.wall_seconds = time.perf_counter() - started
    for seed in seeds:
        split = split_for_seed(seed, settings.valid_fraction, settings.test_fraction)
        summary.splits[split] = summary.splits.get(split, 0) + 1
    return summary
