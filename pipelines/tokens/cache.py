"""Offline token cache: a corpus of (vocal, instrumental) pairs encoded once into memory-mapped arrays.

The cascade trains on token sequences, never on audio, so every pair is encoded once (as nanoGPT prepares
its `train.bin`) into one file per *stream*::

    CACHE/
        cache.json                 streams (codebooks, frame rate, cardinality), tokenizer fingerprints
        index.jsonl                one line per finished item: id, split, [offset, frames] per stream
        vocals.semantic.bin        uint16, frame-major [total_frames, K]: appending an item is one write
        vocals.semantic_noisy.bin  ... (one file per stream)

Streams (named `SOURCE.KIND[_noisy]`, `streams.py`) name an audio source, a tokenizer and a slice of its
codebooks: instrumental semantic tokens, the instrumental codec's coarse and fine levels, and the vocal
conditioning streams (semantic tokens of the clean vocal, of the vocal with white noise added — SingSong's
augmentation against separation artefacts, featurised by `featurize.py` exactly as the accompanist does at
inference — the vocal's coarse acoustic tokens for the `SA` featurisation, and the melodic bottleneck of
`models.melody` for the `M` featurisation).

Resuming: an item counts as done once its index line is written, and the index line is written after its
tokens. On start the stream files are truncated to the end of the last indexed item, which discards the
tokens of an item interrupted mid-write; finished items are skipped. A cache refuses to continue with
tokenizers other than the ones it was started with.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm import tqdm

from core.audio import AudioError, load_audio
from core.datasets import MANIFEST_NAME, read_manifest
from core.errors import SingsongError
from models.tokenizer import AudioTokenizer
from pipelines.tokens.featurize import Featurizer, encode
from pipelines.tokens.streams import StreamName

log = logging.getLogger(__name__)

CACHE_VERSION = 1
INDEX_NAME = "index.jsonl"
INFO_NAME = "cache.json"
DTYPE = np.uint16  # every tokenizer here has at most 65536 codes


class TokenCacheError(SingsongError):
    """A cache directory is inconsistent with the request, or unreadable."""


@dataclass(frozen=True)
class StreamSpec:
    """One token stream of the cache."""

    name: str
    source: Literal["vocals", "instrumental"]
    tokenizer: Literal["semantic", "codec", "melody", "beat"]
    first_level: int = 0  # codec levels [first_level, last_level) — ignored for semantic tokens
    last_level: int | None = None
    noise_snr_db: float | None = None  # white noise added to the source before tokenizing


def stream_spec(
    name: str, first_level: int = 0, last_level: int | None = None, noise_snr_db: float | None = None
) -> StreamSpec:
    """A cache stream from its name (`streams.StreamName`): the source and the tokenizer follow from it."""
    parsed = StreamName.parse(name)
    return StreamSpec(name, parsed.source, parsed.tokenizer, first_level, last_level, noise_snr_db)


def default_streams(num_coarse_levels: int, vocal_noise_snr_db: float = 20.0) -> list[StreamSpec]:
    """The streams the cascade's featurisations and stages read."""
    noisy = vocal_noise_snr_db
    return [
        stream_spec("vocals.semantic"),
        stream_spec("vocals.semantic_noisy", noise_snr_db=noisy),
        stream_spec("vocals.coarse", 0, num_coarse_levels),
        stream_spec("vocals.coarse_noisy", 0, num_coarse_levels, noise_snr_db=noisy),
        stream_spec("vocals.melody"),
        stream_spec("vocals.melody_noisy", noise_snr_db=noisy),
        stream_spec("vocals.beat"),
        stream_spec("vocals.beat_noisy", noise_snr_db=noisy),
        stream_spec("instrumental.semantic"),
        stream_spec("instrumental.coarse", 0, num_coarse_levels),
        stream_spec("instrumental.fine", num_coarse_levels, None),
    ]


def existing_streams(directory: str | Path) -> list[StreamSpec] | None:
    """The streams an existing cache was started with (None when `directory` holds no cache yet).

    Resuming keeps them, so that adding songs to a cache made by an older version (before a new default
    stream such as `vocals.coarse_noisy`) continues it instead of refusing it.
    """
    path = Path(directory) / INFO_NAME
    if not path.is_file():
        return None
    streams = json.loads(path.read_text()).get("streams", {})
    keys = {f.name for f in fields(StreamSpec)}
    return [StreamSpec(**{k: v for k, v in spec.items() if k in keys}) for spec in streams.values()]


@dataclass(frozen=True)
class PairSource:
    """Where one item's audio comes from. `instrumental` may be several stems to sum, or mixture minus vocals."""

    id: str
    split: str
    vocals: Path
    instrumental: tuple[Path, ...]
    subtract_vocals_from: Path | None = None  # set when only the mixture is known


