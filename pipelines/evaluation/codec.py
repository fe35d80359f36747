"""`singsong eval codec`: does a codec keep what the cascade needs — harmony, key, rhythm — on held-out songs?

For every held-out song (splits `valid,test` by default) the truth is the song's instrumental, the sum of its
`drums`, `bass` and `other` stems (what the cascade tokenizes; a folder without stems uses the files
themselves). One table, one run, one row per rendition of the truth:

* `truth` - the instrumental as is (its own harmonic margin, key and tempo are the reference);
* `griffin-lim` - Griffin-Lim (32 iterations, momentum 0.99) from the true |STFT| at the spectral codec's
  resolution (n_fft 2048, hop 480): the ceiling of any magnitude-only codec;
* for each `--model`: the codec decoding all of its levels, and only its first `num_coarse_levels`.

Columns (fit metrics from `fit.py`, chroma similarity from `fidelity.py`; nothing re-implemented here):

* `chroma_corr`: Pearson correlation of the constant-Q chromagrams (`fit.chromagram`) of truth and rendition;
* `chroma_sim`: `fidelity.chroma_similarity` (cosine over 0.5 s blocks);
* `key_agree`: share of songs whose estimated key (`fit.estimate_key` on the mean chroma) equals the truth's;
* `margin`: mean harmonic support margin of the song's vocal melody on the rendition (`fit.harmonic_support`,
  control = the chroma rotated by +-1 semitone), and `margin_ratio` = summed margin / the truth's;
* `tempo_agree`: share of songs whose beat-tracked tempo (`fit.beat_track`) agrees with the truth's
  (`fit.tempo_agrees`: within 8% at x0.5, x1, x2);
* `mel`, `stft_sc`, `stft_logmag`: multi-resolution log-mel L1, spectral convergence and log-magnitude L1
  against the truth (`models/codec/losses.py`, the SEANet codec's training losses);

and per codec and RVQ level the code perplexity and the share of the codebook used. Writes
`OUT/report.json`, `OUT/table.md` and `OUT/spectrograms_<song>.png` for the first `--figures` songs.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

METRICS = ("chroma_corr", "chroma_sim", "key_agree", "margin", "margin_ratio", "tempo_agree", "mel", "stft_sc")


@dataclass
class CodecEvalOptions:
    models: list[Path]
    data: Path
    out: Path
    splits: tuple[str, ...] = ("valid", "test")
    max_songs: int | None = None
    max_seconds: float | None = 20.0
    ceiling: bool = True  # the Griffin-Lim-of-the-true-magnitude row
    figures: int = 3
    device: str = "auto"
    names: list[str] = field(default_factory=list)  # row labels of the models (default: directory names)
    progress: bool = True


@dataclass
class Song:
    name: str
    truth: tuple[Path, ...]  # files summed into the truth
    vocals: Path | None


def held_out_songs(data: Path, splits: tuple[str, ...], max_songs: int | None) -> list[Song]:
    """Songs of `splits` (their instrumental stems and vocals when the song folder has them)."""
    from pipelines.training.spectral_codec import song_clips

    songs = []
    for split in splits or (None,):  # no splits: every song
        for files in song_clips(data, split, "instrumental"):
            vocals = files[0].with_name(f"vocals{files[0].suffix}")
            name = files[0].parent.name if len(files) > 1 else files[0].stem
            songs.append(Song(name, files, vocals if vocals.is_file() else None))
    return songs[:max_songs] if max_songs else songs


class _Scorer:
    """Scores renditions of one song against its truth (features of the truth computed once per rate)."""

    def __init__(self, song: Song, max_seconds: float | None) -> None:
        from core.audio import load_audio
        from pipelines.evaluation.fit import vocal_melody

        self.song, self.max_seconds = song, max_seconds
        self._truth: dict[int, Any] = {}
        self._reference: dict[int, dict[str, Any]] = {}
        self.melody = None
        if song.vocals is not None:
            vocal = load_audio(song.vocals, sample_rate=16_000, channels=1).samples[0]
            self.melody = vocal_melody(self._cut(vocal, 16_000), 16_000)

    def _cut(self, audio: Any, rate: int) -> Any:
        return audio[: int(self.max_seconds * rate)] if self.max_seconds else audio

    def truth(self, rate: int) -> Any:
        """The truth, mono float32 `[T]` at `rate`."""
        from pipelines.training.spectral_codec import load_clip

        if rate not in self._truth:
            self._truth[rate] = self._cut(load_clip(self.song.truth, rate), rate)
        return self._truth[rate]

    def analyse(self, audio: Any, rate: int) -> dict[str, Any]:
        from pipelines.evaluation.fit import beat_track, chromagram, estimate_key, harmonic_support

        chroma = chromagram(audio, rate)
        margin = None
        if self.melody is not None:
            margin = harmonic_support(self.melody, chroma, control="semitone").margin
        return {
            "chroma": chroma,
            "key": estimate_key(chroma.mean(axis=1)).name,
            "tempo": beat_track(audio, rate).tempo,
            "margin": margin,
        }

    def score(self, audio: Any, rate: int, spectral: Any) -> dict[str, Any]:
        """Metrics of one rendition `[T]` at `rate` (cut or zero-padded to the truth's length)."""
        import numpy as np
        import torch

        from pipelines.evaluation.fidelity import chroma_similarity
        from pipelines.evaluation.fit import tempo_agrees

        truth = self.truth(rate)
        audio = np.pad(audio[: len(truth)], (0, max(0, len(truth) - len(audio))))
        if rate not in self._reference:
            self._reference[rate] = self.analyse(truth, rate)
        reference, mine = self._reference[rate], self.analyse(audio, rate)
        frames = min(reference["chroma"].shape[1], mine["chroma"].shape[1])
        corr = np.corrcoef(reference["chroma"][:, :frames].ravel(), mine["chroma"][:, :frames].ravel())[0, 1]
        with torch.no_grad():
            losses = spectral(torch.from_numpy(audio)[None, None], torch.from_numpy(truth)[None, None])
        return {
            "chroma_corr": float(np.nan_to_num(corr)),
            "chroma_sim": chroma_similarity(reference["chroma"], mine["chroma"]),
            "key": mine["key"],
            "key_agree": mine["key"] == reference["key"],
            "margin": mine["margin"],
            "truth_margin": reference["margin"],
            "tempo": mine["tempo"],
            "tempo_agree": tempo_agrees(mine["tempo"], reference["tempo"]),
            "mel": float(losses["loss/mel"]),
            "stft_sc": float(losses["loss/spectral_convergence"]),
            "stft_logmag": float(losses["loss/log_magnitude"]),
        }


def _griffin_lim_ceiling(audio: Any, rate: int) -> Any:
    """Griffin-Lim from the true magnitude, as the shipped spectral codec decodes (`small` preset: n_fft 2048,
    hop 480 at 24 kHz, its iterations, momentum and starting phase)."""
    import torch

    from models.codec.phase import griffin_lim
    from models.codec.spectral_config import get_spectral_preset

    config = get_spectral_preset("small")
    scale = rate / config.sample_rate
    n_fft, hop = round(config.n_fft * scale), round(config.hop_length * scale)
    wav = torch.from_numpy(audio)[None]
    magnitude = torch.stft(wav, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs()
    audio = griffin_lim(
        magnitude,
        n_fft=n_fft,
        hop_length=hop,
        iterations=config.griffin_lim_iters,
        momentum=config.griffin_lim_momentum,
        init=config.griffin_lim_init,
        length=wav.shape[-1],
    )
    return audio[0].numpy()


def _summarise(rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    import numpy as np

    summary = {}
    for name, scores in rows.items():
        margins = [s["margin"] for s in scores if s["margin"] is not None]
        truth_margins = [s["truth_margin"] for s in scores if s["truth_margin"] is not None]
        summary[name] = {
            "songs": len(scores),
            "chroma_corr": float(np.mean([s["chroma_corr"] for s in scores])),
            "chroma_sim": float(np.mean([s["chroma_sim"] for s in scores])),
            "key_agree": float(np.mean([s["key_agree"] for s in scores])),
            "margin": float(np.mean(margins)) if margins else float("nan"),
            "margin_ratio": float(np.sum(margins) / np.sum(truth_margins)) if truth_margins else float("nan"),
            "tempo_agree": float(np.mean([s["tempo_agree"] for s in scores])),
            "mel": float(np.mean([s["mel"] for s in scores])),
            "stft_sc": float(np.mean([s["stft_sc"] for s in scores])),
            "stft_logmag": float(np.mean([s["stft_logmag"] for s in scores])),
        }
    return summary


def format_table(summary: dict[str, dict[str, float]]) -> str:
    """The summary as a Markdown table, one row per rendition."""
    header = "| rendition | " + " | ".join(METRICS) + " |"
    lines = [header, "|" + "---|" * (len(METRICS) + 1)]
    for name, values in summary.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[m]:.3f}" for m in METRICS) + " |")
    return "\n".join(lines)


def evaluate_codecs(options: CodecEvalOptions) -> dict[str, Any]:
    """Run the evaluation (module docstring); returns the report, also written to `OUT/report.json`."""
    import torch
    from tqdm import tqdm

    from core.device import resolve_device
    from models.codec.losses import MultiResolutionSpectralLoss
    from models.codec.quantizer import code_counts
    from models.loading import load_tokenizer

    started = time.monotonic()
    device = resolve_device(options.device)
    songs = held_out_songs(Path(options.data), options.splits, options.max_songs)
    names = options.names or [Path(m).name if Path(m).name != "model" else Path(m).parent.name for m in options.models]
    codecs = {name: load_tokenizer(path, device=str(device)) for name, path in zip(names, options.models, strict=True)}
    spectral: dict[int, Any] = {}
    rows: dict[str, list[dict[str, Any]]] = {"truth": []}
    if options.ceiling:
        rows["griffin-lim"] = []
    counts = {name: torch.zeros(c.num_codebooks, c.cardinality, dtype=torch.long) for name, c in codecs.items()}
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    per_song = []
    for index, song in enumerate(tqdm(songs, desc="eval codec", unit="song", disable=not options.progress)):
        scorer = _Scorer(song, options.max_seconds)
        renditions: dict[str, tuple[Any, int]] = {"truth": (scorer.truth(24_000), 24_000)}
        if options.ceiling:
            renditions["griffin-lim"] = (_griffin_lim_ceiling(scorer.truth(24_000), 24_000), 24_000)
        for name, codec in codecs.items():
            rate = codec.sample_rate
            wav = torch.from_numpy(scorer.truth(rate))[None, None].to(device)
            codes = codec.encode(wav)
            counts[name] += code_counts(codes.cpu(), codec.cardinality)
            coarse = getattr(codec, "num_coarse_levels", codec.num_codebooks)
            for label, levels in (
                (f"{name} all {codec.num_codebooks}", codec.num_codebooks),
                (f"{name} coarse {coarse}", coarse),
            ):
                audio = codec.decode(codes[:, :levels])[0, 0].float().cpu().numpy()
                renditions[label] = (audio, rate)
        entry: dict[str, Any] = {"song": song.name}
        for label, (audio, rate) in renditions.items():
            if rate not in spectral:
                spectral[rate] = MultiResolutionSpectralLoss(sample_rate=rate)
            scores = scorer.score(audio, rate, spectral[rate])
            rows.setdefault(label, []).append(scores)
            entry[label] = {k: v for k, v in scores.items() if k != "truth_margin"}
        per_song.append(entry)
        if index < options.figures:
            plot_spectrograms(out / f"spectrograms_{song.name}.png", renditions, title=song.name)
    summary = _summarise(rows)
    report = {
        "data": str(options.data),
        "splits": list(options.splits),
        "songs": len(songs),
        "seconds_per_song": options.max_seconds,
        "models": {
            name: _describe(codec, path) for (name, codec), path in zip(codecs.items(), options.models, strict=True)
        },
        "summary": summary,
        "codebooks": {name: _usage(c) for name, c in counts.items()},
        "per_song": per_song,
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, default=float))
    (out / "table.md").write_text(format_table(summary) + "\n")
    return report


def _describe(codec: Any, path: Path) -> dict[str, Any]:
    return {
        "path": str(path),
        "class": type(codec).__name__,
        "sample_rate": codec.sample_rate,
        "frame_rate": codec.frame_rate,
        "levels": codec.num_codebooks,
        "coarse_levels": getattr(codec, "num_coarse_levels", codec.num_codebooks),
        "codebook_size": codec.cardinality,
    }


def _usage(counts: Any) -> list[dict[str, float]]:
    """Per level: perplexity (exp entropy of the code distribution) and the share of the codebook used."""
    probs = counts.float() / counts.sum(-1, keepdim=True).clamp_min(1)
    perplexity = (-(probs * probs.clamp_min(1e-12).log()).sum(-1)).exp()
    used = (counts > 0).float().mean(-1)
    return [
        {"level": k, "perplexity": float(p), "used": float(u)}
        for k, (p, u) in enumerate(zip(perplexity, used, strict=True))
    ]


def plot_spectrograms(path: Path, renditions: dict[str, tuple[Any, int]], *, title: str, seconds: float = 8.0) -> None:
    """Log-mel spectrograms (128 bands, n_fft 2048 at 24 kHz scale) of each rendition, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import librosa
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(renditions), 1, figsize=(10, 1.9 * len(renditions)), sharex=True, squeeze=False)
    reference = None
    for axis, (label, (audio, rate)) in zip(axes[:, 0], renditions.items(), strict=True):
        clip = audio[: int(seconds * rate)]
        n_fft = 2048 * rate // 24_000
        bands = 128 if rate >= 16_000 else 48  # fewer bands at low rates, or the lowest are empty
        mel = librosa.feature.melspectrogram(
            y=clip, sr=rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=bands, fmax=min(8000, rate / 2)
        )
        db = librosa.power_to_db(mel, ref=1.0)
        reference = reference if reference is not None else (float(db.max()) - 80, float(db.max()))
        axis.imshow(
            db,
            origin="lower",
            aspect="auto",
            cmap="magma",
            vmin=reference[0],
            vmax=reference[1],
            extent=(0, len(clip) / rate, 0, bands),
        )
        axis.set_title(f"{title}: {label}", fontsize=8)
        axis.set_ylabel("mel")
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _run(args: argparse.Namespace) -> int:
    report = evaluate_codecs(
        CodecEvalOptions(
            models=[Path(m) for m in args.model],
            data=Path(args.data),
            out=Path(args.out),
            splits=tuple(s for s in args.split.split(",") if s and s != "all"),
            max_songs=args.max_songs,
            max_seconds=args.max_seconds or None,
            ceiling=not args.no_ceiling,
            figures=args.figures,
            device=args.device,
            names=args.name or [],
        )
    )
    print(f"{report['songs']} songs x {report['seconds_per_song']} s from {report['data']} {report['splits']}")
    print(format_table(report["summary"]))
    for name, levels in report["codebooks"].items():
        usage = ", ".join(f"{level['perplexity']:.0f}/{level['used']:.0%}" for level in levels)
        print(f"{name}: code perplexity/used per level: {usage}")
    print(f"report: {Path(args.out) / 'report.json'}")
    return 0


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add `singsong eval codec`."""
    parser = groups["eval"].add_parser(
        "codec",
        help="harmony, key, tempo and spectral distance of codec round trips on held-out songs",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", action="append", required=True, help="codec directory (repeat to compare)")
    parser.add_argument("--name", action="append", help="row label of each --model (default: directory name)")
    parser.add_argument("--data", required=True, help="corpus folder (song folders with stems) or audio folder")
    parser.add_argument("--out", required=True, help="report directory")
    parser.add_argument("--split", default="valid,test", help="comma list of held-out splits ('all': every song)")
    parser.add_argument("--max-songs", type=int, default=None)
    parser.add_argument("--max-seconds", type=float, default=20.0, help="seconds per song (0: all)")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the Griffin-Lim-of-the-truth row")
    parser.add_argument("--figures", type=int, default=3, help="spectrogram PNGs for the first songs")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.set_defaults(handler=_run)
