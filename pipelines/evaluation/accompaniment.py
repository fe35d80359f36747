"""`singsong eval accompaniment`: does a generated accompaniment fit the vocal it was made for?

Token losses (`singsong eval cascade`) say how well a stage predicts held-out tokens; this command listens to
the result instead. For every song of a stem corpus split (the synthetic corpus, or any corpus whose
`manifest.jsonl` entries carry `tempo` and `key`), it accompanies the song's vocal stem with a model directory
and measures the audio against what the song declares:

* **tempo**: librosa's beat tracker on the accompaniment; a hit when its tempo is within 8% of the declared
  tempo at the same metrical level or at half/double (a tracker's usual ambiguity).
* **key**: Pearson correlation between the accompaniment's mean chroma and the Krumhansl-Kessler profile of
  the declared key (Krumhansl, 1990): ~0 for music unrelated to the key, ~0.6-0.9 for tonal music in it.

Key profiles and the beat tracker are `fit.py`'s; `singsong eval report` adds the reference-free fit metrics
(harmonic support, key and tempo of the vocal itself) and the retrieval baseline.

Every figure comes with two references measured in the same run, on the same songs:

* `reference` — the song's true instrumental after a round trip through the model's codec: what a perfect
  cascade could reach with this codec (a weak codec caps key scores, not the model); `source` is the same
  instrumental before the codec.
* `other vocal` — each accompaniment scored against the *next* song's tempo and key: the level of an
  accompaniment that ignores the vocal. A model that follows the vocal beats it; one that does not, ties.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.errors import SingsongError
from pipelines.evaluation.fit import Key, beat_track, profile_correlation, tempo_agrees


def key_profile(key: str) -> np.ndarray:
    """`"B minor"` -> its 12-bin Krumhansl-Kessler profile rotated to the tonic (`fit.Key`)."""
    return Key.parse(key).profile()


def key_correlation(audio: np.ndarray, sample_rate: int, key: str) -> float:
    """Correlation of the mean chroma of mono `audio [T]` with the profile of `key` (0 for silence)."""
    import librosa

    chroma = librosa.feature.chroma_stft(y=audio.astype(np.float32), sr=sample_rate, tuning=0.0).mean(axis=1)
    return profile_correlation(chroma, Key.parse(key))


def estimated_tempo(audio: np.ndarray, sample_rate: int) -> float:
    """librosa's beat tracker tempo (`fit.beat_track`)."""
    return beat_track(audio, sample_rate).tempo


def tempo_hit(estimate: float, declared: float) -> bool:
    """Within 8% of the declared tempo, or of half or double it (`fit.tempo_agrees`)."""
    return tempo_agrees(estimate, declared)


@dataclass
class SongScore:
    song: str
    declared_tempo: float
    key: str
    tempo: float  # estimated on the generated accompaniment
    tempo_hit: bool
    key_correlation: float
    reference_tempo_hit: bool  # the true instrumental through the codec
    reference_key_correlation: float
    source_tempo_hit: bool  # the true instrumental itself
    source_key_correlation: float
    other_vocal_tempo_hit: bool  # the accompaniment of the next song's vocal, scored against this song
    other_vocal_key_correlation: float


@dataclass
class AccompanimentReport:
    model: str
    songs: list[SongScore]

    def summary(self) -> dict[str, float]:
        def mean(values: Sequence[float]) -> float:
            return float(statistics.fmean(values)) if values else float("nan")

        songs = self.songs
        return {
            "songs": len(songs),
            "model/tempo_hit_rate": mean([s.tempo_hit for s in songs]),
            "model/key_correlation": mean([s.key_correlation for s in songs]),
            "other_vocal/tempo_hit_rate": mean([s.other_vocal_tempo_hit for s in songs]),
            "other_vocal/key_correlation": mean([s.other_vocal_key_correlation for s in songs]),
            "reference/tempo_hit_rate": mean([s.reference_tempo_hit for s in songs]),
            "reference/key_correlation": mean([s.reference_key_correlation for s in songs]),
            "source/tempo_hit_rate": mean([s.source_tempo_hit for s in songs]),
            "source/key_correlation": mean([s.source_key_correlation for s in songs]),
        }


def _corpus_entries(data: Path, split: str, limit: int | None) -> list[dict]:
    manifest = data / "manifest.jsonl"
    if not manifest.is_file():
        raise SingsongError(f"{data}: not a stem corpus (manifest.jsonl is missing)")
    entries = []
    for number, line in enumerate(manifest.read_text().splitlines(), 1):
        if not line.strip():
            continue
        entry = json.loads(line)
        if split != "all" and entry.get("split") not in split.split(","):
            continue
        missing = [field for field in ("tempo", "key", "stems") if field not in entry]
        if missing or "vocals" not in entry["stems"]:
            raise SingsongError(f"{manifest}:{number}: entry needs tempo, key and a vocals stem (missing {missing})")
        entries.append(entry)
    if len(entries) < 2:
        raise SingsongError(f"{manifest}: split {split!r} has {len(entries)} songs; the comparison needs 2 or more")
    return entries[:limit] if limit else entries