def pair_sources(source: str | Path, *, splits: Sequence[str] | None = None) -> list[PairSource]:
    """Items of a pairs manifest (`vocals` + `instrumental` paths) or of a stem corpus manifest (`stems`)."""
    source = Path(source)
    manifest = source / MANIFEST_NAME if source.is_dir() else source
    base = manifest.parent
    items = []
    for number, entry in enumerate(read_manifest(manifest), start=1):
        split = entry.get("split", "train")
        if splits is not None and split not in splits:
            continue
        item_id = str(entry.get("id", number))
        if "vocals" in entry and "instrumental" in entry:
            items.append(PairSource(item_id, split, base / entry["vocals"], (base / entry["instrumental"],)))
            continue
        stems = entry.get("stems", {})
        if "vocals" not in stems:
            raise TokenCacheError(f"{manifest}:{number}: entry has neither vocals/instrumental nor stems.vocals")
        others = [stems[name] for name in ("drums", "bass", "other") if name in stems]
        if others:
            items.append(PairSource(item_id, split, base / stems["vocals"], tuple(base / p for p in others)))
        elif "mixture" in stems:
            mixture = base / stems["mixture"]
            items.append(PairSource(item_id, split, base / stems["vocals"], (), subtract_vocals_from=mixture))
        else:
            raise TokenCacheError(f"{manifest}:{number}: no instrumental stems and no mixture")
    if not items:
        raise TokenCacheError(f"{manifest}: no items{f' in splits {list(splits)}' if splits else ''}")
    return items


def tokenizer_fingerprint(tokenizer: AudioTokenizer, directory: str | Path | None) -> dict[str, Any]:
    """What must not change between two runs filling the same cache."""
    digest = None
    if directory is not None:
        weights = [p for p in sorted(Path(directory).glob("*.safetensors")) if not p.name.startswith("training")]
        hasher = hashlib.sha256()
        for path in weights:
            hasher.update(path.read_bytes())
        digest = hasher.hexdigest()[:16] if weights else None
    return {
        "class": type(tokenizer).__name__,
        "sample_rate": tokenizer.sample_rate,
        "frame_rate": tokenizer.frame_rate,
        "num_codebooks": tokenizer.num_codebooks,
        "cardinality": tokenizer.cardinality,
        "weights_sha256": digest,
        # Weight-free tokenizers (the melody bottleneck) are defined by their settings instead.
        "settings": tokenizer.to_dict() if hasattr(tokenizer, "to_dict") else None,
    }


