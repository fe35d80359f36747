"""The retrieval baseline's library of instrumentals: its index format, loading, and `singsong corpus library`.

A library is a folder with `index.json` and one compressed instrumental per entry. Each entry records what
the retrieval engine matches on and aligns with: `key` (`tonic`, `mode`), `tempo`, `beats_per_bar`, `beats`
(beat times in seconds), plus `style`, `seed` and `file`. Any stem corpus can become a library
(`singsong corpus library --from-corpus DIR`: drums + bass + other of every song, beats from its declared
tempo), and one ships with the package (`pipelines/inference/library/`).

The bundled library is rendered by the corpus generator from seeds that are in the corpus's **train** split
(`split_for_seed`), never valid/test, and far above the seeds of the project's evaluation corpora (search
starts at seed 100000), so held-out songs can never be retrieved as their own accompaniment. It spans every
style preset with both modes where the style has them, and spreads tempos within each style. The same command
regenerates it exactly (`singsong corpus library --out pipelines/inference/library`): composition and
rendering are deterministic in the seed. Audio is Ogg Vorbis at libsndfile's smallest setting
(`compression_level=1.0`, ~55-75 kb/s stereo: 134-190 KB per 20 s), 40 songs = 6.0 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.errors import SingsongError
from pipelines.evaluation.fit import Key

INDEX_NAME = "index.json"
INDEX_VERSION = 1
SEED_SEARCH_START = 100_000


class LibraryError(SingsongError):
    """A retrieval library folder is missing, empty or malformed."""


@dataclass(frozen=True)
class LibraryEntry:
    file: str  # relative to the library folder
    seed: int
    style: str
    tonic: int
    mode: str
    tempo: float
    beats_per_bar: int
    beats: tuple[float, ...]  # beat times, seconds
    duration: float

    @property
    def key(self) -> Key:
        return Key(self.tonic, self.mode)


@dataclass
class RetrievalLibrary:
    root: Path
    entries: list[LibraryEntry]

    def path(self, entry: LibraryEntry) -> Path:
        return self.root / entry.file

    @classmethod
    def load(cls, root: str | Path | None = None) -> RetrievalLibrary:
        """Read `root/index.json` (default: the bundled library) and check that every file exists."""
        root = Path(root) if root is not None else default_library_dir()
        index = root / INDEX_NAME
        if not index.is_file():
            raise LibraryError(f"{root}: not a retrieval library ({INDEX_NAME} is missing)")
        try:
            document = json.loads(index.read_text())
            entries = [LibraryEntry(**{**e, "beats": tuple(float(b) for b in e["beats"])}) for e in document["entries"]]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise LibraryError(f"{index}: malformed index ({error})") from error
        if document.get("version") != INDEX_VERSION:
            raise LibraryError(f"{index}: index version {document.get('version')}, expected {INDEX_VERSION}")
        if not entries:
            raise LibraryError(f"{index}: the library has no entries")
        missing = [e.file for e in entries if not (root / e.file).is_file()]
        if missing:
            raise LibraryError(f"{root}: {len(missing)} library files are missing (first: {missing[0]})")
        return cls(root, entries)


def default_library_dir() -> Path:
    """The library shipped with the package."""
    return Path(__file__).resolve().parent / "library"


def write_index(root: Path, entries: list[LibraryEntry], source: dict) -> Path:
    document = {"version": INDEX_VERSION, "source": source, "entries": [asdict(e) for e in entries]}
    tmp = root / f".{INDEX_NAME}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(document, indent=1))
    os.replace(tmp, root / INDEX_NAME)
    return root / INDEX_NAME


def write_vorbis(path: Path, samples: np.ndarray, sample_rate: int, compression: float = 1.0) -> None:
    """`[C, T]` -> Ogg Vorbis at libsndfile's `compression_level` (0 best quality .. 1 smallest), atomically.

    `core.audio.save_audio` writes Vorbis at libsndfile's default quality (~2x the size); the library trades
    quality for a package that stays a few MB.
    """
    import soundfile as sf

    peak = float(np.abs(samples).max()) if samples.size else 0.0
    data = samples * (0.89 / peak) if peak > 0.89 else samples  # -1 dBFS: lossy coding overshoots peaks
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    sf.write(str(tmp), data.T, sample_rate, format="OGG", subtype="VORBIS", compression_level=compression)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------ building
def select_seeds(per_style: int = 4, start: int = SEED_SEARCH_START, seconds: float = 20.0) -> list[int]:
    """Train-split seeds, `per_style` per style preset: half major and half minor where the style allows,
    tempos at least 6 BPM apart within a style. Composition only (cheap); deterministic."""
    from pipelines.corpus.composer import compose, style_names
    from pipelines.corpus.generate import split_for_seed

    styles = style_names()
    chosen: dict[str, list[tuple[int, str, float]]] = {s: [] for s in styles}
    seed = start
    while any(len(v) < per_style for v in chosen.values()) and seed < start + 5000:
        if split_for_seed(seed) == "train":
            song = compose(seed, seconds)
            picks = chosen[song.style]
            modes = [m for _, m, _ in picks]
            mode_full = modes.count(song.mode) >= (per_style + 1) // 2 and seed - start < 3000
            tempo_close = any(abs(song.tempo - t) < 6 for _, _, t in picks) and seed - start < 2000
            if len(picks) < per_style and not mode_full and not tempo_close:
                picks.append((seed, song.mode, song.tempo))
        seed += 1
    return sorted(s for picks in chosen.values() for s, _, _ in picks)


def _entry_from_meta(meta: dict, file: str) -> LibraryEntry:
    beat = 60.0 / float(meta["tempo"])
    beats = tuple(round(b, 4) for b in np.arange(0.0, float(meta["duration"]) - 1e-6, beat))
    return LibraryEntry(
        file=file,
        seed=int(meta["seed"]),
        style=meta["style"],
        tonic=int(meta["tonic"]),
        mode=meta["mode"],
        tempo=float(meta["tempo"]),
        beats_per_bar=int(meta["beats_per_bar"]),
        beats=beats,
        duration=float(meta["duration"]),
    )


def _instrumental(song_dir: Path, meta: dict) -> tuple[np.ndarray, int]:
    from core.audio import load_audio

    stems = [load_audio(song_dir / meta["files"][n]) for n in ("drums", "bass", "other") if n in meta["files"]]
    if not stems:
        raise LibraryError(f"{song_dir}: no drums/bass/other stems")
    return sum(s.samples for s in stems), stems[0].sample_rate


def build_library(out: Path, seeds: list[int], seconds: float = 20.0, *, progress: bool = True) -> list[LibraryEntry]:
    """Render `seeds` with the corpus generator and write their instrumentals + index into `out`."""
    from tqdm import tqdm

    from pipelines.corpus.generate import CorpusSettings, build_song, song_id, split_for_seed

    held_out = [s for s in seeds if split_for_seed(s) != "train"]
    if held_out:
        raise LibraryError(f"seeds {held_out[:5]} are not in the train split: they could be evaluation songs")
    out.mkdir(parents=True, exist_ok=True)
    settings = CorpusSettings(songs=len(seeds), seconds=seconds)
    entries = []
    with tempfile.TemporaryDirectory(prefix="singsong-library-") as scratch:
        for seed in tqdm(seeds, desc="rendering library", unit="song", disable=not progress):
            meta = build_song(Path(scratch), seed, settings)
            if meta is None:
                raise LibraryError(f"seed {seed}: the corpus generator rendered nothing")
            song_dir = Path(scratch) / meta["split"] / song_id(seed)
            samples, rate = _instrumental(song_dir, meta)
            file = f"{meta['style']}_{seed}.ogg"
            write_vorbis(out / file, samples, rate)
            entries.append(_entry_from_meta(meta, file))
    write_index(out, entries, {"generator": "singsong corpus synth", "seeds": seeds, "seconds": seconds})
    return entries


def library_from_corpus(corpus: Path, out: Path, split: str = "train") -> list[LibraryEntry]:
    """Turn the `split` songs of a stem corpus (`meta.json` per song) into a library in `out`."""
    from tqdm import tqdm

    metas = sorted((corpus / split).glob("*/meta.json"))
    if not metas:
        raise LibraryError(f"{corpus}: no {split} songs with meta.json")
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for meta_path in tqdm(metas, desc="encoding library", unit="song"):
        meta = json.loads(meta_path.read_text())
        samples, rate = _instrumental(meta_path.parent, meta)
        file = f"{meta['style']}_{meta['seed']}.ogg"
        write_vorbis(out / file, samples, rate)
        entries.append(_entry_from_meta(meta, file))
    write_index(out, entries, {"corpus": str(corpus), "split": split})
    return entries


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add `singsong corpus library`."""
    parser = groups["corpus"].add_parser(
        "library",
        help="build the retrieval baseline's library of instrumentals (the bundled one, or from a corpus)",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=default_library_dir(), help="library folder")
    parser.add_argument("--per-style", type=int, default=4, help="songs per style preset (10 presets)")
    parser.add_argument("--seed-start", type=int, default=SEED_SEARCH_START, help="first seed searched")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--from-corpus", type=Path, default=None, help="use a stem corpus's songs instead")
    parser.add_argument("--split", default="train", help="with --from-corpus: which split")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.from_corpus is not None:
        entries = library_from_corpus(args.from_corpus, args.out, args.split)
    else:
        entries = build_library(args.out, select_seeds(args.per_style, args.seed_start, args.seconds), args.seconds)
    size = sum((args.out / e.file).stat().st_size for e in entries)
    styles = sorted({e.style for e in entries})
    print(f"{args.out}: {len(entries)} instrumentals, {size / 1e6:.1f} MB, styles {', '.join(styles)}")
    return 0
