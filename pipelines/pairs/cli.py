"""`singsong pipeline pairs`: windows + vocal-activity filter + loudness normalisation + pair manifest."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    parser = groups["pipeline"].add_parser(
        "pairs",
        help="cut vocal/instrumental tracks into normalised training windows with a pair manifest",
        description="Input: the output of `pipeline separate`, or a corpus with stems (synthetic corpus, "
        "MUSDB-style folders: oracle pairs, no separation). Windows without singing are dropped.",
    )
    parser.add_argument("--input", required=True, help="separation output, stem corpus folder, or manifest")
    parser.add_argument("--out", required=True, help="output folder for window files + manifest.jsonl")
    parser.add_argument("--window", type=float, default=10.0, help="window length in seconds (default 10)")
    parser.add_argument("--hop", type=float, default=None, help="seconds between window starts (default: window)")
    parser.add_argument("--sample-rate", type=int, default=None, help="resample windows (default: keep)")
    parser.add_argument("--min-activity", type=float, default=0.3, help="fraction of singing a window needs")
    parser.add_argument("--energy-floor", type=float, default=-50.0, help="dBFS below which nothing is singing")
    parser.add_argument(
        "--energy-relative",
        type=float,
        default=30.0,
        help="dB below the track's loud vocal frames (95th percentile) still counted",
    )
    parser.add_argument("--periodicity", type=float, default=0.5, help="autocorrelation peak of a voiced frame")
    parser.add_argument(
        "--loudness",
        choices=("separate", "joint", "none"),
        default="separate",
        help="normalise each stem (separate), both with one gain (joint), or not at all",
    )
    parser.add_argument("--target-lufs", type=float, default=-16.0)
    parser.add_argument("--format", choices=("flac", "wav"), default="flac")
    parser.add_argument("--split", default=None, help="only tracks of this split")
    parser.add_argument("--shard", default=None, help="i/N: process only shard i (0-based) of N")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--rebuild-manifest", action="store_true", help="only rebuild OUT/manifest.jsonl")
    parser.add_argument("--quiet", action="store_true")
    parser.set_defaults(handler=_pairs)


def _pairs(args: argparse.Namespace) -> int:
    from pipelines.pairs.activity import ActivitySettings
    from pipelines.pairs.build import PairsOptions, build_pairs, write_manifest
    from pipelines.pairs.loudness import LoudnessSettings

    if args.rebuild_manifest:
        print(f"{args.out}: {write_manifest(Path(args.out))} windows in the manifest")
        return 0
    options = PairsOptions(
        input=Path(args.input),
        out=Path(args.out),
        window=args.window,
        hop=args.hop,
        sample_rate=args.sample_rate,
        activity=ActivitySettings(
            floor_db=args.energy_floor,
            relative_db=args.energy_relative,
            periodicity=args.periodicity,
            min_activity=args.min_activity,
        ),
        loudness=LoudnessSettings(mode=args.loudness, target_lufs=args.target_lufs),
        format=args.format,
        split=args.split,
        shard=args.shard,
        jobs=args.jobs,
        progress=not args.quiet,
    )
    summary = build_pairs(options)
    print(f"{args.out}: {summary.format()}")
    return 0


__all__ = ["register"]