class TokenCacheWriter:
    """Appends encoded items to a cache directory (see the module docstring)."""

    def __init__(
        self,
        directory: str | Path,
        *,
        semantic: AudioTokenizer,
        codec: AudioTokenizer | None,
        streams: Sequence[StreamSpec],
        fingerprints: dict[str, Any],
        melody: AudioTokenizer | None = None,
        device: str = "cpu",
    ) -> None:
        self.directory = Path(directory)
        if melody is None and any(spec.tokenizer == "melody" for spec in streams):
            from models.melody import MelodyTokenizer

            melody = MelodyTokenizer()
        self.tokenizers: dict[str, AudioTokenizer] = {"semantic": semantic}
        if codec is not None:
            self.tokenizers["codec"] = codec
        elif any(spec.tokenizer == "codec" for spec in streams):
            raise TokenCacheError("codec streams were asked for without a codec")
        if melody is not None:
            self.tokenizers["melody"] = melody
            fingerprints = {**fingerprints, "melody": tokenizer_fingerprint(melody, None)}
        if any(spec.tokenizer == "beat" for spec in streams):
            from models.rhythm import BeatTokenizer

            self.tokenizers["beat"] = BeatTokenizer(melody=melody)
            fingerprints = {**fingerprints, "beat": tokenizer_fingerprint(self.tokenizers["beat"], None)}
        self.streams = list(streams)
        self.device = device
        for spec in self.streams:
            levels = self.tokenizers[spec.tokenizer].num_codebooks
            if spec.tokenizer == "codec" and not 0 <= spec.first_level < (spec.last_level or levels):
                raise TokenCacheError(f"stream {spec.name}: empty codec level range")
        self.info = {
            "version": CACHE_VERSION,
            "tokenizers": fingerprints,
            "streams": {spec.name: {**asdict(spec), **self._stream_shape(spec)} for spec in self.streams},
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        self._check_or_write_info()
        self.done = self._recover()

    def _stream_shape(self, spec: StreamSpec) -> dict[str, Any]:
        tokenizer = self.tokenizers[spec.tokenizer]
        last = spec.last_level if spec.last_level is not None else tokenizer.num_codebooks
        codebooks = last - spec.first_level if spec.tokenizer == "codec" else tokenizer.num_codebooks
        return {"codebooks": codebooks, "frame_rate": tokenizer.frame_rate, "cardinality": tokenizer.cardinality}

    def _check_or_write_info(self) -> None:
        path = self.directory / INFO_NAME
        if path.is_file():
            existing = json.loads(path.read_text())
            if existing != json.loads(json.dumps(self.info)):
                raise TokenCacheError(
                    f"{self.directory}: cache was started with other tokenizers or streams; "
                    "use a new --out directory (or delete this one)"
                )
            return
        tmp = path.with_name(f".{INFO_NAME}.tmp")
        tmp.write_text(json.dumps(self.info, indent=2))
        os.replace(tmp, path)

    def _recover(self) -> set[str]:
        """Ids already done; truncates stream files to the end of the last indexed item."""
        ends = {spec.name: 0 for spec in self.streams}
        done = set()
        index = self.directory / INDEX_NAME
        if index.is_file():
            lines = index.read_text().splitlines()
            valid = []
            for line in lines:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    break  # a torn last line: everything from here on is redone
                valid.append(line)
                done.add(entry["id"])
                for name, (offset, frames) in entry["frames"].items():
                    ends[name] = max(ends[name], offset + frames)
            if len(valid) != len(lines):
                index.write_text("".join(v + "\n" for v in valid))
        self._ends = ends
        self._truncate_to_ends()
        return done

    def _truncate_to_ends(self) -> None:
        for spec in self.streams:
            row_bytes = self.info["streams"][spec.name]["codebooks"] * np.dtype(DTYPE).itemsize
            with (self.directory / f"{spec.name}.bin").open("ab") as handle:
                handle.truncate(self._ends[spec.name] * row_bytes)

    def add(self, item: PairSource) -> None:
        """Encode one item into every stream, then commit its index line."""
        # The same featurisation as the accompanist's at inference (featurize.py), keyed by the item id.
        sources = {name: Featurizer(samples, sr, key=item.id) for name, (samples, sr) in load_pair(item).items()}
        encoded: dict[str, np.ndarray] = {}
        for spec in self.streams:
            tokenizer = self.tokenizers[spec.tokenizer]
            audio = sources[spec.source].audio(tokenizer, StreamName.parse(spec.name), spec.noise_snr_db)
            codes = encode(tokenizer, [audio], self.device)[0].cpu().numpy()  # [K, F]
            if spec.tokenizer == "codec":
                codes = codes[spec.first_level : spec.last_level]
            encoded[spec.name] = np.ascontiguousarray(codes.T.astype(DTYPE))  # [F, K]
        frames = {name: [self._ends[name], rows.shape[0]] for name, rows in encoded.items()}
        try:
            for name, rows in encoded.items():
                with (self.directory / f"{name}.bin").open("ab") as handle:
                    handle.write(rows.tobytes())
                    handle.flush()
                    os.fsync(handle.fileno())
        except BaseException:
            self._truncate_to_ends()  # e.g. disk full: leave no partial rows behind for the next item
            raise
        with (self.directory / INDEX_NAME).open("a") as handle:
            handle.write(json.dumps({"id": item.id, "split": item.split, "frames": frames}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        for name, (offset, length) in frames.items():
            self._ends[name] = offset + length
        self.done.add(item.id)


def load_pair(item: PairSource) -> dict[str, tuple[np.ndarray, int]]:
    """`{"vocals": (samples [C, T], sr), "instrumental": ...}`, trimmed to a common length."""
    vocals = load_audio(item.vocals)
    sr = vocals.sample_rate
    if item.subtract_vocals_from is not None:
        mixture = load_audio(item.subtract_vocals_from, sample_rate=sr, channels=vocals.channels).samples
        length = min(mixture.shape[-1], vocals.num_frames)
        instrumental = mixture[:, :length] - vocals.samples[:, :length]
    else:
        parts = [load_audio(p, sample_rate=sr, channels=vocals.channels).samples for p in item.instrumental]
        length = min(p.shape[-1] for p in parts)
        instrumental = sum(p[:, :length] for p in parts)
    length = min(length, vocals.num_frames)
    return {"vocals": (vocals.samples[:, :length], sr), "instrumental": (instrumental[:, :length], sr)}


@dataclass
class CacheBuildSummary:
    encoded: int = 0
    skipped: int = 0
    failed: int = 0


def build_token_cache(
    writer: TokenCacheWriter, items: Iterable[PairSource], *, progress: bool = True
) -> CacheBuildSummary:
    """Encode every item not yet in the cache; unreadable items are logged and skipped."""
    items = list(items)
    summary = CacheBuildSummary()
    for item in tqdm(items, desc="encoding", unit="item", disable=not progress):
        if item.id in writer.done:
            summary.skipped += 1
            continue
        try:
            writer.add(item)
        except (AudioError, OSError) as error:
            log.warning("skipping %s: %s", item.id, error)
            summary.failed += 1
            continue
        summary.encoded += 1
    return summary
