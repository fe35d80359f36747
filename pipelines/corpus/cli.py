"""`singsong corpus ...` commands."""

from __future__ import annotations

import argparse
import os


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    synth = groups["corpus"].add_parser(
        "synth",
        help="compose and render a synthetic multitrack corpus (stems, MIDI, metadata)",
        description="Compose procedural songs and render vocals/drums/bass/other stems plus the mixture. "
        "Reruns skip finished songs, so an interrupted run can simply be started again.",
    )
    synth.add_argument("--out", required=True, help="output folder (created if needed)")
    synth.add_argument("--songs", type=int, required=True, help="number of songs")
    synth.add_argument("--seconds", type=float, default=20.0, help="length of each song (default 20)")
    synth.add_argument("--seed", type=int, default=0, help="song i uses seed SEED+i (default 0)")
    synth.add_argument("--styles", default=None, help="comma-separated style presets (default: all)")
    synth.add_argument("--format", choices=("flac", "wav"), default="flac", help="stem file format")
    synth.add_argument("--sample-rate", type=int, default=44100)
    synth.add_argument("--soundfont", default=None, help="General MIDI .sf2 (default: best one installed)")
    synth.add_argument("--jobs", type=int, default=1, help=f"worker processes (this machine: {os.cpu_count()})")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(handler=_synth)

    styles = groups["corpus"].add_parser("styles", help="list the style presets")
    styles.set_defaults(handler=_styles)


def _synth(args: argparse.Namespace) -> int:
    from core.errors import SingsongError
    from pipelines.corpus.generate import CorpusSettings, generate_corpus
    from pipelines.corpus.styles import STYLES

    styles = None
    if args.styles:
        styles = tuple(s.strip() for s in args.styles.split(",") if s.strip())
        unknown = [s for s in styles if s not in STYLES]
        if unknown:
            raise SingsongError(f"unknown style(s) {', '.join(unknown)}; choose from {', '.join(STYLES)}")
    settings = CorpusSettings(
        songs=args.songs,
        seconds=args.seconds,
        seed=args.seed,
        sample_rate=args.sample_rate,
        format=args.format,
        styles=styles,
        soundfont=args.soundfont,
    )
    summary = generate_corpus(args.out, settings, jobs=args.jobs, progress=not args.quiet)
    splits = ", ".join(f"{k} {v}" for k, v in sorted(summary.splits.items()))
    print(
        f"{args.out}: rendered {summary.rendered} songs, skipped {summary.skipped} already complete ({splits}); "
        f"{summary.audio_seconds:.0f} s of audio in {summary.wall_seconds:.1f} s wall"
        + (f", {summary.realtime_factor:.1f}x real time per worker" if summary.rendered else "")
    )
    return 0


def _styles(args: argparse.Namespace) -> int:
    from pipelines.corpus.styles import STYLES

    for name, preset in STYLES.items():
        low, high = preset.tempo_range
        print(f"{name:10s} {f'{low}-{high} BPM':12s} {preset.description}")
    return 0
