"""`singsong tokens build`: encode a corpus of pairs into a token cache."""

from __future__ import annotations

import argparse


def register(groups: dict[str, argparse._SubParsersAction]) -> None:
    build = groups["tokens"].add_parser(
        "build",
        help="encode vocal/instrumental pairs into memory-mapped token arrays (resumable)",
        description="Encode every pair of a pairs manifest or a stem corpus with the semantic tokenizer and the "
        "codec. Rerunning continues where an interrupted run stopped.",
    )
    build.add_argument("--data", required=True, help="pairs manifest (.jsonl) or corpus folder with manifest.jsonl")
    build.add_argument("--codec", required=True, help="codec directory (ours or a transformers EnCodec)")
    build.add_argument("--semantic", required=True, help="semantic tokenizer directory")
    build.add_argument("--out", required=True, help="cache directory")
    build.add_argument("--splits", default=None, help="comma-separated splits to encode (default: all)")
    build.add_argument(
        "--coarse-levels",
        type=int,
        default=None,
        help="codec levels that count as coarse (default: the codec's own setting)",
    )
    build.add_argument(
        "--vocal-noise-snr",
        type=float,
        default=20.0,
        help="SNR (dB) of the white noise added for the vocals.semantic_noisy stream (default 20)",
    )
    build.add_argument("--device", default="cpu")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(handler=_build)


def _build(args: argparse.Namespace) -> int:
    from models.loading import load_tokenizer
    from pipelines.tokens.cache import (
        TokenCacheWriter,
        build_token_cache,
        default_streams,
        existing_streams,
        pair_sources,
        tokenizer_fingerprint,
    )

    items = pair_sources(args.data, splits=args.splits.split(",") if args.splits else None)
    codec = load_tokenizer(args.codec, device=args.device)
    semantic = load_tokenizer(args.semantic, device=args.device)
    coarse = args.coarse_levels or getattr(codec, "num_coarse_levels", None) or min(3, codec.num_codebooks)
    streams = default_streams(coarse, args.vocal_noise_snr)
    resumed = existing_streams(args.out)
    if resumed is not None:
        added = sorted({s.name for s in streams} - {s.name for s in resumed})
        if added:
            print(
                f"{args.out}: continuing the existing cache with its own streams (not adding {', '.join(added)}; "
                "build a new cache to get them)"
            )
        streams = resumed
    writer = TokenCacheWriter(
        args.out,
        semantic=semantic,
        codec=codec,
        streams=streams,
        fingerprints={
            "codec": tokenizer_fingerprint(codec, args.codec),
            "semantic": tokenizer_fingerprint(semantic, args.semantic),
        },
        device=args.device,
    )
    summary = build_token_cache(writer, items, progress=not args.quiet)
    print(
        f"{args.out}: encoded {summary.encoded}, skipped {summary.skipped} already cached, "
        f"failed {summary.failed} (see log); {len(writer.done)} items in the cache"
    )
    return 1 if summary.failed and not summary.encoded and not summary.skipped else 0