def evaluate_accompaniment(
    model_dir: str | Path | None,
    data: str | Path,
    *,
    split: str = "test",
    seconds: float = 10.0,
    max_songs: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 8,
    sampling: dict[str, float] | None = None,
) -> AccompanimentReport:
    """Accompany every song's vocal (its first `seconds`) and score it as the module docstring describes.

    `sampling`: `GenerationOptions` fields (temperature, top_k, top_p, guidance_scale) for every song.
    """
    import torch
    from tqdm import tqdm

    from core.audio import Audio, load_audio, resample
    from pipelines.inference.accompanist import Accompanist, default_model_dir
    from pipelines.inference.engine import GenerationOptions

    data = Path(data)
    entries = _corpus_entries(data, split, max_songs)
    accompanist = Accompanist.from_pretrained(model_dir, device=device)
    codec = accompanist.codec
    rate = codec.sample_rate
    vocals, instrumentals = [], []
    for entry in entries:
        stems = {name: load_audio(data / path, max_seconds=None) for name, path in entry["stems"].items()}
        frames = min(round(seconds * stems["vocals"].sample_rate), stems["vocals"].num_frames)
        vocal = stems["vocals"]
        vocals.append(Audio(vocal.samples[:, :frames], vocal.sample_rate))
        others = [a for name, a in stems.items() if name not in ("vocals", "mixture")]
        if others:
            instrumental = sum(a.samples[:, :frames] for a in others)
        else:  # a two-stem corpus: mixture minus vocals
            instrumental = stems["mixture"].samples[:, :frames] - vocal.samples[:, :frames]
        instrumentals.append(resample(np.asarray(instrumental).mean(axis=0), vocal.sample_rate, rate))

    generated: list[np.ndarray] = []
    for start in tqdm(range(0, len(vocals), batch_size), desc="accompanying", unit="batch"):
        chunk = vocals[start : start + batch_size]
        options = [GenerationOptions(seed=seed + start + i, **(sampling or {})) for i in range(len(chunk))]
        for vocal, takes in zip(chunk, accompanist.accompany_batch(chunk, options), strict=True):
            generated.append(resample(takes[0].accompaniment.mean(axis=0), vocal.sample_rate, rate))

    songs = []
    for index, entry in enumerate(tqdm(entries, desc="scoring", unit="song")):
        with torch.inference_mode():
            wave = torch.from_numpy(instrumentals[index].astype(np.float32))[None, None].to(device)
            reference = codec.decode(codec.encode(wave)).float().cpu().numpy()[0].mean(axis=0)
        other = generated[(index + 1) % len(entries)]
        tempo = estimated_tempo(generated[index], rate)
        songs.append(
            SongScore(
                song=str(entry.get("id", index)),
                declared_tempo=float(entry["tempo"]),
                key=entry["key"],
                tempo=tempo,
                tempo_hit=tempo_hit(tempo, float(entry["tempo"])),
                key_correlation=key_correlation(generated[index], rate, entry["key"]),
                reference_tempo_hit=tempo_hit(estimated_tempo(reference, rate), float(entry["tempo"])),
                reference_key_correlation=key_correlation(reference, rate, entry["key"]),
                source_tempo_hit=tempo_hit(estimated_tempo(instrumentals[index], rate), float(entry["tempo"])),
                source_key_correlation=key_correlation(instrumentals[index], rate, entry["key"]),
                other_vocal_tempo_hit=tempo_hit(estimated_tempo(other, rate), float(entry["tempo"])),
                other_vocal_key_correlation=key_correlation(other, rate, entry["key"]),
            )
        )
    return AccompanimentReport(model=str(model_dir or default_model_dir()), songs=songs)


def _run(args: argparse.Namespace) -> int:
    from core.device import resolve_device

    report = evaluate_accompaniment(
        args.model,
        args.data,
        split=args.split,
        seconds=args.seconds,
        max_songs=args.max_songs,
        seed=args.seed,
        device=resolve_device(args.device),
        sampling={"temperature": args.temperature, "top_k": args.top_k, "guidance_scale": args.guidance_scale},
    )
    summary = report.summary()
    print(f"{summary['songs']} songs of split {args.split!r}, first {args.seconds:g} s of each")
    print(f"{'':14s} {'tempo hit rate':>14s} {'key correlation':>15s}")
    labels = {"model": "model", "other_vocal": "other vocal", "reference": "codec(truth)", "source": "truth"}
    for name, label in labels.items():
        print(f"{label:14s} {summary[f'{name}/tempo_hit_rate']:14.2f} {summary[f'{name}/key_correlation']:15.3f}")
    if args.json:
        document = {"summary": summary, "songs": [asdict(s) for s in report.songs], "model": report.model}
        Path(args.json).write_text(json.dumps(document, indent=2))
    return 0


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add `singsong eval accompaniment`."""
    parser = groups["eval"].add_parser(
        "accompaniment",
        help="accompany a corpus split's vocals and score tempo and key against the songs' declared ones",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    parser.add_argument("--data", required=True, help="stem corpus folder (manifest.jsonl with tempo and key)")
    parser.add_argument("--split", default="test", help="manifest split(s), comma-separated ('all': every song)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of each vocal to accompany")
    parser.add_argument("--max-songs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=250)
    parser.add_argument("--guidance-scale", type=float, default=1.0, help="classifier-free guidance (1 = off)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--json", default=None, help="also write the per-song scores to this JSON file")
    parser.set_defaults(handler=_run)
