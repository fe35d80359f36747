"""`singsong eval report`: does each engine's accompaniment fit the vocal? One command, one Markdown report.

Over a held-out set (`report_data.py`: a stem-corpus split, a pairs manifest, or a folder of plain vocals),
every song is accompanied by every engine and scored with the fit metrics (`fit.py`, reference-free) and,
when the true instrumental exists, the ground-truth ones (`fidelity.py`). Rows, as SingSong's evaluation
(Donahue et al., 2023, Sec. 5) compares them:

* **truth** — the song's own instrumental: the level a perfect system reaches on these songs;
* **truth +1 semitone**, **truth +1/2 beat** — the metrics' own sanity controls on the same songs: the first
  must lose harmony and key, the second beat alignment (`--no-sanity` drops them);
* **codec(truth)** — the truth through a model's codec (`--codec`, default the shipped model's): the
  ceiling a cascade decoding with that codec can reach;
* **retrieval** — SingSong's retrieval baseline (`pipelines/inference/retrieval.py`), the bar to clear;
* **other song** — the next song's true instrumental: real music that ignores this vocal. Anything that
  does not beat it does not follow the vocal;
* **model: NAME** — each `--model` directory (default: the shipped model);
* **model: NAME, other vocal** — the same model's accompaniment of the *next* song's vocal, scored against
  this one: the "another song's vocal" control of the model itself (no extra generation: the model row
  rotated by one song). A model that follows its vocal must beat it on every fit metric.

Two sections, as in SingSong: **isolated** vocals (the clean stem: how a user's studio vocal arrives) and
**separated** vocals (the mixture through a source separator, `--separator-repo/--separator-name`, default
the small separator shipped in `models/checkpoints/separator/`: how training pairs are made). Engines are
run on each section's vocal; every row is *measured* against the clean vocal, the best estimate of what was
sung, so the rows without an engine (truth, codec(truth), other song) are the same in both sections.
Plain vocals have neither truth nor mixture: one section, engine rows only.

Columns: harmonic support margin (and the raw support), key compatibility, tempo agreement, beat alignment
margin (shares and means over songs; margins with their standard error), chroma similarity to the truth and
the Fréchet distance of the row's set to the truth set. Model sampling seeds are `--seed + song index`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.audio import Audio, resample, to_channels
from core.errors import SingsongError
from pipelines.evaluation.fidelity import chroma_similarity, frechet_distance, load_embedder
from pipelines.evaluation.fit import CHROMA_RATE, Melody, chromagram, fit_scores, vocal_melody
from pipelines.evaluation.report_data import ReportSong, load_songs

MEAN_KEYS = ("harmonic_margin", "harmonic_support", "key_compatible", "tempo_agrees", "beat_margin")


@dataclass
class ReportOptions:
    out: Path
    data: Path | None = None
    vocals: Path | None = None
    splits: list[str] = field(default_factory=lambda: ["valid", "test"])
    seconds: float = 10.0
    max_songs: int | None = None
    models: list[Path] = field(default_factory=list)
    codec: Path | None = None  # None: the shipped model's codec
    library: Path | None = None  # None: the bundled retrieval library
    separator_repo: Path | None = None  # None: no separated section
    separator_name: str = "synth_hdemucs"
    seed: int = 0
    control: str = "mean"
    device: str = "cpu"
    figures: int = 3
    embedding: str = "builtin"
    embedding_path: Path | None = None
    no_model: bool = False  # only the rows without a model (fast runs, tests)
    sanity: bool = True  # the truth a semitone up and half a beat late: the metrics' own controls
    command: str = ""  # the command line, recorded in the report


# ------------------------------------------------------------------------------------------ producing
def separate_vocals(songs: list[ReportSong], repo: Path, name: str, device: str) -> list[Audio]:
    """Each song's mixture through the demucs separator -> its vocal, at the song's rate and channels."""
    import torch
    from demucs.apply import apply_model
    from tqdm import tqdm

    from pipelines.separation.repo import load_separator

    model, info = load_separator(name, repo)
    model.to(device)
    vocals = []
    for song in tqdm(songs, desc="separating", unit="song"):
        mixture = to_channels(resample(song.mixture.samples, song.mixture.sample_rate, info.sample_rate), info.channels)
        wave = torch.from_numpy(np.ascontiguousarray(mixture))[None].to(device)
        reference = wave.mean(dim=1)  # demucs.api's normalisation by the mono mixture's statistics
        mean, std = reference.mean(), reference.std() + 1e-8
        with torch.inference_mode():
            sources = apply_model(model, (wave - mean) / std, split=True, overlap=0.25, shifts=0, progress=False)
        vocal = (sources[0, info.sources.index("vocals")] * std + mean).cpu().numpy()
        vocal = resample(vocal, info.sample_rate, song.rate)[:, : song.vocal.num_frames]
        vocal = np.pad(vocal, ((0, 0), (0, song.vocal.num_frames - vocal.shape[1])))
        vocals.append(Audio(to_channels(vocal, song.vocal.channels).astype(np.float32), song.rate))
    return vocals


def load_codec(path: Path | None, device: str):
    """A codec tokenizer from a model directory (its manifest's codec) or a tokenizer directory."""
    from models.loading import load_tokenizer
    from pipelines.inference.accompanist import default_model_dir
    from pipelines.inference.model_dir import read_manifest

    path = Path(path) if path is not None else default_model_dir()
    if (path / "singsong.json").is_file():
        path = path / read_manifest(path).codec
    codec = load_tokenizer(path, device=device)
    if not codec.can_decode:
        raise SingsongError(f"{path}: this tokenizer cannot decode audio (not a codec)")
    return codec


def codec_roundtrip(codec, audio: np.ndarray, rate: int, device: str) -> np.ndarray:
    """Mono `[T]` through the codec's encode + decode, back at `rate` and length `T`."""
    import torch

    wave = torch.from_numpy(resample(audio, rate, codec.sample_rate).astype(np.float32))[None, None]
    wave = wave.repeat(1, codec.channels, 1).to(device)
    with torch.inference_mode():
        decoded = codec.decode(codec.encode(wave)).float().cpu().numpy()[0].mean(axis=0)
    back = resample(decoded, codec.sample_rate, rate)[: len(audio)]
    return np.pad(back, (0, len(audio) - len(back))).astype(np.float32)


def run_engine(engine, vocals: list[Audio], seeds: list[int], desc: str) -> list[np.ndarray]:
    """Take 0 of `engine` for every vocal (batched), as mono `[T]` at each vocal's rate."""
    from tqdm import tqdm

    from pipelines.inference.engine import GenerationOptions

    outputs: list[np.ndarray] = []
    batch = max(1, engine.max_batch_size)
    for start in tqdm(range(0, len(vocals), batch), desc=desc, unit="batch"):
        chunk = vocals[start : start + batch]
        options = [GenerationOptions(seed=seeds[start + i]) for i in range(len(chunk))]
        for takes in engine.accompany_batch(chunk, options):
            outputs.append(takes[0].accompaniment.mean(axis=0).astype(np.float32))
    return outputs


# ------------------------------------------------------------------------------------------- scoring
def score_row(
    songs: list[ReportSong], melodies: list[Melody], audios: list[np.ndarray], control: str, desc: str
) -> list[dict]:
    """Per-song fit scores (+ chroma similarity to the truth when there is one)."""
    from tqdm import tqdm

    scores = []
    for song, melody, audio in tqdm(list(zip(songs, melodies, audios, strict=True)), desc=desc, unit="song"):
        chroma = chromagram(audio, song.rate)
        fit = fit_scores(melody, audio, song.rate, control=control, chroma=chroma)  # type: ignore[arg-type]
        entry = {"song": song.id, **fit.as_dict()}
        if song.truth is not None:
            entry["chroma_similarity"] = chroma_similarity(chroma, _truth_chroma(song))
        scores.append(entry)
    return scores


def _truth_chroma(song: ReportSong) -> np.ndarray:
    """The true instrumental's chromagram, computed once per song."""
    if "_truth_chroma" not in song.cache:
        song.cache["_truth_chroma"] = chromagram(song.truth, song.rate)  # type: ignore[arg-type]
    return song.cache["_truth_chroma"]


def summarise(scores: list[dict]) -> dict[str, float]:
    """Means over songs (booleans: shares) and standard errors of the margins."""
    summary: dict[str, float] = {}
    for key in (*MEAN_KEYS, "chroma_similarity"):
        values = [float(s[key]) for s in scores if key in s]
        if values:
            summary[key] = float(np.mean(values))
            if key.endswith("margin") and len(values) > 1:
                summary[f"{key}_se"] = statistics.stdev(values) / np.sqrt(len(values))
    return summary


@dataclass
class Report:
    options: ReportOptions
    songs: list[str]
    sections: dict[str, dict[str, list[dict]]]  # section -> row -> per-song scores
    summary: dict[str, dict[str, dict[str, float]]]  # section -> row -> metric -> value
    timings: dict[str, float]
    figures: list[str]
    notes: list[str]


class _Clock:
    """Wall time per named stage, for the report's timings section."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self._last
        self._last = now


def fixed_rows(songs: list[ReportSong], options: ReportOptions) -> dict[str, list[np.ndarray]]:
    """The rows that do not depend on the vocal input: truth, codec(truth), other song (empty without truth)."""
    if not all(s.truth is not None for s in songs):
        return {}
    from tqdm import tqdm

    truth: list[np.ndarray] = [s.truth for s in songs]  # type: ignore[misc]
    rows = {"truth": truth}
    if options.sanity:
        rows.update(sanity_rows(songs, truth))
    codec = load_codec(options.codec, options.device)
    pairs = tqdm(list(zip(truth, songs, strict=True)), desc="codec(truth)", unit="song")
    rows["codec(truth)"] = [codec_roundtrip(codec, t, s.rate, options.device) for t, s in pairs]
    rows["other song"] = [truth[(i + 1) % len(songs)] for i in range(len(songs))]
    return rows


def sanity_rows(songs: list[ReportSong], truth: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """The metrics' own controls on these songs: the truth a semitone up (Rubber Band) must lose harmony and
    key; the truth half a beat late (circularly shifted; beat from the declared tempo, else the beat tracker)
    must lose beat alignment."""
    from tqdm import tqdm

    from pipelines.evaluation.fit import beat_track
    from pipelines.inference.stretch import shift_and_stretch

    up, late = [], []
    for song, audio in tqdm(list(zip(songs, truth, strict=True)), desc="sanity controls", unit="song"):
        shifted = shift_and_stretch(audio[None], song.rate, rate=1.0, semitones=1.0)[0, : len(audio)]
        up.append(np.pad(shifted, (0, len(audio) - len(shifted))).astype(np.float32))
        tempo = float(song.meta.get("tempo") or beat_track(audio, song.rate).tempo or 120.0)
        late.append(np.roll(audio, round(30.0 / tempo * song.rate)))
    return {"truth +1 semitone": up, "truth +1/2 beat": late}


def engine_rows(
    inputs: dict[str, list[Audio]], options: ReportOptions, clock: _Clock
) -> dict[str, dict[str, list[np.ndarray]]]:
    """`{section: {row: accompaniments}}` for the retrieval engine and every model directory."""
    from pipelines.inference.accompanist import default_model_dir
    from pipelines.inference.engine_loader import load_engine

    engines: dict[str, tuple[str, Path | None]] = {"retrieval": ("retrieval", options.library)}
    for model in [] if options.no_model else options.models or [default_model_dir()]:
        engines[f"model: {Path(model).name}"] = ("model", Path(model))
    seeds = [options.seed + i for i in range(len(inputs["isolated"]))]
    produced: dict[str, dict[str, list[np.ndarray]]] = {section: {} for section in inputs}
    for label, (kind, directory) in engines.items():
        engine = load_engine(kind, directory, options.device)
        for section, vocals in inputs.items():
            produced[section][label] = run_engine(engine, vocals, seeds, f"{label} ({section})")
            if kind == "model" and len({v.sample_rate for v in vocals}) == 1:
                produced[section][f"{label}, other vocal"] = other_vocal_row(produced[section][label])
        clock.lap(f"engine {label}")
    return produced


def other_vocal_row(audios: list[np.ndarray]) -> list[np.ndarray]:
    """Song i gets the accompaniment made for song i + 1 (cyclic), cut or zero-padded to song i's length."""
    rotated = []
    for i, own in enumerate(audios):
        other = audios[(i + 1) % len(audios)][: len(own)]
        rotated.append(np.pad(other, (0, len(own) - len(other))).astype(np.float32))
    return rotated


def add_frechet(
    summary: dict[str, dict[str, dict[str, float]]],
    audios_by_section: dict[str, dict[str, list[np.ndarray]]],
    songs: list[ReportSong],
    options: ReportOptions,
) -> None:
    """Fréchet distance of every row's set to the truth set, into `summary[section][row]["frechet"]`."""
    embed = load_embedder(options.embedding, options.embedding_path)
    cache: dict[int, np.ndarray] = {}  # rows shared by both sections are embedded once

    def embeddings(audios: list[np.ndarray]) -> np.ndarray:
        if id(audios) not in cache:
            cache[id(audios)] = np.stack([embed(a, s.rate) for a, s in zip(audios, songs, strict=True)])
        return cache[id(audios)]

    truth = embeddings(audios_by_section["isolated"]["truth"])
    for section, rows in audios_by_section.items():
        for row, audios in rows.items():
            summary[section][row]["frechet"] = frechet_distance(truth, embeddings(audios))


def write_figures(
    summary: dict, songs: list[ReportSong], melodies: list[Melody], rows: dict[str, list[np.ndarray]], options
) -> list[str]:
    """metrics.png and `options.figures` example chroma pictures (isolated section); returns file names."""
    from pipelines.evaluation.report_figures import example_chroma, metric_bars

    figures = [metric_bars(summary, options.out / "metrics.png").name]
    for index, song in enumerate(songs[: options.figures]):
        shown = {
            row: audios
            for row, audios in rows.items()
            if row != "other song" and not row.startswith("truth +") and not row.endswith(", other vocal")
        }
        pictures = {row: chromagram(audios[index], song.rate) for row, audios in shown.items()}
        path = options.out / f"example_{index:02d}.png"
        melody = melodies[index]
        example_chroma(song.id, melody.pitch_classes, melody.frame_rate, pictures, CHROMA_RATE, path)
        figures.append(path.name)
    return figures


def build_report(options: ReportOptions) -> Report:
    """Produce every row, score it, write `report.md`, `report.json` and the PNG figures into `options.out`."""
    clock, notes = _Clock(), []
    songs = load_songs(options.data, options.vocals, options.splits, options.seconds, options.max_songs)
    melodies = [vocal_melody(s.vocal.samples.mean(axis=0), s.rate) for s in songs]
    inputs = {"isolated": [s.vocal for s in songs]}
    clock.lap("load + vocal analysis")
    if options.separator_repo is not None and all(s.mixture is not None for s in songs):
        inputs["separated"] = separate_vocals(songs, options.separator_repo, options.separator_name, options.device)
        clock.lap("separation")
    elif options.separator_repo is not None:
        notes.append("no separated section: the songs have no mixtures")
    fixed = fixed_rows(songs, options)
    clock.lap("codec(truth)")
    produced = engine_rows(inputs, options, clock)

    def score(audios: list[np.ndarray], label: str) -> list[dict]:
        return score_row(songs, melodies, audios, options.control, f"scoring {label}")

    fixed_scores = {row: score(audios, row) for row, audios in fixed.items()}
    sections = {
        section: {**fixed_scores, **{row: score(audios, row) for row, audios in rows.items()}}
        for section, rows in produced.items()
    }
    clock.lap("scoring")
    summary = {section: {row: summarise(scores) for row, scores in rows.items()} for section, rows in sections.items()}
    audios_by_section = {section: {**fixed, **rows} for section, rows in produced.items()}
    if fixed:
        add_frechet(summary, audios_by_section, songs, options)
        clock.lap("Fréchet distances")
    options.out.mkdir(parents=True, exist_ok=True)
    figures = write_figures(summary, songs, melodies, audios_by_section["isolated"], options)
    clock.lap("figures")
    report = Report(options, [s.id for s in songs], sections, summary, clock.timings, figures, notes)
    write_report(report, songs)
    return report


# ------------------------------------------------------------------------------------------- writing
COLUMNS = (
    ("harmonic_margin", "harmony margin"),
    ("harmonic_support", "support"),
    ("key_compatible", "key ok"),
    ("tempo_agrees", "tempo ok"),
    ("beat_margin", "beat margin"),
    ("chroma_similarity", "chroma sim."),
    ("frechet", "Fréchet"),
)


def _cell(values: dict[str, float], key: str) -> str:
    if key not in values:
        return "—"
    if key in ("key_compatible", "tempo_agrees"):
        return f"{100 * values[key]:.0f}%"
    if f"{key}_se" in values:
        return f"{values[key]:.3f} ± {values[f'{key}_se']:.3f}"
    return f"{values[key]:.3f}"


def markdown_table(rows: dict[str, dict[str, float]]) -> list[str]:
    columns = [(k, label) for k, label in COLUMNS if any(k in v for v in rows.values())]
    lines = ["| row | " + " | ".join(label for _, label in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {row} | " + " | ".join(_cell(values, k) for k, _ in columns) + " |" for row, values in rows.items()]
    return lines


def write_report(report: Report, songs: list[ReportSong]) -> None:
    options = report.options
    source = (
        f"--vocals {options.vocals}" if options.vocals else f"--data {options.data} --split {','.join(options.splits)}"
    )
    lines = [
        "# Accompaniment fit report",
        "",
        f"Command: `{options.command or 'singsong eval report ' + source}`",
        "",
        f"{len(songs)} songs ({source}), first {options.seconds:g} s of each; model seeds {options.seed}.."
        f"{options.seed + len(songs) - 1} (song i: seed + i); harmonic control `{options.control}`; "
        f"embedding `{options.embedding}`. Every row is measured against the clean vocal; engines are run on "
        "each section's vocal (see `pipelines/evaluation/report.py`).",
        "",
        "Columns: **harmony margin** = share of voiced vocal frames whose pitch class is strong in the "
        "accompaniment minus the same for the chroma rotated (a wrong-key control; mean ± standard error), "
        "**support** = the unrotated share, **key ok** = estimated keys equal or relative, **tempo ok** = "
        "accompaniment tempo within 8% of the vocal's (x0.5, x2 allowed), **beat margin** = duration-weighted "
        "share of vocal onsets on an accompaniment beat minus the same half a beat later, **chroma sim.** = "
        "cosine similarity of 0.5 s chroma to the true instrumental, **Fréchet** = distance of the row's set "
        "to the truth set on the built-in feature statistics (compare within a table only; the other-song set "
        "is the truth set reordered, so its distance is 0 by construction: it is a per-song control).",
        "",
    ]
    for section, rows in report.summary.items():
        lines += [f"## {section.capitalize()} vocals", "", *markdown_table(rows), ""]
    lines += [*(f"Note: {n}" for n in report.notes), "", "## Figures", ""]
    lines += [f"![{name}]({name})" for name in report.figures]
    lines += ["", "## Timings", "", *(f"- {k}: {v:.1f} s" for k, v in report.timings.items())]
    lines.append(f"- total: {sum(report.timings.values()):.1f} s")
    (options.out / "report.md").write_text("\n".join(lines) + "\n")
    document = {
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()},
        "songs": [{"id": s.id, **s.meta} for s in songs],
        "summary": report.summary,
        "per_song": report.sections,
        "timings": report.timings,
    }
    (options.out / "report.json").write_text(json.dumps(document, indent=1, default=str))


# ----------------------------------------------------------------------------------------------- CLI
def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add `singsong eval report`."""
    import models

    shipped = Path(models.__file__).resolve().parent / "checkpoints" / "separator"
    parser = groups["eval"].add_parser(
        "report",
        help="score how well each engine's accompaniments fit their vocals (Markdown + PNG report)",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", type=Path, default=None, help="stem corpus folder or pairs manifest (.jsonl)")
    parser.add_argument("--vocals", type=Path, default=None, help="or: a folder of plain vocals (no ground truth)")
    parser.add_argument("--split", default="valid,test", help="held-out split(s), comma-separated")
    parser.add_argument("--out", type=Path, default=Path("reports/fit"), help="report folder")
    parser.add_argument("--seconds", type=float, default=10.0, help="first seconds of each song")
    parser.add_argument("--max-songs", type=int, default=None)
    parser.add_argument(
        "--model", type=Path, action="append", default=None, help="model directory (repeatable; default: shipped)"
    )
    parser.add_argument("--no-model", action="store_true", help="skip the model rows")
    parser.add_argument("--no-sanity", action="store_true", help="skip the truth +1 semitone / +1/2 beat rows")
    parser.add_argument("--codec", type=Path, default=None, help="codec for codec(truth): model or codec dir")
    parser.add_argument("--library", type=Path, default=None, help="retrieval library (default: bundled)")
    parser.add_argument("--separator-repo", type=Path, default=shipped, help="demucs repository")
    parser.add_argument("--separator-name", default="synth_hdemucs", help="separator signature in the repo")
    parser.add_argument("--no-separated", action="store_true", help="skip the separated-vocal section")
    parser.add_argument("--control", choices=("mean", "semitone", "worst"), default="mean", help="harmonic control")
    parser.add_argument("--seed", type=int, default=0, help="model sampling seed of song 0 (song i: seed + i)")
    parser.add_argument("--figures", type=int, default=3, help="example chroma pictures")
    parser.add_argument("--embedding", default="builtin", help="Fréchet embedding: builtin or module:factory")
    parser.add_argument("--embedding-path", type=Path, default=None, help="local weights for --embedding")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from core.device import resolve_device

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    options = ReportOptions(
        out=args.out,
        data=args.data,
        vocals=args.vocals,
        splits=[s for s in args.split.split(",") if s],
        seconds=args.seconds,
        max_songs=args.max_songs,
        models=args.model or [],
        codec=args.codec,
        library=args.library,
        separator_repo=None if args.no_separated else args.separator_repo,
        separator_name=args.separator_name,
        seed=args.seed,
        control=args.control,
        device=resolve_device(args.device),
        figures=args.figures,
        embedding=args.embedding,
        embedding_path=args.embedding_path,
        no_model=args.no_model,
        sanity=not args.no_sanity,
        command="singsong " + shlex.join(sys.argv[1:]),
    )
    report = build_report(options)
    for section, rows in report.summary.items():
        print(f"{section} vocals:")
        print("\n".join(markdown_table(rows)))
    print(f"{options.out / 'report.md'}: {len(report.songs)} songs, {sum(report.timings.values()):.0f} s")
    return 0
